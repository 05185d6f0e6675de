//! The read side: the turn to read that worker threads take one at a time,
//! reading the socket and acting on what the session layer makes of the
//! bytes (handing replies to their callers, queueing requests and
//! refusals), and the worker loop that reads until it has a request and
//! then serves it.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use super::ConnectionState;
use crate::locking::{lock, wait, wait_timeout};
use crate::log_text::Escape;
use crate::status::Status;
use crate::ttrpc::session::{Direct, Envelope, Ignored, Inbound, Incoming};
use crate::{Error, Result};

/// The turn to read, held: given back when dropped (also if the holder
/// panics), or parked while its holder serves the request it read.
pub(super) struct TurnHeld<'a> {
    shared: &'a ConnectionState,
    /// The park this turn was taken over from by a caller reading for its
    /// own reply, put back when it is done (unless requests then wait).
    resume: Option<(Instant, u64)>,
}

impl Drop for TurnHeld<'_> {
    fn drop(&mut self) {
        self.shared.release_turn(self.resume.take());
    }
}

impl TurnHeld<'_> {
    /// Leaves the read side unattended while the holder serves a request,
    /// without waking anyone: the holder comes back to it when done
    /// ([`ConnectionState::take_turn`] with the returned ticket), unless the
    /// watcher found the request slow and took the turn over. Returns the
    /// ticket.
    fn park(self) -> u64 {
        let shared = self.shared;
        std::mem::forget(self);
        let mut t = lock(&shared.turn);
        t.parks += 1;
        let ticket = t.parks;
        t.holder = Holder::Parked {
            since: Instant::now(),
            ticket,
        };
        match t.watcher {
            // The watcher sleeps for good: have it time this park.
            Watcher::Idle => {
                t.watcher = Watcher::Ticking;
                drop(t);
                shared.turn_cv.watcher.notify_one();
            }
            // Nobody watches, but a worker waits: make it the watcher.
            Watcher::None if t.followers > 0 => {
                drop(t);
                shared.turn_cv.followers.notify_one();
            }
            _ => {}
        }
        ticket
    }
}

/// Largest request buffer kept for reuse, and how many are kept.
const MAX_SPARE_BUFFER: usize = 64 * 1024;
const MAX_SPARE_BUFFERS: usize = 8;

/// Who has the read side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    /// Nobody: the next worker to come takes it.
    Vacant,
    /// A thread is reading (or about to).
    Reading,
    /// The reader is serving the request it read, and nobody reads
    /// meanwhile; `ticket` tells the parking thread its own park from a
    /// later one.
    Parked { since: Instant, ticket: u64 },
}

/// The one waiting worker that times parks (see [`Turn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watcher {
    /// No worker is waiting in that role.
    None,
    /// Waiting with a timeout: a park is being timed, or one was lately.
    Ticking,
    /// Waiting without a timeout, until the next park wakes it.
    Idle,
}

/// The right to use the read side (leader/follower), held by one thread at
/// a time.
///
/// A reader that has read a request keeps the turn while it serves it: it
/// *parks* the read side and comes back to it when the handler returns, so
/// a request costs no wake-up of another thread when nothing else is
/// waiting. It wakes a follower at once only when more work was already
/// read (several requests in one read). A request that arrives while a
/// handler runs long is taken care of by the *watcher*: one waiting worker
/// sleeps with a timeout while a park lasts and takes the read side over
/// once the park is older than [`ConnectionOptions::takeover_after`]. The
/// watcher ticks only while requests come; after a quiet tick it sleeps
/// without a timeout until the next park wakes it, so an idle connection
/// costs no wake-ups. Other waiting workers sleep until a vacant turn is
/// handed to them.
///
/// [`ConnectionOptions::takeover_after`]: super::ConnectionOptions::takeover_after
pub(super) struct Turn {
    holder: Holder,
    /// Parks so far (the last park's ticket).
    parks: u64,
    /// Workers sleeping on `followers`, not counting the watcher.
    followers: usize,
    watcher: Watcher,
    /// The park whose thread came back from its handler while a caller
    /// had taken the read side over from that park: the caller must not put
    /// the park back then, since nobody would come back to it.
    returned: Option<u64>,
}

impl Default for Turn {
    fn default() -> Self {
        Turn {
            holder: Holder::Vacant,
            parks: 0,
            followers: 0,
            watcher: Watcher::None,
            returned: None,
        }
    }
}

