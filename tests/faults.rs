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

// ---------------------------------------------------------------------------
// The connection closes at each step
// ---------------------------------------------------------------------------

#[test]
fn runtime_closing_before_the_register_reply_fails_start_promptly() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    rt.expect_call("RegisterPlugin");
    rt.vanish();
    let (res, took) = recv_within(&started, STEP, "start");
    assert_closed_error(&res, "start");
    assert!(
        took < PROMPT,
        "start took {took:?} (registration timeout 5 s)"
    );
    h.assert_closed_cleanly(1, "closed before the register reply");
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn runtime_closing_during_configure_fails_start_once_the_handler_returns() {
    let _s = serial();
    let h = Harness::new();
    h.plugin.block_configure.store(true, Ordering::SeqCst);
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    rt.register();
    rt.send("Configure", &configure_req());
    h.plugin.expect_entered("configure");
    rt.vanish();
    thread::sleep(Duration::from_millis(100));
    let opened = Instant::now();
    h.plugin.block_configure.store(false, Ordering::SeqCst);
    h.plugin.gate.open();
    let (res, _) = recv_within(&started, STEP, "start");
    assert!(
        matches!(res, Err(Error::ConnectionClosed(_))),
        "start fails with the closed connection: {res:?}"
    );
    assert!(
        opened.elapsed() < PROMPT,
        "start returned {:?} after the handler",
        opened.elapsed()
    );
    h.assert_closed_cleanly(1, "closed during Configure");
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn start_fails_promptly_when_the_connection_closes_while_configure_still_runs() {
    let _s = serial();
    let h = Harness::new();
    h.plugin.block_configure.store(true, Ordering::SeqCst);
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    rt.register();
    rt.send("Configure", &configure_req());
    h.plugin.expect_entered("configure");
    let closed = Instant::now();
    rt.vanish();
    let outcome = started.recv_timeout(Duration::from_secs(3));
    h.plugin.gate.open();
    let (res, _) = outcome.expect("start returns without waiting for the Configure handler");
    assert!(matches!(res, Err(Error::ConnectionClosed(_))), "{res:?}");
    assert!(
        closed.elapsed() < PROMPT,
        "start took {:?} after the close",
        closed.elapsed()
    );
    h.assert_closed_cleanly(1, "closed during a stuck Configure");
}

#[test]
fn runtime_closing_between_synchronize_chunks_ends_run_and_drops_the_partial_state() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.register();
    rt.configure();
    let r = rt.synchronize(&["stale-1", "stale-2"], true);
    assert!(r.more, "an intermediate chunk is answered with more=true");
    assert!(r.update.is_empty());
    let closed = Instant::now();
    rt.vanish();
    let (res, _) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    assert!(closed.elapsed() < PROMPT, "run took {:?}", closed.elapsed());
    h.assert_closed_cleanly(1, "closed between Synchronize chunks");
    assert!(
        h.plugin.synced.lock().unwrap().is_empty(),
        "the handler never saw half a state"
    );
    h.restart_against_runtime(&["fresh"]);
    assert_eq!(
        *h.plugin.synced.lock().unwrap(),
        vec![vec!["fresh".to_string()]],
        "the next connection's Synchronize holds only its own state"
    );
}

#[test]
fn runtime_closing_while_a_handler_runs_ends_run_when_the_handler_returns() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    h.plugin.block_create.store(true, Ordering::SeqCst);
    rt.create("c1");
    h.plugin.expect_entered("create");
    rt.vanish();
    thread::sleep(Duration::from_millis(100));
    let opened = Instant::now();
    h.plugin.block_create.store(false, Ordering::SeqCst);
    h.plugin.gate.open();
    let (res, _) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    assert!(opened.elapsed() < PROMPT, "run took {:?}", opened.elapsed());
    h.assert_closed_cleanly(1, "closed while a handler ran");
    assert_eq!(
        h.plugin.after_reply_ran.load(Ordering::SeqCst),
        0,
        "no after_reply action runs for a reply that was never written"
    );
    h.restart_against_runtime(&["p1"]);
    assert_eq!(h.plugin.after_reply_ran.load(Ordering::SeqCst), 1);
}

