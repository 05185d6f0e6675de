//! An opt-in logger for plugins, on top of the `log` facade: lines go to
//! stderr, to a file, or to the system logger through `/dev/log`, and the
//! plugin's Configure text can redirect them.
//!
//! Why a plugin needs more than stderr: a plugin the runtime launches itself
//! (from `/opt/nri/plugins`) runs with stdout and stderr on `/dev/null`, no
//! arguments and only `NRI_*` variables in its environment. The only input
//! it gets is the configuration text the runtime sends in Configure (from
//! `/etc/nri/conf.d/NN-name.conf`), so that is where it must learn where to
//! log. By convention these keys say it (see [`LogConfig::from_text`]):
//!
//! ```yaml
//! logFile: /var/log/nri-gpu.log   # append log lines to this file
//! syslog: true                     # or: send them to /dev/log
//! verbose: true                    # debug messages too
//! ```
//!
//! Nothing here happens unless the plugin asks: the library itself only
//! emits `log` records, which any logger can take.
//!
//! ```no_run
//! use nri::api::EventMask;
//! use nri::stub::{Context, HandlerResult};
//!
//! fn main() -> nri::Result<()> {
//!     // Once, first thing: install the logger (stderr, info and above).
//!     nri::logging::init("gpu-injector")?;
//!     // Flags or code may redirect it…
//!     nri::logging::to_file(std::path::Path::new("/var/log/nri-gpu.log"))?;
//!     # Ok(())
//! }
//!
//! // …and so may the runtime's configuration, in the plugin's Configure
//! // handler (keys absent from the text change nothing).
//! fn configure(_ctx: &Context<'_>, config: &str) -> HandlerResult<Option<EventMask>> {
//!     nri::logging::configure_from_text(config)?;
//!     Ok(None)
//! }
//! ```
//!
//! Every function may be called any number of times, from any thread, and
//! changes take effect for the next line. Lines look like
//! `2024-06-01T12:00:00.000Z INFO  gpu-injector: message` (UTC) on stderr
//! and in files; syslog gets `<facility+severity>gpu-injector[pid]:
//! message` (facility `daemon`), the timestamp being the syslog daemon's.
//! A line that cannot be written is dropped: logging never fails the
//! plugin.

#[path = "logging_config.rs"]
mod config;

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

pub use config::{LogConfig, LOG_FILE_KEY, SYSLOG_KEY, VERBOSE_KEY};

use crate::locking::lock;
use crate::{Error, Result};

/// The system logger's socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// The longest message sent to syslog, in bytes; longer ones are cut (many
/// syslog daemons drop oversized datagrams whole).
const SYSLOG_MAX_MESSAGE: usize = 8 * 1024;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The process's standard error.
    Stderr,
    /// Appended to this file.
    File(PathBuf),
    /// The system logger, through [`SYSLOG_SOCKET`].
    Syslog,
}

enum Sink {
    Stderr,
    File(PathBuf, File),
    Syslog(PathBuf, UnixDatagram),
}

struct Logger {
    sink: Mutex<Sink>,
    tag: Mutex<String>,
    verbose: AtomicBool,
    /// Whether this logger is the `log` facade's (then it also sets the
    /// facade's maximum level).
    installed: AtomicBool,
}

static LOGGER: Logger = Logger::new();

/// Installs the logger as the `log` facade's, writing to stderr, with
/// informational messages and above; `tag` names the plugin in every line.
///
/// Safe to call again: later calls only change the tag. Fails with
/// [`Error::Config`] when another logger was installed first (`log` takes
/// one per process).
///
/// ```
/// nri::logging::init("my-plugin")?;
/// nri::logging::init("my-plugin")?; // again: fine
/// log::info!("appears on stderr as: … INFO  my-plugin: …");
/// # Ok::<(), nri::Error>(())
/// ```
pub fn init(tag: &str) -> Result<()> {
    *lock(&LOGGER.tag) = tag.to_string();
    if !LOGGER.installed.load(Ordering::Acquire) {
        log::set_logger(&LOGGER).map_err(|_| {
            Error::Config(
                "another logger is installed already: nri::logging cannot take over".into(),
            )
        })?;
        LOGGER.installed.store(true, Ordering::Release);
        LOGGER.update_max_level();
    }
    Ok(())
}

/// Applies `config`: its `Some` settings change, its `None` ones stay as
/// they are. A log file wins over syslog; `syslog: Some(false)` returns
/// from syslog to stderr.
///
/// Settings take effect even before [`init`], which is what makes the
/// lines appear.
pub fn configure(config: &LogConfig) -> Result<()> {
    LOGGER.configure(config)
}

