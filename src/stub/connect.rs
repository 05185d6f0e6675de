//! Reaching the runtime: an explicit connection, the socket the runtime
//! passed in `NRI_PLUGIN_SOCKET`, or the NRI socket path.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::api;
use crate::locking::lock;
use crate::{Error, Result};

use super::lifecycle::Stub;

/// Opens a connection to the runtime's socket.
pub type Dialer = Arc<dyn Fn(&Path) -> io::Result<UnixStream> + Send + Sync>;

impl Stub {
    pub(super) fn connect(&self) -> Result<(UnixStream, bool)> {
        if let Some(s) = lock(&self.inner.given).take() {
            log::debug!("plugin {} using the given connection", self.name());
            return Ok((s, false));
        }
        if let Ok(value) = std::env::var(api::PLUGIN_SOCKET_ENV_VAR) {
            if !value.is_empty() {
                if self.inner.env_fd_taken.load(Ordering::Acquire) {
                    return Err(Error::Config(format!(
                        "{}={value:?}: the connection inherited from the runtime was already used and \
                         closed; a launched plugin cannot reconnect",
                        api::PLUGIN_SOCKET_ENV_VAR
                    )));
                }
                let stream = socket_from_env(&value)?;
                self.inner.env_fd_taken.store(true, Ordering::Release);
                return Ok((stream, true));
            }
        }
        let path = &self.inner.socket_path;
        let res = match &self.inner.dialer {
            Some(d) => d(path),
            None => UnixStream::connect(path),
        };
        res.map(|s| (s, false)).map_err(|e| {
            Error::io(
                format!("cannot connect to the NRI socket {}", path.display()),
                e,
            )
        })
    }
}

/// Turns the value of `NRI_PLUGIN_SOCKET` into a connected socket.
fn socket_from_env(value: &str) -> Result<UnixStream> {
    let var = api::PLUGIN_SOCKET_ENV_VAR;
    let fd: i32 = value
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("{var}={value:?} is not a file descriptor number")))?;
    if fd < 0 {
        return Err(Error::Config(format!(
            "{var}={value:?} is not a file descriptor number"
        )));
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|e| {
        Error::Config(format!(
            "{var}={value:?}: file descriptor {fd} is not open ({e})"
        ))
    })?;
    if !link.to_string_lossy().starts_with("socket:") {
        return Err(Error::Config(format!(
            "{var}={value:?}: file descriptor {fd} is not a socket ({})",
            link.display()
        )));
    }
    // SAFETY: the descriptor is open (checked through /proc above) and we take
    // sole ownership of it: the runtime hands it to the plugin for this use.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if let Err(e) = stream.peer_addr() {
        // Not ours to close after all: hand the descriptor back untouched.
        let _ = stream.into_raw_fd();
        return Err(Error::Config(format!(
            "{var}={value:?}: file descriptor {fd} is not a connected Unix socket ({e})"
        )));
    }
    Ok(stream)
}
