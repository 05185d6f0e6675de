//! `device-injector`: injects device nodes, CDI devices, mounts and network
//! devices, and sets the I/O priority, scheduling policy, sysctls and memory
//! policy that pod annotations ask for (see plugin.rs for the annotations).
//!
//! ```text
//! cargo run --example device-injector -- -idx 10
//! ```

mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse(
        "device-injector",
        "An NRI plugin that injects devices, CDI devices, mounts and network devices, and sets the I/O priority, scheduling policy, sysctls and memory policy requested by pod annotations.",
        &[],
    );
    cli.init_logging("device-injector");
    cli::serve(cli.stub_builder(plugin::DeviceInjector), &cli)
}
