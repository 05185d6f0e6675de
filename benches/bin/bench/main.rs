//! The `nri` benchmark program (run it through `benches/run.sh`).
//!
//! Subcommands (each prints `RESULT <key> <value>` lines):
//!
//! - `driver-a --plugin PATH [--calls N] [--state-calls N] [--warmup N] [--sync 1000,10000]`:
//!   driver A, our `nri::runtime`, launching the plugin binary as a
//!   pre-installed plugin (socket on fd 3) and measuring CreateContainer,
//!   StateChange, Synchronize, the idle plugin and its start-up;
//! - `floor --req BYTES --resp BYTES [--n N]`: ping-pong of raw bytes
//!   between two processes over a Unix socket (no framing, no protobuf);
//! - `ttrpc --impl ours|theirs [--req BYTES] [--resp BYTES] [--n N]`: raw
//!   ttrpc round trips between two processes, with our `nri::ttrpc` client
//!   and server or with the `ttrpc` crate's sync client and server;
//! - `wire-sizes`: the bytes one CreateContainer request and reply of the
//!   benchmark occupy on the socket (mux + ttrpc headers and envelopes);
//! - `suite ...`: runs all of the above (and Go driver B) several times,
//!   takes medians and writes the report (see `benches/run.sh`).

#[path = "../common.rs"]
mod common;

mod alloc_profile;
mod cli;
mod driver_a;
mod floor;
mod format;
mod goals;
mod helper;
mod procfs;
mod raw_ttrpc;
mod report;
mod stats;
mod suite;
mod wire;

use cli::{fail, result, Args};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        fail(
            "usage: nri-bench driver-a|floor|ttrpc|wire-sizes|suite [options] (see benches/run.sh)",
        )
    };
    let args = Args(argv[1..].to_vec());
    match cmd.as_str() {
        "driver-a" => driver_a::driver_a(&args),
        "floor" => floor::floor(&args),
        "floor-server" => floor::floor_server(&args),
        "ttrpc" => raw_ttrpc::ttrpc_bench(&args),
        "ttrpc-server" => raw_ttrpc::ttrpc_server(&args),
        "wire-sizes" => {
            let (q, r) = wire::wire_sizes();
            result("create_request_bytes", q as f64);
            result("create_reply_bytes", r as f64);
        }
        "suite" => suite::suite(&args),
        "alloc-profile" => alloc_profile::alloc_profile(&args),
        other => fail(format!("unknown subcommand {other:?}")),
    }
}
