//! Stub behaviour over real sockets, against a minimal hand-driven runtime
//! side built from the crate's ttrpc connection (so each test controls
//! exactly what the "runtime" does and when).

mod common;

use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_runtime::{ctr, pod, FakeRuntime, OnRegister};
use common::STEP as T;
use crossbeam_channel::bounded;

use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox,
    SynchronizeRequest, PLUGIN_SERVICE,
};
use nri::stub::{Context, DeadlineGuard, GuardReply, HandlerResult, Plugin, Stub, SyncState};
use nri::ttrpc::{Code, Status};
use nri::Error;
use protobuf::Message;

/// A plugin recording what it saw.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    sync_sizes: Mutex<Vec<(usize, usize)>>,
    sync_ids: Mutex<Vec<String>>,
    configured: AtomicUsize,
    sleep: Mutex<Option<Duration>>,
    queue_update: Mutex<Option<String>>,
    panic_on_create: Mutex<bool>,
    configure_mask: Mutex<Option<EventMask>>,
}

impl Recorder {
    fn note(&self, s: String) {
        self.seen.lock().unwrap().push(s);
    }
}

impl Plugin for Recorder {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.mask()
            | Event::START_CONTAINER.mask()
            | Event::RUN_POD_SANDBOX.mask()
    }
    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        self.configured.fetch_add(1, Ordering::SeqCst);
        self.note(format!("configure {config:?} {runtime} {version}"));
        Ok(*self.configure_mask.lock().unwrap())
    }
    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let counts = (state.pod_count(), state.container_count());
        let (pods, containers) = state.into_decoded()?;
        assert_eq!((pods.len(), containers.len()), counts);
        self.sync_sizes
            .lock()
            .unwrap()
            .push((pods.len(), containers.len()));
        let mut ids = self.sync_ids.lock().unwrap();
        ids.extend(pods.iter().map(|p| p.id.clone()));
        ids.extend(containers.iter().map(|c| c.id.clone()));
        Ok(vec![ContainerUpdate::for_container("synced")])
    }
    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.note(format!("run {}", pod.id));
        Ok(())
    }
    fn create_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        assert!(
            ctx.deadline().is_some(),
            "the runtime's timeout reaches the handler"
        );
        if *self.panic_on_create.lock().unwrap() {
            panic!("boom in create_container");
        }
        if let Some(d) = *self.sleep.lock().unwrap() {
            std::thread::sleep(d);
        }
        self.note(format!("create {} {}", pod.id, c.id));
        if let Some(target) = self.queue_update.lock().unwrap().clone() {
            // The unsafe form is refused inside a handler...
            let err = ctx
                .stub()
                .update_containers(vec![ContainerUpdate::for_container(target.as_str())])
                .unwrap_err();
            assert!(err.to_string().contains("deadlock"), "{err}");
            // ...and the safe form is queued.
            ctx.update_containers_after_reply(vec![ContainerUpdate::for_container(
                target.as_str(),
            )]);
        }
        let mut a = ContainerAdjustment::new();
        a.add_env("SEEN_BY", "recorder");
        Ok((a, vec![ContainerUpdate::for_container("other")]))
    }
    fn start_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        if c.id == "bad" {
            return Err("refusing to start bad".into());
        }
        self.note(format!("start {}", c.id));
        Ok(())
    }
}

/// Starts `stub` on one end of a socket pair with a fake runtime on the
/// other; returns the runtime once the stub is configured.
fn started(
    plugin: Arc<Recorder>,
    on_register: OnRegister,
    fail_updates: bool,
) -> (Stub, FakeRuntime) {
    started_with(plugin, on_register, fail_updates, |b| b)
}

fn started_with(
    plugin: Arc<Recorder>,
    on_register: OnRegister,
    fail_updates: bool,
    f: impl FnOnce(nri::stub::StubBuilder) -> nri::stub::StubBuilder,
) -> (Stub, FakeRuntime) {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, on_register, fail_updates);
    let stub = f(Stub::builder(plugin)
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a))
    .build()
    .unwrap();
    let s2 = stub.clone();
    let start = std::thread::spawn(move || s2.start());
    let reg = rt
        .registered
        .recv_timeout(T)
        .expect("RegisterPlugin arrives");
    assert_eq!(
        (reg.plugin_name.as_str(), reg.plugin_idx.as_str()),
        ("rec", "10")
    );
    if on_register == OnRegister::Accept {
        let resp = rt.configure("cfg-text").unwrap();
        assert_eq!(EventMask::from_bits(resp.events), stub.events());
    }
    start.join().unwrap().expect("start succeeds");
    (stub, rt)
}

