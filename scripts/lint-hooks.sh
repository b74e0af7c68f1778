#!/usr/bin/env bash
# The bash/zsh hook files: parsed by the shells that run them, and shellcheck on the bash one.
# A checker that is not installed (and could not be: see install-test-deps.sh) is skipped with a
# printed reason; a checker that finds a problem fails the lint.
set -euo pipefail
dir=instrumentation/src/shellspan/posix
status=0
check() {  # tool, command...
    local tool=$1; shift
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "lint-hooks: $tool not installed: skipped (scripts/install-test-deps.sh installs it)"
        return
    fi
    "$@" || status=1
}
check bash bash -n "$dir/shellspan.bash"
check zsh zsh -n "$dir/shellspan.zsh"
check shellcheck shellcheck --severity=style --shell=bash "$dir/shellspan.bash"
[ "$status" -eq 0 ] && echo "lint-hooks: shellspan.bash and shellspan.zsh are clean"
exit "$status"
