//! `network-logger`: logs the network namespace and IP addresses of pods
//! (see plugin.rs for the lines).
//!
//! ```text
//! cargo run --example network-logger -- -idx 10 -socket /var/run/nri/nri.sock
//! ```

mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse(
        "network-logger",
        "An NRI plugin that logs the network namespace and IP addresses of pods.",
        &[],
    );
    cli.init_logging("network-logger");
    let reconnect = cli.reconnect;
    let builder = cli
        .stub_builder(plugin::NetworkLogger::new())
        .on_close(move || {
            if reconnect {
                log::info!("Connection to the runtime lost, reconnecting...");
            } else {
                log::info!("Connection to the runtime lost, exiting...");
            }
        });
    cli::serve(builder, &cli)
}