#[test]
fn start_registers_configures_and_reports_the_handled_events() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p.clone(), OnRegister::Accept, false);
    assert!(stub.is_connected());
    assert_eq!(p.configured.load(Ordering::SeqCst), 1);
    assert_eq!(p.seen.lock().unwrap()[0], "configure \"cfg-text\" fake 0.0");
    assert_eq!(stub.request_timeout(), Duration::from_millis(2000));
    stub.stop();
    assert!(!stub.is_connected());
    rt.conn.wait_timeout(T);
    assert!(rt.conn.is_closed());
}

#[test]
fn configure_arriving_before_the_register_reply_is_served() {
    let p = Arc::new(Recorder::default());
    let (stub, _rt) = started(p.clone(), OnRegister::ConfigureFirst, false);
    assert_eq!(p.configured.load(Ordering::SeqCst), 1);
    stub.stop();
}

#[test]
fn refused_registration_reports_the_runtime_message_and_closes() {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Refuse, false);
    let stub = Stub::builder(Arc::new(Recorder::default()))
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a)
        .build()
        .unwrap();
    let err = stub.start().unwrap_err();
    match &err {
        Error::RegistrationRefused { plugin, message } => {
            assert_eq!(plugin, "10-rec");
            assert!(
                message.contains("plugin index \"7\" is invalid"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        rt.conn.wait_timeout(T),
        "the stub closed the connection itself"
    );
    assert!(!stub.is_connected());
}

#[test]
fn start_fails_when_configure_never_arrives() {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let stub = Stub::builder(Arc::new(Recorder::default()))
        .plugin_name("rec")
        .plugin_index("10")
        .registration_timeout(Duration::from_millis(300))
        .connection(a)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let err = stub.start().unwrap_err();
    assert!(
        matches!(err, Error::ConfigureTimeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(
        rt.conn.wait_timeout(T),
        "connection closed after the failed start"
    );
}

#[test]
fn events_reach_handlers_and_replies_carry_adjustments() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p.clone(), OnRegister::Accept, false);
    rt.state_change(Event::RUN_POD_SANDBOX, pod("pod0"), Container::default())
        .unwrap();
    let resp = rt.create(pod("pod0"), ctr("c1"), T).unwrap();
    assert_eq!(resp.adjust.env.len(), 1);
    assert_eq!(
        (
            resp.adjust.env[0].key.as_str(),
            resp.adjust.env[0].value.as_str()
        ),
        ("SEEN_BY", "recorder")
    );
    assert_eq!(resp.update.len(), 1);
    assert_eq!(resp.update[0].container_id, "other");
    rt.state_change(Event::START_CONTAINER, pod("pod0"), ctr("c1"))
        .unwrap();
    let err = rt
        .state_change(Event::START_CONTAINER, pod("pod0"), ctr("bad"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Status { code: Code::Unknown, message, .. } if message.contains("refusing to start bad")),
        "{err:?}"
    );
    assert_eq!(
        p.seen.lock().unwrap()[1..],
        [
            "run pod0".to_string(),
            "create pod0 c1".into(),
            "start c1".into()
        ]
    );
    stub.stop();
}

#[test]
fn chunked_synchronize_reaches_the_handler_once_with_everything() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p.clone(), OnRegister::Accept, false);
    let mut total = 0;
    let mut want_ctrs = Vec::new();
    for chunk in 0..4 {
        let containers: Vec<Container> = (0..2500).map(|i| ctr(&format!("c{chunk}-{i}"))).collect();
        total += containers.len();
        want_ctrs.extend(containers.iter().map(|c| c.id.clone()));
        let more = chunk < 3;
        let resp = rt
            .synchronize(vec![pod(&format!("p{chunk}"))], containers, more)
            .unwrap();
        assert_eq!(resp.more, more);
        if more {
            assert!(
                resp.update.is_empty(),
                "intermediate chunks carry no updates"
            );
        } else {
            assert_eq!(resp.update.len(), 1);
        }
    }
    assert_eq!(*p.sync_sizes.lock().unwrap(), vec![(4, total)]);
    assert_eq!(total, 10_000);
    // Everything arrives, in the runtime's order across the chunks.
    let mut want: Vec<String> = (0..4).map(|c| format!("p{c}")).collect();
    want.extend(want_ctrs);
    assert_eq!(*p.sync_ids.lock().unwrap(), want);
    stub.stop();
}

