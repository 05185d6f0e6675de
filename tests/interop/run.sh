#!/usr/bin/env bash
# NRI interop harness: build the driver (the reference Go runtime side,
# github.com/containerd/nri v0.9.0 pkg/adaptation) and the Go contract plugin,
# check the harness against the Go plugin, then (given a path) run the same
# scenarios against another contract plugin, with the Go plugin as plugin B.
# Then the other direction: build this crate's interop-runtime example (our
# runtime side, nri::runtime) and drive the Go plugin (the reference plugin
# side, pkg/stub v0.9.0) with it, with PLUGIN_PATH as its second plugin.
#
# usage: tests/interop/run.sh [PLUGIN_PATH] [driver flags...]
#   driver flags (e.g. -run REGEX, -v, -deadline-guard) go to every run,
#   except -deadline-guard, which only applies to PLUGIN_PATH (and not to
#   the interop-runtime run).
# Exit status: 0 when every run passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

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
selfcheck=()
for a in ${extra[@]+"${extra[@]}"}; do
    [[ "$a" == "-deadline-guard" || "$a" == "--deadline-guard" ]] || selfcheck+=("$a")
done

if ! command -v go >/dev/null 2>&1; then
    echo "run.sh: Go (>= 1.21) is required" >&2
    exit 2
fi
gover="$(go env GOVERSION | sed -E 's/^go([0-9]+)\.([0-9]+).*/\1 \2/')"
read -r major minor <<<"$gover"
if (( major < 1 || (major == 1 && minor < 21) )); then
    echo "run.sh: Go >= 1.21 is required (found $(go env GOVERSION))" >&2
    exit 2
fi

root="$(cd "$here/../.." && pwd)"
cd "$here"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p bin
echo "building driver and goplugin..."
go build -o bin/driver ./driver
go build -o bin/goplugin ./goplugin

status=0
total_pass=0
total_fail=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# run_driver ARGS...: run the driver, add its counts to the totals
run_driver() {
    run_counted driver ./bin/driver "$@"
}

# run_counted WHAT CMD ARGS...: run a scenario runner, add its counts to the
# totals
run_counted() {
    local what="$1"
    shift
    local rc=0
    "$@" | tee "$out" || rc=$?
    local counts
    counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1 || true)"
    if [[ -z "$counts" ]]; then
        echo "run.sh: the $what printed no summary line (crashed?)" >&2
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
    total_pass=$((total_pass + ${counts%% passed*}))
    counts="${counts#*, }"
    total_fail=$((total_fail + ${counts%% failed*}))
    [[ $rc -eq 0 ]] || status=1
}

echo "== self-check: driver -plugin bin/goplugin"
set -o pipefail
run_driver -plugin bin/goplugin ${selfcheck[@]+"${selfcheck[@]}"}

if [[ -n "$plugin" ]]; then
    echo "== driver -plugin $plugin -plugin2 bin/goplugin"
    run_driver -plugin "$plugin" -plugin2 bin/goplugin ${extra[@]+"${extra[@]}"}
fi

# The other direction: our runtime side drives the Go plugin (and PLUGIN_PATH
# as the second plugin).
echo "building interop-runtime..."
(cd "$root" && cargo build --quiet --example interop-runtime)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
rt_args=(-plugin bin/goplugin)
if [[ -n "$plugin" ]]; then
    rt_args+=(-plugin2 "$plugin")
fi
echo "== interop-runtime ${rt_args[*]}"
run_counted interop-runtime "$target_dir/debug/examples/interop-runtime" "${rt_args[@]}" \
    ${selfcheck[@]+"${selfcheck[@]}"}

echo "== total"
echo "$total_pass passed, $total_fail failed"

exit "$status"
