#!/usr/bin/env bash
# The other direction of the interop harness, at every NRI version it
# covers: this crate's runtime side (nri::runtime, driven by the
# interop-runtime example) against the Go contract plugin built on upstream
# pkg/stub v0.9.0 and v0.12.5, each with the runtime emulating the same
# version; then the differential check of nri::runtime's PluginSet against
# the Go adaptation v0.12.5 (tests/interop/differential).
#
# usage: tests/interop/run-runtime.sh [PLUGIN2_PATH] [interop-runtime flags...]
#   PLUGIN2_PATH: a second contract plugin (plugin B of the two-plugin
#   scenarios, in both runs); flags (e.g. -run REGEX, -v) go to every
#   scenario run.
# Environment: DIFF_SEED (default 1) and DIFF_CASES (default 2000) set the
# differential check's deterministic seed and case count.
# Exit status: 0 when every run passed. Prints a total "N passed, M failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

plugin2=""
if [[ $# -gt 0 && "$1" != -* ]]; then
    plugin2="$1"
    shift
    [[ "$plugin2" == /* ]] || plugin2="$(pwd)/$plugin2"
    if [[ ! -x "$plugin2" || -d "$plugin2" ]]; then
        echo "run-runtime.sh: $plugin2 is not an executable file" >&2
        exit 2
    fi
fi
extra=("$@")
seed="${DIFF_SEED:-1}"
cases="${DIFF_CASES:-2000}"

if ! command -v go >/dev/null 2>&1; then
    echo "run-runtime.sh: Go (>= 1.24, for the NRI v0.12.5 modules) is required" >&2
    exit 2
fi

cd "$here"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
echo "building the Go contract plugin (v0.9.0, v0.12.5) and the differential reference..."
go build -tags nri_v0_9 -o bin/v0.9.0/goplugin ./goplugin
go build -modfile=go-nri-v0.12.5.mod -tags nri_v0_12_5 -o bin/v0.12.5/goplugin ./goplugin
go build -modfile=go-nri-v0.12.5.mod -tags nri_v0_12_5 -o bin/differential ./differential

echo "building interop-runtime..."
(cd "$root" && cargo build --quiet --example interop-runtime)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
rt="$target_dir/debug/examples/interop-runtime"

status=0
total_pass=0
total_fail=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# run_counted WHAT CMD ARGS...: run, add its "N passed, M failed" to the totals
run_counted() {
    local what="$1"
    shift
    local rc=0
    "$@" | tee "$out" || rc=$?
    local counts
    counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1 || true)"
    if [[ -z "$counts" ]]; then
        echo "run-runtime.sh: $what printed no summary line (crashed?)" >&2
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
    total_pass=$((total_pass + ${counts%% passed*}))
    counts="${counts#*, }"
    total_fail=$((total_fail + ${counts%% failed*}))
    [[ $rc -eq 0 ]] || status=1
}

p2=()
[[ -z "$plugin2" ]] || p2=(-plugin2 "$plugin2")

echo "== interop-runtime -nri v0.9.0 -plugin bin/v0.9.0/goplugin ${p2[*]}"
run_counted "interop-runtime (v0.9.0)" "$rt" -nri v0.9.0 -plugin bin/v0.9.0/goplugin \
    ${p2[@]+"${p2[@]}"} ${extra[@]+"${extra[@]}"}

echo "== interop-runtime -nri v0.12.5 -plugin bin/v0.12.5/goplugin -old-plugin bin/v0.9.0/goplugin ${p2[*]}"
run_counted "interop-runtime (v0.12.5)" "$rt" -nri v0.12.5 -plugin bin/v0.12.5/goplugin \
    -old-plugin bin/v0.9.0/goplugin ${p2[@]+"${p2[@]}"} ${extra[@]+"${extra[@]}"}

echo "== differential: PluginSet vs the Go adaptation v0.12.5 (seed $seed, $cases cases)"
run_counted "the differential check" "$rt" -differential bin/differential \
    -plugin bin/v0.12.5/goplugin -nri v0.12.5 -seed "$seed" -cases "$cases"

echo "== total"
echo "$total_pass passed, $total_fail failed"
exit "$status"
