//! `rdt`: sets containers' RDT class of service, schemata and monitoring
//! from pod annotations (see plugin.rs for the annotations).
//!
//! ```text
//! cargo run --example rdt -- -idx 10 -verbose
//! ```

mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse(
        "rdt",
        "An NRI plugin that sets containers' RDT class of service, schemata and monitoring from pod annotations.",
        &[],
    );
    cli.init_logging("rdt");
    log::info!("Starting plugin verbose={}", cli.verbose);
    cli::serve(cli.stub_builder(plugin::Rdt), &cli)
}
