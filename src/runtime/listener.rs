//! [`PluginListener`]: external plugins dialing a Unix socket path.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::{Error, Result};

use super::handle::PluginHandle;
use super::host_state::HostState;
use super::setup;

/// Accepts external plugins on a Unix socket path. Made by
/// [`Runtime::listen`](super::Runtime::listen); removes the socket file
/// when dropped.
pub struct PluginListener {
    host: Arc<HostState>,
    listener: UnixListener,
    path: PathBuf,
}

impl std::fmt::Debug for PluginListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PluginListener").field(&self.path).finish()
    }
}

impl PluginListener {
    /// Listens on `path` like the reference: an existing file at `path` is
    /// removed first and a missing parent directory is created with mode
    /// 0700.
    pub(crate) fn bind(host: Arc<HostState>, path: PathBuf) -> Result<PluginListener> {
        let _ = fs::remove_file(&path);
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| {
                        Error::io(
                            format!("cannot create the socket directory {}", dir.display()),
                            e,
                        )
                    })?;
            }
        }
        let listener = UnixListener::bind(&path)
            .map_err(|e| Error::io(format!("cannot listen on {}", path.display()), e))?;
        Ok(PluginListener {
            host,
            listener,
            path,
        })
    }

    /// The socket path plugins dial.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next plugin to connect and takes it through
    /// registration, `Configure` and `Synchronize`, like
    /// [`Runtime::accept_stream`](super::Runtime::accept_stream). As with the reference, plugins are set up
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
        setup::start(&self.host, stream, None)
    }

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
        setup::start(&self.host, stream, None)
    }
}

/// How often [`PluginListener::accept_timeout`] looks for a connection.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

impl Drop for PluginListener {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
