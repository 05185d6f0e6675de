//! `device-injector`: injects device nodes, CDI devices and mounts that pod
//! annotations ask for (see plugin.rs for the annotations).
//!
//! ```text
//! cargo run --example device-injector -- -idx 10
//! ```

#[path = "../common/mod.rs"]
mod common;
mod plugin;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = common::Cli::parse(
        "device-injector",
        "An NRI plugin that injects devices, CDI devices and mounts requested by pod annotations.",
        &[],
    );
    cli.init_logging("device-injector");
    common::serve(cli.stub_builder(plugin::DeviceInjector), &cli)
}
