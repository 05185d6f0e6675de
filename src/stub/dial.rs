//! Reaching the runtime: an explicit connection, the socket the runtime
//! passed in `NRI_PLUGIN_SOCKET`, or the NRI socket path.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::api;
use crate::locking::lock;
use crate::log_text::Escape;
use crate::{Error, Result};

/// Opens a connection to the runtime's socket.
pub type Dialer = Arc<dyn Fn(&Path) -> io::Result<UnixStream> + Send + Sync>;

/// Where the stub's connections to the runtime come from.
pub(super) struct Connector {
    /// The NRI socket path dialed when nothing else applies.
    pub(super) socket_path: PathBuf,
    /// A connection given to the builder, used by the first start.
    pub(super) given: Mutex<Option<UnixStream>>,
    /// Replaces how the socket path is dialed.
    pub(super) dialer: Option<Dialer>,
    /// The descriptor in `NRI_PLUGIN_SOCKET` was taken (it can be only once).
    pub(super) env_fd_taken: AtomicBool,
}

/// A connection to the runtime, and how it came.
pub(super) struct Dialed {
    pub(super) stream: UnixStream,
    /// The runtime launched the plugin and passed the connection
    /// (`NRI_PLUGIN_SOCKET`): it cannot be dialed again.
    pub(super) launched: bool,
}

impl Connector {
    pub(super) fn new(
        socket_path: PathBuf,
        given: Option<UnixStream>,
        dialer: Option<Dialer>,
    ) -> Connector {
        Connector {
            socket_path,
            given: Mutex::new(given),
            dialer,
            env_fd_taken: AtomicBool::new(false),
        }
    }

    /// A new connection to the runtime for plugin `plugin` (for messages):
    /// the given one, else the inherited one, else one dialed.
    pub(super) fn dial(&self, plugin: &str) -> Result<Dialed> {
        if let Some(stream) = lock(&self.given).take() {
            log::debug!("plugin {} using the given connection", Escape(plugin));
            return Ok(Dialed {
                stream,
                launched: false,
            });
        }
        if let Ok(value) = std::env::var(api::PLUGIN_SOCKET_ENV_VAR) {
            if !value.is_empty() {
                if self.env_fd_taken.load(Ordering::Acquire) {
                    return Err(Error::Config(format!(
                        "{}={value:?}: the connection inherited from the runtime was already used and \
                         closed; a launched plugin cannot reconnect",
                        api::PLUGIN_SOCKET_ENV_VAR
                    )));
                }
                let stream = socket_from_env(&value)?;
                self.env_fd_taken.store(true, Ordering::Release);
                return Ok(Dialed {
                    stream,
                    launched: true,
                });
            }
        }
        let path = &self.socket_path;
        let res = match &self.dialer {
            Some(d) => d(path),
            None => UnixStream::connect(path),
        };
        res.map(|stream| Dialed {
            stream,
            launched: false,
        })
        .map_err(|e| {
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
