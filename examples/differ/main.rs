//! `differ`: registers at several indices and logs what the plugins between
//! them change in pods and containers (see plugin.rs).
//!
//! ```text
//! cargo run --example differ -- -indices 00,50,99 -socket /var/run/nri/nri.sock
//! ```

mod godiff;
mod gotree;
mod plugin;
mod prototext;
mod yamldiff;

use std::process::ExitCode;
use std::sync::mpsc;

use nri::cli::{self, Cli, Flag};
use nri::stub::Backoff;

const FLAGS: &[Flag] = &[
    Flag {
        name: "indices",
        value: Some("LIST"),
        help: "comma-separated indices to register at, e.g. 00,50,99 (default 0,99)",
    },
    Flag {
        name: "verbose-level",
        value: Some("N"),
        help: "0: changes only; 1: and what the first index gets; 2: and values before and after; 3: and the state at Synchronize",
    },
    Flag {
        name: "yaml",
        value: None,
        help: "print the changes as a difference of YAML dumps",
    },
];

fn main() -> ExitCode {
    let cli = Cli::parse(
        "differ",
        "An NRI plugin that registers at several indices and logs what the plugins between them change.",
        FLAGS,
    );
    cli.init_logging("differ");
    let verbose_level = match cli.value("verbose-level").unwrap_or("0").parse::<i64>() {
        Ok(level) => level,
        Err(_) => {
            eprintln!("differ: -verbose-level must be a number");
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    let config = plugin::Config {
        verbose_level,
        yaml: cli.is_set("yaml"),
    };
    let chain = match plugin::parse_indices(cli.value("indices").unwrap_or("0,99"))
        .and_then(|indices| plugin::Chain::new(&indices, config).map(|chain| (indices, chain)))
    {
        Ok(built) => built,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(nri::EXIT_CONFIG);
        }
    };
    let (indices, chain) = chain;

    // One stub per index, each its own connection to the runtime.
    let mut stubs = Vec::new();
    for &idx in &indices {
        let Some(plugin) = chain.plugin(idx) else {
            continue;
        };
        let builder = cli.stub_builder(plugin).plugin_index(format!("{idx:02}"));
        match cli::build(builder) {
            Ok(stub) => stubs.push(stub),
            Err(code) => return code,
        }
    }
    cli::spawn_reporter(&stubs[0], cli.metrics_file.clone(), cli.state_file.clone());
    let stoppers = stubs.clone();
    if let Err(e) = cli::on_termination(move |signal| {
        log::info!("{signal}: stopping");
        for stub in &stoppers {
            stub.stop();
        }
    }) {
        log::warn!("cannot handle SIGTERM/SIGINT ({e}); stop the plugin with SIGKILL");
    }

    // As the Go differ: when one index loses the runtime, all stop.
    let (done_tx, done_rx) = mpsc::channel();
    let mut threads = Vec::new();
    for stub in &stubs {
        let stub = stub.clone();
        let done = done_tx.clone();
        let reconnect = cli.reconnect;
        threads.push(std::thread::spawn(move || {
            let result = if reconnect {
                stub.run_supervised(Backoff::default())
            } else {
                stub.run()
            };
            let _ = done.send((stub.name().to_string(), result));
        }));
    }
    drop(done_tx);
    let mut code = ExitCode::SUCCESS;
    if let Ok((name, Err(e))) = done_rx.recv() {
        log::info!("Connection to the runtime lost, exiting...");
        log::error!("plugin {name}: {e}");
        code = ExitCode::from(e.exit_code());
    }
    for stub in &stubs {
        stub.stop();
    }
    for t in threads {
        let _ = t.join();
    }
    code
}