/// The code and message of a status error; fails the test for any other.
fn status_of(err: &nri::Error) -> (Code, &str) {
    match err {
        nri::Error::Status { code, message, .. } => (*code, message),
        other => panic!("expected a status, got {other}"),
    }
}

#[test]
fn a_synchronize_state_over_the_bound_is_refused_and_the_next_one_works() {
    let p = Arc::new(Recorder::default());
    let big: Vec<Container> = (0..400).map(|i| ctr(&format!("big-{i}"))).collect();
    // What the first chunk can hold in memory: its bytes, and per item an
    // index entry and its decoded form (the bound counts both, see
    // StubBuilder::max_sync_state_bytes).
    let first_pod = pod("p");
    let per_item = |bytes: &[u8], size: usize, decoded: u64| {
        bytes.len() as u64 + 3 * 12 + 2 * size as u64 + decoded
    };
    let first = SynchronizeRequest {
        pods: vec![first_pod.clone()],
        containers: big[..200].to_vec(),
        more: true,
        ..Default::default()
    }
    .compute_size() as u64
        + big[..200]
            .iter()
            .map(|c| {
                let b = c.write_to_bytes().unwrap();
                let d = nri::ttrpc::decoded_size_bound::<Container>(&b).unwrap();
                per_item(&b, std::mem::size_of::<Container>(), d)
            })
            .sum::<u64>()
        + {
            let b = first_pod.write_to_bytes().unwrap();
            let d = nri::ttrpc::decoded_size_bound::<PodSandbox>(&b).unwrap();
            per_item(&b, std::mem::size_of::<PodSandbox>(), d)
        };
    let bound = (first + first / 2) as usize;
    let (stub, rt) = started_with(p.clone(), OnRegister::Accept, false, |b| {
        b.max_sync_state_bytes(bound)
    });
    // The first chunk fits; the second takes the state over the bound.
    // Its bytes fit, and it is answered; its items' decoded forms are
    // charged after that reply, so the chunk after it is refused.
    let resp = rt
        .synchronize(vec![pod("p")], big[..200].to_vec(), true)
        .unwrap();
    assert!(resp.more);
    let resp = rt
        .synchronize(Vec::new(), big[200..].to_vec(), true)
        .unwrap();
    assert!(resp.more);
    let err = rt
        .synchronize(Vec::new(), vec![ctr("last")], false)
        .unwrap_err();
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{err}");
    assert!(
        message.contains(&bound.to_string()),
        "names the bound: {message}"
    );
    assert!(p.sync_sizes.lock().unwrap().is_empty(), "no handler call");
    // The refused state was dropped: a small one goes through whole.
    let resp = rt
        .synchronize(vec![pod("q")], vec![ctr("c")], false)
        .unwrap();
    assert_eq!(resp.update.len(), 1);
    assert_eq!(*p.sync_sizes.lock().unwrap(), vec![(1, 1)]);
    stub.stop();
}

#[test]
fn malformed_synchronize_payloads_get_internal_and_the_plugin_keeps_serving() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p.clone(), OnRegister::Accept, false);
    let raw_sync = |payload: Vec<u8>| {
        rt.client
            .call_raw(PLUGIN_SERVICE, "Synchronize", payload, Some(T), Vec::new())
            .unwrap_err()
    };
    // Broken framing: a containers field longer than the payload.
    let err = raw_sync(vec![0x12, 0x7f, 1]);
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::Internal, "{err}");
    assert!(message.contains("declares 127 bytes"), "{message}");
    // Well framed, but the container itself does not decode: the handler
    // sees the error when it reads the container and returns it.
    let err = raw_sync(vec![0x12, 0x02, 0x0a, 0x05]);
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::Internal, "{err}");
    assert!(message.contains("Container"), "{message}");
    let resp = rt
        .synchronize(vec![pod("q")], vec![ctr("c")], false)
        .unwrap();
    assert_eq!(resp.update.len(), 1);
    stub.stop();
}

