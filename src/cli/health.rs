//! Metrics and readiness of a plugin binary, without an HTTP server.
//!
//! A thread writes, every few seconds, the stub's statistics in Prometheus
//! text format to a file (for node_exporter's textfile collector) and a
//! one-line state file (`ready <unix time>` or `not-ready <unix time>`).
//! The same binary run with `-probe STATE_FILE` answers a Kubernetes exec
//! probe from that file: exit 0 when it says ready and is fresh. That works
//! in a `scratch` image, which has no shell or tools to read a file with.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::stub::Stub;

/// How often [`spawn_reporter`] rewrites its files.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// A state file older than this reads as not ready: the plugin is stuck or
/// gone.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes `text` to `path` atomically (a temporary file renamed over it),
/// so that a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Starts the thread that keeps `metrics` (the stub's
/// [`Stats`](crate::stub::Stats) in Prometheus text format) and `state`
/// (`ready <unix time>` or `not-ready <unix time>`) up to date, either may
/// be absent, for as long as the process runs. Each file is replaced
/// whole, never seen half-written. [`run`](super::run) calls it with
/// `-metrics-file` and `-state-file`.
pub fn spawn_reporter(stub: &Stub, metrics: Option<PathBuf>, state: Option<PathBuf>) {
    if metrics.is_none() && state.is_none() {
        return;
    }
    let stub = stub.clone();
    let spawned = std::thread::Builder::new()
        .name("health".into())
        .spawn(move || loop {
            let stats = stub.stats();
            if let Some(path) = &metrics {
                if let Err(e) = write_atomically(path, &stats.to_prometheus()) {
                    log::warn!("cannot write metrics to {}: {e}", path.display());
                }
            }
            if let Some(path) = &state {
                let word = if stats.is_ready() {
                    "ready"
                } else {
                    "not-ready"
                };
                if let Err(e) = write_atomically(path, &format!("{word} {}\n", now())) {
                    log::warn!("cannot write the state file {}: {e}", path.display());
                }
            }
            std::thread::sleep(HEALTH_INTERVAL);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the metrics thread: {e}");
    }
}

/// Answers a readiness probe from a state file: ready when it says so and
/// was written within [`STALE_AFTER`]; otherwise the reason goes to stderr.
/// [`Cli::parse`](super::Cli::parse) calls it for `-probe STATE_FILE`.
pub fn probe(state: &Path) -> bool {
    match read_state(state) {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("not ready: {reason}");
            false
        }
    }
}

fn read_state(state: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(state).map_err(|e| format!("{}: {e}", state.display()))?;
    let mut words = text.split_whitespace();
    let (Some(word), Some(when)) = (words.next(), words.next()) else {
        return Err(format!("{}: not a state file: {text:?}", state.display()));
    };
    let when: u64 = when
        .parse()
        .map_err(|_| format!("{}: bad time {when:?}", state.display()))?;
    let age = now().saturating_sub(when);
    if age > STALE_AFTER.as_secs() {
        return Err(format!(
            "the state is {age} s old (the plugin is stuck or gone)"
        ));
    }
    if word != "ready" {
        return Err("the plugin is not registered with the runtime".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_fresh_ready_states_only() {
        let dir = std::env::temp_dir().join(format!("nri-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("state");
        write_atomically(&f, &format!("ready {}\n", now())).unwrap();
        assert_eq!(read_state(&f), Ok(()));
        write_atomically(&f, &format!("not-ready {}\n", now())).unwrap();
        assert!(read_state(&f).unwrap_err().contains("not registered"));
        write_atomically(&f, &format!("ready {}\n", now() - 3600)).unwrap();
        assert!(read_state(&f).unwrap_err().contains("old"));
        write_atomically(&f, "garbage").unwrap();
        assert!(read_state(&f).is_err());
        assert!(read_state(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
