//! What the example plugins share: flags (logging ones included, applied
//! with `nri::logging`), signals, a YAML reader.
//!
//! Each example includes this module with
//! `#[path = "../common/mod.rs"] mod common;`, and not every example uses all
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod gojson;
pub mod goregexp;
pub mod goyaml;
pub mod health;
pub mod ocihooks;
pub mod signals;
pub mod yaml;
pub mod yaml11;

use std::path::PathBuf;
use std::process::ExitCode;

use nri::stub::{Backoff, Plugin, Stub, StubBuilder};

/// A flag an example takes on top of the common ones.
pub struct Flag {
    /// Name without dashes.
    pub name: &'static str,
    /// Placeholder of its value, or `None` for an on/off flag.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

const COMMON: &[Flag] = &[
    Flag {
        name: "name",
        value: Some("NAME"),
        help: "plugin name to register (default: NRI_PLUGIN_NAME or the executable's name)",
    },
    Flag {
        name: "idx",
        value: Some("NN"),
        help: "two-digit plugin index to register (default: NRI_PLUGIN_IDX or the NN- of the executable's name)",
    },
    Flag {
        name: "socket",
        value: Some("PATH"),
        help: "NRI socket to connect to (default /var/run/nri/nri.sock)",
    },
    Flag {
        name: "reconnect",
        value: None,
        help: "stay up across runtime restarts: reconnect with backoff instead of exiting",
    },
    Flag {
        name: "log-file",
        value: Some("PATH"),
        help: "append log lines to PATH instead of stderr",
    },
    Flag {
        name: "syslog",
        value: None,
        help: "log to the system logger (/dev/log) instead of stderr",
    },
    Flag {
        name: "verbose",
        value: None,
        help: "log debug messages too",
    },
    Flag {
        name: "metrics-file",
        value: Some("PATH"),
        help: "write statistics in Prometheus text format to PATH every few seconds",
    },
    Flag {
        name: "state-file",
        value: Some("PATH"),
        help: "write the plugin's readiness to PATH every few seconds (see -probe)",
    },
    Flag {
        name: "probe",
        value: Some("PATH"),
        help: "answer a readiness probe from the state file PATH and exit (0: ready)",
    },
];

/// Parsed command line: the common flags plus the example's own.
#[derive(Debug, Default)]
pub struct Cli {
    /// `-name`
    pub name: Option<String>,
    /// `-idx`
    pub idx: Option<String>,
    /// `-socket`
    pub socket: Option<PathBuf>,
    /// `-reconnect`
    pub reconnect: bool,
    /// `-log-file`
    pub log_file: Option<PathBuf>,
    /// `-syslog`
    pub syslog: bool,
    /// `-verbose`
    pub verbose: bool,
    /// `-metrics-file`
    pub metrics_file: Option<PathBuf>,
    /// `-state-file`
    pub state_file: Option<PathBuf>,
    /// `-probe`
    pub probe: Option<PathBuf>,
    extra: Vec<(String, Option<String>)>,
}

impl Cli {
    /// Parses the process arguments; prints usage and exits on `-h` (0) or a
    /// bad flag (2). Flags take one or two dashes and `-flag value` or
    /// `-flag=value`, as Go's `flag` package does.
    pub fn parse(program: &str, about: &str, extra: &[Flag]) -> Cli {
        match Cli::parse_from(std::env::args().skip(1), extra) {
            Ok(Some(cli)) => {
                if let Some(state) = &cli.probe {
                    // The binary answers its own readiness probe.
                    std::process::exit(if health::probe(state) { 0 } else { 1 });
                }
                cli
            }
            Ok(None) => {
                println!("{}", usage(program, about, extra));
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{program}: {e}\n\n{}", usage(program, about, extra));
                std::process::exit(2);
            }
        }
    }

