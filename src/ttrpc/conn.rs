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
//! When it has a request, it gives up the read side, so an idle peer takes
//! over reading, and handles the request and writes the reply itself. A
//! request is thus read, handled and answered on one thread, without a hop
//! between threads on the critical path. Writes from all threads go through
//! one lock, so frames of different messages never interleave.
//!
//! # Closing
//!
//! Closing is one path: end of stream, a fatal protocol error or
//! [`Connection::close`] shut the socket down, wake every waiting caller with
//! an error, let the workers finish, run the on-close callback exactly once,
//! and release [`Connection::wait`].

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use protobuf::Message;

use super::codec::{
    Decoded, FrameDecoder, FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_REQUEST, TYPE_RESPONSE,
};
use super::server::{Handler, RequestContext, Services};
use super::{Code, KeyValue, Request, Response, Status};
use crate::mux::codec::{MuxDecoder, GO_READ_BUFFER, MUX_HEADER_LEN};
use crate::{Error, Result};

/// How ttrpc frames travel on the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Plain ttrpc: the socket is one logical connection (id 0).
    Raw,
    /// NRI's multiplexer: logical connections with ids from 1.
    Mux,
}

/// The reply a deadline guard sends for a handler that is about to miss the
/// caller's deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardReply {
    /// An OK reply with an empty payload, which every NRI response type reads
    /// as "no changes".
    Empty,
    /// An error status.
    Error(Status),
}

/// Answers on a slow handler's behalf shortly before the caller's deadline,
/// so the caller never sees a timeout; the handler's late result is then
/// discarded and logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlineGuard {
    /// How long before the deadline the guard answers (capped at a quarter of
    /// the request's timeout).
    pub margin: Duration,
    /// What it answers.
    pub reply: GuardReply,
}

impl Default for DeadlineGuard {
    fn default() -> Self {
        DeadlineGuard {
            margin: Duration::from_millis(250),
            reply: GuardReply::Empty,
        }
    }
}

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
    /// Size of the read buffer in bytes.
    pub read_buffer: usize,
    /// Optional deadline guard for served requests.
    pub deadline_guard: Option<DeadlineGuard>,
    /// Name used for threads and log messages.
    pub name: String,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            workers: 4,
            max_queued_requests: 64,
            read_buffer: 64 * 1024,
            deadline_guard: None,
            name: "ttrpc".to_string(),
        }
    }
}

/// Sets up and starts a [`Connection`].
pub struct ConnectionBuilder {
    stream: UnixStream,
    framing: Framing,
    options: ConnectionOptions,
    services: Vec<(u32, Arc<Services>)>,
    open: Vec<u32>,
    on_close: Option<OnClose>,
    on_closing: Option<OnClose>,
}

