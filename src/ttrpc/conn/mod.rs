//! One socket, its reader, its writer and its worker pool.
//!
//! A [`Connection`] owns a stream socket that carries ttrpc either directly
//! ([`Framing::Raw`]) or over NRI's trunk ([`Framing::Mux`], logical
//! connections numbered from 1). On every logical connection it can serve
//! [`Services`] and make calls through a [`Client`] at the same time: frames
//! of type Request go to the services, frames of type Response to the
//! waiting callers.
//!
//! # Threads
//!
//! A pool of worker threads takes turns as the reader (leader/follower).
//! The thread holding the read side reads the socket and decodes whatever
//! arrived: responses are handed to their callers, requests are queued.
//! When it has a request, it handles the request and writes the reply
//! itself, then goes back to reading: a request is read, handled and
//! answered on one thread, without a hop between threads and without waking
//! another one. When more requests were read at once, another worker takes
//! over reading at once; when a handler runs long, an idle worker takes
//! over reading after [`ConnectionOptions::takeover_after`], so requests
//! that arrive meanwhile are served (see `read.rs`). Writes from all threads go through
//! one lock, so frames of different messages never interleave.
//!
//! # Closing
//!
//! Closing is one path: end of stream, a fatal protocol error or
//! [`Connection::close`] shut the socket down, wake every waiting caller with
//! an error, let the workers finish, run the on-close callback exactly once,
//! and release [`Connection::wait`].
//!
//! # Where things are
//!
//! The protocol itself (what a frame means, stream ids, envelopes, framing
//! for Go readers) is the session layer's (`ttrpc/session/`); this
//! directory moves bytes, waits and runs handlers. This file holds the
//! options, the [`Connection`] handle, the state its threads share
//! (`ConnectionState`) and the closing path. The rest, one part each:
//! `builder` (setting up and starting a connection), `client` (calls and
//! waiting for their replies), `read` (the turn to read, feeding the
//! session what arrived and the worker loop), `serve` (running the handler
//! a request names), `write` (writing framed messages, each within a
//! deadline, under one lock), `timed_lock` (that lock, which a caller
//! waits for only until its deadline), `budget` (the bytes of received
//! messages waiting to be taken) and `guard` (the deadline guard).
//!
//! # Deadlines
//!
//! Every wait of a connection ends: a write of one message, whether reply
//! or request, gets at most [`ConnectionOptions::write_timeout`] once it
//! holds the writer (a call with a shorter time left gets that), and a
//! peer that does not take it by then is cut off: the connection closes
//! with a reason naming the peer. A caller's timeout counts from the
//! moment it calls and covers its wait for the writer; a call that times
//! out before a byte of it was written fails with
//! [`crate::Error::DeadlineExceeded`] and leaves the connection up.

mod budget;
mod builder;
mod client;
mod guard;
mod read;
mod serve;
mod timed_lock;
mod write;

use std::collections::HashMap;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::server::Services;
use super::session::Framing;
use super::Response;
use crate::locking::{lock, wait, wait_timeout};
use crate::{Error, Result};

pub use builder::ConnectionBuilder;
pub use client::Client;
pub use guard::{DeadlineGuard, GuardReply};

use crate::log_text::Escape;
use budget::{Budget, Held};
use guard::Deadlines;
use read::{ReadSide, Turn, TurnSignals};
use timed_lock::TimedLock;
use write::Writer;

/// Callback run once when a connection has closed, with the reason.
pub type OnClose = Box<dyn FnOnce(&str) + Send>;

