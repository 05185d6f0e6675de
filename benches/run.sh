#!/usr/bin/env bash
# NRI plugin benchmarks: our Rust plugin (nri::stub) vs the same logic on
# the Go pkg/stub, under driver A (our nri::runtime), driver B (the Go
# pkg/adaptation v0.9.0; Go plugin on pkg/stub v0.9.0) and driver C (the Go
# pkg/adaptation v0.12.5; Go plugin on pkg/stub v0.12.5), plus the raw-socket
# floor and raw ttrpc (ours vs the ttrpc crate), all in one invocation.
# Writes BENCHMARKS.md.
#
# usage: benches/run.sh [--smoke] [--out FILE]
#   --smoke   tiny counts, one run: checks that every figure is produced
#             (exit 0 only then); does not write BENCHMARKS.md unless --out
#             is given. For CI.
#   --out F   write the report to F (default: BENCHMARKS.md for full runs)
# Needs: cargo, Go >= 1.24 with the module proxy or a module cache holding
# benches/go/go.sum and benches/go/go-nri-v0.12.5.sum, Linux /proc.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
smoke=0
out=""
cmdline="benches/run.sh $*"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --out) out="$2"; shift ;;
        *) echo "usage: benches/run.sh [--smoke] [--out FILE]" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$out" && $smoke -eq 0 ]]; then
    out="$root/BENCHMARKS.md"
fi

cd "$root"
if [[ $smoke -eq 1 ]]; then
    # Smoke runs check that the benchmark works, not its numbers: build
    # quickly (no LTO, parallel codegen) in a target dir of their own so that
    # full runs keep their release artifacts.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/bench-smoke}"
    export CARGO_PROFILE_RELEASE_LTO=off
    export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
tdir="${CARGO_TARGET_DIR:-$root/target}"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
NRI_BENCH_CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
export NRI_BENCH_CLK_TCK
bin="$root/target/bench"
[[ $smoke -eq 1 ]] && bin="$tdir/bench-bin"
mkdir -p "$bin"
t_start=$(date +%s)

# --- builds -----------------------------------------------------------------
builds=()
build() {
    builds+=("$*")
    echo "+ $*" >&2
    "$@"
}
# The static target: musl when it is installed (rustup cannot download it
# offline), else glibc with +crt-static (the explicit --target keeps the flag
# away from build scripts).
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    static_target=x86_64-unknown-linux-musl
    static_env=()
else
    static_target=x86_64-unknown-linux-gnu
    static_env=(RUSTFLAGS="-C target-feature=+crt-static")
fi
build_static() {
    builds+=("${static_env[*]+${static_env[*]} }cargo build --release $* --target $static_target")
    echo "+ ${static_env[*]+${static_env[*]} }cargo build --release $* --target $static_target" >&2
    env ${static_env[@]+"${static_env[@]}"} cargo build --quiet --release "$@" --target "$static_target"
}

if [[ $smoke -eq 0 ]]; then
    # The plugin the drivers run, and the bench program: release profile
    # (LTO, one codegen unit), the default glibc target, as a plugin author
    # builds by default.
    build cargo build --quiet --release --example nri-bench --example bench-plugin
    cp "$tdir/release/examples/nri-bench" "$tdir/release/examples/bench-plugin" "$bin/"
    # The same plugin as a static binary, for its size and idle footprint.
    build_static --example bench-plugin
else
    # Smoke: one build only, static, used for every role.
    build_static --example bench-plugin --example nri-bench
    cp "$tdir/$static_target/release/examples/nri-bench" "$tdir/$static_target/release/examples/bench-plugin" "$bin/"
fi
cp "$tdir/$static_target/release/examples/bench-plugin" "$bin/bench-plugin-static"
build strip "$bin/bench-plugin-static"

# Go: the pkg/stub plugin (static, stripped) and the pkg/adaptation driver,
# at v0.9.0 (go.mod: driver B) and at v0.12.5 (go-nri-v0.12.5.mod and the
# nri_v012 tag: driver C).
(
    cd benches/go
    echo "+ CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $bin/go-plugin ./plugin" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/go-plugin" ./plugin
    echo "+ go build -o $bin/go-driver ./driver" >&2
    go build -o "$bin/go-driver" ./driver
    echo "+ CGO_ENABLED=0 go build -modfile=go-nri-v0.12.5.mod -trimpath -ldflags='-s -w' -o $bin/go-plugin-v0.12.5 ./plugin" >&2
    CGO_ENABLED=0 go build -modfile=go-nri-v0.12.5.mod -trimpath -ldflags='-s -w' -o "$bin/go-plugin-v0.12.5" ./plugin
    echo "+ go build -modfile=go-nri-v0.12.5.mod -tags nri_v012 -o $bin/go-driver-v0.12.5 ./driver" >&2
    go build -modfile=go-nri-v0.12.5.mod -tags nri_v012 -o "$bin/go-driver-v0.12.5" ./driver
)
builds+=("(cd benches/go && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o target/bench/go-plugin ./plugin)")
builds+=("(cd benches/go && go build -o target/bench/go-driver ./driver)")
builds+=("(cd benches/go && CGO_ENABLED=0 go build -modfile=go-nri-v0.12.5.mod -trimpath -ldflags='-s -w' -o target/bench/go-plugin-v0.12.5 ./plugin)")
builds+=("(cd benches/go && go build -modfile=go-nri-v0.12.5.mod -tags nri_v012 -o target/bench/go-driver-v0.12.5 ./driver)")
t_built=$(date +%s)
echo "builds took $((t_built - t_start)) s" >&2

# --- measurements -----------------------------------------------------------
args=(suite
    --rust-plugin "$bin/bench-plugin"
    --rust-static-plugin "$bin/bench-plugin-static"
    --static-target "$static_target"
    --go-plugin "$bin/go-plugin"
    --go-driver "$bin/go-driver"
    --go-plugin-v012 "$bin/go-plugin-v0.12.5"
    --go-driver-v012 "$bin/go-driver-v0.12.5"
    --rust-size-bin "$bin/bench-plugin-static"
    --go-size-bin "$bin/go-plugin"
    --go-v012-size-bin "$bin/go-plugin-v0.12.5"
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')"
    --cmdline "$cmdline"
    --builds "$(printf '%s\n' "${builds[@]}" | sed "s#$root/##g")"
)
[[ $smoke -eq 1 ]] && args+=(--smoke)
[[ -n "$out" ]] && args+=(--out "$out")
[[ -f "$root/benches/NOTES.md" ]] && args+=(--notes "$root/benches/NOTES.md")

rc=0
"$bin/nri-bench" "${args[@]}" || rc=$?
t_end=$(date +%s)
echo "measurements took $((t_end - t_built)) s; total $((t_end - t_start)) s" >&2
if [[ $rc -ne 0 ]]; then
    echo "run.sh: FAILED (some figure was not produced)" >&2
    exit "$rc"
fi
echo "run.sh: every figure produced" >&2
