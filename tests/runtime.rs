//! Tests of `nri::runtime`: the runtime side driving a plugin through
//! registration, Configure, Synchronize, events and UpdateContainers, and
//! judging it like the v0.9.0 reference runtime.
//!
//! The plugin side here is hand-rolled on `nri::ttrpc` (it serves the plugin
//! service on logical connection 1 and calls RegisterPlugin on connection
//! 2), so these tests do not depend on the stub. Every wait is bounded.

use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use nri::api::{
    ConfigureRequest, ConfigureResponse, Container, ContainerAdjustment, ContainerUpdate,
    CreateContainerRequest, CreateContainerResponse, Empty, Event, EventMask, LinuxResources,
    PodSandbox, RegisterPluginRequest, StateChangeEvent, StopContainerRequest,
    StopContainerResponse, SynchronizeRequest, SynchronizeResponse, UpdateContainerRequest,
    UpdateContainerResponse, UpdateContainersRequest, UpdateContainersResponse, PLUGIN_SERVICE,
    RUNTIME_SERVICE,
};
use nri::runtime::{PluginHandle, PluginSet, Runtime};
use nri::ttrpc::{
    Client, Code, Connection, ConnectionBuilder, ConnectionOptions, Framing, Services, Status,
};
use nri::Error;
use protobuf::MessageField;

/// Upper bound for one blocking wait.
const STEP: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// A hand-rolled plugin
// ---------------------------------------------------------------------------

type Handler<Req, Resp> = Arc<dyn Fn(&Client, Req) -> Result<Resp, Status> + Send + Sync>;

/// How the test plugin behaves. Handlers get a client for the runtime
/// service (connection 2).
#[derive(Clone)]
struct Spec {
    name: String,
    idx: String,
    events: i32,
    on_configure: Option<Handler<ConfigureRequest, ConfigureResponse>>,
    on_sync: Handler<SynchronizeRequest, SynchronizeResponse>,
    on_create: Handler<CreateContainerRequest, CreateContainerResponse>,
}

impl Spec {
    fn new(name: &str, idx: &str, events: EventMask) -> Spec {
        Spec {
            name: name.to_string(),
            idx: idx.to_string(),
            events: events.bits(),
            on_configure: None,
            on_sync: Arc::new(|_, req: SynchronizeRequest| {
                Ok(SynchronizeResponse {
                    more: req.more,
                    ..Default::default()
                })
            }),
            on_create: Arc::new(|_, req: CreateContainerRequest| {
                let mut adjust = ContainerAdjustment::new();
                adjust
                    .annotations
                    .insert("seen".into(), req.container.id.clone());
                Ok(CreateContainerResponse {
                    adjust: MessageField::some(adjust),
                    ..Default::default()
                })
            }),
        }
    }

    fn on_sync(
        mut self,
        f: impl Fn(&Client, SynchronizeRequest) -> Result<SynchronizeResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_sync = Arc::new(f);
        self
    }

    fn on_create(
        mut self,
        f: impl Fn(&Client, CreateContainerRequest) -> Result<CreateContainerResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_create = Arc::new(f);
        self
    }

    fn on_configure(
        mut self,
        f: impl Fn(&Client, ConfigureRequest) -> Result<ConfigureResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_configure = Some(Arc::new(f));
        self
    }
}

/// What the test plugin saw.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    configure: Mutex<Option<ConfigureRequest>>,
    /// `(pods, containers, more)` of each Synchronize request.
    sync_chunks: Mutex<Vec<(usize, usize, bool)>>,
}

impl Recorder {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

struct TestPlugin {
    conn: Connection,
    rec: Arc<Recorder>,
    runtime: Client,
    registered: Receiver<nri::Result<Empty>>,
}

impl TestPlugin {
    /// Serves the plugin service on `stream`, then registers (from another
    /// thread, so Configure may arrive before the reply).
    fn start(stream: UnixStream, spec: Spec) -> TestPlugin {
        Self::start_with(stream, spec, true)
    }

