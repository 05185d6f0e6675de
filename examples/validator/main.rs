//! `validator`: rejects container adjustments a configured policy forbids
//! (see plugin.rs for the policy and its configuration).
//!
//! ```text
//! cargo run --example validator -- -idx 95 -config examples/deploy/validator.yaml
//! ```

mod plugin;

use std::process::ExitCode;

use nri::api::{Event, FailurePolicy};
use nri::cli::{self, Cli, Flag};

fn main() -> ExitCode {
    let cli = Cli::parse(
        "validator",
        "An NRI plugin that rejects container adjustments a configured policy forbids.",
        &[Flag {
            name: "config",
            value: Some("FILE"),
            help: "policy to use until the runtime sends one in Configure (YAML, see plugin.rs)",
        }],
    );
    cli.init_logging("validator");
    let policy = match cli.value("config").map(std::fs::read_to_string) {
        None => plugin::Policy::default(),
        Some(Err(e)) => {
            log::error!("cannot read the policy: {e}");
            return ExitCode::from(nri::EXIT_CONFIG);
        }
        Some(Ok(text)) => match plugin::Policy::parse(&text) {
            Ok(policy) => policy,
            Err(e) => {
                log::error!("{e}");
                return ExitCode::from(nri::EXIT_CONFIG);
            }
        },
    };
    let builder = cli
        .stub_builder(plugin::Validator::new(policy))
        // A validator the runtime cannot consult would let everything through.
        .require_events(Event::VALIDATE_CONTAINER_ADJUSTMENT)
        // A validator that does not answer must not let the creation through
        // either, and stays connected (runtimes from NRI v0.12.5).
        .failure_policy(FailurePolicy::from_flags(true, true));
    cli::serve(builder, &cli)
}