    /// Parses `args`; `Ok(None)` when help was asked for.
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        extra: &[Flag],
    ) -> Result<Option<Cli>, String> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if matches!(name, "h" | "help") {
                return Ok(None);
            }
            let spec = COMMON
                .iter()
                .chain(extra)
                .find(|f| f.name == name)
                .ok_or_else(|| format!("unknown flag -{name}"))?;
            let value = match (spec.value, inline) {
                (Some(_), Some(v)) => Some(v),
                (Some(meta), None) => Some(
                    args.next()
                        .ok_or_else(|| format!("flag -{name} needs a value {meta}"))?,
                ),
                (None, None) => None,
                (None, Some(v)) => match v.as_str() {
                    "true" | "1" => None,
                    "false" | "0" => continue,
                    _ => return Err(format!("flag -{name} is on/off, got {v:?}")),
                },
            };
            match name {
                "name" => cli.name = value,
                "idx" => cli.idx = value,
                "socket" => cli.socket = value.map(PathBuf::from),
                "reconnect" => cli.reconnect = true,
                "log-file" => cli.log_file = value.map(PathBuf::from),
                "syslog" => cli.syslog = true,
                "verbose" => cli.verbose = true,
                "metrics-file" => cli.metrics_file = value.map(PathBuf::from),
                "state-file" => cli.state_file = value.map(PathBuf::from),
                "probe" => cli.probe = value.map(PathBuf::from),
                _ => cli.extra.push((name.to_string(), value)),
            }
        }
        Ok(Some(cli))
    }

    /// The last value of an example's own flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values(name).pop()
    }

    /// Every value of a repeatable flag, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.extra
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    /// Whether an on/off flag was given.
    pub fn is_set(&self, name: &str) -> bool {
        self.extra.iter().any(|(n, _)| n == name)
    }

    /// Sets up `nri::logging` as the flags say (`-verbose`, `-syslog`,
    /// `-log-file`); exits if the log file cannot be opened. The plugin's
    /// Configure text may change these later (`verbose`, `syslog`,
    /// `logFile`).
    pub fn init_logging(&self, tag: &str) {
        if let Err(e) = nri::logging::init(tag) {
            eprintln!("{tag}: {e}");
        }
        nri::logging::set_verbose(self.verbose);
        if self.syslog {
            if let Err(e) = nri::logging::to_syslog() {
                log::warn!("{e}; logging to stderr");
            }
        }
        if let Some(path) = &self.log_file {
            if let Err(e) = nri::logging::to_file(path) {
                eprintln!("{tag}: {e}");
                std::process::exit(1);
            }
        }
    }

    /// A stub builder for `plugin` with the identity and socket from the flags.
    pub fn stub_builder(&self, plugin: impl Plugin) -> StubBuilder {
        let mut builder = Stub::builder(plugin);
        if let Some(name) = &self.name {
            builder = builder.plugin_name(name);
        }
        if let Some(idx) = &self.idx {
            builder = builder.plugin_index(idx);
        }
        if let Some(socket) = &self.socket {
            builder = builder.socket_path(socket);
        }
        builder
    }
}

fn usage(program: &str, about: &str, extra: &[Flag]) -> String {
    let mut text = format!("{about}\n\nUsage: {program} [flags]\n\nFlags:\n");
    for f in extra.iter().chain(COMMON) {
        let left = match f.value {
            Some(v) => format!("-{} {v}", f.name),
            None => format!("-{}", f.name),
        };
        text.push_str(&format!("  {left:<24} {}\n", f.help));
    }
    text.push_str(
        "\nLaunched by the runtime from /opt/nri/plugins, a plugin gets no flags: it\n\
         takes its settings (logFile, syslog, verbose, ...) from /etc/nri/conf.d/NN-name.conf.",
    );
    text
}

/// Builds the stub; a failure is logged and becomes the exit status (see
/// nri::Error::exit_code).
pub fn build(builder: StubBuilder) -> Result<Stub, ExitCode> {
    builder.build().map_err(|e| {
        log::error!("cannot create the plugin: {e}");
        ExitCode::from(e.exit_code())
    })
}

/// [`build`]s the stub, then [`run`]s it.
pub fn serve(builder: StubBuilder, cli: &Cli) -> ExitCode {
    match build(builder) {
        Ok(stub) => run(&stub, cli),
        Err(code) => code,
    }
}

/// Serves `stub` until SIGTERM/SIGINT or until the runtime goes away (with
/// `-reconnect`, until a signal only), and turns the outcome into an exit
/// status: 0 for a normal end (a signal, or the runtime releasing a plugin
/// it launched), 78 when a restart cannot help (bad configuration, a runtime
/// too old for a required event), 1 otherwise (restart me). With
/// `-metrics-file` or `-state-file` on the command line, a thread keeps
/// those files up to date meanwhile.
pub fn run(stub: &Stub, cli: &Cli) -> ExitCode {
    health::spawn_reporter(stub, cli.metrics_file.clone(), cli.state_file.clone());
    let stopper = stub.clone();
    let installed = signals::on_termination(move |signal| {
        log::info!("{signal}: stopping plugin {}", stopper.name());
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
    // supervisor whether to restart it (see nri::Error::exit_code).
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("plugin {}: {e}", stub.name());
            ExitCode::from(e.exit_code())
        }
    }
}

/// The first of `keys` that the pod is annotated with: the key and its
/// value.
pub fn first_annotation(
    pod: &nri::api::PodSandbox,
    keys: impl IntoIterator<Item = String>,
) -> Option<(String, &str)> {
    keys.into_iter()
        .find_map(|k| pod.annotations.get(&k).map(|v| (k, v.as_str())))
}

/// `pod/container`, for log messages.
pub fn container_name(pod: &nri::api::PodSandbox, container: &nri::api::Container) -> String {
    if pod.name.is_empty() {
        container.name.clone()
    } else {
        format!("{}/{}", pod.name, container.name)
    }
}
