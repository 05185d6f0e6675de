#!/usr/bin/env bash
# Builds every fuzz target and runs each for a few seconds on the seed
# corpus. CI calls this; a crash or a leak fails the script.
#
#   fuzz/smoke.sh            # 10 s per target
#   fuzz/smoke.sh 60         # 60 s per target
#   fuzz/smoke.sh 10 mux_frame server_path   # only these targets
#
# Works on the stable toolchain: cargo-fuzz needs nightly-only flags, which
# RUSTC_BOOTSTRAP=1 unlocks. Needs `cargo install cargo-fuzz`.
set -euo pipefail

seconds="${1:-10}"
shift || true
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build

for t in "${targets[@]}"; do
    echo "=== $t: ${seconds}s"
    # corpus/<t> (ignored by git) collects what the run finds; seeds/<t> is
    # read only. -timeout bounds one input (server_path waits at most ~2 s).
    mkdir -p "corpus/$t"
    cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1
done
echo "=== all targets ran ${seconds}s without a crash"
