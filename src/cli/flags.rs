//! Command-line flags as Go's `flag` package reads them: one or two dashes,
//! `-flag value` or `-flag=value`, on/off flags without a value.

use std::fmt;
use std::path::PathBuf;

use crate::stub::{Plugin, Stub, StubBuilder};

/// A flag a plugin takes on top of the common ones.
///
/// ```
/// use nri::cli::Flag;
/// const INTERVAL: Flag = Flag {
///     name: "interval",
///     value: Some("SECS"),
///     help: "how often to look again (default 10)",
/// };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// Name without dashes.
    pub name: &'static str,
    /// Placeholder of its value, or `None` for an on/off flag.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

impl Flag {
    /// `-config FILE`: configuration to use until the runtime sends one in
    /// Configure (read it with [`Cli::config_text`]).
    pub const CONFIG: Flag = Flag {
        name: "config",
        value: Some("FILE"),
        help: "configuration to use until the runtime sends one (YAML)",
    };
}

/// The flags every plugin binary takes.
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

/// A command line that cannot be read: an unknown flag, a missing value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A parsed command line: the common flags, and the plugin's own.
///
/// The common flags: `-name NAME`, `-idx NN`, `-socket PATH`, `-reconnect`,
/// `-log-file PATH`, `-syslog`, `-verbose`, `-metrics-file PATH`,
/// `-state-file PATH`, `-probe PATH`, and `-h`/`-help`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cli {
    /// `-name`: the plugin name to register.
    pub name: Option<String>,
    /// `-idx`: the plugin index to register.
    pub idx: Option<String>,
    /// `-socket`: the NRI socket to connect to.
    pub socket: Option<PathBuf>,
    /// `-reconnect`: survive runtime restarts (see [`run`](super::run)).
    pub reconnect: bool,
    /// `-log-file`: log to this file.
    pub log_file: Option<PathBuf>,
    /// `-syslog`: log to the system logger.
    pub syslog: bool,
    /// `-verbose`: log debug messages too.
    pub verbose: bool,
    /// `-metrics-file`: keep statistics in this file (see
    /// [`spawn_reporter`](super::spawn_reporter)).
    pub metrics_file: Option<PathBuf>,
    /// `-state-file`: keep the readiness in this file.
    pub state_file: Option<PathBuf>,
    /// `-probe`: answer a readiness probe from this state file and exit.
    pub probe: Option<PathBuf>,
    extra: Vec<(String, Option<String>)>,
}

impl Cli {
    /// Parses the process's arguments, with `extra` flags besides the
    /// common ones. Like a Go program using `flag.Parse()`, this prints the
    /// usage and exits on `-h` (status 0) or a bad command line (status
    /// [`EXIT_USAGE`](super::EXIT_USAGE)); with `-probe STATE_FILE` it
    /// answers the readiness probe and exits (0: ready, 1: not).
    ///
    /// `program` names the binary in the usage text, `about` says in one
    /// line what it does.
    pub fn parse(program: &str, about: &str, extra: &[Flag]) -> Cli {
        match Cli::parse_from(std::env::args().skip(1), extra) {
            Ok(Some(cli)) => {
                if let Some(state) = &cli.probe {
                    // The binary answers its own readiness probe.
                    std::process::exit(if super::probe(state) { 0 } else { 1 });
                }
                cli
            }
            Ok(None) => {
                println!("{}", usage(program, about, extra));
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{program}: {e}\n\n{}", usage(program, about, extra));
                std::process::exit(i32::from(super::EXIT_USAGE));
            }
        }
    }

