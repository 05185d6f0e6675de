//! Fault injection: the runtime side fails at every step of a plugin's life,
//! and the stub must notice promptly, report a clear error, run its on-close
//! callback exactly once, leave no thread behind and start again.
//!
//! The faulty runtime is a hand-driven [`RawPeer`] speaking the trunk and
//! ttrpc byte by byte, so each test closes the socket at an exact point of
//! the protocol. Recovery is always proven against the real runtime side
//! (`nri::runtime`), through a dialer that hands the stub a fresh socket pair.
//!
//! Threads are counted through `/proc/self/task`: the library names every
//! thread it spawns after its connection (`nri-<idx>-<name>-<n>` for the
//! stub, `nri-runtime-<n>` for the runtime side, `nri-t-...` for bare
//! connections here), so the tests count tasks whose name starts with
//! `nri-`. That leaves out the test harness's own threads, which come and go
//! as tests start and end. All tests in this file take [`serial`], so no
//! other test's library threads exist while one counts.

mod common;

use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{request_envelope, response_envelope, ttrpc_frame, Msg, RawPeer};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use nri::api::{
    ConfigureRequest, ConfigureResponse, Container, ContainerAdjustment, ContainerUpdate,
    CreateContainerRequest, CreateContainerResponse, Empty, Event, EventMask, PodSandbox,
    SynchronizeRequest, SynchronizeResponse, PLUGIN_SERVICE, RUNTIME_SERVICE,
};
use nri::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use nri::runtime::Runtime;
use nri::stub::{Context, DeadlineGuard, HandlerResult, Plugin, Stub, SyncState};
use nri::ttrpc::codec::{TYPE_REQUEST, TYPE_RESPONSE};
use nri::ttrpc::{Code, Framing, Request};
use nri::Error;
use protobuf::Message;

/// Bound for one protocol step.
const STEP: Duration = Duration::from_secs(5);
/// What "promptly" means for noticing a closed connection.
const PROMPT: Duration = Duration::from_secs(1);
/// `Stub::stop` waits up to 5 s for a stuck handler; this is its bound plus
/// slack.
const STOP_BOUND: Duration = Duration::from_secs(6);
/// How long a blocked handler waits at most when nobody opens its gate, so a
/// failing test cannot hang the suite.
const GATE_SAFETY: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Serialization, threads, bounded waits
// ---------------------------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::new(());

/// Every test holds this: thread counts must not see another test's threads.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads of this process spawned by the library (named `nri-...`).
fn library_threads() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .map(|c| c.starts_with("nri-"))
                .unwrap_or(false)
        })
        .count()
}

