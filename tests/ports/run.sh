#!/usr/bin/env bash
# Differential check of the ported example plugins (device-injector, its
# NRI v0.10-v0.12 kinds included, ulimit-adjuster, hook-injector;
# network-device-injector, rdt, writable-cgroups, network-logger and differ:
# tests/ports/samples.rs) against the Go libraries the Go plugins use
# (sigs.k8s.io/yaml, Go's NRI API, go.podman.io/common/pkg/hooks,
# moby/sys/mountinfo, r3labs/diff), and of nri::decode against
# sigs.k8s.io/yaml: the Go oracle in
# tests/ports/oracle generates inputs and records the Go outcome, then the
# `ports` test runs the same inputs through the Rust examples and the
# library and requires the same results and error messages (or a listed
# deliberate difference).
#
#   tests/ports/run.sh [--seed N] [--cases N] [--record]
#
# --cases is per plugin (hook-injector gets a quarter of it, each case with
# several containers; the device injector's NRI v0.10-v0.12 kinds get as many
# again), and the number of random decode cases (the written-out device
# injector and decode edge cases come on top). --record rewrites tests/ports/corpus.jsonl,
# the small recorded set that a plain `cargo test` checks without Go
# (recorded with --seed 1 --cases 100).
set -euo pipefail
cd "$(dirname "$0")/../.."

seed=1
cases=4000
record=false
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --record) record=true; shift ;;
    *) echo "usage: $0 [--seed N] [--cases N] [--record]" >&2; exit 2 ;;
  esac
done

if $record; then
  out="$PWD/tests/ports/corpus.jsonl"
else
  mkdir -p target/ports
  out="$PWD/target/ports/cases-$seed-$cases.jsonl"
fi

(cd tests/ports/oracle && go run . -seed "$seed" -cases "$cases" -out "$out")
NRI_PORTS_CASES="$out" cargo test --test ports -- --nocapture
