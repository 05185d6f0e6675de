//! Spawning a plugin binary with a pre-connected socket as fd 3, as the
//! reference runtime starts its pre-installed plugins, and killing it.
//!
//! A killed plugin is reaped on the spot when it dies within
//! [`REAP_WAIT`], which it does unless the kernel holds it (a process in
//! uninterruptible sleep does not die until its I/O returns); then a
//! thread of its own ("nri-reap") waits for it, so that the caller, which
//! may be relaying an event to other plugins, is not held up.
//!
//! The child is started with `posix_spawnp` ([`super::process`]), not
//! `fork`: a runtime that launches a plugin right after building a large
//! state would otherwise take a copy-on-write fault on every page of that
//! state when it next writes it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::host_state::PluginOutput;
use super::process::{Process, Spawn};
use crate::api::{PLUGIN_IDX_ENV_VAR, PLUGIN_NAME_ENV_VAR, PLUGIN_SOCKET_ENV_VAR};
use crate::{Error, Result};

/// The descriptor number launched plugins find their socket at.
const PLUGIN_FD: c_int = 3;

/// `fd`, or a duplicate of it numbered at least `min` (`min` at most 4).
/// Duplicates are numbered from 3 up, so the second one is above 3.
fn numbered_from(fd: OwnedFd, min: c_int) -> io::Result<OwnedFd> {
    let mut fd = fd;
    let mut held = Vec::new();
    while fd.as_raw_fd() < min {
        let dup = fd.try_clone()?;
        held.push(fd);
        fd = dup;
    }
    Ok(fd)
}

/// Starts `binary` with one end of a new socket pair as fd 3 and returns the
/// other end with the child.
pub(crate) fn spawn(
    binary: &Path,
    name: &str,
    index: &str,
    output: &PluginOutput,
) -> Result<(UnixStream, Process)> {
    let (ours, theirs) = UnixStream::pair()
        .map_err(|e| Error::io("cannot create the socket pair for a launched plugin", e))?;
    // The child's descriptors are placed 0, 1, 2, then 3: a source must be
    // none of the numbers placed before it, nor its own target.
    let theirs = numbered_from(OwnedFd::from(theirs), PLUGIN_FD + 1)
        .map_err(|e| Error::io("cannot duplicate the plugin's socket", e))?;
    let null = |write: bool| {
        OpenOptions::new()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .and_then(|f| numbered_from(OwnedFd::from(f), 3))
            .map_err(|e| Error::io("cannot open /dev/null for a launched plugin", e))
    };
    let stdin = null(false)?;
    let outputs: Option<(OwnedFd, OwnedFd)> = match output {
        PluginOutput::Null => Some((null(true)?, null(true)?)),
        PluginOutput::Inherit => None,
        PluginOutput::File(path) => {
            let file: File = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    Error::io(
                        format!("cannot open plugin output file {}", path.display()),
                        e,
                    )
                })?;
            let out = numbered_from(OwnedFd::from(file), 3)
                .map_err(|e| Error::io("cannot duplicate the plugin output file", e))?;
            let err = out
                .try_clone()
                .map_err(|e| Error::io("cannot duplicate the plugin output file", e))?;
            Some((out, err))
        }
    };

    let launch_error = |e: io::Error| {
        Error::io(
            format!(
                "cannot launch plugin {index}-{name} from {}",
                binary.display()
            ),
            e,
        )
    };
    let mut child = Spawn::new(binary);
    child
        .env(PLUGIN_NAME_ENV_VAR, name)
        .and_then(|c| c.env(PLUGIN_IDX_ENV_VAR, index))
        .and_then(|c| c.env(PLUGIN_SOCKET_ENV_VAR, &PLUGIN_FD.to_string()))
        .map_err(launch_error)?;
    child.place(stdin.as_raw_fd(), 0);
    if let Some((out, err)) = &outputs {
        child.place(out.as_raw_fd(), 1).place(err.as_raw_fd(), 2);
    }
    child.place(theirs.as_raw_fd(), PLUGIN_FD);
    let process = child.spawn().map_err(launch_error)?;
    // The parent's copies of the child's descriptors close here.
    drop((theirs, stdin, outputs));
    Ok((ours, process))
}

/// How long a killed plugin is waited for before a thread of its own takes
/// over waiting.
pub(crate) const REAP_WAIT: Duration = Duration::from_millis(100);

/// Kills `child` (SIGKILL) and reaps it; see the module docs. `name` names
/// it in logs.
pub(crate) fn kill_and_reap(mut child: Process, name: &str) {
    log::debug!("killing plugin {name} (pid {})", child.id());
    let _ = child.kill();
    let until = Instant::now() + REAP_WAIT;
    let mut pause = Duration::from_micros(50);
    loop {
        match child.try_wait() {
            Ok(true) | Err(_) => return,
            Ok(false) if Instant::now() >= until => break,
            Ok(false) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
        }
    }
    let pid = child.id();
    log::warn!(
        "plugin {name} (pid {pid}) did not die within {REAP_WAIT:?} of SIGKILL; reaping it in \
         the background"
    );
    let spawned = thread::Builder::new()
        .name("nri-reap".into())
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread to reap plugin pid {pid}: {e}");
    }
}
