//! Helper processes of the two-process measurements: this program run as
//! the server side, its socket, and connecting to it.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::fail;

pub fn temp_sock(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "nri-bench-{tag}-{}-{nanos}.sock",
        std::process::id()
    ))
}

/// This program run with `args`, as a child killed when dropped.
pub struct Helper(pub Child);

impl Helper {
    pub fn spawn(args: &[&str]) -> Helper {
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(format!("spawn helper: {e}")));
        Helper(child)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to `path`, retrying while the server starts.
pub fn connect_retry(path: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => fail(format!("connect {}: {e}", path.display())),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}
