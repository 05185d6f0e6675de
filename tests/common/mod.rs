//! Shared helpers for the integration tests (`ttrpc_peer`, `mux_wire`,
//! `bad_input`, `runtime` and others).
//!
//! What lives here: a services registry with echo/fail/sleep/... methods, a
//! raw peer that speaks ttrpc (plain or multiplexed) byte by byte and checks
//! the shape of every multiplexer frame it reads, a probe for the on-close
//! callback, a tiny deterministic PRNG, and helpers that bound every
//! blocking wait so that a bug fails a test instead of hanging it.
//!
//! [`plugin`] holds the hand-rolled NRI plugin the tests of `nri::runtime`
//! drive; [`fake_runtime`] the hand-driven runtime side the tests of
//! `nri::stub` talk to.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod fake_runtime;
pub mod plugin;
pub mod random_message;
pub mod strict_decode;

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nri::api::{Empty, RegisterPluginRequest};
use nri::ttrpc::codec::{FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_REQUEST, TYPE_RESPONSE};
use nri::ttrpc::{
    Code, Connection, ConnectionBuilder, ConnectionOptions, Framing, KeyValue, Request, Response,
    Services, Status,
};
use protobuf::Message;

/// Upper bound for any single blocking wait in these tests.
pub const STEP: Duration = Duration::from_secs(5);

/// Service name of the test services.
pub const SVC: &str = "test.Echo";

/// Largest trunk frame a Go reader takes at a message boundary.
pub const GO_READ_BUFFER: usize = 4096;

// ---------------------------------------------------------------------------
// Bounded execution
// ---------------------------------------------------------------------------

/// Runs `f` on its own thread and returns its result; panics (failing the
/// test) when it does not finish within `limit`. Panics inside `f` are
/// propagated.
pub fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// A unique socket path in the temp directory.
pub fn sock_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("nri-t-{}-{tag}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

// ---------------------------------------------------------------------------
// Payloads and the test services
// ---------------------------------------------------------------------------

/// Deterministic bytes, different for every `(len, seed)`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut v = vec![0u8; len];
    for chunk in v.chunks_mut(8) {
        let r = rng.next().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    v
}

/// Calls made to the `Counted` method (for "exactly one reply" checks).
pub static COUNTED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The services every test serves, on [`SVC`]:
///
/// - `Echo`: returns the payload.
/// - `Fail`: fails with PERMISSION_DENIED and message `denied: <payload>`.
/// - `Deadline`: returns the timeout it saw in nanoseconds (i64 BE; -1 without
///   one) after checking that the deadline is in the future.
/// - `Meta`: returns the metadata as `key=value` lines.
/// - `Sleep`: sleeps for the payload's u64 BE milliseconds, returns the
///   payload; the one method registered as guarded (a deadline guard may
///   answer for it).
/// - `Gen`: returns `n` bytes, `n` being the payload's u32 BE.
/// - `Panic`: panics.
/// - `Register`: typed (`add_unary`), RegisterPluginRequest → Empty; fails
///   with INVALID_ARGUMENT for an empty name.
pub fn test_services() -> Arc<Services> {
    let mut s = Services::new();
    s.add_method(SVC, "Echo", Box::new(|_ctx, p| Ok(p.to_vec())));
    s.add_method(
        SVC,
        "Fail",
        Box::new(|_ctx, p| {
            Err(Status::new(
                Code::PermissionDenied,
                format!("denied: {}", String::from_utf8_lossy(p)),
            ))
        }),
    );
    s.add_method(
        SVC,
        "Deadline",
        Box::new(|ctx, _p| {
            let t = match (ctx.timeout(), ctx.deadline()) {
                (Some(t), Some(d)) => {
                    if d <= Instant::now() {
                        return Err(Status::new(Code::Internal, "deadline already passed"));
                    }
                    t.as_nanos() as i64
                }
                (None, None) => -1,
                _ => return Err(Status::new(Code::Internal, "timeout and deadline disagree")),
            };
            Ok(t.to_be_bytes().to_vec())
        }),
    );
    s.add_method(
        SVC,
        "Meta",
        Box::new(|ctx, _p| {
            let mut out = String::new();
            for kv in ctx.metadata() {
                out.push_str(&format!("{}={}\n", kv.key, kv.value));
            }
            Ok(out.into_bytes())
        }),
    );
    s.add_method(
        SVC,
        "Sleep",
        Box::new(|_ctx, p| {
            let ms = p
                .get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
                .unwrap_or(0);
            thread::sleep(Duration::from_millis(ms));
            Ok(p.to_vec())
        }),
    );
    s.set_guarded(SVC, "Sleep", true);
    s.add_method(
        SVC,
        "Gen",
        Box::new(|_ctx, p| {
            let n = p
                .get(..4)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
                .unwrap_or(0);
            Ok(pattern(n as usize, 7))
        }),
    );
    s.add_method(
        SVC,
        "Counted",
        Box::new(|_ctx, p| {
            COUNTED_CALLS.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(30));
            Ok(p.to_vec())
        }),
    );
    s.add_method(
        SVC,
        "Panic",
        Box::new(|_ctx, _p| panic!("handler exploded on purpose")),
    );
    s.add_unary(SVC, "Register", |_ctx, req: RegisterPluginRequest| {
        if req.plugin_name.is_empty() {
            return Err(Status::new(Code::InvalidArgument, "empty plugin name"));
        }
        Ok(Empty::new())
    });
    Arc::new(s)
}

