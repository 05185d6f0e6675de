//! The read side: the turn to read that worker threads take one at a time,
//! reading the socket and acting on what the session layer makes of the
//! bytes (handing replies to their callers, queueing requests and
//! refusals), and the worker loop that reads until it has a request and
//! then serves it.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ConnectionState;
use crate::locking::{lock, wait};
use crate::status::Status;
use crate::ttrpc::session::{Envelope, Ignored, Inbound, Incoming};
use crate::{Error, Result};

/// The turn to read, held: given back when dropped, also if the holder
/// panics.
pub(super) struct TurnHeld<'a>(&'a ConnectionState);

impl Drop for TurnHeld<'_> {
    fn drop(&mut self) {
        self.0.release_turn();
    }
}

/// Largest request buffer kept for reuse, and how many are kept.
const MAX_SPARE_BUFFER: usize = 64 * 1024;
const MAX_SPARE_BUFFERS: usize = 8;

/// The right to use the read side (leader/follower): one holder at a time.
///
/// A plain mutex around the read side made every worker that finished a
/// request spin on it while the reader sat in `read` (about an eighth of a
/// busy plugin's CPU); waiting here is a sleep on a condition variable.
#[derive(Default)]
pub(super) struct Turn {
    taken: bool,
    waiting: usize,
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
                )?,
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
                )?,
                Incoming::Reply {
                    conn_id,
                    stream_id,
                    reply,
                } => shared.deliver(conn_id, stream_id, reply),
                Incoming::Ignored(why @ Ignored::Unopened { .. }) => {
                    log::debug!("{}: {why}", shared.options.name)
                }
                Incoming::Ignored(why) => log::warn!("{}: {why}", shared.options.name),
            }
        }
        Ok(())
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
    fn take_turn(&self) -> Option<TurnHeld<'_>> {
        let mut t = lock(&self.turn);
        while t.taken {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            t.waiting += 1;
            t = wait(&self.turn_cv, t);
            t.waiting -= 1;
        }
        t.taken = true;
        Some(TurnHeld(self))
    }

    /// Takes the turn to read only if nobody holds it.
    pub(super) fn try_take_turn(&self) -> Option<TurnHeld<'_>> {
        let mut t = lock(&self.turn);
        if t.taken {
            return None;
        }
        t.taken = true;
        Some(TurnHeld(self))
    }

    /// Gives the turn back and wakes one waiting worker, if any.
    fn release_turn(&self) {
        let mut t = lock(&self.turn);
        t.taken = false;
        let wake = t.waiting > 0;
        drop(t);
        if wake {
            self.turn_cv.notify_one();
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
    loop {
        let Some(turn) = shared.take_turn() else {
            return;
        };
        let work = {
            let mut rs = lock(&shared.read);
            loop {
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
            }
        };
        drop(turn);
        match work {
            Some(w) => shared.process(w),
            None => return,
        }
    }
}
