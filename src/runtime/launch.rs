//! Spawning a plugin binary with a pre-connected socket as fd 3, as the
//! reference runtime starts its pre-installed plugins, and killing it.
//!
//! A killed plugin is reaped on the spot when it dies within
//! [`REAP_WAIT`], which it does unless the kernel holds it (a process in
//! uninterruptible sleep does not die until its I/O returns); then a
//! thread of its own ("nri-reap") waits for it, so that the caller, which
//! may be relaying an event to other plugins, is not held up.
//!
//! The standard library cannot place a descriptor at a chosen number in a
//! child, so a `pre_exec` hook calls `dup2` from the C library (always linked
//! on Unix; no extra crate). `dup2` leaves the new descriptor without
//! close-on-exec, which is how it survives `exec`.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::host_state::PluginOutput;
use crate::api::{PLUGIN_IDX_ENV_VAR, PLUGIN_NAME_ENV_VAR, PLUGIN_SOCKET_ENV_VAR};
use crate::{Error, Result};

/// The descriptor number launched plugins find their socket at.
const PLUGIN_FD: c_int = 3;

extern "C" {
    fn dup2(oldfd: c_int, newfd: c_int) -> c_int;
}

/// Starts `binary` with one end of a new socket pair as fd 3 and returns the
/// other end with the child.
pub(crate) fn spawn(
    binary: &Path,
    name: &str,
    index: &str,
    output: &PluginOutput,
) -> Result<(UnixStream, Child)> {
    let (ours, theirs) = UnixStream::pair()
        .map_err(|e| Error::io("cannot create the socket pair for a launched plugin", e))?;
    // `dup2(3, 3)` would keep close-on-exec set: make sure the source is not 3.
    let theirs = if theirs.as_raw_fd() == PLUGIN_FD {
        theirs
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate the plugin's socket", e))?
    } else {
        theirs
    };
    let fd = theirs.as_raw_fd();

    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env(PLUGIN_NAME_ENV_VAR, name)
        .env(PLUGIN_IDX_ENV_VAR, index)
        .env(PLUGIN_SOCKET_ENV_VAR, PLUGIN_FD.to_string())
        .stdin(Stdio::null());
    match output {
        PluginOutput::Null => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        PluginOutput::Inherit => {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
        PluginOutput::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    Error::io(
                        format!("cannot open plugin output file {}", path.display()),
                        e,
                    )
                })?;
            let err = file
                .try_clone()
                .map_err(|e| Error::io("cannot duplicate the plugin output file", e))?;
            cmd.stdout(file).stderr(err);
        }
    }
    // SAFETY: the hook runs in the forked child before exec and only calls
    // dup2, which is async-signal-safe, on a descriptor number copied into
    // the closure; it allocates nothing and touches no locks. `fd` stays
    // open in the parent until after spawn returns, so it is valid in the
    // child.
    unsafe {
        cmd.pre_exec(move || {
            if dup2(fd, PLUGIN_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        Error::io(
            format!(
                "cannot launch plugin {index}-{name} from {}",
                binary.display()
            ),
            e,
        )
    })?;
    drop(theirs);
    Ok((ours, child))
}

/// How long a killed plugin is waited for before a thread of its own takes
/// over waiting.
pub(crate) const REAP_WAIT: Duration = Duration::from_millis(100);

/// Kills `child` (SIGKILL) and reaps it; see the module docs. `name` names
/// it in logs.
pub(crate) fn kill_and_reap(mut child: Child, name: &str) {
    log::debug!("killing plugin {name} (pid {})", child.id());
    let _ = child.kill();
    let until = Instant::now() + REAP_WAIT;
    let mut pause = Duration::from_micros(50);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= until => break,
            Ok(None) => {
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