/// Encodes a ttrpc Request envelope.
pub fn request_envelope(service: &str, method: &str, payload: &[u8], timeout_nano: i64) -> Vec<u8> {
    let req = Request {
        service: service.to_string(),
        method: method.to_string(),
        payload: payload.to_vec(),
        timeout_nano,
        ..Default::default()
    };
    req.write_to_bytes()
        .expect("encoding a test request cannot fail")
}

/// Size of the Request envelope for a payload of `len` bytes, computed
/// without allocating it.
pub fn envelope_len(service: &str, method: &str, len: usize, timeout_nano: i64) -> usize {
    let fixed = request_envelope(service, method, &[], timeout_nano).len();
    if len == 0 {
        return fixed;
    }
    fixed + 1 + varint_len(len as u64) + len
}

/// Length of a protobuf varint.
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The largest payload whose Request envelope still fits in 4 MiB.
pub fn max_request_payload(service: &str, method: &str, timeout_nano: i64) -> usize {
    let mut p = MAX_MESSAGE_LEN - 64;
    while envelope_len(service, method, p + 1, timeout_nano) <= MAX_MESSAGE_LEN {
        p += 1;
    }
    while envelope_len(service, method, p, timeout_nano) > MAX_MESSAGE_LEN {
        p -= 1;
    }
    p
}

/// Encodes a ttrpc Response envelope with a status code.
pub fn response_envelope(code: i32, message: &str, payload: &[u8]) -> Vec<u8> {
    let mut resp = Response::new();
    if code != 0 || !message.is_empty() {
        let st = resp.status.mut_or_insert_default();
        st.code = code;
        st.message = message.to_string();
    }
    resp.payload = payload.to_vec();
    resp.write_to_bytes()
        .expect("encoding a test response cannot fail")
}

/// One ttrpc frame (header + data).
pub fn ttrpc_frame(stream_id: u32, message_type: u8, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut v = FrameHeader {
        length: data.len() as u32,
        stream_id,
        message_type,
        flags,
    }
    .to_bytes()
    .to_vec();
    v.extend_from_slice(data);
    v
}

/// A ttrpc request frame for `SVC`/`method`.
pub fn request_frame(stream_id: u32, method: &str, payload: &[u8]) -> Vec<u8> {
    ttrpc_frame(
        stream_id,
        TYPE_REQUEST,
        0,
        &request_envelope(SVC, method, payload, 0),
    )
}

/// One multiplexer frame, written as is (empty frames included).
pub fn mux_frame(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&conn.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A decoded ttrpc Response: code, message, payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub message: String,
    pub payload: Vec<u8>,
}