#[test]
fn stop_during_registration_makes_start_fail_promptly() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    // The runtime reads RegisterPlugin and never answers.
    rt.expect_call("RegisterPlugin");
    let stub = h.stub.clone();
    let ((), stop_took) = recv_within(&spawn_timed(move || stub.stop()), STEP, "stop");
    let (res, took) = recv_within(&started, STEP, "start");
    assert!(res.is_err(), "start fails when stopped: {res:?}");
    assert!(
        took < PROMPT + Duration::from_millis(100),
        "start took {took:?}"
    );
    assert!(stop_took < PROMPT, "stop took {stop_took:?}");
    assert!(
        rt.peer.wait_eof(STEP),
        "the runtime sees the connection close"
    );
    h.assert_closed_cleanly(1, "stopped during registration");
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn run_returns_when_the_runtime_drops_the_plugin_while_a_handler_is_stuck() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    h.plugin.block_create.store(true, Ordering::SeqCst);
    rt.create("stuck");
    h.plugin.expect_entered("create");
    rt.vanish();
    // Same bound as stop(): 5 s for a stuck handler, plus slack.
    let outcome = run.recv_timeout(STOP_BOUND);
    h.plugin.gate.open();
    let (res, _) = outcome.expect("run returns although a handler is stuck");
    assert_closed_error(&res, "run");
    assert_eq!(h.closes(), 1);
}

#[test]
fn runtime_closing_during_update_containers_fails_the_call_and_run_promptly() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    let stub = h.stub.clone();
    let update =
        spawn_timed(move || stub.update_containers(vec![ContainerUpdate::for_container("c1")]));
    rt.expect_call("UpdateContainers");
    let closed = Instant::now();
    rt.vanish();
    let (res, took) = recv_within(&update, STEP, "update_containers");
    assert!(
        matches!(res, Err(Error::NotConnected)),
        "update_containers fails with the lost connection: {res:?}"
    );
    assert!(
        took < Duration::from_secs(2) && closed.elapsed() < PROMPT,
        "update_containers waited {took:?} (request timeout 2 s)"
    );
    let (res, _) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    h.assert_closed_cleanly(1, "closed during update_containers");
    // Not connected now: a clear error, at once.
    let t0 = Instant::now();
    let res = h.stub.update_containers(Vec::new());
    assert!(matches!(res, Err(Error::NotConnected)), "{res:?}");
    assert!(t0.elapsed() < Duration::from_millis(100));
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn runtime_closing_after_start_ends_run_with_the_reason() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    // Idle connection, then the runtime goes away (process exit).
    thread::sleep(Duration::from_millis(50));
    drop(rt);
    let (res, took) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    assert!(took < STEP);
    h.assert_closed_cleanly(1, "closed while idle");
    h.restart_against_runtime(&["p1"]);
}

// ---------------------------------------------------------------------------
// Slow and broken peers
// ---------------------------------------------------------------------------