/// Waits until at most `n` library threads are left; returns how many are.
fn library_threads_settle_to(n: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let now = library_threads();
        if now <= n || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` on a thread; the receiver yields its result and how long it took.
fn spawn_timed<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Receiver<(T, Duration)> {
    let (tx, rx) = bounded(1);
    thread::spawn(move || {
        let t0 = Instant::now();
        let v = f();
        let _ = tx.send((v, t0.elapsed()));
    });
    rx
}

fn recv_within<T>(rx: &Receiver<T>, limit: Duration, what: &str) -> T {
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

// ---------------------------------------------------------------------------
// The plugin under test
// ---------------------------------------------------------------------------

/// A gate handlers can be made to wait on.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(g, GATE_SAFETY, |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
    }
    fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

/// Handlers that can block on a gate or answer with a huge adjustment, and
/// that report when they are entered.
struct FaultPlugin {
    gate: Gate,
    block_configure: AtomicBool,
    block_create: AtomicBool,
    /// Size of an env value added to every CreateContainer adjustment.
    big_reply: AtomicUsize,
    entered_tx: Sender<&'static str>,
    entered: Receiver<&'static str>,
    /// Pod ids seen by each Synchronize call.
    synced: Mutex<Vec<Vec<String>>>,
    /// `after_reply` actions of CreateContainer that ran.
    after_reply_ran: Arc<AtomicUsize>,
}

impl FaultPlugin {
    fn new() -> Arc<Self> {
        let (entered_tx, entered) = unbounded();
        Arc::new(FaultPlugin {
            gate: Gate::default(),
            block_configure: AtomicBool::new(false),
            block_create: AtomicBool::new(false),
            big_reply: AtomicUsize::new(0),
            entered_tx,
            entered,
            synced: Mutex::new(Vec::new()),
            after_reply_ran: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Waits until handler `what` is entered (skipping reports of others).
    fn expect_entered(&self, what: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.entered.recv_timeout(left) {
                Ok(got) if got == what => return,
                Ok(_) => {}
                Err(_) => panic!("handler {what} was not entered"),
            }
        }
    }
}

impl Plugin for FaultPlugin {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.mask() | Event::START_CONTAINER.mask()
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        _config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        let _ = self.entered_tx.send("configure");
        if self.block_configure.load(Ordering::SeqCst) {
            self.gate.wait();
        }
        Ok(None)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let ids = state
            .pods()
            .map(|p| p.map(|p| p.id))
            .collect::<nri::Result<Vec<String>>>()?;
        self.synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ids);
        Ok(Vec::new())
    }

    fn create_container(
        &self,
        ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let _ = self.entered_tx.send("create");
        let mut a = ContainerAdjustment::new();
        a.add_env("CREATED", c.id.as_str());
        let ran = self.after_reply_ran.clone();
        ctx.after_reply(move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
        });
        if self.block_create.load(Ordering::SeqCst) {
            self.gate.wait();
        }
        let big = self.big_reply.load(Ordering::SeqCst);
        if big > 0 {
            a.add_env("BIG", "x".repeat(big));
        }
        Ok((a, Vec::new()))
    }
}

// ---------------------------------------------------------------------------
// Harness: a stub whose every start dials a socket the test hands it
// ---------------------------------------------------------------------------

struct Harness {
    stub: Stub,
    plugin: Arc<FaultPlugin>,
    closes: Arc<AtomicUsize>,
    sockets: Sender<UnixStream>,
    baseline: usize,
}

impl Harness {
    fn new() -> Harness {
        Self::with(|b| b)
    }

    fn with(f: impl FnOnce(nri::stub::StubBuilder) -> nri::stub::StubBuilder) -> Harness {
        // Threads of the previous test may still be on their way out.
        let baseline = library_threads_settle_to(0, STEP);
        let plugin = FaultPlugin::new();
        let closes = Arc::new(AtomicUsize::new(0));
        let (sockets, next) = unbounded::<UnixStream>();
        let c = closes.clone();
        let builder = Stub::builder(plugin.clone())
            .plugin_name("fault")
            .plugin_index("10")
            .socket_path("/nonexistent/faults.sock")
            .dialer(move |_| {
                next.try_recv().map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no socket prepared")
                })
            })
            .on_close(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
        let stub = f(builder).build().expect("building the stub");
        Harness {
            stub,
            plugin,
            closes,
            sockets,
            baseline,
        }
    }

    /// A scripted runtime on the other end of the next connection.
    fn scripted(&self) -> Scripted {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        self.sockets.send(theirs).expect("dialer queue");
        Scripted {
            peer: RawPeer::new(ours, Framing::Mux, PLUGIN_SERVICE_CONN),
            next_id: 1,
        }
    }

    fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }

    /// The on-close callback ran exactly `n` times, all library threads
    /// are gone, and it stays that way.
    fn assert_closed_cleanly(&self, n: usize, what: &str) {
        let left = library_threads_settle_to(self.baseline, STEP);
        assert_eq!(
            left, self.baseline,
            "{what}: library threads left behind ({left}, {} before)",
            self.baseline
        );
        thread::sleep(Duration::from_millis(30));
        assert_eq!(self.closes(), n, "{what}: on-close callback count");
        assert!(!self.stub.is_connected(), "{what}: still connected");
    }

    /// Starts the stub again against the real runtime side, sends one
    /// CreateContainer and stops; proves the stub recovered from a fault.
    fn restart_against_runtime(&self, pods: &[&str]) {
        let closes_before = self.closes();
        let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
        self.sockets.send(stub_end).expect("dialer queue");
        let stub = self.stub.clone();
        let started = spawn_timed(move || stub.start());
        let rt = Runtime::builder()
            .request_timeout(Duration::from_secs(2))
            .build();
        rt.set_state(pods.iter().map(|id| pod(id)).collect(), Vec::new());
        let handle = rt
            .accept_stream(rt_end)
            .expect("the runtime accepts the restarted plugin");
        let (res, _) = recv_within(&started, STEP, "start after the fault");
        res.expect("the stub starts again after the fault");
        let reply = handle
            .create_container(&pod("p"), &ctr("after-restart"))
            .expect("the restarted plugin serves requests");
        assert!(
            reply
                .adjust
                .env
                .iter()
                .any(|kv| kv.key == "CREATED" && kv.value == "after-restart"),
            "{:?}",
            reply.adjust
        );
        let stub = self.stub.clone();
        let stopped = spawn_timed(move || stub.stop());
        recv_within(&stopped, STOP_BOUND, "stop after restart");
        assert!(handle.wait_closed(STEP), "the runtime sees the stop");
        drop(handle);
        self.assert_closed_cleanly(closes_before + 1, "after the restart");
    }
}

fn pod(id: &str) -> PodSandbox {
    PodSandbox {
        id: id.into(),
        name: format!("{id}-name"),
        namespace: "default".into(),
        ..Default::default()
    }
}

fn ctr(id: &str) -> Container {
    Container {
        id: id.into(),
        pod_sandbox_id: "p".into(),
        name: format!("{id}-name"),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// A scripted runtime: exact control over what is sent and when it closes
// ---------------------------------------------------------------------------

struct Scripted {
    peer: RawPeer,
    /// Next stream id for requests to the plugin (conn 1).
    next_id: u32,
}

impl Scripted {
    /// Reads the plugin's next request on conn 2 and checks its method.
    fn expect_call(&mut self, method: &str) -> (u32, Request) {
        let m: Msg = self.peer.expect_msg(method);
        assert_eq!(m.conn, RUNTIME_SERVICE_CONN, "{method} arrives on conn 2");
        assert_eq!(
            m.header.message_type, TYPE_REQUEST,
            "{method}: {:?}",
            m.header
        );
        let req = Request::parse_from_bytes(&m.data).expect("the stub's request decodes");
        assert_eq!(
            (req.service.as_str(), req.method.as_str()),
            (RUNTIME_SERVICE, method)
        );
        (m.header.stream_id, req)
    }

    /// Answers a plugin's call on conn 2 with OK and `payload`.
    fn answer(&mut self, stream_id: u32, payload: &[u8]) {
        let f = ttrpc_frame(
            stream_id,
            TYPE_RESPONSE,
            0,
            &response_envelope(0, "", payload),
        );
        self.peer.send_message_on(RUNTIME_SERVICE_CONN, &f);
    }

    /// Sends a request to the plugin on conn 1; returns its stream id.
    fn send(&mut self, method: &str, msg: &impl Message) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let env = request_envelope(
            PLUGIN_SERVICE,
            method,
            &msg.write_to_bytes().expect("encode"),
            Duration::from_secs(2).as_nanos() as i64,
        );
        self.peer
            .send_message_on(PLUGIN_SERVICE_CONN, &ttrpc_frame(id, TYPE_REQUEST, 0, &env));
        id
    }

    /// Reads the plugin's reply to request `id` and decodes it.
    fn reply<M: Message>(&mut self, id: u32, what: &str) -> M {
        let m = self.peer.expect_msg(what);
        assert_eq!(m.conn, PLUGIN_SERVICE_CONN, "{what}: reply on conn 1");
        assert_eq!(m.header.message_type, TYPE_RESPONSE, "{what}");
        assert_eq!(m.header.stream_id, id, "{what}: stream id");
        let r = common::decode_reply(&m.data);
        assert_eq!(r.code, Code::Ok, "{what}: {}", r.message);
        M::parse_from_bytes(&r.payload).expect("reply payload decodes")
    }

    fn register(&mut self) {
        let (id, _) = self.expect_call("RegisterPlugin");
        self.answer(id, &Empty::new().write_to_bytes().expect("encode"));
    }

    fn configure(&mut self) {
        let id = self.send("Configure", &configure_req());
        let r: ConfigureResponse = self.reply(id, "Configure reply");
        assert_ne!(r.events, 0);
    }

    fn synchronize(&mut self, pods: &[&str], more: bool) -> SynchronizeResponse {
        let req = SynchronizeRequest {
            pods: pods.iter().map(|p| pod(p)).collect(),
            more,
            ..Default::default()
        };
        let id = self.send("Synchronize", &req);
        self.reply(id, "Synchronize reply")
    }

    /// Register, Configure and a one-chunk Synchronize.
    fn handshake(&mut self) {
        self.register();
        self.configure();
        let r = self.synchronize(&["p0"], false);
        assert!(!r.more);
    }

    fn create(&mut self, id: &str) -> u32 {
        let req = CreateContainerRequest {
            pod: Some(pod("p")).into(),
            container: Some(ctr(id)).into(),
            ..Default::default()
        };
        self.send("CreateContainer", &req)
    }

    /// The runtime side goes away: the socket closes.
    fn vanish(self) {
        let _ = self.peer.stream.shutdown(std::net::Shutdown::Both);
    }
}

fn configure_req() -> ConfigureRequest {
    ConfigureRequest {
        runtime_name: "scripted".into(),
        runtime_version: "0".into(),
        registration_timeout: 5000,
        request_timeout: 2000,
        ..Default::default()
    }
}

fn assert_closed_error(res: &nri::Result<()>, what: &str) {
    match res {
        Err(Error::ConnectionClosed(reason)) => {
            assert!(!reason.is_empty(), "{what}: the error says why");
        }
        other => panic!("{what}: expected ConnectionClosed, got {other:?}"),
    }
}

#[path = "faults/closes_at_each_step.rs"]
mod closes_at_each_step;
#[path = "faults/slow_and_broken_peers.rs"]
mod slow_and_broken_peers;
#[path = "faults/stuck_and_oversized.rs"]
mod stuck_and_oversized;
