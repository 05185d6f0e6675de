//! `ulimit-adjuster`: sets the rlimits that pod annotations ask for (see
//! plugin.rs for the annotation).
//!
//! ```text
//! cargo run --example ulimit-adjuster -- -idx 10
//! ```

#[path = "../common/mod.rs"]
mod common;
mod plugin;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = common::Cli::parse(
        "ulimit-adjuster",
        "An NRI plugin that sets the rlimits requested by pod annotations.",
        &[],
    );
    cli.init_logging("ulimit-adjuster");
    common::serve(cli.stub_builder(plugin::UlimitAdjuster), &cli)
}