    fn start_with(stream: UnixStream, spec: Spec, register: bool) -> TestPlugin {
        let rec = Arc::new(Recorder::default());
        let runtime_client: Arc<OnceLock<Client>> = Arc::new(OnceLock::new());
        let mut services = Services::new();

        let (r, s, c) = (rec.clone(), spec.clone(), runtime_client.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "Configure",
            move |_ctx, req: ConfigureRequest| {
                r.note("Configure".into());
                *r.configure.lock().unwrap() = Some(req.clone());
                match &s.on_configure {
                    Some(f) => f(client(&c), req),
                    None => Ok(ConfigureResponse {
                        events: s.events,
                        ..Default::default()
                    }),
                }
            },
        );
        let (r, s, c) = (rec.clone(), spec.clone(), runtime_client.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "Synchronize",
            move |_ctx, req: SynchronizeRequest| {
                r.note("Synchronize".into());
                r.sync_chunks.lock().unwrap().push((
                    req.pods.len(),
                    req.containers.len(),
                    req.more,
                ));
                (s.on_sync)(client(&c), req)
            },
        );
        let (r, s, c) = (rec.clone(), spec.clone(), runtime_client.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "CreateContainer",
            move |_ctx, req: CreateContainerRequest| {
                r.note("CreateContainer".into());
                (s.on_create)(client(&c), req)
            },
        );
        let r = rec.clone();
        services.add_unary(
            PLUGIN_SERVICE,
            "UpdateContainer",
            move |_ctx, _req: UpdateContainerRequest| {
                r.note("UpdateContainer".into());
                Ok(UpdateContainerResponse::new())
            },
        );
        let r = rec.clone();
        services.add_unary(
            PLUGIN_SERVICE,
            "StopContainer",
            move |_ctx, _req: StopContainerRequest| {
                r.note("StopContainer".into());
                Ok(StopContainerResponse::new())
            },
        );
        let r = rec.clone();
        services.add_unary(
            PLUGIN_SERVICE,
            "StateChange",
            move |_ctx, req: StateChangeEvent| {
                r.note(format!(
                    "StateChange:{:?}",
                    req.event.enum_value_or_default()
                ));
                Ok(Empty::new())
            },
        );
        let r = rec.clone();
        services.add_unary(PLUGIN_SERVICE, "Shutdown", move |_ctx, _req: Empty| {
            r.note("Shutdown".into());
            Ok(Empty::new())
        });

        let conn = ConnectionBuilder::new(stream, Framing::Mux)
            .options(ConnectionOptions {
                workers: 2,
                name: format!("test-plugin-{}", spec.name),
                ..Default::default()
            })
            .serve(1, Arc::new(services))
            .open(2)
            .start()
            .expect("start the test plugin's connection");
        let runtime = conn.client(2).expect("client on connection 2");
        let _ = runtime_client.set(runtime.clone());

        let (tx, registered) = crossbeam_channel::bounded(1);
        if register {
            let client = runtime.clone();
            let req = RegisterPluginRequest {
                plugin_name: spec.name.clone(),
                plugin_idx: spec.idx.clone(),
                ..Default::default()
            };
            thread::spawn(move || {
                let _ = tx.send(client.call::<_, Empty>(
                    RUNTIME_SERVICE,
                    "RegisterPlugin",
                    &req,
                    Some(STEP),
                ));
            });
        }
        TestPlugin {
            conn,
            rec,
            runtime,
            registered,
        }
    }

    fn registration(&self) -> nri::Result<Empty> {
        self.registered
            .recv_timeout(STEP)
            .expect("RegisterPlugin call did not finish in time")
    }

    fn update_containers(
        &self,
        updates: Vec<ContainerUpdate>,
    ) -> nri::Result<UpdateContainersResponse> {
        let req = UpdateContainersRequest {
            update: updates,
            ..Default::default()
        };
        self.runtime
            .call(RUNTIME_SERVICE, "UpdateContainers", &req, Some(STEP))
    }

    /// True when the connection closed within `timeout`.
    fn closed_within(&self, timeout: Duration) -> bool {
        self.conn.wait_timeout(timeout) && self.conn.is_closed()
    }
}

impl Drop for TestPlugin {
    fn drop(&mut self) {
        self.conn.close();
    }
}

fn client(cell: &OnceLock<Client>) -> &Client {
    cell.get().expect("runtime client set before any request")
}

/// Starts a test plugin on one end of a socket pair and lets `rt` accept it
/// on the other.
fn accept_pair(rt: &Runtime, spec: Spec) -> (nri::Result<PluginHandle>, TestPlugin) {
    let (rt_end, plugin_end) = UnixStream::pair().expect("socket pair");
    let plugin = TestPlugin::start(plugin_end, spec);
    (rt.accept_stream(rt_end), plugin)
}

fn test_runtime() -> nri::runtime::RuntimeBuilder {
    Runtime::builder()
        .name("test-runtime")
        .version("9.9.9")
        .registration_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(2))
}

fn pod(id: &str) -> PodSandbox {
    let mut p = PodSandbox::new();
    p.id = id.to_string();
    p.name = format!("{id}-name");
    p.namespace = "default".into();
    p
}

fn ctr(id: &str, pod: &str) -> Container {
    let mut c = Container::new();
    c.id = id.to_string();
    c.pod_sandbox_id = pod.to_string();
    c.name = format!("{id}-name");
    c
}

