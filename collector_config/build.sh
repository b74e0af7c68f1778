#!/usr/bin/env bash
# Build shellspan's OpenTelemetry Collector (otelcol-shellspan) with the OpenTelemetry Collector
# Builder (ocb) from builder-config.yaml, and cache it outside the repository:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/shellspan/otelcol/<hash>/otelcol-shellspan
#
# <hash> covers the manifest, the local headerssetter module, the builder version and the Go
# version, so a repeated run with nothing changed skips the build. The last line on stdout is the
# binary's path; progress goes to stderr.
#
# Exit codes: 0 built or cached; 3 no Go toolchain found (callers may skip); other: build failed.
# Environment: GO (path to the go command), SHELLSPAN_OTELCOL_CACHE (cache root, overrides the
# default above), SHELLSPAN_OTELCOL_REBUILD=1 (ignore the cache).
set -euo pipefail

OCB_VERSION=v0.161.0
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MANIFEST="$HERE/builder-config.yaml"
NAME=otelcol-shellspan

log() { printf 'collector build: %s\n' "$*" >&2; }

# --- find Go -------------------------------------------------------------------------------------
go_bin="${GO:-}"
if [ -z "$go_bin" ]; then
    go_bin="$(command -v go || true)"
fi
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
    go_bin=/usr/local/go/bin/go
fi
if [ -z "$go_bin" ] || ! "$go_bin" version >/dev/null 2>&1; then
    echo "collector build: no Go toolchain found (set GO=/path/to/go or put go on PATH);" \
         "building the collector needs Go (see docs/collector.md)" >&2
    exit 3
fi
export PATH="$(dirname "$go_bin"):$PATH"
go_version="$("$go_bin" env GOVERSION)"

# --- cache key -----------------------------------------------------------------------------------
cache_root="${SHELLSPAN_OTELCOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shellspan/otelcol}"
key="$(
    {
        echo "ocb $OCB_VERSION"
        echo "go $go_version"
        echo "--- builder-config.yaml"
        cat "$MANIFEST"
        for f in "$HERE"/headerssetter/go.mod "$HERE"/headerssetter/go.sum "$HERE"/headerssetter/*.go; do
            [ -f "$f" ] || continue
            echo "--- $(basename "$f")"
            cat "$f"
        done
    } | sha256sum | cut -c1-16
)"
out_dir="$cache_root/$key"
binary="$out_dir/$NAME"

if [ -x "$binary" ] && [ "${SHELLSPAN_OTELCOL_REBUILD:-0}" != 1 ]; then
    log "cached: $binary"
    echo "$binary"
    exit 0
fi

mkdir -p "$cache_root"
# One build at a time per cache root (parallel test runs share it).
exec 9>"$cache_root/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if [ -x "$binary" ] && [ "${SHELLSPAN_OTELCOL_REBUILD:-0}" != 1 ]; then
    log "cached (built meanwhile): $binary"
    echo "$binary"
    exit 0
fi

# --- the builder itself --------------------------------------------------------------------------
ocb="$cache_root/ocb-$OCB_VERSION/builder"
if [ ! -x "$ocb" ]; then
    log "installing go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
    GOBIN="$cache_root/ocb-$OCB_VERSION" "$go_bin" install \
        "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >&2
fi

# --- build ---------------------------------------------------------------------------------------
work="$(mktemp -d "$cache_root/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Same manifest, with the output directory moved into the cache (local module paths in the
# manifest stay relative to collector_config/, where ocb runs).
sed -e "s|^\([[:space:]]*output_path:\).*|\1 $work/src|" "$MANIFEST" >"$work/builder-config.yaml"

log "building $NAME with ocb $OCB_VERSION and $go_version (first build: a few minutes)"
start=$(date +%s)
(cd "$HERE" && "$ocb" --config "$work/builder-config.yaml") >&2
log "built in $(( $(date +%s) - start ))s"

"$work/src/$NAME" --version >&2
mkdir -p "$out_dir"
cp "$work/src/$NAME" "$out_dir/.$NAME.tmp"
cp "$work/builder-config.yaml" "$out_dir/builder-config.yaml"
mv -f "$out_dir/.$NAME.tmp" "$binary"
echo "$binary"