/// The condition variables the workers waiting for the turn sleep on.
#[derive(Default)]
pub(super) struct TurnSignals {
    followers: Condvar,
    watcher: Condvar,
}

impl TurnSignals {
    /// Wakes every waiting worker (the connection is closing).
    pub(super) fn notify_all(&self) {
        self.followers.notify_all();
        self.watcher.notify_all();
    }
}

pub(super) enum Work {
    Request {
        conn_id: u32,
        stream_id: u32,
        envelope: Envelope,
        received: Instant,
    },
    Refuse {
        conn_id: u32,
        stream_id: u32,
        status: Status,
    },
}

pub(super) struct ReadSide {
    stream: UnixStream,
    buf: Vec<u8>,
    inbound: Inbound,
    queue: VecDeque<Work>,
}

impl ReadSide {
    /// A read side for `stream` with a read buffer of `read_buffer` bytes,
    /// receiving what `inbound` decodes.
    pub(super) fn new(stream: UnixStream, read_buffer: usize, inbound: Inbound) -> Self {
        ReadSide {
            stream,
            buf: vec![0; read_buffer],
            inbound,
            queue: VecDeque::new(),
        }
    }

    /// True while requests wait for a worker.
    pub(super) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Reads once from the socket and decodes everything that arrived.
    fn fill(&mut self, shared: &ConnectionState) -> Result<()> {
        self.fill_within(shared, None)
    }

    /// Like `fill`, but gives up after `wait` without data (`Ok` then).
    pub(super) fn fill_within(
        &mut self,
        shared: &ConnectionState,
        wait: Option<Duration>,
    ) -> Result<()> {
        if wait.is_some() {
            let _ = self.stream.set_read_timeout(wait);
        }
        let res = self.fill_once(shared, wait.is_some());
        if wait.is_some() {
            let _ = self.stream.set_read_timeout(None);
        }
        res
    }

    fn fill_once(&mut self, shared: &ConnectionState, timed: bool) -> Result<()> {
        // A timed read must return by its time, so it never waits for a
        // whole frame.
        if !timed {
            if let Some(direct) = self.inbound.direct(DIRECT_FROM) {
                return self.fill_direct(shared, direct);
            }
        }
        let n = loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    return Err(Error::ConnectionClosed(
                        "the peer closed the connection".into(),
                    ))
                }
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if timed
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(Error::io("reading from the connection failed", e)),
            }
        };
        let ReadSide {
            buf,
            inbound,
            queue,
            ..
        } = self;
        let mut feed = inbound.feed(&buf[..n]);
        while let Some(incoming) = feed.next(|| lock(&shared.spares).pop())? {
            act(queue, shared, incoming)?;
        }
        Ok(())
    }

    /// Reads the rest of a large frame's data (`direct`) straight into the
    /// frame's buffer, without a copy through the read buffer; returns
    /// once it is all there, or the connection failed.
    fn fill_direct(&mut self, shared: &ConnectionState, direct: Direct) -> Result<()> {
        let Some(buf) = self.inbound.direct_buffer(direct) else {
            // `direct` was just found with this buffer in place; failing
            // here rather than returning keeps a worker from spinning.
            return Err(Error::Protocol(
                "a frame's data buffer went away between two reads".into(),
            ));
        };
        let before = buf.len();
        let res = recv_appending(&self.stream, buf, direct.len);
        let got = buf.len() - before;
        if let Some(incoming) = self.inbound.direct_appended(direct, got)? {
            act(&mut self.queue, shared, incoming)?;
        }
        match res {
            Err(e) => Err(Error::io("reading from the connection failed", e)),
            Ok(()) if got < direct.len => Err(Error::ConnectionClosed(
                "the peer closed the connection".into(),
            )),
            Ok(()) => Ok(()),
        }
    }
}

extern "C" {
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
}