fn update(id: &str) -> ContainerUpdate {
    let mut u = ContainerUpdate::new();
    u.container_id = id.to_string();
    u
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nri-runtime-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

// ---------------------------------------------------------------------------
// Registration, Configure, Synchronize
// ---------------------------------------------------------------------------

#[test]
fn registers_configures_and_synchronizes_over_socket_pair() {
    let rt = test_runtime()
        .registration_timeout(Duration::from_millis(1500))
        .request_timeout(Duration::from_millis(700))
        .plugin_config("test", "by base name")
        .plugin_config("05-test", "by full name")
        .build();
    rt.set_state(
        vec![pod("pod-a"), pod("pod-b")],
        vec![ctr("c1", "pod-a"), ctr("c2", "pod-a"), ctr("c3", "pod-b")],
    );
    let events = EventMask::from_events(&[Event::CREATE_CONTAINER, Event::START_CONTAINER]);
    let spec = Spec::new("test", "05", events).on_sync(|_, req| {
        Ok(SynchronizeResponse {
            update: req
                .containers
                .iter()
                .take(1)
                .map(|c| update(&c.id))
                .collect(),
            more: req.more,
            ..Default::default()
        })
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    plugin.registration().expect("registration accepted");

    assert_eq!(handle.name(), "05-test");
    assert_eq!(handle.index(), "05");
    assert_eq!(handle.base_name(), "test");
    assert_eq!(handle.events(), events);
    assert!(!handle.is_launched());
    assert!(handle.is_connected());

    let cfg = plugin
        .rec
        .configure
        .lock()
        .unwrap()
        .clone()
        .expect("Configure received");
    assert_eq!(cfg.config, "by full name");
    assert_eq!(cfg.runtime_name, "test-runtime");
    assert_eq!(cfg.runtime_version, "9.9.9");
    assert_eq!(cfg.registration_timeout, 1500);
    assert_eq!(cfg.request_timeout, 700);

    assert_eq!(*plugin.rec.sync_chunks.lock().unwrap(), vec![(2, 3, false)]);
    assert_eq!(plugin.rec.calls(), vec!["Configure", "Synchronize"]);
    let ids: Vec<_> = handle
        .sync_updates()
        .iter()
        .map(|u| u.container_id.clone())
        .collect();
    assert_eq!(ids, vec!["c1"]);

    let reply = handle
        .create_container(&pod("pod-a"), &ctr("c4", "pod-a"))
        .expect("CreateContainer");
    assert_eq!(
        reply.adjust.annotations.get("seen").map(String::as_str),
        Some("c4")
    );
}

#[test]
fn external_plugin_config_falls_back_to_base_name() {
    let rt = test_runtime().plugin_config("logger", "base").build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("logger", "10", EventMask::ALL));
    let _handle = handle.expect("plugin accepted");
    let cfg = plugin
        .rec
        .configure
        .lock()
        .unwrap()
        .clone()
        .expect("Configure received");
    assert_eq!(cfg.config, "base");
}

#[test]
fn registers_over_socket_path() {
    let dir = temp_dir("listen");
    let path = dir.join("sub").join("nri.sock");
    let rt = test_runtime().build();
    let listener = rt.listen(&path).expect("listen");
    assert_eq!(listener.path(), path.as_path());
    let mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "socket directory is created with mode 0700"
    );

    let stream = UnixStream::connect(&path).expect("dial the runtime socket");
    let plugin = TestPlugin::start(stream, Spec::new("dialer", "20", EventMask::ALL));
    let handle = listener.accept().expect("plugin accepted");
    plugin.registration().expect("registration accepted");
    assert_eq!(handle.name(), "20-dialer");
    assert_eq!(handle.events(), EventMask::ALL);

    // Nobody else dials: a bounded accept gives up.
    let started = Instant::now();
    match listener.accept_timeout(Duration::from_millis(100)) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "accept"),
        other => panic!("expected an accept timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    let stream = UnixStream::connect(&path).expect("dial the runtime socket again");
    let _second = TestPlugin::start(stream, Spec::new("second", "21", EventMask::ALL));
    let handle2 = listener
        .accept_timeout(STEP)
        .expect("second plugin accepted");
    assert_eq!(handle2.name(), "21-second");
    assert!(handle2.is_connected());

    drop(listener);
    assert!(!path.exists(), "socket file removed with the listener");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_index_gets_unknown_error_and_connection_stays_open() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("badidx", "7", EventMask::ALL));
    match handle {
        Err(Error::RegistrationRefused { message, .. }) => {
            assert!(message.contains("\"7\""), "{message}")
        }
        other => panic!("expected RegistrationRefused, got {other:?}"),
    }
    match plugin.registration() {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unknown);
            assert!(
                message.contains("invalid plugin index") && message.contains("\"7\""),
                "{message}"
            );
        }
        other => panic!("expected an UNKNOWN status, got {other:?}"),
    }
    // The runtime does not close the connection itself.
    assert!(!plugin.closed_within(Duration::from_millis(300)));
    assert!(
        plugin.rec.calls().is_empty(),
        "no Configure after a refusal"
    );
    // ... but it does when it goes away.
    drop(rt);
    assert!(plugin.closed_within(STEP));
}

#[test]
fn refused_empty_name_gets_unknown_error() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("", "10", EventMask::ALL));
    assert!(
        matches!(handle, Err(Error::RegistrationRefused { .. })),
        "{handle:?}"
    );
    match plugin.registration() {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unknown);
            assert!(message.contains("empty"), "{message}");
        }
        other => panic!("expected an UNKNOWN status, got {other:?}"),
    }
    assert!(!plugin.closed_within(Duration::from_millis(200)));
}

