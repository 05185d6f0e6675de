//! A tiny logger for the examples: the `log` facade's records go to stderr,
//! to a file, or to syslog through `/dev/log`.
//!
//! Why not stderr only: a plugin the runtime launches itself (from
//! `/opt/nri/plugins`) runs with stdout and stderr on `/dev/null`, no
//! arguments and only `NRI_*` variables in its environment. Its only input is
//! the configuration text the runtime sends in Configure (from
//! `/etc/nri/conf.d/NN-name.conf`), so every example reads these keys there:
//!
//! ```yaml
//! logFile: /var/log/nri-device-injector.log   # append to this file
//! syslog: true                                 # or: send to /dev/log
//! verbose: true                                # debug messages too
//! ```
//!
//! and the same as flags (`-log-file PATH`, `-syslog`, `-verbose`) when
//! started by hand.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::yaml::Value;

enum Sink {
    Stderr,
    File(File),
    Syslog(UnixDatagram),
}

struct Logger {
    sink: Mutex<Sink>,
    tag: OnceLock<String>,
    verbose: AtomicBool,
}

static LOGGER: Logger = Logger {
    sink: Mutex::new(Sink::Stderr),
    tag: OnceLock::new(),
    verbose: AtomicBool::new(false),
};

/// Installs the logger (once per process; later calls only change the
/// verbosity). `tag` names the plugin in every line.
pub fn init(tag: &str, verbose: bool) {
    let _ = LOGGER.tag.set(tag.to_string());
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
    set_verbose(verbose);
}

/// Shows debug messages (or stops showing them).
pub fn set_verbose(verbose: bool) {
    LOGGER.verbose.store(verbose, Ordering::Relaxed);
}

/// Appends log lines to `path` from now on.
pub fn to_file(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    *lock() = Sink::File(file);
    Ok(())
}

/// Sends log messages to the system logger (`/dev/log`) from now on.
pub fn to_syslog() -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.connect("/dev/log")?;
    *lock() = Sink::Syslog(socket);
    Ok(())
}

/// Applies the logging keys of a plugin configuration (`logFile`, `syslog`,
/// `verbose`); other keys are left to the plugin.
pub fn apply_config(config: &Value) -> Result<(), String> {
    if let Some(v) = config.get("verbose") {
        set_verbose(v.to_bool("verbose").map_err(|e| e.to_string())?);
    }
    if let Some(v) = config.get("syslog") {
        if v.to_bool("syslog").map_err(|e| e.to_string())? {
            to_syslog().map_err(|e| format!("cannot log to /dev/log: {e}"))?;
        }
    }
    if let Some(v) = config.get("logFile") {
        let path = v.to_string_value("logFile").map_err(|e| e.to_string())?;
        to_file(Path::new(&path)).map_err(|e| format!("cannot open log file {path}: {e}"))?;
    }
    Ok(())
}

fn lock() -> std::sync::MutexGuard<'static, Sink> {
    LOGGER.sink.lock().unwrap_or_else(|e| e.into_inner())
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info || self.verbose.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = self.tag.get().map_or("nri-plugin", String::as_str);
        let mut sink = lock();
        let _ = match &mut *sink {
            Sink::Stderr => {
                let line = format_line(tag, record);
                io::stderr().lock().write_all(line.as_bytes())
            }
            Sink::File(file) => file.write_all(format_line(tag, record).as_bytes()),
            Sink::Syslog(socket) => {
                // RFC 3164 without the timestamp, which syslog daemons and
                // journald fill in; facility "daemon" (3).
                let severity = match record.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    Level::Debug | Level::Trace => 7,
                };
                let msg = format!(
                    "<{}>{tag}[{}]: {}",
                    3 * 8 + severity,
                    std::process::id(),
                    record.args()
                );
                socket.send(msg.as_bytes()).map(|_| ())
            }
        };
    }

    fn flush(&self) {
        if let Sink::File(file) = &mut *lock() {
            let _ = file.flush();
        }
    }
}

fn format_line(tag: &str, record: &Record<'_>) -> String {
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