/// Reads the logging keys of a plugin's configuration text (see
/// [`LogConfig::from_text`]) and applies them as [`configure`] does;
/// returns what it read. Meant for the plugin's Configure handler: a text
/// that is not a YAML mapping (a broken conf.d file) is an error, which
/// fails the Configure request and shows in the runtime's log.
///
/// ```
/// let applied = nri::logging::configure_from_text("events: pod\nverbose: false\n")?;
/// assert_eq!(applied.verbose, Some(false));
/// assert!(!nri::logging::is_verbose());
/// let err = nri::logging::configure_from_text("[[[").unwrap_err();
/// assert!(err.to_string().contains("not a YAML mapping"), "{err}");
/// # Ok::<(), nri::Error>(())
/// ```
pub fn configure_from_text(text: &str) -> Result<LogConfig> {
    let config = LogConfig::from_text(text)?;
    configure(&config)?;
    Ok(config)
}

/// Shows debug messages (`true`) or only informational ones and above.
pub fn set_verbose(verbose: bool) {
    LOGGER.set_verbose(verbose);
}

/// Whether debug messages are shown.
pub fn is_verbose() -> bool {
    LOGGER.verbose.load(Ordering::Relaxed)
}

/// Sends log lines to stderr from now on.
pub fn to_stderr() {
    *lock(&LOGGER.sink) = Sink::Stderr;
}

/// Appends log lines to the file at `path` from now on, creating it (mode
/// 0640) when it does not exist. On failure the destination is unchanged.
pub fn to_file(path: &Path) -> Result<()> {
    LOGGER.to_file(path)
}

/// Sends log lines to the system logger through `/dev/log` from now on. On
/// failure (no syslog daemon, as in most containers) the destination is
/// unchanged.
pub fn to_syslog() -> Result<()> {
    LOGGER.to_syslog(Path::new(SYSLOG_SOCKET))
}

/// Where log lines go now.
pub fn destination() -> Destination {
    LOGGER.destination()
}

impl Logger {
    const fn new() -> Logger {
        Logger {
            sink: Mutex::new(Sink::Stderr),
            tag: Mutex::new(String::new()),
            verbose: AtomicBool::new(false),
            installed: AtomicBool::new(false),
        }
    }

    fn configure(&self, config: &LogConfig) -> Result<()> {
        if let Some(verbose) = config.verbose {
            self.set_verbose(verbose);
        }
        match (&config.file, config.syslog) {
            (Some(path), _) => self.to_file(path)?,
            (None, Some(true)) => self.to_syslog(Path::new(SYSLOG_SOCKET))?,
            (None, Some(false)) => {
                let mut sink = lock(&self.sink);
                if matches!(*sink, Sink::Syslog(..)) {
                    *sink = Sink::Stderr;
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    fn set_verbose(&self, verbose: bool) {
        self.verbose.store(verbose, Ordering::Relaxed);
        self.update_max_level();
    }

    fn update_max_level(&self) {
        if self.installed.load(Ordering::Acquire) {
            log::set_max_level(if self.verbose.load(Ordering::Relaxed) {
                LevelFilter::Debug
            } else {
                LevelFilter::Info
            });
        }
    }

    fn to_file(&self, path: &Path) -> Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(|source| Error::Io {
                context: format!("cannot open log file {}", path.display()),
                source,
            })?;
        *lock(&self.sink) = Sink::File(path.to_path_buf(), file);
        Ok(())
    }

    fn to_syslog(&self, socket: &Path) -> Result<()> {
        let datagram = connect_syslog(socket)?;
        *lock(&self.sink) = Sink::Syslog(socket.to_path_buf(), datagram);
        Ok(())
    }

    fn destination(&self) -> Destination {
        match &*lock(&self.sink) {
            Sink::Stderr => Destination::Stderr,
            Sink::File(path, _) => Destination::File(path.clone()),
            Sink::Syslog(..) => Destination::Syslog,
        }
    }

    fn tag(&self) -> String {
        let tag = lock(&self.tag);
        if tag.is_empty() {
            default_tag()
        } else {
            tag.clone()
        }
    }
}

fn connect_syslog(socket: &Path) -> Result<UnixDatagram> {
    let io_error = |source| Error::Io {
        context: format!("cannot log to syslog through {}", socket.display()),
        source,
    };
    let datagram = UnixDatagram::unbound().map_err(io_error)?;
    datagram.connect(socket).map_err(io_error)?;
    Ok(datagram)
}

/// The executable's name, else `nri-plugin`.
fn default_tag() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "nri-plugin".to_string())
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
            || (metadata.level() <= Level::Debug && self.verbose.load(Ordering::Relaxed))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = self.tag();
        let mut sink = lock(&self.sink);
        match &mut *sink {
            Sink::Stderr => {
                let _ = io::stderr().lock().write_all(line(&tag, record).as_bytes());
            }
            Sink::File(_, file) => {
                let _ = file.write_all(line(&tag, record).as_bytes());
            }
            Sink::Syslog(socket, datagram) => {
                let message = syslog_message(&tag, record);
                if datagram.send(message.as_bytes()).is_err() {
                    // The daemon may have restarted: reconnect once.
                    if let Ok(fresh) = connect_syslog(socket) {
                        let _ = fresh.send(message.as_bytes());
                        *datagram = fresh;
                    }
                }
            }
        }
    }