#[test]
fn plugin_that_never_registers_times_out_and_is_closed() {
    let rt = test_runtime()
        .registration_timeout(Duration::from_millis(300))
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().unwrap();
    let plugin = TestPlugin::start_with(plugin_end, Spec::new("mute", "10", EventMask::ALL), false);
    let started = Instant::now();
    match rt.accept_stream(rt_end) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "RegisterPlugin"),
        other => panic!("expected a registration timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(plugin.closed_within(STEP));
}

#[test]
fn zero_event_mask_subscribes_to_all_events() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("all", "10", EventMask::EMPTY));
    let handle = handle.expect("plugin accepted");
    assert_eq!(handle.events(), EventMask::ALL);

    let (p, c) = (pod("p"), ctr("c", "p"));
    handle.run_pod_sandbox(&p).unwrap();
    handle.create_container(&p, &c).unwrap();
    handle.post_create_container(&p, &c).unwrap();
    handle.start_container(&p, &c).unwrap();
    handle.post_start_container(&p, &c).unwrap();
    handle
        .update_container(&p, &c, &LinuxResources::new())
        .unwrap();
    handle.post_update_container(&p, &c).unwrap();
    handle.stop_container(&p, &c).unwrap();
    handle.remove_container(&p, &c).unwrap();
    handle.stop_pod_sandbox(&p).unwrap();
    handle.remove_pod_sandbox(&p).unwrap();
    let calls = plugin.rec.calls();
    assert_eq!(
        calls[2..],
        [
            "StateChange:RUN_POD_SANDBOX",
            "CreateContainer",
            "StateChange:POST_CREATE_CONTAINER",
            "StateChange:START_CONTAINER",
            "StateChange:POST_START_CONTAINER",
            "UpdateContainer",
            "StateChange:POST_UPDATE_CONTAINER",
            "StopContainer",
            "StateChange:REMOVE_CONTAINER",
            "StateChange:STOP_POD_SANDBOX",
            "StateChange:REMOVE_POD_SANDBOX",
        ]
    );
}

#[test]
fn events_not_subscribed_are_not_sent() {
    let rt = test_runtime().build();
    let events = EventMask::from_events(&[Event::CREATE_CONTAINER, Event::REMOVE_CONTAINER]);
    let (handle, plugin) = accept_pair(&rt, Spec::new("few", "10", events));
    let handle = handle.expect("plugin accepted");
    let (p, c) = (pod("p"), ctr("c", "p"));
    handle.run_pod_sandbox(&p).unwrap();
    handle.start_container(&p, &c).unwrap();
    assert_eq!(
        handle
            .update_container(&p, &c, &LinuxResources::new())
            .unwrap(),
        UpdateContainerResponse::new()
    );
    assert_eq!(
        handle.stop_container(&p, &c).unwrap(),
        StopContainerResponse::new()
    );
    handle.create_container(&p, &c).unwrap();
    handle.remove_container(&p, &c).unwrap();
    // Shutdown needs no subscription.
    handle.shutdown().unwrap();
    assert_eq!(
        plugin.rec.calls()[2..],
        [
            "CreateContainer",
            "StateChange:REMOVE_CONTAINER",
            "Shutdown"
        ]
    );
    assert!(!handle.is_subscribed(Event::START_CONTAINER));
    // Request events are refused as state changes.
    assert!(matches!(
        handle.state_change(Event::CREATE_CONTAINER, &p, Some(&c)),
        Err(Error::Config(_))
    ));
}

#[test]
fn invalid_event_mask_is_refused_and_plugin_closed() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(
        &rt,
        Spec::new("bits", "10", EventMask::from_bits(1 << 14 | 1)),
    );
    match handle {
        Err(Error::Protocol(message)) => assert!(message.contains("0x4000"), "{message}"),
        other => panic!("expected an invalid-mask error, got {other:?}"),
    }
    assert!(plugin.closed_within(STEP));
}

#[test]
fn configure_error_fails_accept_and_closes_plugin() {
    let rt = test_runtime().build();
    let spec = Spec::new("nocfg", "10", EventMask::ALL)
        .on_configure(|_, _| Err(Status::new(Code::InvalidArgument, "bad config")));
    let (handle, plugin) = accept_pair(&rt, spec);
    match handle {
        Err(Error::Status { code, method, .. }) => {
            assert_eq!(code, Code::InvalidArgument);
            assert_eq!(method, "Configure");
        }
        other => panic!("expected Configure's status, got {other:?}"),
    }
    assert!(plugin.closed_within(STEP));
}

/// 10,000 containers with 1 KiB of annotations each: about 10 MiB of state.
fn big_state() -> (Vec<PodSandbox>, Vec<Container>) {
    let pods: Vec<_> = (0..100).map(|i| pod(&format!("pod-{i}"))).collect();
    let filler = "x".repeat(1000);
    let containers = (0..10_000)
        .map(|i| {
            let mut c = ctr(&format!("ctr-{i}"), &format!("pod-{}", i % 100));
            c.annotations.insert("filler".into(), filler.clone());
            c
        })
        .collect();
    (pods, containers)
}

