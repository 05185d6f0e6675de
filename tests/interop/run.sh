#!/usr/bin/env bash
# NRI interop harness, as a matrix over the runtime sides users run: for each
# NRI version (github.com/containerd/nri pkg/adaptation v0.9.0, v0.11.0 =
# containerd 2.2, v0.12.3 = containerd 2.4, v0.12.5 = latest), build the
# driver (the reference Go runtime side) and the Go contract plugin against
# it, check the harness against that Go plugin, then (given a path) run the
# same scenarios against another contract plugin, with the Go plugin of that
# version as plugin B. Then the other direction, once: build this crate's
# interop-runtime example (our runtime side, nri::runtime) and drive the Go
# plugin of v0.9.0 with it, with PLUGIN_PATH as its second plugin.
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
#                  (default: "v0.9.0 v0.11.0 v0.12.3 v0.12.5")
# Prints one line per version, "vX.Y.Z: N passed, M failed (K skipped)",
# and ends with the total "N passed, M failed" over everything.
# Exit status: 0 when every run passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
all_versions=(v0.9.0 v0.10.0 v0.11.0 v0.12.3 v0.12.4 v0.12.5)

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

versions=()
for v in ${NRI_VERSIONS:-${all_versions[*]}}; do
    ok=""
    for k in "${all_versions[@]}"; do
        [[ "$v" == "$k" ]] && ok=1
    done
    if [[ -z "$ok" ]]; then
        echo "run.sh: NRI_VERSIONS: unknown version $v (known: ${all_versions[*]})" >&2
        exit 2
    fi
    versions+=("$v")
done
if [[ ${#versions[@]} -eq 0 ]]; then
    echo "run.sh: NRI_VERSIONS selects no version" >&2
    exit 2
fi

# modfile_of V / tag_of V: the module file and the build tag of version V
modfile_of() {
    if [[ "$1" == v0.9.0 ]]; then echo go.mod; else echo "go-nri-$1.mod"; fi
}
tag_of() {
    case "$1" in
    v0.9.0) echo nri_v0_9 ;;
    v0.10.0) echo nri_v0_10 ;;
    v0.11.0) echo nri_v0_11 ;;
    v0.12.3) echo nri_v0_12_3 ;;
    v0.12.4) echo nri_v0_12_4 ;;
    v0.12.5) echo nri_v0_12_5 ;;
    esac
}

if ! command -v go >/dev/null 2>&1; then
    echo "run.sh: Go (>= 1.24) is required" >&2
    exit 2
fi
gover="$(go env GOVERSION | sed -E 's/^go([0-9]+)\.([0-9]+).*/\1 \2/')"
read -r major minor <<<"$gover"
need=21 # v0.9.0 builds with Go 1.21; NRI v0.10 and newer need Go 1.24
for v in "${versions[@]}"; do
    [[ "$v" == v0.9.0 ]] || need=24
done
if ((major < 1 || (major == 1 && minor < need))); then
    echo "run.sh: Go >= 1.$need is required for NRI ${versions[*]} (found $(go env GOVERSION))" >&2
    exit 2
fi

root="$(cd "$here/../.." && pwd)"
cd "$here"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Build each version's driver and Go plugin once (one GOCACHE for all). The
# Go plugin of v0.9.0 is always built: it is the negative control of the
# deprecation check on v0.12 and the plugin of the interop-runtime run.
build=(v0.9.0)
for v in "${versions[@]}"; do
    [[ "$v" == v0.9.0 ]] || build+=("$v")
done
for v in "${build[@]}"; do
    mf="$(modfile_of "$v")"
    tag="$(tag_of "$v")"
    echo "building driver and goplugin for NRI $v (-modfile=$mf -tags $tag)..."
    mkdir -p "bin/$v"
    go build -modfile="$mf" -tags "$tag" -o "bin/$v/driver" ./driver
    go build -modfile="$mf" -tags "$tag" -o "bin/$v/goplugin" ./goplugin
done
# the v0.9.0 binaries under their historical names
ln -sfn v0.9.0/driver bin/driver
ln -sfn v0.9.0/goplugin bin/goplugin

status=0
total_pass=0
total_fail=0
run_pass=0
run_fail=0
run_skip=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# run_counted WHAT CMD ARGS...: run a scenario runner, add its counts to the
# current version's counts and to the totals
run_counted() {
    local what="$1"
    shift
    local rc=0
    "$@" | tee "$out" || rc=$?
    local counts
    counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$out" | tail -n1 || true)"
    if [[ -z "$counts" ]]; then
        echo "run.sh: the $what printed no summary line (crashed?)" >&2
        run_fail=$((run_fail + 1))
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
    local p f s=0
    p="${counts%% passed*}"
    f="${counts#*, }"
    f="${f%% failed*}"
    if [[ "$counts" == *skipped ]]; then
        s="${counts##*, }"
        s="${s%% skipped}"
    fi
    run_pass=$((run_pass + p))
    run_fail=$((run_fail + f))
    run_skip=$((run_skip + s))
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    [[ $rc -eq 0 ]] || status=1
}

summary=()
for v in "${versions[@]}"; do
    run_pass=0 run_fail=0 run_skip=0
    legacy=(-legacy-plugin bin/v0.9.0/goplugin)
    echo "== $v: self-check: driver -plugin bin/$v/goplugin"
    run_counted "driver ($v)" "./bin/$v/driver" -plugin "bin/$v/goplugin" -plugin-nri "$v" \
        "${legacy[@]}" ${selfcheck[@]+"${selfcheck[@]}"}
    if [[ -n "$plugin" ]]; then
        echo "== $v: driver -plugin $plugin -plugin2 bin/$v/goplugin"
        run_counted "driver ($v)" "./bin/$v/driver" -plugin "$plugin" -plugin-nri v0.12.5 -require-events \
            -plugin2 "bin/$v/goplugin" -plugin2-nri "$v" "${legacy[@]}" ${extra[@]+"${extra[@]}"}
    fi
    line="$v: $run_pass passed, $run_fail failed ($run_skip skipped)"
    echo "$line"
    summary+=("$line")
done

# The other direction: our runtime side drives the Go plugin (and PLUGIN_PATH
# as the second plugin).
echo "building interop-runtime..."
(cd "$root" && cargo build --quiet --example interop-runtime)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
rt_args=(-plugin bin/v0.9.0/goplugin)
if [[ -n "$plugin" ]]; then
    rt_args+=(-plugin2 "$plugin")
fi
run_pass=0 run_fail=0 run_skip=0
echo "== interop-runtime ${rt_args[*]}"
run_counted interop-runtime "$target_dir/debug/examples/interop-runtime" "${rt_args[@]}" \
    ${rtflags[@]+"${rtflags[@]}"}
summary+=("interop-runtime: $run_pass passed, $run_fail failed")

echo "== total"
for line in "${summary[@]}"; do
    echo "$line"
done
echo "$total_pass passed, $total_fail failed"

exit "$status"