/// Copies `from` to `to` one byte per write, pausing between bytes so that
/// the reader on the other side gets them one at a time. Returns the
/// number of bytes copied.
fn trickle(mut from: UnixStream, mut to: UnixStream) -> usize {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for b in &buf[..n] {
            if to.write_all(std::slice::from_ref(b)).is_err() {
                let _ = from.shutdown(std::net::Shutdown::Both);
                return total;
            }
            total += 1;
            thread::sleep(Duration::from_micros(50));
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    total
}

#[test]
fn everything_delivered_one_byte_at_a_time_works() {
    let _s = serial();
    let h = Harness::new();
    // runtime <-> [proxy] <-> stub, both directions one byte per write.
    let (rt_end, proxy_rt) = UnixStream::pair().expect("socketpair");
    let (proxy_stub, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let down = {
        let (a, b) = (
            proxy_rt.try_clone().expect("clone"),
            proxy_stub.try_clone().expect("clone"),
        );
        spawn_timed(move || trickle(a, b))
    };
    let up = spawn_timed(move || trickle(proxy_stub, proxy_rt));
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let rt = Runtime::builder()
        .request_timeout(Duration::from_secs(4))
        .build();
    rt.set_state(vec![pod("p0")], vec![ctr("c0")]);
    let handle = rt.accept_stream(rt_end).expect("registration byte by byte");
    recv_within(&started, STEP, "start")
        .0
        .expect("start byte by byte");
    let reply = handle
        .create_container(&pod("p"), &ctr("trickled"))
        .expect("CreateContainer byte by byte");
    assert!(reply
        .adjust
        .env
        .iter()
        .any(|kv| kv.key == "CREATED" && kv.value == "trickled"));
    handle
        .start_container(&pod("p"), &ctr("trickled"))
        .expect("StateChange byte by byte");
    assert_eq!(
        *h.plugin.synced.lock().unwrap(),
        vec![vec!["p0".to_string()]]
    );
    let stub = h.stub.clone();
    recv_within(&spawn_timed(move || stub.stop()), STOP_BOUND, "stop");
    let (to_stub, _) = recv_within(&down, STEP, "runtime-to-stub proxy");
    drop(handle);
    let (to_rt, _) = recv_within(&up, STEP, "stub-to-runtime proxy");
    assert!(
        to_stub > 200 && to_rt > 100,
        "bytes trickled: {to_stub} to the stub, {to_rt} to the runtime"
    );
    h.assert_closed_cleanly(1, "after the byte-by-byte session");
}

#[test]
fn stop_finishes_while_a_huge_reply_is_blocked_on_a_peer_that_does_not_read() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    // A reply just under the 4 MiB limit: far more than the socket buffer.
    h.plugin.big_reply.store((4 << 20) - 4096, Ordering::SeqCst);
    rt.create("huge");
    h.plugin.expect_entered("create");
    // The runtime never reads again; let the writer block.
    thread::sleep(Duration::from_millis(300));
    let stub = h.stub.clone();
    let stopped = spawn_timed(move || stub.stop());
    let ((), took) = recv_within(&stopped, STOP_BOUND, "stop with a blocked writer");
    assert!(took < STOP_BOUND, "stop took {took:?}");
    let (res, _) = recv_within(&run, STEP, "run");
    assert!(res.is_ok(), "run after stop: {res:?}");
    h.assert_closed_cleanly(1, "stopped with a blocked writer");
    h.plugin.big_reply.store(0, Ordering::SeqCst);
    drop(rt);
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn more_requests_than_workers_are_each_answered_or_refused_with_resource_exhausted() {
    let _s = serial();
    const REQUESTS: usize = 300;
    let h = Harness::with(|b| b.workers(2).max_queued_requests(4));
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    h.plugin.block_create.store(true, Ordering::SeqCst);
    // All requests in one burst from another thread, while this one reads.
    let mut burst = Vec::new();
    let mut ids = Vec::new();
    for i in 0..REQUESTS {
        let id = rt.next_id;
        rt.next_id += 2;
        ids.push(id);
        let req = CreateContainerRequest {
            pod: Some(pod("p")).into(),
            container: Some(ctr(&format!("c{i}"))).into(),
            ..Default::default()
        };
        let env = request_envelope(
            PLUGIN_SERVICE,
            "CreateContainer",
            &req.write_to_bytes().expect("encode"),
            0,
        );
        burst.extend(common::mux_frame(
            PLUGIN_SERVICE_CONN,
            &ttrpc_frame(id, TYPE_REQUEST, 0, &env),
        ));
    }
    let mut writer = rt.peer.stream.try_clone().expect("clone");
    let wrote = spawn_timed(move || writer.write_all(&burst));
    // Let the handlers pile up, then release them.
    thread::sleep(Duration::from_millis(200));
    h.plugin.gate.open();
    recv_within(&wrote, STEP, "burst")
        .0
        .expect("the burst is written");
    let replies = rt.peer.expect_replies(REQUESTS, "burst replies");
    assert_eq!(
        replies.keys().copied().collect::<Vec<_>>(),
        ids,
        "exactly one reply per request"
    );
    let ok = replies.values().filter(|r| r.code == Code::Ok).count();
    let refused = replies
        .values()
        .filter(|r| r.code == Code::ResourceExhausted)
        .count();
    assert_eq!(ok + refused, REQUESTS, "only OK or RESOURCE_EXHAUSTED");
    assert!(ok >= 2 && refused > 0, "ok {ok}, refused {refused}");
    // The connection is still usable afterwards.
    h.plugin.block_create.store(false, Ordering::SeqCst);
    let id = rt.create("after-burst");
    let r: CreateContainerResponse = rt.reply(id, "after the burst");
    assert_eq!(r.adjust.env[0].value, "after-burst");
    h.stub.stop();
    assert!(recv_within(&run, STEP, "run").0.is_ok());
    h.assert_closed_cleanly(1, "after the burst");
}

// ---------------------------------------------------------------------------
// A handler that never returns
// ---------------------------------------------------------------------------

#[test]
fn never_returning_handler_without_guard_runtime_times_out_and_stop_is_bounded() {
    let _s = serial();
    let h = Harness::new();
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let timeout = Duration::from_millis(300);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let handle = rt.accept_stream(rt_end).expect("accept");
    recv_within(&started, STEP, "start").0.expect("start");
    h.plugin.block_create.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let err = handle
        .create_container(&pod("p"), &ctr("stuck"))
        .expect_err("the runtime's call times out");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
    assert!(t0.elapsed() < timeout + PROMPT, "{:?}", t0.elapsed());
    // Like the reference runtime, it drops the plugin and closes.
    assert!(!handle.is_connected());
    assert!(handle.wait_closed(STEP));
    assert!(
        handle
            .drop_reason()
            .is_some_and(|r| r.contains("CreateContainer")),
        "{:?}",
        handle.drop_reason()
    );
    // The stub: stop() gives up on the stuck worker within its bound and
    // runs the on-close callback once; the stuck thread is left behind
    // until the handler returns.
    let stub = h.stub.clone();
    let ((), took) = recv_within(&spawn_timed(move || stub.stop()), STOP_BOUND + STEP, "stop");
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert_eq!(h.closes(), 1);
    assert!(!h.stub.is_connected());
    assert_eq!(
        library_threads_settle_to(h.baseline + 1, STEP),
        h.baseline + 1,
        "only the stuck worker is left"
    );
    // The stub starts again while the old handler is still stuck.
    h.plugin.block_create.store(false, Ordering::SeqCst);
    let closes = h.closes();
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let rt = Runtime::new();
    let handle = rt.accept_stream(rt_end).expect("accept again");
    recv_within(&started, STEP, "start again")
        .0
        .expect("start again");
    handle
        .create_container(&pod("p"), &ctr("fresh"))
        .expect("served while the old handler is stuck");
    // The stuck handler returns at last: its result goes nowhere.
    h.plugin.gate.open();
    h.stub.stop();
    drop(handle);
    let left = library_threads_settle_to(h.baseline, STEP);
    assert_eq!(
        left, h.baseline,
        "the stuck worker exits once its handler returns"
    );
    assert_eq!(h.closes(), closes + 1);
}

#[test]
fn never_returning_handler_with_guard_runtime_gets_an_empty_reply_and_stop_is_bounded() {
    let _s = serial();
    let h = Harness::with(|b| b.deadline_guard(DeadlineGuard::default()));
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    // The guard answers 250 ms before this deadline.
    let timeout = Duration::from_secs(1);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let handle = rt.accept_stream(rt_end).expect("accept");
    recv_within(&started, STEP, "start").0.expect("start");
    h.plugin.block_create.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let reply = handle
        .create_container(&pod("p"), &ctr("stuck"))
        .expect("the guard answers before the deadline");
    assert!(t0.elapsed() < timeout, "{:?}", t0.elapsed());
    assert!(
        reply.adjust.env.is_empty(),
        "the guard's reply changes nothing"
    );
    assert!(handle.is_connected(), "the runtime keeps the plugin");
    // Other requests are still served by the other workers.
    h.plugin.block_create.store(false, Ordering::SeqCst);
    let reply = handle
        .create_container(&pod("p"), &ctr("next"))
        .expect("served next to the stuck handler");
    assert_eq!(reply.adjust.env[0].value, "next");
    let stub = h.stub.clone();
    let ((), took) = recv_within(&spawn_timed(move || stub.stop()), STOP_BOUND + STEP, "stop");
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert!(handle.wait_closed(STEP), "the runtime sees the stop");
    assert_eq!(h.closes(), 1);
    h.plugin.gate.open();
    drop(handle);
    assert_eq!(library_threads_settle_to(h.baseline, STEP), h.baseline);
    assert_eq!(h.closes(), 1, "on-close did not run a second time");
}

// ---------------------------------------------------------------------------
// A launched plugin losing its runtime
// ---------------------------------------------------------------------------

#[test]
fn launched_plugin_losing_its_runtime_ends_supervised_run_and_cannot_reconnect() {
    let _s = serial();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let fd = plugin_end.into_raw_fd();
    // Serialized with every other test of this file, which are the only
    // readers of the environment here.
    std::env::set_var(nri::api::PLUGIN_SOCKET_ENV_VAR, fd.to_string());
    let baseline = library_threads_settle_to(0, STEP);
    let closes = Arc::new(AtomicUsize::new(0));
    let c = closes.clone();
    let stub = Stub::builder(FaultPlugin::new())
        .plugin_name("launched")
        .plugin_index("20")
        .on_close(move || {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("build");
    let s = stub.clone();
    let sup = spawn_timed(move || {
        s.run_supervised(nri::stub::Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_attempts: Some(3),
        })
    });
    let handle = Runtime::new().accept_stream(rt_end).expect("accept");
    handle
        .create_container(&pod("p"), &ctr("c"))
        .expect("served");
    handle.close();
    let (res, _) = recv_within(&sup, STEP, "run_supervised");
    std::env::remove_var(nri::api::PLUGIN_SOCKET_ENV_VAR);
    assert!(
        res.is_ok(),
        "a launched plugin's supervised run ends: {res:?}"
    );
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(library_threads_settle_to(baseline, STEP), baseline);
    // Its inherited socket is gone: start() says so instead of dialing.
    std::env::set_var(nri::api::PLUGIN_SOCKET_ENV_VAR, fd.to_string());
    let res = stub.start();
    std::env::remove_var(nri::api::PLUGIN_SOCKET_ENV_VAR);
    match res {
        Err(Error::Config(m)) => assert!(m.contains("cannot reconnect"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Oversized messages, in every direction, through the real runtime side
// ---------------------------------------------------------------------------

#[test]
fn oversized_messages_fail_only_their_own_request_in_every_direction() {
    let _s = serial();
    let h = Harness::new();
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let rt = Runtime::new();
    let handle = rt.accept_stream(rt_end).expect("accept");
    recv_within(&started, STEP, "start").0.expect("start");

    // Plugin -> runtime reply over 4 MiB: the plugin sends RESOURCE_EXHAUSTED
    // instead; the runtime fails that CreateContainer and keeps the plugin.
    h.plugin.big_reply.store((4 << 20) + 1, Ordering::SeqCst);
    let err = handle
        .create_container(&pod("p"), &ctr("too-big-reply"))
        .expect_err("an oversized reply cannot be sent");
    assert!(
        matches!(
            &err,
            Error::Status {
                code: Code::ResourceExhausted,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(handle.is_connected(), "the runtime keeps the plugin");
    h.plugin.big_reply.store(0, Ordering::SeqCst);

    // Runtime -> plugin request over 4 MiB: refused before sending, by the
    // runtime's own client; nothing reaches the plugin; the plugin stays.
    let mut huge = ctr("too-big-request");
    huge.annotations
        .insert("big".into(), "y".repeat((4 << 20) + 1));
    let err = handle
        .create_container(&pod("p"), &huge)
        .expect_err("an oversized request cannot be sent");
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
    assert!(handle.is_connected());

    // Plugin -> runtime call over 4 MiB (update_containers): refused locally.
    let t0 = Instant::now();
    let err = h
        .stub
        .update_containers(vec![ContainerUpdate::for_container(
            "z".repeat((4 << 20) + 1),
        )])
        .expect_err("an oversized update cannot be sent");
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
    assert!(t0.elapsed() < PROMPT);
    assert!(h.stub.is_connected());

    // Everything still works in both directions.
    let reply = handle
        .create_container(&pod("p"), &ctr("normal"))
        .expect("next request served");
    assert_eq!(reply.adjust.env[0].value, "normal");
    let failed = h
        .stub
        .update_containers(vec![ContainerUpdate::for_container("c1")])
        .expect("next update served");
    assert!(failed.is_empty());
    assert_eq!(handle.unsolicited_updates().len(), 1);
    h.stub.stop();
    assert!(handle.wait_closed(STEP));
    drop(handle);
    h.assert_closed_cleanly(1, "after oversized messages");
}

// ---------------------------------------------------------------------------
// update_containers to a runtime that stopped reading
// ---------------------------------------------------------------------------

type UpdateResult = nri::Result<Vec<ContainerUpdate>>;
type Timed<T> = (T, Duration);

/// A stub whose update_containers is writing 3 MiB to a runtime that never
/// reads: the write blocks once the socket buffer is full.
fn blocked_update(h: &Harness) -> (Scripted, Receiver<Timed<UpdateResult>>) {
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let _run = spawn_timed(move || stub.run());
    rt.handshake();
    let stub = h.stub.clone();
    let update = spawn_timed(move || {
        stub.update_containers_with_timeout(
            vec![ContainerUpdate::for_container("u".repeat(3 << 20))],
            Duration::from_millis(500),
        )
    });
    (rt, update)
}

#[test]
fn stop_releases_an_update_blocked_on_a_runtime_that_stopped_reading() {
    let _s = serial();
    let h = Harness::new();
    let (rt, update) = blocked_update(&h);
    thread::sleep(Duration::from_millis(300));
    let stub = h.stub.clone();
    let ((), took) = recv_within(&spawn_timed(move || stub.stop()), STEP, "stop");
    assert!(took < STOP_BOUND, "stop took {took:?}");
    let (res, _) = recv_within(&update, STEP, "update_containers after stop");
    assert!(res.is_err(), "{res:?}");
    h.assert_closed_cleanly(1, "stopped during a blocked update");
    drop(rt);
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn update_containers_times_out_when_the_runtime_stops_reading() {
    let _s = serial();
    let h = Harness::new();
    let (rt, update) = blocked_update(&h);
    let outcome = update.recv_timeout(Duration::from_millis(500) + PROMPT);
    h.stub.stop();
    drop(rt);
    let (res, took) = outcome.expect("update_containers returns within its timeout");
    assert!(
        matches!(res, Err(Error::DeadlineExceeded { .. })),
        "{res:?}"
    );
    assert!(took < Duration::from_millis(500) + PROMPT);
}