impl ConnectionBuilder {
    /// Starts building a connection over `stream`.
    pub fn new(stream: UnixStream, framing: Framing) -> Self {
        ConnectionBuilder {
            stream,
            framing,
            options: ConnectionOptions::default(),
            services: Vec::new(),
            open: Vec::new(),
            on_close: None,
            on_closing: None,
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: ConnectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Serves `services` on logical connection `conn_id` (ignored with
    /// [`Framing::Raw`], where the one stream is served).
    pub fn serve(mut self, conn_id: u32, services: Arc<Services>) -> Self {
        let id = self.chan_id(conn_id);
        self.services.push((id, services));
        self.open.push(id);
        self
    }

    /// Opens logical connection `conn_id` for calls made with
    /// [`Connection::client`].
    pub fn open(mut self, conn_id: u32) -> Self {
        let id = self.chan_id(conn_id);
        self.open.push(id);
        self
    }

    /// Sets a callback run once as soon as the connection starts closing,
    /// on the thread that closes it, before handlers still running have
    /// finished. Keep it short; it must not wait for the connection.
    pub fn on_closing(mut self, f: impl FnOnce(&str) + Send + 'static) -> Self {
        self.on_closing = Some(Box::new(f));
        self
    }

    /// Sets the callback run once when the connection has closed and its
    /// workers have ended.
    pub fn on_close(mut self, f: impl FnOnce(&str) + Send + 'static) -> Self {
        self.on_close = Some(Box::new(f));
        self
    }

    fn chan_id(&self, conn_id: u32) -> u32 {
        match self.framing {
            Framing::Raw => 0,
            Framing::Mux => conn_id,
        }
    }

    /// Starts the workers and returns the running connection.
    pub fn start(self) -> Result<Connection> {
        let ConnectionBuilder {
            stream,
            framing,
            mut options,
            services,
            mut open,
            on_close,
            on_closing,
        } = self;
        options.workers = options.workers.max(1);
        options.read_buffer = options.read_buffer.max(4096);
        if framing == Framing::Mux && open.contains(&0) {
            return Err(Error::Config("logical connection id 0 is reserved".into()));
        }
        open.sort_unstable();
        open.dedup();
        let read_stream = stream
            .try_clone()
            .map_err(|e| Error::io("cannot clone the connection socket for reading", e))?;
        let ctl_stream = stream
            .try_clone()
            .map_err(|e| Error::io("cannot clone the connection socket", e))?;
        let channels = open
            .iter()
            .map(|&id| {
                (
                    id,
                    Channel {
                        decoder: FrameDecoder::new(),
                        last_request_id: 0,
                    },
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            framing,
            options: options.clone(),
            services: services.into_iter().collect(),
            open,
            read: Mutex::new(ReadSide {
                stream: read_stream,
                buf: vec![0; options.read_buffer],
                mux: MuxDecoder::new(),
                channels,
                queue: VecDeque::new(),
            }),
            turn: Mutex::new(Turn::default()),
            turn_cv: Condvar::new(),
            spares: Mutex::new(Vec::new()),
            writer: Mutex::new(Writer {
                stream,
                buf: Vec::new(),
            }),
            control: ctl_stream,
            pending: Mutex::new(HashMap::new()),
            next_stream: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            reason: Mutex::new(None),
            alive: AtomicUsize::new(options.workers),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
            on_close: Mutex::new(on_close),
            on_closing: Mutex::new(on_closing),
            guard: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
        });
        if let Some(guard) = options.deadline_guard.clone() {
            let (tx, rx) = crossbeam_channel::unbounded();
            *lock(&shared.guard) = Some(tx);
            let weak = Arc::downgrade(&shared);
            let h = thread::Builder::new()
                .name(format!("{}-guard", options.name))
                .spawn(move || guard_main(weak, rx, guard))
                .map_err(|e| Error::io("cannot spawn the deadline-guard thread", e))?;
            lock(&shared.threads).push(h);
        }
        for i in 0..options.workers {
            let s = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-{}", options.name, i))
                .spawn(move || worker_main(s));
            if let Err(e) = spawned.map(|h| lock(&shared.threads).push(h)) {
                // Workers already running exit once closed; the rest never started.
                let missing = options.workers - i;
                shared.close(format!("cannot spawn worker thread: {e}"));
                for _ in 0..missing {
                    shared.worker_exited();
                }
                return Err(Error::io("cannot spawn a worker thread", e));
            }
        }
        let owner = Arc::new(Owner(shared.clone()));
        Ok(Connection { shared, owner })
    }
}

/// Closes the connection when the last user handle ([`Connection`] or
/// [`Client`]) is dropped; the worker threads hold only the shared state,
/// so they never keep a forgotten connection open.
struct Owner(Arc<Shared>);

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
    shared: Arc<Shared>,
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
        let chan = match self.shared.framing {
            Framing::Raw => 0,
            Framing::Mux => conn_id,
        };
        if !self.shared.open.contains(&chan) {
            return Err(Error::Config(format!(
                "logical connection {conn_id} was not opened on this connection"
            )));
        }
        Ok(Client {
            shared: self.shared.clone(),
            _owner: self.owner.clone(),
            chan,
        })
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

    /// Blocks until the connection starts closing (without waiting for
    /// handlers still running).
    pub fn wait_closed(&self) {
        let mut done = lock(&self.shared.done);
        while !*done && !self.is_closed() {
            done = self
                .shared
                .done_cv
                .wait(done)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until the connection has closed and its threads have exited
    /// (called from one of its own handlers, it does not wait for itself).
    pub fn wait(&self) {
        let mut done = lock(&self.shared.done);
        while !*done {
            done = self
                .shared
                .done_cv
                .wait(done)
                .unwrap_or_else(|e| e.into_inner());
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
                        self.shared.options.name
                    );
                    self.shared.finish();
                    return true;
                }
                return false;
            }
            done = self
                .shared
                .done_cv
                .wait_timeout(done, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        drop(done);
        self.shared.join_threads();
        true
    }
}

/// Makes calls on one logical connection of a [`Connection`]. Cheap to
/// clone, safe to use from many threads at once.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
    chan: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("conn", &self.chan).finish()
    }
}

impl Client {
    /// Calls `service`/`method` with an encoded argument and returns the
    /// encoded result. With a timeout, the remaining time is sent to the
    /// server as `timeout_nano` and the call fails with
    /// [`Error::DeadlineExceeded`] when no reply came in time (a late reply
    /// is dropped). A non-OK status becomes [`Error::Status`].
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        timeout: Option<Duration>,
        metadata: Vec<KeyValue>,
    ) -> Result<Vec<u8>> {
        let shared = &self.shared;
        let req = Request {
            service: service.to_string(),
            method: method.to_string(),
            payload,
            timeout_nano: timeout
                .map(|t| t.as_nanos().min(i64::MAX as u128) as i64)
                .unwrap_or(0),
            metadata,
            ..Default::default()
        };
        let bytes = req.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: "ttrpc.Request",
            source: e,
        })?;
        if bytes.len() > MAX_MESSAGE_LEN {
            // The id is consumed even so, as with Go's client.
            let mut next = lock(&shared.next_stream);
            let n = next.entry(self.chan).or_insert(1);
            *n = n.wrapping_add(2);
            return Err(Error::MessageTooLarge {
                len: bytes.len() as u64,
                limit: MAX_MESSAGE_LEN as u64,
            });
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stream_id = shared
            .send_request(self.chan, &bytes, tx, timeout)
            .map_err(|e| match (e, timeout) {
                (Error::Io { source, .. }, Some(t))
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    Error::DeadlineExceeded {
                        service: service.to_string(),
                        method: method.to_string(),
                        timeout: t,
                    }
                }
                (e, _) => e,
            })?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let outcome = match shared.await_reply(&rx, deadline) {
            Some(r) => r,
            None => {
                lock(&shared.pending).remove(&key(self.chan, stream_id));
                // The reply may have raced the timeout into the slot.
                match rx.try_recv() {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Error::DeadlineExceeded {
                            service: service.to_string(),
                            method: method.to_string(),
                            timeout: timeout.unwrap_or_default(),
                        })
                    }
                }
            }
        };
        let resp = outcome?;
        let code = resp.status.as_ref().map(|s| s.code).unwrap_or(0);
        if code != 0 {
            let message = resp
                .status
                .as_ref()
                .map(|s| s.message.clone())
                .unwrap_or_default();
            return Err(Error::Status {
                service: service.to_string(),
                method: method.to_string(),
                code: Code::from_i32(code),
                message,
            });
        }
        Ok(resp.payload)
    }

    /// Typed call: encodes `req`, decodes the result as `Resp`.
    pub fn call<Req: Message, Resp: Message>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp> {
        let payload = req.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: Req::NAME,
            source: e,
        })?;
        let out = self.call_raw(service, method, payload, timeout, Vec::new())?;
        crate::pb::decode::<Resp>(&out).map_err(|e| Error::Protobuf {
            what: "decoding",
            message: Resp::NAME,
            source: e,
        })
    }

    /// True once the underlying connection has started closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