#[test]
fn configure_may_narrow_but_not_widen_the_subscription() {
    let p = Arc::new(Recorder::default());
    *p.configure_mask.lock().unwrap() = Some(Event::CREATE_CONTAINER.mask());
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let stub = Stub::builder(p.clone())
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a)
        .build()
        .unwrap();
    let s2 = stub.clone();
    let start = std::thread::spawn(move || s2.start());
    rt.registered.recv_timeout(T).unwrap();
    let resp = rt.configure("").unwrap();
    assert_eq!(resp.events, Event::CREATE_CONTAINER.mask().bits());
    start.join().unwrap().unwrap();
    stub.stop();

    let p = Arc::new(Recorder::default());
    *p.configure_mask.lock().unwrap() =
        Some(Event::STOP_CONTAINER.mask() | Event::CREATE_CONTAINER.mask());
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let stub = Stub::builder(p)
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a)
        .build()
        .unwrap();
    let s2 = stub.clone();
    let start = std::thread::spawn(move || s2.start());
    rt.registered.recv_timeout(T).unwrap();
    let err = rt.configure("").unwrap_err();
    assert!(err.to_string().contains("StopContainer"), "{err}");
    assert!(start.join().unwrap().is_err());
}

#[test]
fn a_plugin_handling_nothing_is_refused_at_build() {
    struct Nothing;
    impl Plugin for Nothing {
        fn events(&self) -> EventMask {
            EventMask::EMPTY
        }
    }
    let err = Stub::builder(Nothing)
        .plugin_name("x")
        .plugin_index("01")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("handles no events"), "{err}");
}

#[test]
fn identity_rules_name_the_value_and_the_rule() {
    let err = Stub::builder(Recorder::default())
        .plugin_name("ok")
        .plugin_index("7")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPluginIndex { index } if index == "7"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"7\""));
    let err = Stub::builder(Recorder::default())
        .plugin_name("bad name!")
        .plugin_index("07")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPluginName { name, .. } if name == "bad name!"),
        "{err:?}"
    );
}

#[test]
fn update_containers_before_start_is_not_connected() {
    let stub = Stub::builder(Recorder::default())
        .plugin_name("rec")
        .plugin_index("10")
        .build()
        .unwrap();
    assert!(matches!(
        stub.update_containers(vec![]),
        Err(Error::NotConnected)
    ));
}

#[test]
fn safe_in_handler_updates_are_sent_after_the_reply() {
    let p = Arc::new(Recorder::default());
    *p.queue_update.lock().unwrap() = Some("target".into());
    let (stub, rt) = started(p, OnRegister::Accept, false);
    let resp = rt.create(pod("pod0"), ctr("c1"), T).unwrap();
    assert_eq!(resp.adjust.env.len(), 1);
    let got = rt
        .updates
        .recv_timeout(T)
        .expect("the queued update arrives after the reply");
    assert_eq!(got[0].container_id, "target");
    stub.stop();
}

#[test]
fn update_containers_from_another_thread_returns_failures_while_events_flow() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p, OnRegister::Accept, true);
    let s2 = stub.clone();
    let updater = std::thread::spawn(move || {
        for i in 0..50 {
            let failed = s2
                .update_containers(vec![ContainerUpdate::for_container(format!("u{i}"))])
                .unwrap();
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].container_id, format!("u{i}"));
        }
    });
    for i in 0..50 {
        rt.create(pod("pod0"), ctr(&format!("c{i}")), T).unwrap();
    }
    updater.join().unwrap();
    assert_eq!(rt.updates.try_iter().count(), 50);
    stub.stop();
}

#[test]
fn a_panicking_handler_fails_the_request_and_the_plugin_keeps_serving() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p.clone(), OnRegister::Accept, false);
    *p.panic_on_create.lock().unwrap() = true;
    let err = rt.create(pod("pod0"), ctr("c1"), T).unwrap_err();
    assert!(
        matches!(&err, Error::Status { code: Code::Internal, message, .. } if message.contains("boom")),
        "{err:?}"
    );
    *p.panic_on_create.lock().unwrap() = false;
    rt.create(pod("pod0"), ctr("c2"), T).unwrap();
    stub.stop();
}

