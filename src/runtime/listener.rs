//! [`PluginListener`]: external plugins dialing a Unix socket path.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Error, Result};

use super::acceptor::Acceptor;
use super::handle::PluginHandle;
use super::host_state::HostState;
use super::setup;

/// Accepts external plugins on a Unix socket path. Made by
/// [`Runtime::listen`](super::Runtime::listen); removes the socket file
/// when dropped.
///
/// From the moment it listens, a thread of its own accepts every plugin
/// that dials and reads each one's `RegisterPlugin` request, all of them
/// at once, each within the registration timeout, without a thread per
/// connection (see [`RuntimeBuilder::max_unregistered_connections`](super::RuntimeBuilder::max_unregistered_connections)
/// for the cap). [`PluginListener::accept`] then takes the registered
/// plugins on, one per call, through `Configure` and `Synchronize`. So a
/// plugin that registers is never held up by connections that do not: a
/// hundred idle connections cost a hundred descriptors and nothing else.
pub struct PluginListener {
    host: Arc<HostState>,
    acceptor: Acceptor,
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
        let acceptor = match Acceptor::start(host.clone(), listener, path.clone()) {
            Ok(a) => a,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        Ok(PluginListener {
            host,
            acceptor,
            path,
        })
    }

    /// The socket path plugins dial.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many connections are waiting: to register, or registered and
    /// waiting for [`PluginListener::accept`].
    pub fn pending(&self) -> usize {
        self.acceptor.pending()
    }

    /// Takes the next registered plugin through `Configure` and
    /// `Synchronize` (like
    /// [`Runtime::accept_stream`](super::Runtime::accept_stream)), waiting
    /// for one to register if none has. Plugins are taken in the order they
    /// registered, one per call.
    ///
    /// # Errors
    ///
    /// Each connection that did not register is reported by one call, in
    /// the order it happened: [`Error::RegistrationRefused`] for a refused
    /// plugin (its connection stays open until it closes it),
    /// [`Error::DeadlineExceeded`] for one that did not register within the
    /// registration timeout, [`Error::ConnectionClosed`] for one that went
    /// away first, [`Error::Protocol`] or [`Error::MuxFrameTooLarge`] for
    /// one that broke the framing; then the errors of `Configure` and
    /// `Synchronize`, as with
    /// [`Runtime::accept_stream`](super::Runtime::accept_stream).
    pub fn accept(&self) -> Result<PluginHandle> {
        match self.acceptor.next(None) {
            Some(Ok(registration)) => setup::finish(&self.host, registration, None),
            Some(Err(e)) => Err(e),
            None => Err(Error::State(
                "internal error: an unbounded accept gave up".into(),
            )),
        }
    }

    /// Like [`PluginListener::accept`], but gives up with
    /// [`Error::DeadlineExceeded`] when no plugin registered (and no
    /// connection failed to) within `timeout`. `Configure` and
    /// `Synchronize` then take what they take, within the request timeout.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<PluginHandle> {
        match self.acceptor.next(Some(Instant::now() + timeout)) {
            Some(Ok(registration)) => setup::finish(&self.host, registration, None),
            Some(Err(e)) => Err(e),
            None => Err(Error::DeadlineExceeded {
                service: format!("plugin listener on {}", self.path.display()),
                method: "accept".to_string(),
                peer: String::new(),
                timeout,
            }),
        }
    }
}

impl Drop for PluginListener {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