#[test]
fn oversized_synchronize_arrives_in_chunks() {
    let rt = test_runtime()
        .request_timeout(Duration::from_secs(10))
        .build();
    let (pods, containers) = big_state();
    rt.set_state(pods, containers);
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let s = seen.clone();
    let spec = Spec::new("chunks", "10", EventMask::ALL).on_sync(move |_, req| {
        let mut seen = s.lock().unwrap();
        for c in &req.containers {
            *seen.entry(c.id.clone()).or_default() += 1;
        }
        let update = if req.more {
            Vec::new()
        } else {
            vec![update("ctr-0")]
        };
        Ok(SynchronizeResponse {
            update,
            more: req.more,
            ..Default::default()
        })
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    let chunks = plugin.rec.sync_chunks.lock().unwrap().clone();
    assert!(chunks.len() >= 2, "{chunks:?}");
    let (last, rest) = chunks.split_last().unwrap();
    assert!(
        rest.iter().all(|c| c.2),
        "every chunk but the last has more=true: {chunks:?}"
    );
    assert!(!last.2, "{chunks:?}");
    assert_eq!(chunks.iter().map(|c| c.0).sum::<usize>(), 100);
    assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), 10_000);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10_000);
    assert!(seen.values().all(|&n| n == 1), "each container sent once");
    assert_eq!(handle.sync_updates().len(), 1);
    assert!(handle.is_connected());
}

#[test]
fn wrong_reply_to_intermediate_sync_chunk_drops_plugin() {
    let (pods, containers) = big_state();
    // Answering an intermediate chunk as if it were the last.
    let rt = test_runtime()
        .request_timeout(Duration::from_secs(10))
        .build();
    rt.set_state(pods.clone(), containers.clone());
    let spec =
        Spec::new("nosplit", "10", EventMask::ALL).on_sync(|_, _| Ok(SynchronizeResponse::new()));
    let (handle, plugin) = accept_pair(&rt, spec);
    match handle {
        Err(Error::Protocol(message)) => assert!(message.contains("split"), "{message}"),
        other => panic!("expected a split-sync error, got {other:?}"),
    }
    assert_eq!(plugin.rec.sync_chunks.lock().unwrap().len(), 1);
    assert!(plugin.closed_within(STEP));

    // Sending updates before the last chunk.
    let rt = test_runtime()
        .request_timeout(Duration::from_secs(10))
        .build();
    rt.set_state(pods, containers);
    let spec = Spec::new("early", "10", EventMask::ALL).on_sync(|_, req| {
        Ok(SynchronizeResponse {
            update: vec![update("ctr-1")],
            more: req.more,
            ..Default::default()
        })
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    assert!(matches!(handle, Err(Error::Protocol(_))), "{handle:?}");
    assert!(plugin.closed_within(STEP));
}

// ---------------------------------------------------------------------------
// Judging replies
// ---------------------------------------------------------------------------

#[test]
fn slow_handler_past_request_timeout_drops_plugin() {
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(300))
        .build();
    let spec = Spec::new("slow", "10", EventMask::ALL).on_create(|_, _| {
        thread::sleep(Duration::from_millis(800));
        Ok(CreateContainerResponse::new())
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    let started = Instant::now();
    match handle.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "CreateContainer"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(700));
    assert!(!handle.is_connected());
    assert!(handle.drop_reason().unwrap().contains("CreateContainer"));

    // Later calls fail at once.
    let started = Instant::now();
    match handle.run_pod_sandbox(&pod("p")) {
        Err(Error::ConnectionClosed(message)) => assert!(message.contains("dropped"), "{message}"),
        other => panic!("expected a dropped plugin, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(
        plugin.closed_within(STEP),
        "the runtime closed the connection"
    );
    assert!(handle.wait_closed(STEP));
}

#[test]
fn error_status_fails_the_call_but_keeps_the_plugin() {
    let rt = test_runtime().build();
    let spec = Spec::new("picky", "10", EventMask::ALL).on_create(|_, req| {
        if req.container.id == "bad" {
            return Err(Status::new(Code::FailedPrecondition, "no room for bad"));
        }
        Ok(CreateContainerResponse::new())
    });
    let (handle, _plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    match handle.create_container(&pod("p"), &ctr("bad", "p")) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::FailedPrecondition);
            assert_eq!(message, "no room for bad");
        }
        other => panic!("expected the plugin's status, got {other:?}"),
    }
    assert!(handle.is_connected());
    handle
        .create_container(&pod("p"), &ctr("good", "p"))
        .expect("plugin still serves");
}

#[test]
fn plugin_closing_its_connection_is_observed() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("leaver", "10", EventMask::ALL));
    let handle = handle.expect("plugin accepted");
    plugin.conn.close();
    assert!(handle.wait_closed(STEP));
    assert!(!handle.is_connected());
    assert!(handle.drop_reason().is_some());
    assert!(matches!(
        handle.run_pod_sandbox(&pod("p")),
        Err(Error::ConnectionClosed(_))
    ));
}