#[test]
fn a_late_handler_without_guard_misses_the_deadline() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started(p.clone(), OnRegister::Accept, false);
    *p.sleep.lock().unwrap() = Some(Duration::from_millis(600));
    let err = rt
        .create(pod("pod0"), ctr("c1"), Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
    stub.stop();
}

#[test]
fn the_deadline_guard_answers_for_a_late_handler_and_discards_its_result() {
    let p = Arc::new(Recorder::default());
    let (stub, rt) = started_with(p.clone(), OnRegister::Accept, false, |b| {
        b.deadline_guard(DeadlineGuard {
            margin: Duration::from_millis(100),
            reply: GuardReply::Empty,
        })
    });
    *p.sleep.lock().unwrap() = Some(Duration::from_millis(800));
    let t0 = Instant::now();
    let resp = rt
        .create(pod("pod0"), ctr("c1"), Duration::from_millis(400))
        .expect("the guard answers in time");
    assert!(t0.elapsed() < Duration::from_millis(400));
    assert!(
        resp.adjust.is_none() || resp.adjust.env.is_empty(),
        "the guard's reply changes nothing"
    );
    assert!(resp.update.is_empty());
    // The handler finishes later; its result must not produce a second reply.
    std::thread::sleep(Duration::from_millis(600));
    *p.sleep.lock().unwrap() = None;
    let resp = rt.create(pod("pod0"), ctr("c2"), T).unwrap();
    assert_eq!(resp.adjust.env.len(), 1, "the connection is still in step");

    // With an error reply configured, the runtime sees that error instead.
    drop(rt);
    stub.stop();
    let (stub, rt) = started_with(p.clone(), OnRegister::Accept, false, |b| {
        b.deadline_guard(DeadlineGuard {
            margin: Duration::from_millis(100),
            reply: GuardReply::Error(Status::new(Code::Unavailable, "too slow")),
        })
    });
    *p.sleep.lock().unwrap() = Some(Duration::from_millis(800));
    let err = rt
        .create(pod("pod0"), ctr("c3"), Duration::from_millis(400))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Status { code: Code::Unavailable, message, .. } if message == "too slow"),
        "{err:?}"
    );
    stub.stop();
}

#[test]
fn connection_loss_runs_on_close_once_and_run_returns() {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let closes = Arc::new(AtomicUsize::new(0));
    let c2 = closes.clone();
    let stub = Stub::builder(Arc::new(Recorder::default()))
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a)
        .on_close(move || {
            c2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let s2 = stub.clone();
    let run = std::thread::spawn(move || s2.run());
    rt.registered.recv_timeout(T).unwrap();
    rt.configure("").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    rt.conn.close();
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || tx.send(run.join().unwrap()).unwrap());
    let res = rx
        .recv_timeout(T)
        .expect("run returns after the runtime closes");
    assert!(matches!(res, Err(Error::ConnectionClosed(_))), "{res:?}");
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert!(!stub.is_connected());
}

