#!/usr/bin/env bash
# System programs the test suite drives for real: zsh (POSIX shell tests), Chromium (web UI tests),
# curl (the quick start). Installed from Debian's packages when missing; without root the tests
# that need a missing program skip and say why.
set -euo pipefail
need=()
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: not root; missing ${need[*]} (the tests that need them will skip)" >&2
    exit 0
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
