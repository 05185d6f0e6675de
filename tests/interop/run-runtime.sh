#!/usr/bin/env bash
# The other direction of the interop harness, at every NRI version of the
# matrix (lib.sh): this crate's runtime side (nri::runtime, driven by the
# interop-runtime example with -nri VERSION choosing the emulated runtime)
# against the Go contract plugin built on upstream pkg/stub of the same
# version (from v0.12 also with the v0.9.0 Go plugin as the -old-plugin of
# the StateChange fallback); then the differential check of nri::runtime's
# PluginSet against the Go adaptation v0.12.5 (tests/interop/differential).
#
# usage: tests/interop/run-runtime.sh [PLUGIN2_PATH] [interop-runtime flags...]
#   PLUGIN2_PATH: a second contract plugin (plugin B of the two-plugin
#   scenarios, in every version's run); flags (e.g. -run REGEX, -v) go to
#   every scenario run.
# Environment: NRI_VERSIONS (default: all six) picks the versions; DIFF_SEED
# (default 1) and DIFF_CASES (default 2000) set the differential check's
# deterministic seed and case count (DIFF_CASES=0 skips it).
# Prints one line per version and one for the differential check,
# "NAME: N passed, M failed (K skipped)", then the total. Exit status: 0
# when every run passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$here/lib.sh"

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

select_versions run-runtime.sh
need_go run-runtime.sh "${versions[@]}" v0.12.5

cd "$here"
# the Go plugin of each version, v0.9.0's for the fallback, and the
# differential reference (v0.12.5)
build=(v0.9.0)
for v in "${versions[@]}"; do
    [[ "$v" == v0.9.0 ]] || build+=("$v")
done
for v in "${build[@]}"; do
    echo "building the Go contract plugin for NRI $v (-modfile=$(modfile_of "$v") -tags $(tag_of "$v"))..."
    build_go "$v" goplugin
done
if ((cases > 0)); then
    echo "building the differential reference (NRI v0.12.5)..."
    build_go v0.12.5 goplugin differential
fi

echo "building interop-runtime..."
rt="$(rust_example interop-runtime)"

p2=()
[[ -z "$plugin2" ]] || p2=(-plugin2 "$plugin2")

for v in "${versions[@]}"; do
    group_start
    args=(-nri "$v" -plugin "bin/$v/goplugin")
    case "$v" in
    v0.9.* | v0.10.* | v0.11.*) ;;
    *) args+=(-old-plugin bin/v0.9.0/goplugin) ;; # per-event RPCs from v0.12
    esac
    echo "== $v: interop-runtime ${args[*]} ${p2[*]}"
    run_counted "interop-runtime ($v)" "$rt" "${args[@]}" ${p2[@]+"${p2[@]}"} ${extra[@]+"${extra[@]}"}
    group_line "$v"
done

if ((cases > 0)); then
    group_start
    echo "== differential: PluginSet vs the Go adaptation v0.12.5 (seed $seed, $cases cases)"
    run_counted "the differential check" "$rt" -differential bin/v0.12.5/differential \
        -plugin bin/v0.12.5/goplugin -nri v0.12.5 -seed "$seed" -cases "$cases"
    group_line differential
fi

print_total
exit "$status"
