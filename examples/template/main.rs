//! `template`: a plugin with every handler, logging what it sees.
//!
//! ```text
//! cargo run --example template -- -idx 10 -socket /var/run/nri/nri.sock
//! ```

#[path = "../common/mod.rs"]
mod common;
mod plugin;

use std::process::ExitCode;

use nri::stub::{DeadlineGuard, Stub};

fn main() -> ExitCode {
    let cli = common::Cli::parse(
        "template",
        "An NRI plugin that implements every handler and logs what it sees.",
        &[],
    );
    cli.init_logging("template");

    // Every StubBuilder option, spelled out; all but the plugin are optional.
    let mut builder = Stub::builder(plugin::Template::new())
        // Called each time the connection ends; the library never exits the
        // process itself: run() returns instead.
        .on_close(|| log::info!("connection to the runtime closed"))
        // Threads serving requests (default 4).
        .workers(2)
        // Answer "no changes" for a handler about to miss the runtime's
        // deadline, instead of being dropped by the runtime.
        .deadline_guard(DeadlineGuard::default());
    if let Some(name) = &cli.name {
        builder = builder.plugin_name(name);
    }
    if let Some(idx) = &cli.idx {
        builder = builder.plugin_index(idx);
    }
    if let Some(socket) = &cli.socket {
        builder = builder.socket_path(socket);
    }
    let stub = match builder.build() {
        Ok(stub) => stub,
        Err(e) => {
            log::error!("cannot create the plugin: {e}");
            return ExitCode::from(e.exit_code());
        }
    };

    // Stops on SIGTERM/SIGINT; with -reconnect survives runtime restarts.
    common::run(&stub, cli.reconnect)
}