// ---------------------------------------------------------------------------
// UpdateContainers
// ---------------------------------------------------------------------------

#[test]
fn unsolicited_updates_reach_callback_and_failures_are_returned() {
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let r = received.clone();
    let rt = test_runtime()
        .on_update_containers(move |updates| {
            r.lock()
                .unwrap()
                .extend(updates.iter().map(|u| u.container_id.clone()));
            updates
                .iter()
                .filter(|u| u.container_id.starts_with("fail"))
                .cloned()
                .collect()
        })
        .build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("updater", "10", EventMask::ALL));
    let handle = handle.expect("plugin accepted");
    let reply = plugin
        .update_containers(vec![update("ok-1"), update("fail-1")])
        .expect("UpdateContainers");
    let failed: Vec<_> = reply
        .failed
        .iter()
        .map(|u| u.container_id.as_str())
        .collect();
    assert_eq!(failed, ["fail-1"]);
    assert_eq!(*received.lock().unwrap(), ["ok-1", "fail-1"]);
    let recorded = handle.wait_unsolicited_updates(2, STEP);
    let ids: Vec<_> = recorded.iter().map(|u| u.container_id.as_str()).collect();
    assert_eq!(ids, ["ok-1", "fail-1"]);
    assert_eq!(handle.unsolicited_updates().len(), 2);
    let taken = handle.take_unsolicited_updates();
    assert_eq!(taken.len(), 2);
    assert!(
        handle.unsolicited_updates().is_empty(),
        "taking empties the record"
    );
}

#[test]
fn the_record_of_unsolicited_updates_keeps_only_the_latest() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("updater", "10", EventMask::ALL));
    let handle = handle.expect("plugin accepted");
    let max = nri::runtime::MAX_RECORDED_UPDATES;
    // Two calls that together go 5 over the bound.
    for range in [0..max - 10, max - 10..max + 5] {
        let batch = range.map(|i| update(&format!("c{i}"))).collect();
        plugin.update_containers(batch).expect("UpdateContainers");
    }
    let recorded = handle.wait_unsolicited_updates(max, STEP);
    assert_eq!(recorded.len(), max);
    assert_eq!(recorded[0].container_id, "c5", "the 5 oldest were dropped");
    assert_eq!(recorded[max - 1].container_id, format!("c{}", max + 4));
    assert_eq!(handle.take_unsolicited_updates().len(), max);
    assert!(handle.unsolicited_updates().is_empty());
}

/// A CreateContainer handler that calls UpdateContainers and waits for the
/// reply before answering.
fn updating_in_handler(name: &str) -> Spec {
    Spec::new(name, "10", EventMask::ALL).on_create(|runtime, req| {
        let updates = UpdateContainersRequest {
            update: vec![update("other")],
            ..Default::default()
        };
        runtime
            .call::<_, UpdateContainersResponse>(
                RUNTIME_SERVICE,
                "UpdateContainers",
                &updates,
                Some(STEP),
            )
            .map_err(Status::from)?;
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("seen".into(), req.container.id.clone());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    })
}

#[test]
fn update_containers_inside_a_handler_deadlocks_until_timeout_like_v0_9_0() {
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(300))
        .build();
    let (handle, plugin) = accept_pair(&rt, updating_in_handler("deadlock"));
    let handle = handle.expect("plugin accepted");
    let started = Instant::now();
    match handle.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::DeadlineExceeded { .. }) => {}
        other => panic!("expected the v0.9.0 deadlock to end in a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!handle.is_connected(), "the plugin is dropped");
    assert!(plugin.closed_within(STEP));
}

#[test]
fn update_containers_inside_a_handler_works_when_updates_do_not_block() {
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(1000))
        .block_updates_during_events(false)
        .build();
    let (handle, _plugin) = accept_pair(&rt, updating_in_handler("nolock"));
    let handle = handle.expect("plugin accepted");
    let reply = handle
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("CreateContainer");
    assert_eq!(
        reply.adjust.annotations.get("seen").map(String::as_str),
        Some("c")
    );
    assert_eq!(handle.unsolicited_updates().len(), 1);
    assert!(handle.is_connected());
}

#[test]
fn update_containers_after_the_reply_waits_for_the_event_then_succeeds() {
    // The safe pattern: reply first, then send the updates (here from a
    // thread the handler starts, which sends while the event is in flight).
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(1000))
        .build();
    let done = Arc::new(Mutex::new(None));
    let d = done.clone();
    let spec = Spec::new("polite", "10", EventMask::ALL).on_create(move |runtime, _| {
        let runtime = runtime.clone();
        let d = d.clone();
        thread::spawn(move || {
            let req = UpdateContainersRequest {
                update: vec![update("later")],
                ..Default::default()
            };
            let r = runtime.call::<_, UpdateContainersResponse>(
                RUNTIME_SERVICE,
                "UpdateContainers",
                &req,
                Some(STEP),
            );
            *d.lock().unwrap() = Some(r.is_ok());
        });
        thread::sleep(Duration::from_millis(100));
        Ok(CreateContainerResponse::new())
    });
    let (handle, _plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    handle
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("CreateContainer");
    assert_eq!(handle.wait_unsolicited_updates(1, STEP).len(), 1);
    assert!(handle.is_connected());
    let deadline = Instant::now() + STEP;
    while done.lock().unwrap().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*done.lock().unwrap(), Some(true));
}

