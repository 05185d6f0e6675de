//! `template`: a plugin with every handler, logging what it sees.
//!
//! ```text
//! cargo run --example template -- -idx 10 -socket /var/run/nri/nri.sock
//! ```

mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli};
use nri::stub::DeadlineGuard;

fn main() -> ExitCode {
    let cli = Cli::parse(
        "template",
        "An NRI plugin that implements every handler and logs what it sees.",
        &[],
    );
    cli.init_logging("template");

    // The StubBuilder options; all but the plugin are optional. The
    // identity and socket (plugin_name, plugin_index, socket_path) come
    // from -name, -idx and -socket: see nri::cli::Cli::stub_builder.
    let builder = cli
        .stub_builder(plugin::Template::new())
        // Called each time the connection ends; the library never exits the
        // process itself: run() returns instead.
        .on_close(|| log::info!("connection to the runtime closed"))
        // Threads serving requests (default 4).
        .workers(2)
        // Answer "no changes" for a handler about to miss the runtime's
        // deadline, instead of being dropped by the runtime.
        .deadline_guard(DeadlineGuard::default());

    // Stops on SIGTERM/SIGINT; with -reconnect survives runtime restarts.
    cli::serve(builder, &cli)
}