    /// Parses `args` (without the program name); `Ok(None)` when help was
    /// asked for.
    ///
    /// ```
    /// use nri::cli::{Cli, Flag};
    /// let args = ["-idx", "10", "--name=gpu", "-config", "/etc/gpu.yaml", "-verbose"];
    /// let cli = Cli::parse_from(args.map(String::from), &[Flag::CONFIG])?.unwrap();
    /// assert_eq!((cli.idx.as_deref(), cli.name.as_deref()), (Some("10"), Some("gpu")));
    /// assert_eq!(cli.value("config"), Some("/etc/gpu.yaml"));
    /// assert!(cli.verbose);
    /// assert!(Cli::parse_from(["-h".to_string()], &[])?.is_none());
    /// assert!(Cli::parse_from(["-bogus".to_string()], &[]).is_err());
    /// # Ok::<(), nri::cli::UsageError>(())
    /// ```
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        extra: &[Flag],
    ) -> Result<Option<Cli>, UsageError> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(UsageError(format!("unexpected argument {arg:?}")));
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
                .ok_or_else(|| UsageError(format!("unknown flag -{name}")))?;
            let value = match (spec.value, inline) {
                (Some(_), Some(v)) => Some(v),
                (Some(meta), None) => Some(
                    args.next()
                        .ok_or_else(|| UsageError(format!("flag -{name} needs a value {meta}")))?,
                ),
                (None, None) => None,
                (None, Some(v)) => match v.as_str() {
                    "true" | "1" => None,
                    "false" | "0" => continue,
                    _ => return Err(UsageError(format!("flag -{name} is on/off, got {v:?}"))),
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

    /// The last value of a plugin's own flag.
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

    /// Whether a plugin's own on/off flag was given.
    pub fn is_set(&self, name: &str) -> bool {
        self.extra.iter().any(|(n, _)| n == name)
    }

    /// The text of the `-config` file, if the flag was given.
    ///
    /// Fails with [`Error::Config`](crate::Error::Config), naming the file,
    /// when it cannot be read: a plugin then exits with
    /// [`EXIT_CONFIG`](crate::EXIT_CONFIG).
    pub fn config_text(&self) -> crate::Result<Option<String>> {
        let Some(path) = self.value(Flag::CONFIG.name) else {
            return Ok(None);
        };
        std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| crate::Error::Config(format!("cannot read -config {path}: {e}")))
    }

    /// Sets up [`nri::logging`](crate::logging) as the flags say
    /// (`-verbose`, `-syslog`, `-log-file`), tagging lines with `tag`; exits
    /// with status 1 if the log file cannot be opened. The plugin's
    /// Configure text may change these later (`verbose`, `syslog`,
    /// `logFile`: see [`logging::configure_from_text`](crate::logging::configure_from_text)).
    pub fn init_logging(&self, tag: &str) {
        if let Err(e) = crate::logging::init(tag) {
            eprintln!("{tag}: {e}");
        }
        crate::logging::set_verbose(self.verbose);
        if self.syslog {
            if let Err(e) = crate::logging::to_syslog() {
                log::warn!("{e}; logging to stderr");
            }
        }
        if let Some(path) = &self.log_file {
            if let Err(e) = crate::logging::to_file(path) {
                eprintln!("{tag}: {e}");
                std::process::exit(i32::from(super::EXIT_FAILURE));
            }
        }
    }

    /// A stub builder for `plugin` with the identity and socket from the
    /// flags (`-name`, `-idx`, `-socket`); what they leave out comes from
    /// the environment or the executable's name (see
    /// [`StubBuilder::build`]).
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

/// The usage text `-h` prints.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_like_go_flags() {
        let extra = [Flag {
            name: "events",
            value: Some("LIST"),
            help: "",
        }];
        let cli = Cli::parse_from(
            args(&[
                "-idx",
                "10",
                "--name=logger",
                "-events",
                "pod",
                "-verbose",
                "-socket",
                "/tmp/nri.sock",
                "-reconnect=false",
                "-syslog=true",
            ]),
            &extra,
        )
        .unwrap()
        .unwrap();
        assert_eq!(cli.idx.as_deref(), Some("10"));
        assert_eq!(cli.name.as_deref(), Some("logger"));
        assert_eq!(cli.value("events"), Some("pod"));
        assert!(cli.verbose && cli.syslog && !cli.reconnect);
        assert_eq!(cli.socket, Some(PathBuf::from("/tmp/nri.sock")));
        assert!(Cli::parse_from(args(&["-h"]), &extra).unwrap().is_none());
        assert!(Cli::parse_from(args(&["-bogus"]), &extra)
            .unwrap_err()
            .to_string()
            .contains("-bogus"));
        assert!(Cli::parse_from(args(&["-idx"]), &extra)
            .unwrap_err()
            .to_string()
            .contains("needs a value"));
        assert!(Cli::parse_from(args(&["-verbose=maybe"]), &extra).is_err());
        assert!(Cli::parse_from(args(&["stray"]), &extra).is_err());
    }

    #[test]
    fn repeated_flags_keep_every_value() {
        let extra = [Flag {
            name: "hook-dir",
            value: Some("DIR"),
            help: "",
        }];
        let cli = Cli::parse_from(args(&["-hook-dir", "a", "-hook-dir=b"]), &extra)
            .unwrap()
            .unwrap();
        assert_eq!(cli.values("hook-dir"), ["a", "b"]);
        assert_eq!(cli.value("hook-dir"), Some("b"));
        assert!(cli.is_set("hook-dir"));
        assert!(!cli.is_set("other"));
    }

    #[test]
    fn config_flag_reads_its_file() {
        let dir = std::env::temp_dir().join(format!("nri-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        std::fs::write(&file, "a: 1\n").unwrap();
        let cli = Cli::parse_from(args(&["-config", file.to_str().unwrap()]), &[Flag::CONFIG])
            .unwrap()
            .unwrap();
        assert_eq!(cli.config_text().unwrap().as_deref(), Some("a: 1\n"));
        let missing = Cli::parse_from(args(&["-config", "/nonexistent/x"]), &[Flag::CONFIG])
            .unwrap()
            .unwrap();
        let err = missing.config_text().unwrap_err();
        assert_eq!(err.exit_code(), crate::EXIT_CONFIG);
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
        assert_eq!(Cli::default().config_text().unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn usage_lists_the_plugin_flags_first() {
        let text = usage("mine", "About mine.", &[Flag::CONFIG]);
        assert!(text.starts_with("About mine.\n\nUsage: mine [flags]"));
        let config = text.find("-config FILE").unwrap();
        let name = text.find("-name NAME").unwrap();
        assert!(config < name, "{text}");
    }
}