fn key(chan: u32, stream: u32) -> u64 {
    ((chan as u64) << 32) | stream as u64
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type PendingSlot = Sender<Result<Response>>;

struct Shared {
    framing: Framing,
    options: ConnectionOptions,
    services: HashMap<u32, Arc<Services>>,
    open: Vec<u32>,
    /// The read side. Only the thread holding the turn (below) locks it, so
    /// the lock is never contended and nobody spins on it.
    read: Mutex<ReadSide>,
    /// Whose turn it is to read: threads waiting for it sleep on `turn_cv`.
    turn: Mutex<Turn>,
    turn_cv: Condvar,
    /// Request buffers handed back after their handler ran, reused for the
    /// next frames: a large allocation per request costs more than the
    /// decode around it (glibc consolidates its small-chunk bins first).
    spares: Mutex<Vec<Vec<u8>>>,
    writer: Mutex<Writer>,
    control: UnixStream,
    pending: Mutex<HashMap<u64, PendingSlot>>,
    next_stream: Mutex<HashMap<u32, u32>>,
    closed: AtomicBool,
    reason: Mutex<Option<String>>,
    alive: AtomicUsize,
    done: Mutex<bool>,
    done_cv: Condvar,
    on_close: Mutex<Option<OnClose>>,
    on_closing: Mutex<Option<OnClose>>,
    guard: Mutex<Option<Sender<GuardMsg>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

struct Writer {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// A ttrpc request envelope whose payload is left in the frame's buffer.
struct Envelope {
    service: String,
    method: String,
    /// The whole frame; the payload is `data[payload]`.
    data: Vec<u8>,
    payload: std::ops::Range<usize>,
    timeout_nano: i64,
    metadata: Vec<KeyValue>,
}

impl Envelope {
    /// Decodes a `ttrpc.Request` field by field as the generated code does
    /// (and as strictly as [`crate::pb::decode`]), except that the payload
    /// is not copied out of the frame.
    fn decode(data: Vec<u8>) -> protobuf::Result<Envelope> {
        let (mut service, mut method) = (String::new(), String::new());
        let (mut timeout_nano, mut metadata) = (0i64, Vec::new());
        let mut payload = 0..0;
        {
            let mut is = protobuf::CodedInputStream::from_bytes(&data);
            let outer = is.push_limit(data.len() as u64)?;
            let mut unknown = protobuf::UnknownFields::new();
            while let Some(tag) = is.read_raw_tag_or_eof()? {
                match tag {
                    10 => service = is.read_string()?,
                    18 => method = is.read_string()?,
                    26 => {
                        let len = is.read_raw_varint32()?;
                        let start = is.pos() as usize;
                        is.skip_raw_bytes(len)?;
                        payload = start..start + len as usize;
                    }
                    32 => timeout_nano = is.read_int64()?,
                    42 => metadata.push(is.read_message::<KeyValue>()?),
                    tag => protobuf::rt::read_unknown_or_skip_group(tag, &mut is, &mut unknown)?,
                }
            }
            is.pop_limit(outer);
        }
        Ok(Envelope {
            service,
            method,
            data,
            payload,
            timeout_nano,
            metadata,
        })
    }
}

/// The turn to read, held: given back when dropped, also if the holder
/// panics.
struct TurnHeld<'a>(&'a Shared);

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
struct Turn {
    taken: bool,
    waiting: usize,
}

struct Channel {
    decoder: FrameDecoder,
    last_request_id: u32,
}

enum Work {
    Request {
        chan: u32,
        stream_id: u32,
        req: Envelope,
        received: Instant,
    },
    Reject {
        chan: u32,
        stream_id: u32,
        status: Status,
    },
}

struct ReadSide {
    stream: UnixStream,
    buf: Vec<u8>,
    mux: MuxDecoder,
    channels: HashMap<u32, Channel>,
    queue: VecDeque<Work>,
}

impl ReadSide {
    /// Reads once from the socket and decodes everything that arrived.
    fn fill(&mut self, shared: &Shared) -> Result<()> {
        self.fill_within(shared, None)
    }

    /// Like `fill`, but gives up after `wait` without data (`Ok` then).
    fn fill_within(&mut self, shared: &Shared, wait: Option<Duration>) -> Result<()> {
        if wait.is_some() {
            let _ = self.stream.set_read_timeout(wait);
        }
        let res = self.fill_once(shared, wait.is_some());
        if wait.is_some() {
            let _ = self.stream.set_read_timeout(None);
        }
        res
    }

    fn fill_once(&mut self, shared: &Shared, timed: bool) -> Result<()> {
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
            mux,
            channels,
            queue,
            ..
        } = self;
        let mut input = &buf[..n];
        match shared.framing {
            Framing::Raw => {
                if let Some(ch) = channels.get_mut(&0) {
                    ch.feed(0, input, queue, shared)?;
                }
            }
            Framing::Mux => {
                while let Some((id, piece)) = mux.decode(&mut input)? {
                    match channels.get_mut(&id) {
                        Some(ch) => ch.feed(id, piece, queue, shared)?,
                        None => log::debug!(
                            "{}: dropping {} bytes for unopened logical connection {id}",
                            shared.options.name,
                            piece.len()
                        ),
                    }
                }
            }
        }
        Ok(())
    }
}

impl Channel {
    fn feed(
        &mut self,
        chan: u32,
        mut input: &[u8],
        queue: &mut VecDeque<Work>,
        shared: &Shared,
    ) -> Result<()> {
        while let Some(d) = {
            // Only when a frame may start here: not once more per read.
            if !input.is_empty() && self.decoder.at_boundary() && !self.decoder.has_spare() {
                if let Some(b) = lock(&shared.spares).pop() {
                    self.decoder.recycle(b);
                }
            }
            self.decoder.decode(&mut input)
        } {
            match d {
                Decoded::Frame { header, data } => self.frame(chan, header, data, queue, shared)?,
                Decoded::Oversized { header, limit } => {
                    let msg = format!(
                        "message of {} bytes on stream {} exceeds the {limit}-byte limit",
                        header.length, header.stream_id
                    );
                    match header.message_type {
                        TYPE_REQUEST => {
                            self.note_request_id(header.stream_id);
                            enqueue(
                                queue,
                                shared,
                                Work::Reject {
                                    chan,
                                    stream_id: header.stream_id,
                                    status: Status::new(Code::ResourceExhausted, msg),
                                },
                            )?
                        }
                        TYPE_RESPONSE => shared.deliver(
                            chan,
                            header.stream_id,
                            Err(Error::MessageTooLarge {
                                len: header.length as u64,
                                limit: limit as u64,
                            }),
                        ),
                        t => {
                            log::warn!("{}: dropped {msg} (message type {t})", shared.options.name)
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn note_request_id(&mut self, id: u32) {
        if id % 2 == 1 && id > self.last_request_id {
            self.last_request_id = id;
        }
    }

    fn frame(
        &mut self,
        chan: u32,
        header: FrameHeader,
        data: Vec<u8>,
        queue: &mut VecDeque<Work>,
        shared: &Shared,
    ) -> Result<()> {
        let id = header.stream_id;
        match header.message_type {
            TYPE_REQUEST => {
                let work = if id % 2 == 0 {
                    Work::Reject {
                        chan,
                        stream_id: id,
                        status: Status::new(
                            Code::InvalidArgument,
                            format!("stream id {id} is even; client stream ids must be odd"),
                        ),
                    }
                } else if id <= self.last_request_id {
                    Work::Reject {
                        chan,
                        stream_id: id,
                        status: Status::new(
                            Code::InvalidArgument,
                            format!(
                                "stream id {id} is not above the last one ({}); stream ids must increase",
                                self.last_request_id
                            ),
                        ),
                    }
                } else {
                    self.last_request_id = id;
                    match Envelope::decode(data) {
                        Ok(req) => Work::Request {
                            chan,
                            stream_id: id,
                            req,
                            received: Instant::now(),
                        },
                        Err(e) => Work::Reject {
                            chan,
                            stream_id: id,
                            status: Status::new(
                                Code::InvalidArgument,
                                format!("cannot decode ttrpc request envelope: {e}"),
                            ),
                        },
                    }
                };
                enqueue(queue, shared, work)
            }
            TYPE_RESPONSE => {
                let resp = crate::pb::decode::<Response>(&data).map_err(|e| Error::Protobuf {
                    what: "decoding",
                    message: "ttrpc.Response",
                    source: e,
                });
                self.decoder.recycle(data);
                shared.deliver(chan, id, resp);
                Ok(())
            }
            t => {
                log::warn!(
                    "{}: ignoring ttrpc frame of unsupported message type {t} on stream {id} ({} bytes)",
                    shared.options.name,
                    data.len()
                );
                Ok(())
            }
        }
    }
}

fn enqueue(queue: &mut VecDeque<Work>, shared: &Shared, work: Work) -> Result<()> {
    if queue.len() < shared.options.max_queued_requests {
        queue.push_back(work);
        return Ok(());
    }
    // Over the bound: refuse right here, without growing the queue.
    let (chan, stream_id) = match &work {
        Work::Request {
            chan, stream_id, ..
        }
        | Work::Reject {
            chan, stream_id, ..
        } => (*chan, *stream_id),
    };
    let status = Status::new(
        Code::ResourceExhausted,
        format!(
            "too many requests waiting for a worker (limit {})",
            shared.options.max_queued_requests
        ),
    );
    shared.write_response(chan, stream_id, Err(status))
}

impl Shared {
    fn reason_string(&self) -> String {
        lock(&self.reason)
            .clone()
            .unwrap_or_else(|| "connection closed".to_string())
    }

    fn deliver(&self, chan: u32, stream_id: u32, resp: Result<Response>) {
        match lock(&self.pending).remove(&key(chan, stream_id)) {
            Some(tx) => {
                let _ = tx.send(resp);
            }
            None => log::debug!(
                "{}: dropping reply for stream {stream_id} on connection {chan}: no caller waits for it (timed out or unknown)",
                self.options.name
            ),
        }
    }

    fn close(&self, reason: String) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        log::debug!("{}: closing: {reason}", self.options.name);
        *lock(&self.reason) = Some(reason.clone());
        let _ = self.control.shutdown(Shutdown::Both);
        let pending: Vec<PendingSlot> = lock(&self.pending).drain().map(|(_, v)| v).collect();
        for tx in pending {
            let _ = tx.send(Err(Error::ConnectionClosed(reason.clone())));
        }
        if let Some(tx) = lock(&self.guard).take() {
            let _ = tx.send(GuardMsg::Stop);
        }
        let cb = lock(&self.on_closing).take();
        if let Some(cb) = cb {
            if catch_unwind(AssertUnwindSafe(|| cb(&reason))).is_err() {
                log::error!("{}: the on-closing callback panicked", self.options.name);
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

    /// Keeps a used request buffer for a later frame (a few small ones only).
    fn recycle(&self, buf: Vec<u8>) {
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
            t = self.turn_cv.wait(t).unwrap_or_else(|e| e.into_inner());
            t.waiting -= 1;
        }
        t.taken = true;
        Some(TurnHeld(self))
    }

    /// Takes the turn to read only if nobody holds it.
    fn try_take_turn(&self) -> Option<TurnHeld<'_>> {
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

    /// Waits for a caller's reply until `deadline`; `None` when it passed.
    ///
    /// Usually a worker reads the reply and hands it over. When nobody is
    /// reading (every worker is busy, for example a single worker making
    /// this very call from a handler), the caller reads the socket itself
    /// for a while, delivering whatever arrives; requests it reads stay
    /// queued for the workers.
    fn await_reply(
        &self,
        rx: &Receiver<Result<Response>>,
        deadline: Option<Instant>,
    ) -> Option<Result<Response>> {
        const SLICE: Duration = Duration::from_millis(10);
        loop {
            match rx.try_recv() {
                Ok(r) => return Some(r),
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Some(Err(Error::ConnectionClosed(self.reason_string())))
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    left
                }
                None => SLICE,
            };
            let slice = left.min(SLICE);
            let mut read = false;
            let turn = match self.closed.load(Ordering::Acquire) {
                true => None,
                false => self.try_take_turn(),
            };
            if let Some(turn) = turn {
                let mut rs = lock(&self.read);
                // Read only while no request waits for a worker: a caller
                // that kept the read side would starve the workers of the
                // requests it read (and the peer may answer this call only
                // after those).
                if rs.queue.is_empty() {
                    read = true;
                    let res = rs.fill_within(self, Some(slice));
                    drop(rs);
                    if let Err(e) = res {
                        self.close(e.to_string());
                    }
                } else {
                    drop(rs);
                }
                drop(turn);
            }
            if !read {
                match rx.recv_timeout(slice) {
                    Ok(r) => return Some(r),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Some(Err(Error::ConnectionClosed(self.reason_string())))
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
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
                log::error!("{}: the on-close callback panicked", self.options.name);
            }
        }
        *lock(&self.done) = true;
        self.done_cv.notify_all();
    }

    /// Allocates the next stream id, registers the caller and writes the
    /// request, all under the writer lock, so that ids reach the wire in
    /// increasing order whatever the number of calling threads.
    /// With a timeout, the write itself is bounded by it too: a peer that
    /// stops reading cannot hold the caller past its deadline (the
    /// connection is closed then, since a frame was cut short).
    fn send_request(
        &self,
        chan: u32,
        bytes: &[u8],
        tx: PendingSlot,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let mut w = lock(&self.writer);
        let stream_id = {
            let mut pending = lock(&self.pending);
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::ConnectionClosed(self.reason_string()));
            }
            let mut next = lock(&self.next_stream);
            let n = next.entry(chan).or_insert(1);
            let id = *n;
            *n = n.wrapping_add(2);
            pending.insert(key(chan, id), tx);
            id
        };
        if let Some(t) = timeout {
            let _ = w
                .stream
                .set_write_timeout(Some(t.max(Duration::from_millis(1))));
        }
        let res = self.write_locked(&mut w, chan, stream_id, TYPE_REQUEST, bytes);
        if timeout.is_some() {
            let _ = w.stream.set_write_timeout(None);
        }
        if let Err(e) = res {
            drop(w);
            lock(&self.pending).remove(&key(chan, stream_id));
            return Err(self.fail_write(e));
        }
        Ok(stream_id)
    }

    fn write_message(
        &self,
        chan: u32,
        stream_id: u32,
        message_type: u8,
        data: &[u8],
    ) -> Result<()> {
        let mut w = lock(&self.writer);
        let res = self.write_locked(&mut w, chan, stream_id, message_type, data);
        drop(w);
        res.map_err(|e| self.fail_write(e))
    }

    /// A failed write leaves the stream in an unknown state: close.
    fn fail_write(&self, e: Error) -> Error {
        if matches!(e, Error::Io { .. }) {
            self.close(e.to_string());
        }
        e
    }

    /// Frames one ttrpc message (split for Go readers on a trunk) and
    /// writes it with one `write_all`; the caller holds the writer lock.
    fn write_locked(
        &self,
        w: &mut Writer,
        chan: u32,
        stream_id: u32,
        message_type: u8,
        data: &[u8],
    ) -> Result<()> {
        if data.len() > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLarge {
                len: data.len() as u64,
                limit: MAX_MESSAGE_LEN as u64,
            });
        }
        let header = FrameHeader {
            length: data.len() as u32,
            stream_id,
            message_type,
            flags: 0,
        }
        .to_bytes();
        let Writer { stream, buf } = w;
        buf.clear();
        match self.framing {
            Framing::Raw => {
                buf.extend_from_slice(&header);
                buf.extend_from_slice(data);
            }
            Framing::Mux => {
                let total = HEADER_LEN + data.len();
                let first = total.min(GO_READ_BUFFER);
                push_mux_header(buf, chan, first);
                buf.extend_from_slice(&header);
                buf.extend_from_slice(&data[..first - HEADER_LEN]);
                if total > first {
                    push_mux_header(buf, chan, total - first);
                    buf.extend_from_slice(&data[first - HEADER_LEN..]);
                }
            }
        }
        let res = stream.write_all(buf);
        if buf.capacity() > 256 * 1024 {
            *buf = Vec::new();
        }
        res.map_err(|e| Error::io("writing to the connection failed", e))
    }

    fn write_response(
        &self,
        chan: u32,
        stream_id: u32,
        result: std::result::Result<Vec<u8>, Status>,
    ) -> Result<()> {
        let resp = match result {
            Ok(payload) => Response {
                status: protobuf::MessageField::some(Status::new(Code::Ok, "").to_proto()),
                payload,
                ..Default::default()
            },
            Err(st) => Response {
                status: protobuf::MessageField::some(st.to_proto()),
                ..Default::default()
            },
        };
        let bytes = resp.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: "ttrpc.Response",
            source: e,
        })?;
        if bytes.len() > MAX_MESSAGE_LEN {
            // Tell the caller instead of breaking the connection.
            let st = Status::new(
                Code::ResourceExhausted,
                format!(
                    "reply of {} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit",
                    bytes.len()
                ),
            );
            log::error!("{}: {} (stream {stream_id})", self.options.name, st.message);
            return self.write_response(chan, stream_id, Err(st));
        }
        self.write_message(chan, stream_id, TYPE_RESPONSE, &bytes)
    }

    fn process(self: &Arc<Self>, work: Work) {
        match work {
            Work::Reject {
                chan,
                stream_id,
                status,
            } => {
                log::debug!(
                    "{}: refusing stream {stream_id}: {status}",
                    self.options.name
                );
                let _ = self.write_response(chan, stream_id, Err(status));
            }
            Work::Request {
                chan,
                stream_id,
                req,
                received,
            } => self.serve(chan, stream_id, req, received),
        }
    }

    fn serve(self: &Arc<Self>, chan: u32, stream_id: u32, req: Envelope, received: Instant) {
        let Envelope {
            service,
            method,
            data,
            payload,
            timeout_nano,
            metadata,
        } = req;
        let timeout = (timeout_nano > 0).then(|| Duration::from_nanos(timeout_nano as u64));
        let handler = match self.services.get(&chan) {
            Some(s) => s.lookup(&service, &method),
            None => Err(Status::new(
                Code::Unimplemented,
                format!("unknown service {service:?}"),
            )),
        };
        let handler = match handler {
            Ok(h) => h,
            Err(st) => {
                let _ = self.write_response(chan, stream_id, Err(st));
                return;
            }
        };
        let replied = match (timeout, lock(&self.guard).as_ref()) {
            (Some(t), Some(tx)) => {
                let flag = Arc::new(AtomicBool::new(false));
                let margin = self
                    .options
                    .deadline_guard
                    .as_ref()
                    .map(|g| g.margin)
                    .unwrap_or_default()
                    .min(t / 4);
                let _ = tx.send(GuardMsg::Watch(GuardEntry {
                    at: received + t - margin,
                    chan,
                    stream_id,
                    what: format!("{service}/{method}"),
                    replied: flag.clone(),
                }));
                Some(flag)
            }
            _ => None,
        };
        let ctx = RequestContext {
            service,
            method,
            stream_id,
            received,
            timeout,
            metadata,
            after_reply: Default::default(),
        };
        let mut spare = None;
        let call = || match handler {
            Handler::Borrowed(h) => {
                let r = h(&ctx, &data[payload]);
                spare = Some(data);
                r
            }
            Handler::Owned(h) => {
                let mut data = data;
                data.truncate(payload.end);
                data.drain(..payload.start);
                h(&ctx, data)
            }
        };
        let result = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(r) => r,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                log::error!(
                    "{}: handler for {}/{} panicked: {what}",
                    self.options.name,
                    ctx.service,
                    ctx.method
                );
                Err(Status::new(
                    Code::Internal,
                    format!(
                        "handler for {}/{} panicked: {what}",
                        ctx.service, ctx.method
                    ),
                ))
            }
        };
        if let Some(buf) = spare {
            self.recycle(buf);
        }
        if let Some(flag) = replied {
            if flag.swap(true, Ordering::AcqRel) {
                log::warn!(
                    "{}: {}/{} finished after its deadline guard had answered; its result is discarded",
                    self.options.name,
                    ctx.service,
                    ctx.method
                );
                return;
            }
        }
        if self.write_response(chan, stream_id, result).is_ok() {
            for f in ctx.take_after_reply() {
                if catch_unwind(AssertUnwindSafe(f)).is_err() {
                    log::error!("{}: a post-reply action panicked", self.options.name);
                }
            }
        }
    }
}

