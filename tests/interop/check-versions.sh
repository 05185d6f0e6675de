#!/usr/bin/env bash
# Checks the crate's runtime -> NRI version inference
# (nri::api::NriVersion::infer_from_runtime, the table in src/api/version.rs)
# against each containerd and CRI-O release's own go.mod, fetched through
# the Go module proxy: see versions/main.go for which releases and how.
#
# usage: tests/interop/check-versions.sh [-v]
#   -v   print every release checked, not only the mismatches
# Prints "MISMATCH <runtime> <release>: go.mod <nri version>, the crate
# infers <version>" per disagreement and a summary line. Exit status: 0
# when every release checked agrees (or sends its NRI version itself).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/lib.sh
source "$here/lib.sh"

need_go check-versions.sh v0.9.0
cd "$here"
echo "building interop-runtime (the crate's inference) and the check..."
rt="$(rust_example interop-runtime)"
mkdir -p bin
go build -o bin/versions ./versions
./bin/versions -infer "$rt" "$@"