/// Sizes and limits of a [`Connection`].
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
    /// Worker threads taking turns as reader and handling requests (at least 1).
    pub workers: usize,
    /// Requests read but not yet picked up by a worker; beyond this a request
    /// is refused at once with RESOURCE_EXHAUSTED.
    pub max_queued_requests: usize,
    /// Bytes of memory that received messages may hold while they wait to
    /// be taken: requests waiting for a worker and replies waiting for
    /// their caller, each counted by the capacity of its buffers. A request
    /// that does not fit is refused at once with RESOURCE_EXHAUSTED naming
    /// the budget; a reply that does not fit is dropped and its caller gets
    /// [`crate::Error::OverBudget`]. At least 4 MiB + 64 KiB (one message
    /// of the largest size); default 16 MiB.
    pub max_pending_bytes: usize,
    /// The longest a write of one message may take once it holds the
    /// writer (default 2 s, NRI's default request timeout). A peer that
    /// has not taken a whole message by then has stopped reading: the
    /// connection closes with a reason naming it. A reply waits at most
    /// twice this long for the writer. A call whose time left is shorter
    /// is bounded by its own deadline instead. At least 1 ms.
    pub write_timeout: Duration,
    /// Size of the read buffer in bytes.
    pub read_buffer: usize,
    /// How long a handler may run while nobody reads the socket before an
    /// idle worker takes the reading over (default 1 ms). The worker that
    /// read a request serves it and then goes back to reading, which costs
    /// no wake-up of another thread; a request that arrives meanwhile waits
    /// at most this long for a reader when the handler is slow.
    pub takeover_after: Duration,
    /// Optional deadline guard for served requests (only methods
    /// registered as guarded, see [`Services::set_guarded`]).
    pub deadline_guard: Option<DeadlineGuard>,
    /// Name used for threads and log messages.
    pub name: String,
    /// Who is at the other end, as errors and close reasons name it: for
    /// example `plugin "10-foo"` on the runtime's side of a plugin's
    /// connection. Empty (the default): `the peer of <name>`. It can be
    /// changed once the connection runs ([`Connection::set_peer`]).
    pub peer: String,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            workers: 4,
            max_queued_requests: 64,
            max_pending_bytes: 16 << 20,
            write_timeout: Duration::from_secs(2),
            read_buffer: 64 * 1024,
            takeover_after: Duration::from_millis(1),
            deadline_guard: None,
            name: "ttrpc".to_string(),
            peer: String::new(),
        }
    }
}

/// Closes the connection when the last user handle ([`Connection`] or
/// [`Client`]) is dropped; the worker threads hold only the shared state,
/// so they never keep a forgotten connection open.
struct Owner(Arc<ConnectionState>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0
            .close("every handle to the connection was dropped".to_string());
    }
}

/// A running ttrpc connection. Cheap to clone; all clones share it. When
/// the last clone and the last [`Client`] made from it are dropped, the
/// connection closes (without waiting for its threads).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<ConnectionState>,
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.shared.options.name)
            .field("framing", &self.shared.framing)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// A client making calls on logical connection `conn_id` (ignored with
    /// [`Framing::Raw`]). The id must have been opened or served.
    pub fn client(&self, conn_id: u32) -> Result<Client> {
        let id = self.shared.framing.conn_id(conn_id);
        if !self.shared.open.contains(&id) {
            return Err(Error::Config(format!(
                "logical connection {conn_id} was not opened on this connection"
            )));
        }
        Ok(Client::new(self.shared.clone(), self.owner.clone(), id))
    }

    /// Closes the connection (idempotent). Does not wait; see [`Connection::wait`].
    pub fn close(&self) {
        self.shared.close("closed locally".to_string());
    }

    /// True once the connection has started closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.shared.reason).clone()
    }

    /// Names the peer in errors and close reasons from now on (see
    /// [`ConnectionOptions::peer`]); for a side that learns who connected
    /// only once the connection runs.
    pub fn set_peer(&self, peer: impl Into<String>) {
        *lock(&self.shared.peer) = peer.into();
    }

    /// Blocks until the connection starts closing (without waiting for
    /// handlers still running).
    pub fn wait_closed(&self) {
        let mut done = lock(&self.shared.done);
        while !*done && !self.is_closed() {
            done = wait(&self.shared.done_cv, done);
        }
    }

    /// Blocks until the connection has closed and its threads have exited
    /// (called from one of its own handlers, it does not wait for itself).
    pub fn wait(&self) {
        let mut done = lock(&self.shared.done);
        while !*done {
            done = wait(&self.shared.done_cv, done);
        }
        drop(done);
        self.shared.join_threads();
    }

    /// Like [`Connection::wait`], for at most `timeout`. Returns true when
    /// the connection is done. When a handler is stuck and the time runs out
    /// on a closed connection, the on-close callback is run now (still only
    /// once) and the stuck worker is left behind.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut done = lock(&self.shared.done);
        while !*done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(done);
                if self.is_closed() {
                    log::warn!(
                        "{}: a handler is still running after close; not waiting for it",
                        Escape(&self.shared.options.name)
                    );
                    self.shared.finish();
                    return true;
                }
                return false;
            }
            done = wait_timeout(&self.shared.done_cv, done, left);
        }
        drop(done);
        self.shared.join_threads();
        true
    }
}

/// The key of a waiting caller: logical connection and stream id.
fn key(conn_id: u32, stream_id: u32) -> u64 {
    (u64::from(conn_id) << 32) | u64::from(stream_id)
}