fn push_mux_header(buf: &mut Vec<u8>, chan: u32, len: usize) {
    let mut h = [0u8; MUX_HEADER_LEN];
    BigEndian::write_u32(&mut h[0..4], chan);
    BigEndian::write_u32(&mut h[4..8], len as u32);
    buf.extend_from_slice(&h);
}

struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.worker_exited();
    }
}

fn worker_main(shared: Arc<Shared>) {
    let _exit = ExitGuard(shared.clone());
    loop {
        let Some(turn) = shared.take_turn() else {
            return;
        };
        let work = {
            let mut rs = lock(&shared.read);
            loop {
                if let Some(w) = rs.queue.pop_front() {
                    break Some(w);
                }
                if shared.closed.load(Ordering::Acquire) {
                    break None;
                }
                if let Err(e) = rs.fill(&shared) {
                    shared.close(e.to_string());
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

struct GuardEntry {
    at: Instant,
    chan: u32,
    stream_id: u32,
    what: String,
    replied: Arc<AtomicBool>,
}

impl PartialEq for GuardEntry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for GuardEntry {}
impl PartialOrd for GuardEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GuardEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at) // min-heap on time
    }
}

enum GuardMsg {
    Watch(GuardEntry),
    Stop,
}

fn guard_main(shared: Weak<Shared>, rx: Receiver<GuardMsg>, guard: DeadlineGuard) {
    let mut heap: BinaryHeap<GuardEntry> = BinaryHeap::new();
    loop {
        let msg = match heap.peek() {
            Some(e) => match rx.recv_deadline(e.at) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(_) => return,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
        };
        match msg {
            Some(GuardMsg::Watch(e)) => heap.push(e),
            Some(GuardMsg::Stop) => return,
            None => {}
        }
        let now = Instant::now();
        while heap.peek().is_some_and(|e| e.at <= now) {
            let Some(e) = heap.pop() else { break };
            if e.replied.swap(true, Ordering::AcqRel) {
                continue;
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            log::warn!(
                "{}: {} (stream {}) is about to miss its deadline; answering on its behalf with {:?}",
                shared.options.name,
                e.what,
                e.stream_id,
                guard.reply
            );
            let result = match &guard.reply {
                GuardReply::Empty => Ok(Vec::new()),
                GuardReply::Error(st) => Err(st.clone()),
            };
            let _ = shared.write_response(e.chan, e.stream_id, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(payload: &[u8]) -> Request {
        let mut r = Request::new();
        r.service = "nri.pkg.api.v1alpha1.Plugin".into();
        r.method = "CreateContainer".into();
        r.payload = payload.to_vec();
        r.timeout_nano = 2_000_000_000;
        let mut kv = KeyValue::new();
        kv.key = "k".into();
        kv.value = "v".into();
        r.metadata.push(kv);
        r
    }

    fn same(bytes: &[u8]) {
        let theirs = crate::pb::decode::<Request>(bytes);
        let ours = Envelope::decode(bytes.to_vec());
        match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                assert_eq!(t.service, o.service);
                assert_eq!(t.method, o.method);
                assert_eq!(t.payload, &o.data[o.payload.clone()]);
                assert_eq!(t.timeout_nano, o.timeout_nano);
                assert_eq!(t.metadata, o.metadata);
            }
            (Err(_), Err(_)) => {}
            (t, o) => panic!(
                "{bytes:?}: protobuf {} but the envelope decoder {}",
                if t.is_ok() { "accepts" } else { "refuses" },
                if o.is_ok() { "accepts" } else { "refuses" }
            ),
        }
    }

    #[test]
    fn the_envelope_decodes_like_the_generated_request() {
        let full = request(b"payload bytes").write_to_bytes().unwrap();
        same(&full);
        same(&request(b"").write_to_bytes().unwrap());
        same(&[]);
        // Unknown fields, a repeated payload (the last one wins), a group.
        let mut extra = full.clone();
        extra.extend_from_slice(&[0x48, 0x07, 0x1a, 0x02, b'h', b'i', 0x5b, 0x60, 0x5c]);
        same(&extra);
        // Every truncation of a valid envelope, and a few corruptions.
        for n in 0..full.len() {
            same(&full[..n]);
        }
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0xff;
            same(&bad);
        }
        // A payload length past the end of the frame.
        same(&[0x1a, 0x10, 1, 2]);
    }
}
