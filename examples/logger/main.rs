//! `logger`: logs the events it is subscribed to (all by default).
//!
//! ```text
//! cargo run --example logger -- -idx 00 -events pod,CreateContainer -log-file /tmp/nri-logger.log
//! ```

mod plugin;

use std::process::ExitCode;

use nri::api::EventMask;
use nri::cli::{self, Cli, Flag};

const FLAGS: &[Flag] = &[
    Flag {
        name: "events",
        value: Some("LIST"),
        help: "comma-separated events to log, e.g. pod,CreateContainer (default all)",
    },
    Flag {
        name: "add-annotation",
        value: Some("KEY"),
        help: "add this annotation to every created container",
    },
    Flag {
        name: "set-annotation",
        value: Some("KEY"),
        help: "set (replace) this annotation on every created container",
    },
    Flag {
        name: "add-env",
        value: Some("NAME"),
        help: "add this environment variable to every created container",
    },
    Flag {
        name: "set-env",
        value: Some("NAME"),
        help: "set (replace) this environment variable in every created container",
    },
];

fn main() -> ExitCode {
    let cli = Cli::parse(
        "logger",
        "An NRI plugin that logs pod and container events.",
        FLAGS,
    );
    cli.init_logging("logger");

    let mut flags = plugin::Config::default();
    if let Some(events) = cli.value("events") {
        match EventMask::parse(events) {
            Ok(mask) => flags.events = Some(mask),
            Err(e) => {
                log::error!("-events: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let text = |name: &str| cli.value(name).unwrap_or_default().to_string();
    flags.add_annotation = text("add-annotation");
    flags.set_annotation = text("set-annotation");
    flags.add_env = text("add-env");
    flags.set_env = text("set-env");

    let builder = cli
        .stub_builder(plugin::Logger::new(flags))
        .on_close(|| log::info!("connection to the runtime closed"));
    cli::serve(builder, &cli)
}