pub fn decode_reply(data: &[u8]) -> Reply {
    let resp =
        Response::parse_from_bytes(data).expect("our Connection wrote an undecodable Response");
    let code = resp.status.as_ref().map(|s| s.code).unwrap_or(0);
    let message = resp
        .status
        .as_ref()
        .map(|s| s.message.clone())
        .unwrap_or_default();
    Reply {
        code: Code::from_i32(code),
        message,
        payload: resp.payload,
    }
}

// ---------------------------------------------------------------------------
// Raw peer
// ---------------------------------------------------------------------------

/// One complete ttrpc message read by a [`RawPeer`].
#[derive(Debug)]
pub struct Msg {
    /// Logical connection (0 for plain ttrpc).
    pub conn: u32,
    pub header: FrameHeader,
    pub data: Vec<u8>,
}

/// Per-logical-connection shape checker for multiplexer frames written by
/// our Connection: the Go reader's limits (docs/PROTOCOL.md#mux-go-reader,
/// #mux-safe-writer).
#[derive(Default, Debug)]
struct Shape {
    /// Bytes of the current message not yet seen (0 = at a boundary).
    remaining: usize,
    /// Frames seen for the current message.
    frames: usize,
}

/// A hand-driven peer on the other end of a socket: writes bytes, reads and
/// decodes ttrpc messages (plain, or multiplexed on any connection id), and
/// checks every multiplexer frame it reads against the Go reader's
/// constraints, collecting violations in [`RawPeer::violations`].
pub struct RawPeer {
    pub stream: UnixStream,
    pub framing: Framing,
    /// Connection id used by [`RawPeer::send_message`] with Mux framing.
    pub conn: u32,
    bufs: HashMap<u32, Vec<u8>>,
    shapes: HashMap<u32, Shape>,
    ready: VecDeque<Msg>,
    /// Sizes of every multiplexer frame read, with their connection id.
    pub frames: Vec<(u32, usize)>,
    /// Sizes of every complete message read (header included) with the
    /// number of frames it came in.
    pub messages: Vec<(usize, usize)>,
    /// Broken Go-reader constraints.
    pub violations: Vec<String>,
}

/// Why a read from the peer returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Silence {
    /// The time ran out.
    Timeout,
    /// The other side closed the socket.
    Eof,
}

