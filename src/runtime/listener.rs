//! [`PluginListener`]: external plugins dialing a Unix socket path.

use std::fs;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::{PluginHandle, Runtime};
use crate::{Error, Result};

/// Accepts external plugins on a Unix socket path. Made by
/// [`Runtime::listen`]; removes the socket file when dropped.
#[derive(Debug)]
pub struct PluginListener {
    pub(super) runtime: Runtime,
    pub(super) listener: UnixListener,
    pub(super) path: PathBuf,
}

impl PluginListener {
    /// The socket path plugins dial.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next plugin to connect and takes it through
    /// registration, `Configure` and `Synchronize`, like
    /// [`Runtime::accept_stream`]. As with the reference, plugins are set up
    /// one at a time: the next one is not accepted before this returns.
    pub fn accept(&self) -> Result<PluginHandle> {
        let (stream, _) = self.listener.accept().map_err(|e| {
            Error::io(
                format!(
                    "cannot accept a plugin connection on {}",
                    self.path.display()
                ),
                e,
            )
        })?;
        self.runtime.accept_stream(stream)
    }
}

impl PluginListener {
    /// Like [`PluginListener::accept`], but gives up with
    /// [`Error::DeadlineExceeded`] when no plugin connected within
    /// `timeout` (the registration timeout then applies as usual).
    pub fn accept_timeout(&self, timeout: Duration) -> Result<PluginHandle> {
        let deadline = Instant::now() + timeout;
        let nonblocking = |on: bool| {
            self.listener.set_nonblocking(on).map_err(|e| {
                Error::io(
                    format!("cannot set up the listener on {}", self.path.display()),
                    e,
                )
            })
        };
        nonblocking(true)?;
        let accepted = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break Ok(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break Err(Error::DeadlineExceeded {
                            service: format!("plugin listener on {}", self.path.display()),
                            method: "accept".to_string(),
                            peer: String::new(),
                            timeout,
                        });
                    }
                    thread::sleep(left.min(ACCEPT_POLL));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    break Err(Error::io(
                        format!(
                            "cannot accept a plugin connection on {}",
                            self.path.display()
                        ),
                        e,
                    ))
                }
            }
        };
        nonblocking(false)?;
        let stream = accepted?;
        stream
            .set_nonblocking(false)
            .map_err(|e| Error::io("cannot set up an accepted plugin connection", e))?;
        self.runtime.accept_stream(stream)
    }
}

/// How often [`PluginListener::accept_timeout`] looks for a connection.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

impl Drop for PluginListener {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
