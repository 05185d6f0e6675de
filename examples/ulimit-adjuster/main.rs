//! `ulimit-adjuster`: sets the rlimits that pod annotations ask for (see
//! plugin.rs for the annotation).
//!
//! ```text
//! cargo run --example ulimit-adjuster -- -idx 10
//! ```

mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse(
        "ulimit-adjuster",
        "An NRI plugin that sets the rlimits requested by pod annotations.",
        &[],
    );
    cli.init_logging("ulimit-adjuster");
    cli::serve(cli.stub_builder(plugin::UlimitAdjuster), &cli)
}