/// Receives `n` bytes from `stream` onto the end of `buf`, in place (no
/// zeroing first, no copy): returns once they are all there, at the end of
/// the stream (fewer appended), or on an error (what arrived before it is
/// appended). Interrupted calls are retried.
fn recv_appending(stream: &UnixStream, buf: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
    buf.reserve(n);
    let end = buf.len() + n;
    while buf.len() < end {
        let left = end - buf.len();
        let spare = buf.spare_capacity_mut();
        let want = left.min(spare.len());
        // SAFETY: `recv` writes at most `want` bytes to the start of the
        // vector's spare capacity, which is valid for writes of that many
        // (`want` is at most its length), and returns how many it wrote.
        let got = unsafe { recv(stream.as_raw_fd(), spare.as_mut_ptr().cast(), want, 0) };
        match got {
            0 => return Ok(()),
            // SAFETY: the first `got` bytes past the length were just
            // written by `recv`, and `got <= want` keeps the length within
            // the capacity.
            g if g > 0 => unsafe { buf.set_len(buf.len() + g as usize) },
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Frames whose data still to come is at least this long are read
/// straight into their buffer.
const DIRECT_FROM: usize = 64 * 1024;

/// Acts on one thing the peer sent: queues a request or a refusal, hands
/// a reply to its caller, or logs what was dropped.
fn act(queue: &mut VecDeque<Work>, shared: &ConnectionState, incoming: Incoming) -> Result<()> {
    match incoming {
        Incoming::Request {
            conn_id,
            stream_id,
            envelope,
        } => enqueue(
            queue,
            shared,
            Work::Request {
                conn_id,
                stream_id,
                envelope,
                received: Instant::now(),
            },
        ),
        Incoming::Refuse {
            conn_id,
            stream_id,
            status,
        } => enqueue(
            queue,
            shared,
            Work::Refuse {
                conn_id,
                stream_id,
                status,
            },
        ),
        Incoming::Reply {
            conn_id,
            stream_id,
            reply,
        } => {
            shared.deliver(conn_id, stream_id, reply);
            Ok(())
        }
        Incoming::Ignored(why @ Ignored::Unopened { .. }) => {
            log::debug!("{}: {}", Escape(&shared.options.name), Escape(&why));
            Ok(())
        }
        Incoming::Ignored(why) => {
            log::warn!("{}: {}", Escape(&shared.options.name), Escape(&why));
            Ok(())
        }
    }
}

fn enqueue(queue: &mut VecDeque<Work>, shared: &ConnectionState, work: Work) -> Result<()> {
    let Err(status) = shared.admit(queue.len(), &work) else {
        queue.push_back(work);
        return Ok(());
    };
    // Over a bound: refuse right here, without growing the queue.
    let (Work::Request {
        conn_id, stream_id, ..
    }
    | Work::Refuse {
        conn_id, stream_id, ..
    }) = work;
    shared.write_response(conn_id, stream_id, Err(status))
}

impl ConnectionState {
    /// Keeps a used request buffer for a later frame (a few small ones only).
    pub(super) fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() <= MAX_SPARE_BUFFER {
            let mut spares = lock(&self.spares);
            if spares.len() < MAX_SPARE_BUFFERS {
                spares.push(buf);
            }
        }
    }

    /// Waits for the turn to read; `None` once the connection is closed.
    /// `ticket` is the caller's own park, which it takes back at once if
    /// nobody took it over meanwhile.
    fn take_turn(&self, ticket: Option<u64>) -> Option<TurnHeld<'_>> {
        let takeover = self.options.takeover_after;
        let mut t = lock(&self.turn);
        // The park the watcher saw last, to tell a busy connection from a
        // quiet one.
        let mut seen = None;
        let mut watching = false;
        loop {
            if self.closed.load(Ordering::Acquire) {
                if watching {
                    t.watcher = Watcher::None;
                }
                return None;
            }
            let take = match t.holder {
                Holder::Vacant => true,
                Holder::Parked { ticket: mine, .. } if Some(mine) == ticket => true,
                Holder::Parked { since, .. } => watching && since.elapsed() >= takeover,
                _ => false,
            };
            if take {
                t.holder = Holder::Reading;
                if watching {
                    t.watcher = Watcher::None;
                }
                return Some(TurnHeld {
                    shared: self,
                    resume: None,
                });
            }
            if let Some(mine) = ticket {
                // Our park was taken over (by a caller reading for its
                // reply): tell it not to put the park back.
                t.returned = Some(mine);
            }
            if !watching && t.watcher == Watcher::None {
                watching = true;
                t.watcher = Watcher::Ticking;
            }
            if !watching {
                t.followers += 1;
                t = wait(&self.turn_cv.followers, t);
                t.followers -= 1;
                continue;
            }
            t = match t.holder {
                Holder::Parked { since, ticket } => {
                    seen = Some(ticket);
                    let left = takeover.saturating_sub(since.elapsed());
                    wait_timeout(&self.turn_cv.watcher, t, left)
                }
                // Requests came since the last look: look again later.
                _ if seen != Some(t.parks) => {
                    seen = Some(t.parks);
                    wait_timeout(&self.turn_cv.watcher, t, takeover)
                }
                // Quiet: sleep until the next park.
                _ => {
                    t.watcher = Watcher::Idle;
                    let mut t = wait(&self.turn_cv.watcher, t);
                    t.watcher = Watcher::Ticking;
                    t
                }
            };
        }
    }

    /// Gives up the park `ticket` without coming back to read: the read
    /// side becomes vacant and a waiting worker takes it. When the park was
    /// taken over meanwhile, its taker is told not to put it back.
    fn unpark(&self, ticket: u64) {
        let mut t = lock(&self.turn);
        match t.holder {
            Holder::Parked { ticket: mine, .. } if mine == ticket => self.vacate(t),
            _ => t.returned = Some(ticket),
        }
    }

    /// Takes the turn to read only if nobody is reading: the read side is
    /// vacant, or parked (then it is put back parked when the turn is
    /// dropped, unless requests wait for a worker by then).
    pub(super) fn try_take_turn(&self) -> Option<TurnHeld<'_>> {
        let mut t = lock(&self.turn);
        let resume = match t.holder {
            Holder::Vacant => None,
            Holder::Parked { since, ticket } => Some((since, ticket)),
            Holder::Reading => return None,
        };
        t.holder = Holder::Reading;
        Some(TurnHeld {
            shared: self,
            resume,
        })
    }

    /// Gives the turn back: parks it again as it was taken (`resume`), or
    /// leaves it vacant and wakes one waiting worker to take it.
    fn release_turn(&self, resume: Option<(Instant, u64)>) {
        let queued = lock(&self.read).has_queued();
        let mut t = lock(&self.turn);
        match resume {
            // The park's thread is still in its handler: put the park back,
            // and have the watcher time it (it may have gone idle while the
            // caller was reading).
            Some((since, ticket)) if !queued && t.returned != Some(ticket) => {
                t.holder = Holder::Parked { since, ticket };
                if t.watcher == Watcher::Idle {
                    t.watcher = Watcher::Ticking;
                    drop(t);
                    self.turn_cv.watcher.notify_one();
                }
                return;
            }
            _ => {}
        }
        self.vacate(t);
    }

    /// Leaves the read side vacant and wakes one waiting worker to take it.
    fn vacate(&self, mut t: std::sync::MutexGuard<'_, Turn>) {
        t.holder = Holder::Vacant;
        let (followers, watcher) = (t.followers > 0, t.watcher != Watcher::None);
        drop(t);
        if followers {
            self.turn_cv.followers.notify_one();
        } else if watcher {
            self.turn_cv.watcher.notify_one();
        }
    }
}

struct ExitGuard(Arc<ConnectionState>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.worker_exited();
    }
}

pub(super) fn worker_main(shared: Arc<ConnectionState>) {
    let _exit = ExitGuard(shared.clone());
    let mut ticket = None;
    loop {
        let Some(turn) = shared.take_turn(ticket.take()) else {
            return;
        };
        let (work, more) = {
            let mut rs = lock(&shared.read);
            let work = loop {
                if let Some(w) = rs.queue.pop_front() {
                    shared.release(&w);
                    break Some(w);
                }
                if shared.closed.load(Ordering::Acquire) {
                    break None;
                }
                if let Err(e) = rs.fill(&shared) {
                    shared.close_on(&e);
                    break None;
                }
            };
            (work, rs.has_queued())
        };
        let Some(work) = work else {
            return;
        };
        if more {
            // More requests were read: another worker takes the turn now.
            drop(turn);
        } else {
            ticket = Some(turn.park());
        }
        let after = shared.process(work);
        if !after.is_empty() {
            // Post-reply actions may take long (a walk of a large state, a
            // call to the peer): the read side is not left parked for them.
            if let Some(t) = ticket.take() {
                shared.unpark(t);
            }
            shared.after_reply(after);
        }
    }
}