// ---------------------------------------------------------------------------
// Launched plugins
// ---------------------------------------------------------------------------

/// Writes an executable shell script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn process_gone(pid: u32) -> bool {
    let deadline = Instant::now() + STEP;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Not a test of its own: the body of the plugin that
/// `launched_plugin_gets_socket_on_fd_3_and_a_bare_environment` launches
/// (this test binary, run through a script). Without `NRI_PLUGIN_SOCKET` it
/// does nothing.
#[test]
fn launched_plugin_child_process() {
    if std::env::var_os("NRI_PLUGIN_SOCKET").is_none() {
        return;
    }
    let mut problems = Vec::new();
    for (var, want) in [
        ("NRI_PLUGIN_NAME", "launched"),
        ("NRI_PLUGIN_IDX", "42"),
        ("NRI_PLUGIN_SOCKET", "3"),
    ] {
        let got = std::env::var(var).unwrap_or_default();
        if got != want {
            problems.push(format!("{var}={got:?}, want {want:?}"));
        }
    }
    for var in [
        "HOME",
        "CARGO_MANIFEST_DIR",
        "RUST_TEST_THREADS_FROM_PARENT",
    ] {
        if std::env::var_os(var).is_some() {
            problems.push(format!("{var} is set"));
        }
    }
    // SAFETY: the runtime passed a connected socket as fd 3 and nothing else
    // in this process owns that descriptor.
    let stream = unsafe { UnixStream::from_raw_fd(3) };
    let config = Arc::new(Mutex::new(String::new()));
    let cfg = config.clone();
    let spec = Spec::new(
        "ignored",
        "99",
        EventMask::from_events(&[Event::CREATE_CONTAINER]),
    )
    .on_configure(move |_, req| {
        if !problems.is_empty() {
            return Err(Status::new(Code::FailedPrecondition, problems.join("; ")));
        }
        *cfg.lock().unwrap() = req.config;
        Ok(ConfigureResponse {
            events: Event::CREATE_CONTAINER.mask().bits(),
            ..Default::default()
        })
    })
    .on_create(move |_, _| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("config".into(), config.lock().unwrap().clone());
        adjust
            .annotations
            .insert("pid".into(), std::process::id().to_string());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    });
    let plugin = TestPlugin::start(stream, spec);
    // Stay until the runtime closes the connection (or kills us).
    plugin.conn.wait_timeout(Duration::from_secs(10));
}