#[test]
fn restart_after_the_runtime_disconnects_reconnects_through_the_socket_path() {
    let dir = std::env::temp_dir().join(format!("nri-stub-restart-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let sock = dir.join("nri.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).unwrap();
    let p = Arc::new(Recorder::default());
    let stub = Stub::builder(p.clone())
        .plugin_name("rec")
        .plugin_index("10")
        .socket_path(&sock)
        .build()
        .unwrap();
    for round in 0..3 {
        let s2 = stub.clone();
        let run = std::thread::spawn(move || s2.run());
        let (conn, _) = listener.accept().unwrap();
        let rt = FakeRuntime::new(conn, OnRegister::Accept, false);
        rt.registered.recv_timeout(T).unwrap();
        rt.configure("").unwrap();
        rt.create(pod("p"), ctr(&format!("round{round}")), T)
            .unwrap();
        rt.conn.close();
        assert!(run.join().unwrap().is_err());
    }
    assert_eq!(p.configured.load(Ordering::SeqCst), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn supervised_mode_survives_three_runtime_restarts() {
    let dir = std::env::temp_dir().join(format!("nri-stub-supervised-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let sock = dir.join("nri.sock");
    let _ = std::fs::remove_file(&sock);
    let p = Arc::new(Recorder::default());
    let closes = Arc::new(AtomicUsize::new(0));
    let c2 = closes.clone();
    let stub = Stub::builder(p.clone())
        .plugin_name("rec")
        .plugin_index("10")
        .socket_path(&sock)
        .on_close(move || {
            c2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let s2 = stub.clone();
    // Starts before the socket exists: it must wait for it.
    let sup = std::thread::spawn(move || {
        s2.run_supervised(nri::stub::Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            max_attempts: None,
        })
    });
    std::thread::sleep(Duration::from_millis(100));
    for round in 0..4 {
        let _ = std::fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let rt = FakeRuntime::new(conn, OnRegister::Accept, false);
        rt.registered.recv_timeout(T).unwrap();
        rt.configure("").unwrap();
        let resp = rt
            .synchronize(vec![pod("p")], vec![ctr(&format!("r{round}"))], false)
            .unwrap();
        assert_eq!(resp.update.len(), 1, "re-synchronized in round {round}");
        // The runtime "restarts": drop the listener and the connection.
        drop(listener);
        rt.conn.close();
        rt.conn.wait_timeout(T);
    }
    // Wait until the stub noticed the last loss, then stop it.
    let t0 = Instant::now();
    while closes.load(Ordering::SeqCst) < 4 && t0.elapsed() < T {
        std::thread::sleep(Duration::from_millis(10));
    }
    stub.stop();
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || tx.send(sup.join().unwrap()).unwrap());
    assert!(rx
        .recv_timeout(T)
        .expect("supervised run ends on stop")
        .is_ok());
    assert_eq!(p.configured.load(Ordering::SeqCst), 4);
    assert_eq!(*p.sync_sizes.lock().unwrap(), vec![(1, 1); 4]);
    assert_eq!(closes.load(Ordering::SeqCst), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_during_start_ends_start_promptly() {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let stub = Stub::builder(Arc::new(Recorder::default()))
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a)
        .build()
        .unwrap();
    let s2 = stub.clone();
    let t0 = Instant::now();
    let start = std::thread::spawn(move || s2.start());
    rt.registered.recv_timeout(T).unwrap();
    // The runtime never configures; a signal handler stops the plugin.
    stub.stop();
    let res = start.join().unwrap();
    assert!(res.is_err(), "start must fail once stopped: {res:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert!(!stub.is_connected());
}

#[test]
fn stop_before_supervised_run_is_not_lost_once_running() {
    let dir = std::env::temp_dir().join(format!("nri-stub-sup-stop-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let sock = dir.join("absent.sock");
    let stub = Stub::builder(Arc::new(Recorder::default()))
        .plugin_name("rec")
        .plugin_index("10")
        .socket_path(&sock)
        .build()
        .unwrap();
    let s2 = stub.clone();
    let sup = std::thread::spawn(move || {
        s2.run_supervised(nri::stub::Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30),
            max_attempts: None,
        })
    });
    // The socket does not exist: the supervisor sleeps 30 s between tries.
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    stub.stop();
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || tx.send(sup.join().unwrap()).unwrap());
    assert!(rx
        .recv_timeout(T)
        .expect("stop wakes the sleeping supervisor")
        .is_ok());
    assert!(t0.elapsed() < Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_called_from_the_on_close_callback_does_not_stall() {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let slot: Arc<Mutex<Option<Stub>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = bounded(1);
    let s2 = slot.clone();
    let stub = Stub::builder(Arc::new(Recorder::default()))
        .plugin_name("rec")
        .plugin_index("10")
        .connection(a)
        .on_close(move || {
            let t0 = Instant::now();
            if let Some(s) = s2.lock().unwrap().clone() {
                s.stop();
            }
            let _ = tx.send(t0.elapsed());
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(stub.clone());
    let s3 = stub.clone();
    let run = std::thread::spawn(move || s3.run());
    rt.registered.recv_timeout(T).unwrap();
    rt.configure("").unwrap();
    rt.conn.close();
    let took = rx.recv_timeout(T).expect("on_close ran");
    assert!(
        took < Duration::from_secs(1),
        "stop() inside on_close took {took:?}"
    );
    // The callback stopped the stub, so run() reports a local stop.
    assert!(run.join().unwrap().is_ok());
    slot.lock().unwrap().take();
}