    fn flush(&self) {
        if let Sink::File(_, file) = &mut *lock(&self.sink) {
            let _ = file.flush();
        }
    }
}

/// A stderr or file line: UTC time to the millisecond, level, tag, message.
fn line(tag: &str, record: &Record<'_>) -> String {
    let mut line = String::with_capacity(128);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let _ = writeln!(
        line,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z {:<5} {tag}: {}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_millis(),
        record.level(),
        record.args()
    );
    line
}

/// An RFC 3164 message without timestamp and host, which the syslog daemon
/// (or journald) adds; facility `daemon` (3).
fn syslog_message(tag: &str, record: &Record<'_>) -> String {
    let severity = match record.level() {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    };
    let mut message = format!(
        "<{}>{tag}[{}]: {}",
        3 * 8 + severity,
        std::process::id(),
        record.args()
    );
    if message.len() > SYSLOG_MAX_MESSAGE {
        let mut cut = SYSLOG_MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A fresh directory for one test, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_path(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("nri-logging-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn emit(logger: &Logger, level: Level, message: &str) {
        logger.log(
            &Record::builder()
                .level(level)
                .args(format_args!("{message}"))
                .build(),
        );
    }

    fn tagged(tag: &str) -> Logger {
        let logger = Logger::new();
        *lock(&logger.tag) = tag.to_string();
        logger
    }

    /// Configures `logger` with these keys (`None`: the key is absent).
    fn apply(logger: &Logger, file: Option<&Path>, syslog: Option<bool>, verbose: Option<bool>) {
        let file = file.map(Path::to_path_buf);
        let config = LogConfig {
            file,
            syslog,
            verbose,
        };
        logger.configure(&config).unwrap();
    }

    /// A syslog daemon's socket bound at `socket`, its reads bounded.
    fn daemon(socket: &Path) -> UnixDatagram {
        let daemon = UnixDatagram::bind(socket).unwrap();
        daemon
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        daemon
    }

    /// The next message `daemon` receives.
    fn received(daemon: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// A logger tagged `tag`, writing to the file at `path`.
    fn file_logger(tag: &str, path: &Path) -> Logger {
        let logger = tagged(tag);
        logger.to_file(path).unwrap();
        assert_eq!(logger.destination(), Destination::File(path.to_path_buf()));
        logger
    }

    /// A fresh directory for test `name`, a log file path in it and a
    /// logger tagged `tag` writing to that file.
    fn file_case(name: &str, tag: &str) -> (TempDir, PathBuf, Logger) {
        let dir = temp_path(name);
        let path = dir.join(&format!("{name}.log"));
        let logger = file_logger(tag, &path);
        (dir, path, logger)
    }

    /// A fresh directory for test `name` and a syslog socket path in it.
    fn socket_case(name: &str) -> (TempDir, PathBuf) {
        let dir = temp_path(name);
        let socket = dir.join("log.sock");
        (dir, socket)
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// A logger tagged `tag`, sending to the syslog socket at `socket`.
    fn syslog_logger(tag: &str, socket: &Path) -> Logger {
        let logger = tagged(tag);
        logger.to_syslog(socket).unwrap();
        assert_eq!(logger.destination(), Destination::Syslog);
        logger
    }

    #[test]
    fn file_gets_one_line_per_record_with_time_level_and_tag() {
        let (_dir, path, logger) = file_case("file", "gpu");
        emit(&logger, Level::Info, "hello");
        emit(&logger, Level::Warn, "careful");
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("Z INFO  gpu: hello"), "{}", lines[0]);
        assert!(lines[1].ends_with("Z WARN  gpu: careful"), "{}", lines[1]);
        // 2024-06-01T12:00:00.000Z
        assert_eq!(&lines[0][4..5], "-");
        assert_eq!(&lines[0][10..11], "T");
    }

    #[test]
    fn debug_lines_only_when_verbose_and_trace_never() {
        let (_dir, path, logger) = file_case("verbose", "t");
        emit(&logger, Level::Debug, "hidden");
        logger.set_verbose(true);
        emit(&logger, Level::Debug, "shown");
        emit(&logger, Level::Trace, "never");
        logger.set_verbose(false);
        emit(&logger, Level::Debug, "hidden again");
        let text = read(&path);
        assert!(text.contains("DEBUG t: shown"), "{text}");
        assert!(
            !text.contains("hidden") && !text.contains("never"),
            "{text}"
        );
    }

    #[test]
    fn reopening_a_file_appends_to_it() {
        let (_dir, path, logger) = file_case("append", "t");
        emit(&logger, Level::Info, "one");
        // Configure repeats the same file: nothing is lost.
        apply(&logger, Some(&path), None, None);
        emit(&logger, Level::Info, "two");
        let text = read(&path);
        assert!(text.contains("one") && text.contains("two"), "{text}");
    }

    #[test]
    fn unopenable_file_is_an_error_naming_it_and_keeps_the_destination() {
        let logger = tagged("t");
        let path = Path::new("/nonexistent-dir/x/p.log");
        refused_naming(&logger, logger.to_file(path), path);
    }

    /// `result` is an error naming `path`, and `logger` still writes to
    /// stderr.
    fn refused_naming(logger: &Logger, result: Result<()>, path: &Path) {
        let err = result.unwrap_err();
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        assert_eq!(logger.destination(), Destination::Stderr);
    }

    #[test]
    fn syslog_gets_priority_tag_and_pid() {
        let (_dir, socket) = socket_case("syslog");
        let daemon = daemon(&socket);
        let logger = syslog_logger("gpu", &socket);
        emit(&logger, Level::Error, "broken");
        emit(&logger, Level::Info, "fine");
        let pid = std::process::id();
        assert_eq!(received(&daemon), format!("<27>gpu[{pid}]: broken"));
        assert_eq!(received(&daemon), format!("<30>gpu[{pid}]: fine"));
    }

    #[test]
    fn syslog_reconnects_after_the_daemon_restarts() {
        let (_dir, socket) = socket_case("restart");
        let first = daemon(&socket);
        let logger = syslog_logger("t", &socket);
        drop(first);
        std::fs::remove_file(&socket).unwrap();
        let second = daemon(&socket);
        emit(&logger, Level::Warn, "after restart");
        let message = received(&second);
        assert!(message.ends_with(": after restart"), "{message}");
    }

    #[test]
    fn missing_syslog_socket_is_an_error_and_keeps_the_destination() {
        let logger = tagged("t");
        let path = Path::new("/nonexistent-dir/log");
        refused_naming(&logger, logger.to_syslog(path), path);
    }

    #[test]
    fn long_syslog_messages_are_cut_at_a_character_boundary() {
        let long = "é".repeat(SYSLOG_MAX_MESSAGE);
        let message = syslog_message(
            "t",
            &Record::builder()
                .level(Level::Info)
                .args(format_args!("{long}"))
                .build(),
        );
        assert!(message.len() <= SYSLOG_MAX_MESSAGE);
        assert!(message.len() > SYSLOG_MAX_MESSAGE - 4);
    }

    #[test]
    fn configure_changes_only_what_it_names() {
        let dir = temp_path("configure");
        let path = dir.join("c.log");
        let logger = tagged("t");
        apply(&logger, Some(&path), None, Some(true));
        assert_eq!(logger.destination(), Destination::File(path.clone()));
        assert!(logger.verbose.load(Ordering::Relaxed));
        // Keys absent: nothing changes.
        logger.configure(&LogConfig::default()).unwrap();
        assert_eq!(logger.destination(), Destination::File(path.clone()));
        assert!(logger.verbose.load(Ordering::Relaxed));
        // syslog: false only leaves syslog; a file stays.
        apply(&logger, None, Some(false), Some(false));
        assert_eq!(logger.destination(), Destination::File(path));
        assert!(!logger.verbose.load(Ordering::Relaxed));
    }

    #[test]
    fn syslog_false_returns_from_syslog_to_stderr() {
        let (_dir, socket) = socket_case("back");
        let _daemon = daemon(&socket);
        let logger = syslog_logger("t", &socket);
        apply(&logger, None, Some(false), None);
        assert_eq!(logger.destination(), Destination::Stderr);
    }

    #[test]
    fn file_wins_over_syslog_in_one_configuration() {
        let dir = temp_path("wins");
        let path = dir.join("w.log");
        let logger = tagged("t");
        apply(&logger, Some(&path), Some(true), None);
        assert_eq!(logger.destination(), Destination::File(path));
    }

    #[test]
    fn empty_tag_falls_back_to_the_executable_name() {
        let logger = Logger::new();
        let tag = logger.tag();
        assert!(!tag.is_empty());
        assert_eq!(tagged("x").tag(), "x");
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_875), (2024, 6, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