#[test]
fn launched_plugin_gets_socket_on_fd_3_and_a_bare_environment() {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = temp_dir("launch");
    let bin = script(
        &dir,
        "42-launched",
        &format!(
            "exec '{}' --exact launched_plugin_child_process --test-threads=1 --nocapture -q",
            exe.display()
        ),
    );
    let rt = test_runtime().build();
    let handle = rt
        .launch(&bin, "launched", "42", "launch config")
        .expect("launched plugin registered");
    assert_eq!(
        handle.name(),
        "42-launched",
        "the request's name and index are ignored"
    );
    assert!(handle.is_launched());
    assert_eq!(handle.events(), Event::CREATE_CONTAINER.mask());
    let pid = handle.pid().expect("child running");
    let reply = handle
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("CreateContainer");
    assert_eq!(
        reply.adjust.annotations.get("config").map(String::as_str),
        Some("launch config")
    );
    assert_eq!(reply.adjust.annotations.get("pid"), Some(&pid.to_string()));

    handle.close();
    assert!(process_gone(pid), "the launched plugin is killed on close");
    assert_eq!(handle.pid(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn launched_plugin_that_never_registers_is_killed() {
    let dir = temp_dir("mute");
    let pidfile = dir.join("pid");
    let bin = script(
        &dir,
        "10-mute",
        &format!("echo $$ > '{}'\nexec /bin/sleep 30", pidfile.display()),
    );
    let rt = test_runtime()
        .registration_timeout(Duration::from_millis(300))
        .build();
    match rt.launch(&bin, "mute", "10", "") {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "RegisterPlugin"),
        other => panic!("expected a registration timeout, got {other:?}"),
    }
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("script wrote its pid")
        .trim()
        .parse()
        .unwrap();
    assert!(process_gone(pid), "the launched plugin is killed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn launch_refuses_a_bad_index() {
    let rt = test_runtime().build();
    assert!(matches!(
        rt.launch("/bin/true", "x", "1", ""),
        Err(Error::InvalidPluginIndex { .. })
    ));
}

// ---------------------------------------------------------------------------
// Several plugins
// ---------------------------------------------------------------------------

fn annotating(name: &str, idx: &str, key: &'static str) -> Spec {
    Spec::new(name, idx, EventMask::ALL).on_create(move |_, req| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert(key.into(), req.container.id.clone());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    })
}

#[test]
fn plugin_set_calls_plugins_in_index_order_and_merges_adjustments() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let seen_by_b = Arc::new(Mutex::new(None));
    let s = seen_by_b.clone();
    let b_spec = Spec::new("b", "20", EventMask::ALL).on_create(move |_, req| {
        *s.lock().unwrap() = Some(req.container.annotations.clone());
        let mut adjust = ContainerAdjustment::new();
        adjust.annotations.insert("from-b".into(), "2".into());
        let mut other = update("other");
        other
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default()
            .cpu
            .mut_or_insert_default()
            .cpus = "0-1".into();
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            update: vec![other],
            ..Default::default()
        })
    });
    let (b, plugin_b) = accept_pair(&rt, b_spec);
    let (a, plugin_a) = accept_pair(&rt, annotating("a", "10", "from-a"));
    set.add(b.expect("b accepted")).unwrap();
    set.add(a.expect("a accepted")).unwrap();
    assert_eq!(set.names(), ["10-a", "20-b"]);

    let reply = set
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("merged CreateContainer");
    let annotations = &reply.adjust.annotations;
    assert_eq!(annotations.get("from-a").map(String::as_str), Some("c"));
    assert_eq!(annotations.get("from-b").map(String::as_str), Some("2"));
    let seen = seen_by_b.lock().unwrap().clone().expect("b was called");
    assert_eq!(
        seen.get("from-a").map(String::as_str),
        Some("c"),
        "b sees a's adjustment in its request"
    );
    assert_eq!(reply.update.len(), 1);
    assert_eq!(reply.update[0].container_id, "other");
    assert_eq!(reply.update[0].linux.resources.cpu.cpus, "0-1");

    set.start_container(&pod("p"), &ctr("c", "p")).unwrap();
    assert!(plugin_a
        .rec
        .calls()
        .contains(&"StateChange:START_CONTAINER".to_string()));
    assert!(plugin_b
        .rec
        .calls()
        .contains(&"StateChange:START_CONTAINER".to_string()));
}

#[test]
fn plugin_set_conflicting_adjustments_fail_the_operation() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let (a, _pa) = accept_pair(&rt, annotating("a", "10", "same"));
    let (b, _pb) = accept_pair(&rt, annotating("b", "20", "same"));
    set.add(a.unwrap()).unwrap();
    set.add(b.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Handler(message)) => {
            assert_eq!(
                message,
                "plugins \"20-b\" and \"10-a\" both tried to set annotation same"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(set.len(), 2, "a conflict drops no plugin");
}

#[test]
fn plugin_set_skips_and_removes_a_plugin_that_times_out() {
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(300))
        .build();
    let set = PluginSet::new(&rt);
    let slow = Spec::new("slow", "10", EventMask::ALL).on_create(|_, _| {
        thread::sleep(Duration::from_millis(800));
        Ok(CreateContainerResponse::new())
    });
    let (a, _pa) = accept_pair(&rt, slow);
    let (b, _pb) = accept_pair(&rt, annotating("b", "20", "from-b"));
    set.add(a.unwrap()).unwrap();
    set.add(b.unwrap()).unwrap();
    let reply = set
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("the operation goes on without the dropped plugin");
    assert_eq!(
        reply.adjust.annotations.get("from-b").map(String::as_str),
        Some("c")
    );
    assert_eq!(set.names(), ["20-b"]);
}

#[test]
fn plugin_set_error_status_fails_the_operation_and_stops_the_relay() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let picky = Spec::new("picky", "10", EventMask::ALL)
        .on_create(|_, _| Err(Status::new(Code::PermissionDenied, "not here")));
    let (a, _pa) = accept_pair(&rt, picky);
    let (b, pb) = accept_pair(&rt, annotating("b", "20", "from-b"));
    set.add(a.unwrap()).unwrap();
    set.add(b.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Status { code, .. }) => assert_eq!(code, Code::PermissionDenied),
        other => panic!("expected the plugin's status, got {other:?}"),
    }
    assert!(
        !pb.rec.calls().contains(&"CreateContainer".to_string()),
        "later plugins are not called"
    );
    assert_eq!(set.len(), 2);
}

#[test]
fn plugin_set_refuses_a_plugin_of_another_runtime() {
    let rt = test_runtime().build();
    let other = test_runtime().build();
    let set = PluginSet::new(&rt);
    let (a, _pa) = accept_pair(&other, Spec::new("a", "10", EventMask::ALL));
    assert!(matches!(set.add(a.unwrap()), Err(Error::Config(_))));
    assert!(set.is_empty());
}

#[test]
fn runtime_types_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Runtime>();
    shared::<PluginHandle>();
    shared::<PluginSet>();
    shared::<nri::runtime::PluginListener>();
}
