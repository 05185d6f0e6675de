//! `cpu-rebalancer`: spreads the CPUs evenly over the containers, and pushes
//! unsolicited updates when containers come and go or CPUs go on/offline.
//!
//! ```text
//! cargo run --example cpu-rebalancer -- -idx 50 -interval 5
//! ```

mod plugin;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nri::cli::{self, Cli, Flag};

const FLAGS: &[Flag] = &[
    Flag {
        name: "cpus",
        value: Some("LIST"),
        help: "CPU pool to share, e.g. 2-7 (default: the online CPUs, watched for changes)",
    },
    Flag {
        name: "interval",
        value: Some("SECS"),
        help: "how often to check the online CPUs (default 10)",
    },
];

fn main() -> ExitCode {
    let cli = Cli::parse(
        "cpu-rebalancer",
        "An NRI plugin that spreads CPUs evenly over containers and rebalances them with unsolicited updates.",
        FLAGS,
    );
    cli.init_logging("cpu-rebalancer");

    let (pool, fixed) = match cli.value("cpus") {
        Some(list) => match plugin::parse_cpuset(list) {
            Ok(pool) => (pool, true),
            Err(e) => {
                log::error!("-cpus: {e}");
                return ExitCode::from(2);
            }
        },
        None => (plugin::online_cpus().unwrap_or_else(|| vec![0]), false),
    };
    let interval = match cli.value("interval").map(str::parse::<u64>) {
        None => Duration::from_secs(10),
        Some(Ok(secs)) if secs > 0 => Duration::from_secs(secs),
        Some(_) => {
            log::error!("-interval: expected a positive number of seconds");
            return ExitCode::from(2);
        }
    };

    // The plugin is shared between the stub and the watcher thread.
    let rebalancer = Arc::new(plugin::CpuRebalancer::new(pool, fixed));
    let stub = match cli::build(cli.stub_builder(Arc::clone(&rebalancer))) {
        Ok(stub) => stub,
        Err(code) => return code,
    };
    let _watcher =
        match plugin::PoolWatcher::start(rebalancer, stub.clone(), interval, plugin::online_cpus) {
            Ok(w) => w,
            Err(e) => {
                log::error!("cannot start the CPU watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
    cli::run(&stub, &cli)
}
