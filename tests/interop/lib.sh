# shellcheck shell=bash disable=SC2034 # variables set here are read by the scripts that source it
# Shared by run.sh and run-runtime.sh (sourced, not run): the NRI versions
# of the matrix, how each one's Go programs are built, the Go toolchain
# check, and the counting of scenario runs.

# The versions of github.com/containerd/nri the matrix covers, oldest first:
# what CRI-O 1.32 and containerd 1.7/2.0/2.1 embed (v0.9.0), containerd 2.2.0
# (v0.10.0), containerd 2.2.1+ (v0.11.0), containerd 2.4 (v0.12.3), the
# first with failure policies (v0.12.4) and the newest (v0.12.5).
all_versions=(v0.9.0 v0.10.0 v0.11.0 v0.12.3 v0.12.4 v0.12.5)

# modfile_of V / tag_of V: the module file and the build tag of version V.
modfile_of() {
    if [[ "$1" == v0.9.0 ]]; then echo go.mod; else echo "go-nri-$1.mod"; fi
}
tag_of() {
    local t="${1#v}"
    t="${t//./_}"
    # the tags name the minor version, and the patch where two of one minor
    # are in the matrix (nri_v0_9, nri_v0_10, nri_v0_11, nri_v0_12_3, ...)
    case "$t" in
    0_12_*) echo "nri_v$t" ;;
    *) echo "nri_v${t%_*}" ;;
    esac
}

# select_versions WHAT: the versions named by $NRI_VERSIONS (default: all),
# checked, into the array `versions`.
select_versions() {
    versions=()
    local v k ok
    for v in ${NRI_VERSIONS:-${all_versions[*]}}; do
        ok=""
        for k in "${all_versions[@]}"; do
            [[ "$v" == "$k" ]] && ok=1
        done
        if [[ -z "$ok" ]]; then
            echo "$1: NRI_VERSIONS: unknown version $v (known: ${all_versions[*]})" >&2
            exit 2
        fi
        versions+=("$v")
    done
    if [[ ${#versions[@]} -eq 0 ]]; then
        echo "$1: NRI_VERSIONS selects no version" >&2
        exit 2
    fi
}

# need_go WHAT VERSIONS...: stop unless the local Go can build the given
# versions' programs (v0.9.0: Go 1.21; v0.10.0 and newer: Go 1.24).
need_go() {
    local what="$1" v need=21 major minor
    shift
    if ! command -v go >/dev/null 2>&1; then
        echo "$what: Go (>= 1.24) is required" >&2
        exit 2
    fi
    for v in "$@"; do
        [[ "$v" == v0.9.0 ]] || need=24
    done
    read -r major minor <<<"$(go env GOVERSION | sed -E 's/^go([0-9]+)\.([0-9]+).*/\1 \2/')"
    if ((major < 1 || (major == 1 && minor < need))); then
        echo "$what: Go >= 1.$need is required for NRI $* (found $(go env GOVERSION))" >&2
        exit 2
    fi
    export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
    export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
}

# build_go V PROGRAM...: build ./PROGRAM against NRI V into bin/V/PROGRAM
# (run from tests/interop; one Go build cache for all versions).
build_go() {
    local v="$1" mf tag p
    shift
    mf="$(modfile_of "$v")"
    tag="$(tag_of "$v")"
    mkdir -p "bin/$v"
    for p in "$@"; do
        go build -modfile="$mf" -tags "$tag" -o "bin/$v/$p" "./$p"
    done
}

# rust_example NAME: build the crate's example NAME (debug) and print its path.
rust_example() {
    local root target
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    (cd "$root" && cargo build --quiet --example "$1") >&2
    target="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
        sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
    echo "$target/debug/examples/$1"
}

# Counting. run_counted adds a runner's final "N passed, M failed[, K
# skipped]" line to the current group's counts (run_pass, run_fail,
# run_skip) and to the totals; a runner that prints no such line counts as
# one failure, and a non-zero exit status fails the whole run (`status`,
# the exit status of the sourcing script).
status=0
total_pass=0
total_fail=0
total_skip=0
run_pass=0
run_fail=0
run_skip=0
counted_out="$(mktemp)"
trap 'rm -f "$counted_out"' EXIT

# run_counted WHAT CMD ARGS...
run_counted() {
    local what="$1" rc=0 counts p f s=0
    shift
    "$@" | tee "$counted_out" || rc=$?
    counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$counted_out" | tail -n1 || true)"
    if [[ -z "$counts" ]]; then
        echo "FAIL $what: printed no summary line (exit status $rc; crashed, or refused its arguments?)"
        run_fail=$((run_fail + 1))
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
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
    total_skip=$((total_skip + s))
    [[ $rc -eq 0 ]] || status=1
}

# group_start / group_line NAME: reset the group's counts / print and record
# its summary line ("NAME: N passed, M failed (K skipped)").
summary=()
group_start() { run_pass=0 run_fail=0 run_skip=0; }
group_line() {
    local line="$1: $run_pass passed, $run_fail failed ($run_skip skipped)"
    echo "$line"
    summary+=("$line")
}

# print_total: the group lines again, then the total.
print_total() {
    local line
    echo "== total"
    for line in "${summary[@]}"; do
        echo "$line"
    done
    echo "$total_pass passed, $total_fail failed ($total_skip skipped)"
}
