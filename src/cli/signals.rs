//! A clean stop on SIGTERM and SIGINT, without the libc crate.
//!
//! The C library every Rust program on Linux already links provides
//! `signal(2)` and `write(2)`; declaring those two is all the FFI needed. The
//! handler does the one thing that is safe in a signal handler: it writes a
//! byte to a socket (a "self-pipe"). A watcher thread blocks reading the other
//! end and runs the stop callback in ordinary thread context, where locks,
//! logging and joining threads are fine. A second signal while stopping
//! exits at once.

use std::ffi::c_int;
use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

/// Signal numbers; the same on every Linux architecture.
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
/// `SIG_ERR`, `(sighandler_t) -1`.
const SIG_ERR: usize = usize::MAX;

/// Write end of the self-pipe, for the handler; -1 until installed.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
    fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
}

extern "C" fn on_signal(signum: c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signum as u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the non-blocking
        // write end of a socket pair that is never closed (its ownership was
        // given up with into_raw_fd), and `byte` is a valid 1-byte buffer.
        unsafe {
            write(fd, &byte, 1);
        }
    }
}

fn signal_name(signum: u8) -> &'static str {
    match c_int::from(signum) {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Runs `stop` (on a thread of its own, with the signal's name) when the
/// process gets SIGTERM or SIGINT; a second one while stopping exits the
/// process at once (status 128 + the signal's number, as a shell reports
/// it). Installs the handlers once per process: a second call fails.
///
/// [`run`](super::run) calls it for you.
///
/// ```no_run
/// # let stub: nri::stub::Stub = unimplemented!();
/// let stopper = stub.clone();
/// nri::cli::on_termination(move |signal| {
///     log::info!("{signal}: stopping");
///     stopper.stop();
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn on_termination(stop: impl FnOnce(&'static str) + Send + 'static) -> io::Result<()> {
    let (mut reader, writer) = UnixStream::pair()?;
    writer.set_nonblocking(true)?;
    if WAKE_FD
        .compare_exchange(-1, writer.into_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(io::Error::other("signal handlers are already installed"));
    }
    for signum in [SIGINT, SIGTERM] {
        // SAFETY: `on_signal` only loads an atomic and calls write(2), both
        // async-signal-safe, so it is a valid handler for any signal.
        if unsafe { signal(signum, on_signal) } == SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            if reader.read_exact(&mut byte).is_err() {
                return;
            }
            let name = signal_name(byte[0]);
            if let Err(e) = std::thread::Builder::new()
                .name("stopping".into())
                .spawn(move || stop(name))
            {
                log::error!("{name}: cannot start stopping ({e}): exiting now");
                std::process::exit(128 + i32::from(byte[0]));
            }
            // Blocks for as long as the process lives, unless a second
            // signal comes.
            if reader.read_exact(&mut byte).is_ok() {
                log::warn!("{} again while stopping: exiting now", signal_name(byte[0]));
                std::process::exit(128 + i32::from(byte[0]));
            }
        })?;
    Ok(())
}