/// Where the reader hands a caller its reply, with the reply's share of
/// the pending-bytes budget.
type PendingSlot = Sender<(Result<Response>, Option<Held>)>;

/// The state one connection's threads and handles share. Its methods live
/// with the part they serve: closing here, reading in `read`, writing in
/// `write`, calling in `client`, serving in `serve`, the guard in `guard`.
struct ConnectionState {
    framing: Framing,
    options: ConnectionOptions,
    services: HashMap<u32, Arc<Services>>,
    open: Vec<u32>,
    /// The read side. Only the thread holding the turn (below) locks it, so
    /// the lock is never contended and nobody spins on it.
    read: Mutex<ReadSide>,
    /// Whose turn it is to read: threads waiting for it sleep on `turn_cv`.
    turn: Mutex<Turn>,
    turn_cv: TurnSignals,
    /// Request buffers handed back after their handler ran, reused for the
    /// next frames: a large allocation per request costs more than the
    /// decode around it (glibc consolidates its small-chunk bins first).
    spares: Mutex<Vec<Vec<u8>>>,
    writer: TimedLock<Writer>,
    control: UnixStream,
    pending: Mutex<HashMap<u64, PendingSlot>>,
    /// Bytes held by received messages not yet taken.
    budget: Arc<Budget>,
    /// How errors and close reasons name the peer.
    peer: Mutex<String>,
    closed: AtomicBool,
    reason: Mutex<Option<String>>,
    alive: AtomicUsize,
    done: Mutex<bool>,
    done_cv: Condvar,
    on_close: Mutex<Option<OnClose>>,
    on_closing: Mutex<Option<OnClose>>,
    /// The deadline guard's table, with a guard configured.
    guard: Option<Deadlines>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl ConnectionState {
    /// The peer as errors and close reasons name it.
    fn peer(&self) -> String {
        let peer = lock(&self.peer);
        if peer.is_empty() {
            format!("the peer of {}", self.options.name)
        } else {
            peer.clone()
        }
    }

    fn reason_string(&self) -> String {
        lock(&self.reason)
            .clone()
            .unwrap_or_else(|| "connection closed".to_string())
    }

    /// Closes because of `e`. The reason is the error's text, except that
    /// an [`Error::ConnectionClosed`] gives its own reason: the error built
    /// from the reason later must not say "connection closed" twice.
    fn close_on(&self, e: &Error) {
        match e {
            Error::ConnectionClosed(reason) => self.close(reason.clone()),
            e => self.close(e.to_string()),
        }
    }

    fn close(&self, reason: String) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        log::debug!(
            "{}: closing: {}",
            Escape(&self.options.name),
            Escape(&reason)
        );
        *lock(&self.reason) = Some(reason.clone());
        let _ = self.control.shutdown(Shutdown::Both);
        self.writer.close();
        let pending: Vec<PendingSlot> = lock(&self.pending).drain().map(|(_, v)| v).collect();
        for tx in pending {
            let _ = tx.send((Err(Error::ConnectionClosed(reason.clone())), None));
        }
        if let Some(guard) = &self.guard {
            guard.stop();
        }
        let cb = lock(&self.on_closing).take();
        if let Some(cb) = cb {
            if catch_unwind(AssertUnwindSafe(|| cb(&reason))).is_err() {
                log::error!(
                    "{}: the on-closing callback panicked",
                    Escape(&self.options.name)
                );
            }
        }
        // Wake the workers waiting for their turn to read, then
        // wait_closed().
        {
            let _t = lock(&self.turn);
            self.turn_cv.notify_all();
        }
        let _g = lock(&self.done);
        self.done_cv.notify_all();
    }

    /// Joins the connection's threads once they are done, except the
    /// calling thread itself.
    fn join_threads(&self) {
        let me = thread::current().id();
        let handles = std::mem::take(&mut *lock(&self.threads));
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }

    fn worker_exited(&self) {
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    /// Runs the on-close callback (once) and releases waiters.
    fn finish(&self) {
        let cb = lock(&self.on_close).take();
        if let Some(cb) = cb {
            let reason = self.reason_string();
            if catch_unwind(AssertUnwindSafe(|| cb(&reason))).is_err() {
                log::error!(
                    "{}: the on-close callback panicked",
                    Escape(&self.options.name)
                );
            }
        }
        *lock(&self.done) = true;
        self.done_cv.notify_all();
    }
}
