#!/usr/bin/env bash
# System programs the lint and the test suite use for real: zsh and shellcheck (the hook files,
# POSIX shell tests), sudo (nested sessions), Chromium (web UI tests), curl (the quick start), npm
# (the web UI's terminal player, installed by `make ui-vendor`). Installed from Debian's packages
# when missing; without root the checks and tests that need a missing program skip and say why.
# `install-test-deps.sh lint` installs only what `make lint` needs.
set -euo pipefail
need=()
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
if [ "${1:-all}" != lint ]; then
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v sudo >/dev/null 2>&1 || need+=(sudo)  # nested sessions: sudo -i, sudo -s
    command -v npm >/dev/null 2>&1 || need+=(npm)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: not root; missing ${need[*]} (the tests that need them will skip)" >&2
    exit 0
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