impl RawPeer {
    pub fn new(stream: UnixStream, framing: Framing, conn: u32) -> Self {
        stream
            .set_write_timeout(Some(STEP))
            .expect("cannot set a write timeout");
        RawPeer {
            stream,
            framing,
            conn,
            bufs: HashMap::new(),
            shapes: HashMap::new(),
            ready: VecDeque::new(),
            frames: Vec::new(),
            messages: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Writes raw bytes to the socket.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("raw peer: write failed");
    }

    /// Sends one complete ttrpc message; with Mux framing wrapped in frames
    /// on `self.conn` of at most 1 MiB each.
    pub fn send_message(&mut self, message: &[u8]) {
        match self.framing {
            Framing::Raw => self.send_bytes(message),
            _ => {
                let mut out = Vec::with_capacity(message.len() + 64);
                for chunk in message.chunks(1 << 20) {
                    out.extend(mux_frame(self.conn, chunk));
                }
                if message.is_empty() {
                    return;
                }
                self.send_bytes(&out);
            }
        }
    }

    /// Sends one complete ttrpc message on logical connection `conn` (Mux).
    pub fn send_message_on(&mut self, conn: u32, message: &[u8]) {
        let saved = std::mem::replace(&mut self.conn, conn);
        self.send_message(message);
        self.conn = saved;
    }

    /// Sends a request for `SVC`/`method`.
    pub fn send_request(&mut self, stream_id: u32, method: &str, payload: &[u8]) {
        let f = request_frame(stream_id, method, payload);
        self.send_message(&f);
    }

    /// Sends a response frame.
    pub fn send_response(&mut self, stream_id: u32, code: i32, message: &str, payload: &[u8]) {
        let f = ttrpc_frame(
            stream_id,
            TYPE_RESPONSE,
            0,
            &response_envelope(code, message, payload),
        );
        self.send_message(&f);
    }

    /// Reads until one complete ttrpc message is available, for at most
    /// `limit`.
    pub fn recv(&mut self, limit: Duration) -> Result<Msg, Silence> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(m);
            }
            self.read_unit(deadline)?;
        }
    }

    /// Reads one message or panics.
    pub fn expect_msg(&mut self, what: &str) -> Msg {
        match self.recv(STEP) {
            Ok(m) => m,
            Err(e) => panic!("raw peer: expected {what}, got {e:?}"),
        }
    }

    /// Reads one response and decodes it; panics on anything else.
    pub fn expect_reply(&mut self, what: &str) -> (u32, Reply) {
        let m = self.expect_msg(what);
        assert_eq!(
            m.header.message_type, TYPE_RESPONSE,
            "{what}: expected a response frame, got {:?}",
            m.header
        );
        (m.header.stream_id, decode_reply(&m.data))
    }

    /// Reads `n` responses, in whatever order they come (workers answer
    /// concurrently), keyed by stream id; panics on a duplicate.
    pub fn expect_replies(
        &mut self,
        n: usize,
        what: &str,
    ) -> std::collections::BTreeMap<u32, Reply> {
        let mut out = std::collections::BTreeMap::new();
        for _ in 0..n {
            let (id, r) = self.expect_reply(what);
            assert!(
                out.insert(id, r).is_none(),
                "{what}: two replies for stream {id}"
            );
        }
        out
    }

    /// Asserts that nothing arrives within `limit`.
    pub fn expect_silence(&mut self, limit: Duration, what: &str) {
        match self.recv(limit) {
            Err(Silence::Timeout) => {}
            Err(Silence::Eof) => panic!("{what}: the connection closed instead of staying silent"),
            Ok(m) => panic!("{what}: unexpected message {:?}", m.header),
        }
    }

    /// Waits for the other side to close the socket (EOF), discarding
    /// messages. Returns false on timeout.
    pub fn wait_eof(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.read_unit(deadline) {
                Ok(()) => self.ready.clear(),
                Err(Silence::Eof) => return true,
                Err(Silence::Timeout) => return false,
            }
        }
    }

    fn read_exact_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Silence> {
        let mut have = 0;
        while have < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if have > 0 {
                    panic!(
                        "raw peer: timed out in the middle of a unit ({have} of {} bytes)",
                        buf.len()
                    );
                }
                return Err(Silence::Timeout);
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set_read_timeout");
            match self.stream.read(&mut buf[have..]) {
                Ok(0) => return Err(Silence::Eof),
                Ok(n) => have += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if have == 0 {
                        return Err(Silence::Timeout);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(Silence::Eof),
                Err(e) => panic!("raw peer: read failed: {e}"),
            }
        }
        Ok(())
    }

    /// Reads one unit: a whole ttrpc message (Raw) or one mux frame (Mux).
    fn read_unit(&mut self, deadline: Instant) -> Result<(), Silence> {
        match self.framing {
            Framing::Raw => {
                let mut h = [0u8; HEADER_LEN];
                self.read_exact_by(&mut h, deadline)?;
                let header = FrameHeader::parse(&h);
                let mut data = vec![0u8; header.length as usize];
                let long = deadline.max(Instant::now() + STEP);
                self.read_exact_by(&mut data, long)?;
                self.messages.push((HEADER_LEN + data.len(), 1));
                self.ready.push_back(Msg {
                    conn: 0,
                    header,
                    data,
                });
                Ok(())
            }
            _ => {
                let mut h = [0u8; 8];
                self.read_exact_by(&mut h, deadline)?;
                let conn = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                let mut payload = vec![0u8; len];
                let long = deadline.max(Instant::now() + STEP);
                self.read_exact_by(&mut payload, long)?;
                self.frames.push((conn, len));
                self.check_shape(conn, &payload);
                let buf = self.bufs.entry(conn).or_default();
                buf.extend_from_slice(&payload);
                while buf.len() >= HEADER_LEN {
                    let header =
                        FrameHeader::parse(buf[..HEADER_LEN].try_into().expect("10 bytes"));
                    let total = HEADER_LEN + header.length as usize;
                    if buf.len() < total {
                        break;
                    }
                    let data = buf[HEADER_LEN..total].to_vec();
                    buf.drain(..total);
                    self.ready.push_back(Msg { conn, header, data });
                }
                Ok(())
            }
        }
    }

    fn check_shape(&mut self, conn: u32, payload: &[u8]) {
        let len = payload.len();
        let shape = self.shapes.entry(conn).or_default();
        if len == 0 {
            self.violations
                .push(format!("empty frame on connection {conn}"));
            return;
        }
        if shape.remaining == 0 {
            if len > GO_READ_BUFFER {
                self.violations.push(format!(
                    "first frame of a message on connection {conn} is {len} bytes (> {GO_READ_BUFFER})"
                ));
            }
            if len < HEADER_LEN {
                self.violations.push(format!(
                    "first frame of a message on connection {conn} is {len} bytes: it does not hold the ttrpc header"
                ));
                return;
            }
            let header = FrameHeader::parse(payload[..HEADER_LEN].try_into().expect("10 bytes"));
            shape.remaining = HEADER_LEN + header.length as usize;
            shape.frames = 0;
        }
        if len > shape.remaining {
            self.violations.push(format!(
                "frame of {len} bytes on connection {conn} holds bytes of two messages ({} left in the current one)",
                shape.remaining
            ));
            shape.remaining = 0;
            return;
        }
        shape.remaining -= len;
        shape.frames += 1;
        if shape.frames > 2 {
            self.violations.push(format!(
                "a message on connection {conn} took {} frames (at most 2 allowed)",
                shape.frames
            ));
        }
        if shape.remaining == 0 {
            let total: usize = self
                .frames
                .iter()
                .rev()
                .filter(|(c, _)| *c == conn)
                .take(shape.frames)
                .map(|(_, l)| *l)
                .sum();
            self.messages.push((total, shape.frames));
        }
    }

    /// Panics when any Go reader constraint was broken.
    pub fn assert_go_shape(&self) {
        assert!(
            self.violations.is_empty(),
            "our Connection wrote frames a Go reader rejects:\n{}",
            self.violations.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Connections under test
// ---------------------------------------------------------------------------

/// Records every on-close callback call.
#[derive(Clone, Default)]
pub struct CloseProbe {
    inner: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl CloseProbe {
    pub fn new() -> Self {
        Self::default()
    }

    /// The callback to hand to `ConnectionBuilder::on_close`.
    pub fn callback(&self) -> impl FnOnce(&str) + Send + 'static {
        let inner = self.inner.clone();
        move |reason: &str| {
            let (m, cv) = &*inner;
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(reason.to_string());
            cv.notify_all();
        }
    }

    /// Waits for the first call; returns its reason.
    pub fn wait(&self, limit: Duration) -> Option<String> {
        let (m, cv) = &*self.inner;
        let guard = m.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, limit, |v| v.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        guard.first().cloned()
    }

    /// How many times the callback ran.
    pub fn count(&self) -> usize {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Small, fast options for tests.
pub fn opts(name: &str) -> ConnectionOptions {
    ConnectionOptions {
        name: name.to_string(),
        ..Default::default()
    }
}

/// Our Connection serving [`test_services`] on logical connection 1 (the
/// whole socket with Raw framing) and opening connection 2 for calls, with a
/// raw peer on the other end of a socket pair.
pub fn serving_with_peer(
    framing: Framing,
    options: ConnectionOptions,
) -> (Connection, RawPeer, CloseProbe) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let probe = CloseProbe::new();
    let mut b = ConnectionBuilder::new(ours, framing)
        .options(options)
        .serve(1, test_services())
        .on_close(probe.callback());
    if framing == Framing::Mux {
        b = b.open(2);
    }
    let conn = b.start().expect("starting the connection under test");
    (conn, RawPeer::new(theirs, framing, 1), probe)
}

/// Metadata pair.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_string(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/// xorshift64*: tiny deterministic PRNG for fuzz-style tests.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Random bytes, `lo..=hi` of them.
    pub fn bytes_in(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = self.range(lo, hi);
        self.bytes(n)
    }
}
