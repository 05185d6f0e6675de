#!/usr/bin/env bash
# NRI interop harness, as a matrix over the runtime sides users run: for each
# NRI version (github.com/containerd/nri pkg/adaptation v0.9.0, v0.10.0 =
# containerd 2.2.0, v0.11.0 = containerd 2.2.1+, v0.12.3 = containerd 2.4,
# v0.12.4 = the first with failure policies, v0.12.5 = the newest; lib.sh
# lists them), build the driver (the reference Go runtime side) and the Go
# contract plugin against it, check the harness against that Go plugin,
# then (given a path) run the same scenarios against another contract
# plugin, with the Go plugin of that version as plugin B. Then the other
# direction, once: build this crate's interop-runtime example (our runtime
# side, nri::runtime) and drive the Go plugin of v0.9.0 with it, with
# PLUGIN_PATH as its second plugin (run-runtime.sh does that direction at
# every version).
#
# usage: tests/interop/run.sh [PLUGIN_PATH] [driver flags...]
#   driver flags (e.g. -run REGEX, -v, -deadline-guard) go to every driver
#   run, except the ones about PLUGIN_PATH (-deadline-guard, -require-events,
#   -plugin-nri, -plugin2-nri), which only go to its runs; -run and -v also
#   go to the interop-runtime run.
#   PLUGIN_PATH is taken for a contract plugin on the NRI v0.12.5 API that
#   understands -require (the crate's interop-plugin example): its runs get
#   -plugin-nri v0.12.5 -require-events (override with driver flags, e.g.
#   -plugin-nri v0.9.0 -require-events=false).
# environment:
#   NRI_VERSIONS   versions to run, space-separated, in any order
#                  (default: all six)
# Prints one line per version, "vX.Y.Z: N passed, M failed (K skipped)",
# and ends with them again and the total "N passed, M failed (K skipped)".
# Exit status: 0 when every run passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$here/lib.sh"

plugin=""
if [[ $# -gt 0 && "$1" != -* ]]; then
    plugin="$1"
    shift
    if [[ "$plugin" != /* ]]; then
        plugin="$(pwd)/$plugin"
    fi
    if [[ ! -x "$plugin" || -d "$plugin" ]]; then
        echo "run.sh: $plugin is not an executable file" >&2
        exit 2
    fi
fi
extra=("$@")

# Split the flags: selfcheck (the Go plugin's runs) gets everything but the
# flags about PLUGIN_PATH; interop-runtime gets -run and -v only.
selfcheck=()
rtflags=()
skipnext=""
prev=""
for a in ${extra[@]+"${extra[@]}"}; do
    if [[ -n "$skipnext" ]]; then
        skipnext=""
        prev="$a"
        continue
    fi
    case "$a" in
    -deadline-guard | --deadline-guard | -deadline-guard=* | --deadline-guard=* | \
        -require-events | --require-events | -require-events=* | --require-events=* | \
        -plugin-nri=* | --plugin-nri=* | -plugin2-nri=* | --plugin2-nri=*) ;;
    -plugin-nri | --plugin-nri | -plugin2-nri | --plugin2-nri) skipnext=1 ;;
    *)
        selfcheck+=("$a")
        case "$a" in
        -v | --v | -run=* | --run=*) rtflags+=("$a") ;;
        esac
        if [[ "$prev" == "-run" || "$prev" == "--run" ]]; then
            rtflags+=("$prev" "$a")
        fi
        ;;
    esac
    prev="$a"
done

select_versions run.sh
need_go run.sh "${versions[@]}"

cd "$here"

# Build each version's driver and Go plugin once (one GOCACHE for all). The
# Go plugin of v0.9.0 is always built: it is the negative control of the
# deprecation check on v0.12 and the plugin of the interop-runtime run.
build=(v0.9.0)
for v in "${versions[@]}"; do
    [[ "$v" == v0.9.0 ]] || build+=("$v")
done
for v in "${build[@]}"; do
    echo "building driver and goplugin for NRI $v (-modfile=$(modfile_of "$v") -tags $(tag_of "$v"))..."
    build_go "$v" driver goplugin
done

for v in "${versions[@]}"; do
    group_start
    legacy=(-legacy-plugin bin/v0.9.0/goplugin)
    echo "== $v: self-check: driver -plugin bin/$v/goplugin"
    run_counted "driver ($v)" "./bin/$v/driver" -plugin "bin/$v/goplugin" -plugin-nri "$v" \
        "${legacy[@]}" ${selfcheck[@]+"${selfcheck[@]}"}
    if [[ -n "$plugin" ]]; then
        echo "== $v: driver -plugin $plugin -plugin2 bin/$v/goplugin"
        run_counted "driver ($v)" "./bin/$v/driver" -plugin "$plugin" -plugin-nri v0.12.5 -require-events \
            -plugin2 "bin/$v/goplugin" -plugin2-nri "$v" "${legacy[@]}" ${extra[@]+"${extra[@]}"}
    fi
    group_line "$v"
done

# The other direction: our runtime side drives the Go plugin (and PLUGIN_PATH
# as the second plugin).
echo "building interop-runtime..."
rt="$(rust_example interop-runtime)"
rt_args=(-plugin bin/v0.9.0/goplugin)
if [[ -n "$plugin" ]]; then
    rt_args+=(-plugin2 "$plugin")
fi
group_start
echo "== interop-runtime ${rt_args[*]}"
run_counted interop-runtime "$rt" "${rt_args[@]}" ${rtflags[@]+"${rtflags[@]}"}
group_line interop-runtime

print_total
exit "$status"
