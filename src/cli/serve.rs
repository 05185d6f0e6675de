//! Serving a plugin until a signal or the runtime ends it, and the exit
//! status that tells a supervisor what to do next.

use std::process::ExitCode;

use super::{health, signals, Cli};
use crate::log_text::Escape;
use crate::stub::{Backoff, Stub, StubBuilder};

/// Builds the stub; a failure is logged and becomes the exit status (see
/// [`Error::exit_code`](crate::Error::exit_code): 78 for a bad name or
/// index).
pub fn build(builder: StubBuilder) -> Result<Stub, ExitCode> {
    builder.build().map_err(|e| {
        log::error!("cannot create the plugin: {e}");
        ExitCode::from(e.exit_code())
    })
}

/// [`build`]s the stub, then [`run`]s it: what a plugin's `main` ends with.
pub fn serve(builder: StubBuilder, cli: &Cli) -> ExitCode {
    match build(builder) {
        Ok(stub) => run(&stub, cli),
        Err(code) => code,
    }
}

/// Serves `stub` until SIGTERM or SIGINT, or until the runtime goes away
/// (with `-reconnect`, until a signal only: the stub reconnects with
/// backoff), and turns the outcome into an exit status: 0 for a normal end
/// (a signal, or the runtime releasing a plugin it launched), 78
/// ([`EXIT_CONFIG`](crate::EXIT_CONFIG)) when a restart cannot help (a bad
/// configuration, a runtime too old for a required event), 1 otherwise
/// (restart me). With `-metrics-file` or `-state-file`, a thread keeps
/// those files up to date meanwhile ([`spawn_reporter`](super::spawn_reporter)).
pub fn run(stub: &Stub, cli: &Cli) -> ExitCode {
    health::spawn_reporter(stub, cli.metrics_file.clone(), cli.state_file.clone());
    let stopper = stub.clone();
    let installed = signals::on_termination(move |signal| {
        log::info!("{signal}: stopping plugin {}", Escape(stopper.name()));
        stopper.stop();
    });
    if let Err(e) = installed {
        log::warn!("cannot handle SIGTERM/SIGINT ({e}); stop the plugin with SIGKILL");
    }
    let result = if cli.reconnect {
        stub.run_supervised(Backoff::default())
    } else {
        stub.run()
    };
    // The library has logged why the plugin ended; the exit status tells a
    // supervisor whether to restart it.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("plugin {}: {}", Escape(stub.name()), Escape(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
