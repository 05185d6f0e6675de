//! Waiting on many sockets from one thread, with `poll(2)`.
//!
//! The standard library has no way to wait for any of several sockets, so
//! this calls `poll` from the C library (always linked on Unix; no extra
//! crate), as `launch.rs` calls `dup2`. It lets one thread watch every
//! connection that has not registered yet, and every refused one until its
//! plugin closes it, instead of a thread (or four) per connection.
//!
//! A [`Waker`] is a socket pair whose read end sits in the poll set, so
//! that another thread can interrupt the wait.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::raw::{c_int, c_short};
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[cfg(any(target_os = "linux", target_os = "android"))]
type Nfds = std::os::raw::c_ulong;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
type Nfds = std::os::raw::c_uint;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PollFd {
    fd: c_int,
    events: c_short,
    revents: c_short,
}

extern "C" {
    fn poll(fds: *mut PollFd, nfds: Nfds, timeout: c_int) -> c_int;
}

/// Data to read (or, with end of stream, a read that returns 0).
pub(crate) const READABLE: c_short = 0x1;
const POLLERR: c_short = 0x8;
const POLLHUP: c_short = 0x10;
const POLLNVAL: c_short = 0x20;
/// The peer shut down its writing side (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
const POLLRDHUP: c_short = 0x2000;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const POLLRDHUP: c_short = 0;

/// Only that the peer went away: no event for data, so a socket holding
/// unread bytes does not wake the poller again and again.
pub(crate) const GONE_ONLY: c_short = POLLRDHUP;

/// What `poll` reported for one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ready(c_short);

impl Ready {
    /// Data (or end of stream) can be read.
    pub(crate) fn readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// The peer closed, shut its side down, or the socket failed.
    pub(crate) fn gone(self) -> bool {
        self.0 & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP) != 0
    }

    /// Anything at all.
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }
}

/// A list of descriptors to wait on, each with the events wanted.
#[derive(Debug, Default)]
pub(crate) struct PollSet {
    fds: Vec<PollFd>,
}

impl PollSet {
    /// Empties the set, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd`, waiting for `events` (see [`READABLE`], [`GONE_ONLY`]);
    /// errors and hang-ups are always reported. Returns its position.
    pub(crate) fn add(&mut self, fd: RawFd, events: c_short) -> usize {
        self.fds.push(PollFd {
            fd,
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// What was reported for the entry at `i` by the last [`PollSet::wait`].
    pub(crate) fn ready(&self, i: usize) -> Ready {
        Ready(self.fds.get(i).map_or(0, |p| p.revents))
    }

    /// Waits until an entry is ready or `timeout` passed (`None`: no
    /// limit). An interrupted wait returns as if nothing happened.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        for p in &mut self.fds {
            p.revents = 0;
        }
        let ms = match timeout {
            None => -1,
            // Round up, so that a wait for 0.5 ms does not spin.
            Some(t) => c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX),
        };
        // SAFETY: `fds` points to `len` initialized `pollfd` structs that
        // live until `poll` returns; `poll` writes only their `revents`.
        let n = unsafe { poll(self.fds.as_mut_ptr(), self.fds.len() as Nfds, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Interrupts a [`PollSet::wait`] from another thread.
#[derive(Debug)]
pub(crate) struct Waker {
    rx: UnixStream,
    tx: UnixStream,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Waker { rx, tx })
    }

    /// The descriptor to add to the poll set.
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Makes the waiting thread return. A wake already pending is enough:
    /// a full pipe is not an error.
    pub(crate) fn wake(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// Takes the pending wakes (after the poll set reported the waker).
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_readable_socket_and_a_closed_peer_are_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        let mut set = PollSet::default();
        let ia = set.add(a.as_raw_fd(), READABLE);
        let ic = set.add(c.as_raw_fd(), GONE_ONLY);
        set.wait(Some(Duration::from_millis(10))).unwrap();
        assert!(!set.ready(ia).any() && !set.ready(ic).any());
        (&b).write_all(b"x").unwrap();
        (&d).write_all(b"y").unwrap();
        set.wait(Some(Duration::from_secs(5))).unwrap();
        assert!(set.ready(ia).readable());
        // Data alone does not wake a socket watched for its peer going.
        assert!(!set.ready(ic).any());
        drop(d);
        set.wait(Some(Duration::from_secs(5))).unwrap();
        assert!(set.ready(ic).gone(), "{:?}", set.ready(ic));
    }

    #[test]
    fn a_waker_ends_an_unbounded_wait() {
        let waker = std::sync::Arc::new(Waker::new().unwrap());
        let mut set = PollSet::default();
        let i = set.add(waker.fd(), READABLE);
        let w = waker.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.wake();
            w.wake();
        });
        let start = Instant::now();
        set.wait(None).unwrap();
        assert!(set.ready(i).readable());
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        waker.drain();
        set.wait(Some(Duration::from_millis(1))).unwrap();
        assert!(!set.ready(i).any());
    }
}
