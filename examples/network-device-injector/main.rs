//! `network-device-injector`: moves host network devices into pods as their
//! annotation asks (see plugin.rs for the annotation).
//!
//! ```text
//! ip link add dummy0 type dummy
//! cargo run --example network-device-injector -- -idx 10
//! ```

mod hostdev;
mod netlink;
mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse(
        "network-device-injector",
        "An NRI plugin that moves host network devices into pods, as their annotations ask.",
        &[],
    );
    cli.init_logging("network-device-injector");
    let plugin = plugin::NetworkDeviceInjector;
    cli::serve(cli.stub_builder(plugin), &cli)
}
