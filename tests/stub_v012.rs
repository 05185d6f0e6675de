//! The stub's NRI v0.12 behaviour over real sockets, against a hand-driven
//! runtime side: events through their own RPCs and through StateChange
//! reach the same handlers, validation, versions both ways, the
//! subscription negotiated to what the runtime can deliver, required
//! events, and the failure policy.

mod common;

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use common::fake_runtime::{configure_req, ctr, pod, FakeRuntime, OnRegister};
use common::STEP as T;
use nri::api::{
    ConfigureRequest, ConfigureResponse, Container, Empty, Event, EventMask, FailurePolicy,
    LinuxResources, PodSandbox, PostCreateContainerRequest, PostCreateContainerResponse,
    PostStartContainerRequest, PostStartContainerResponse, PostUpdateContainerRequest,
    PostUpdateContainerResponse, PostUpdatePodSandboxRequest, PostUpdatePodSandboxResponse,
    RemoveContainerRequest, RemoveContainerResponse, RemovePodSandboxRequest,
    RemovePodSandboxResponse, RunPodSandboxRequest, RunPodSandboxResponse, StartContainerRequest,
    StartContainerResponse, StateChangeEvent, StopPodSandboxRequest, StopPodSandboxResponse,
    UpdatePodSandboxRequest, UpdatePodSandboxResponse, ValidateContainerAdjustmentRequest,
    ValidateContainerAdjustmentResponse, NRI_VERSION,
};
use nri::stub::{Context, HandlerResult, NriVersionSource, Plugin, Stub};
use nri::ttrpc::{Code, Status};
use nri::Error;
use protobuf::MessageField;

/// Records every handler call as `method event-subject`.
#[derive(Default)]
struct Everything {
    seen: Mutex<Vec<String>>,
}

impl Everything {
    fn note(&self, ctx: &Context<'_>, what: String) -> HandlerResult<()> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} {what}", ctx.method()));
        if what.contains("fail") {
            return Err("asked to fail".into());
        }
        Ok(())
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}

impl Plugin for Everything {
    fn events(&self) -> EventMask {
        EventMask::ALL
    }
    fn run_pod_sandbox(&self, ctx: &Context<'_>, p: &PodSandbox) -> HandlerResult<()> {
        self.note(ctx, p.id.clone())
    }
    fn update_pod_sandbox(
        &self,
        ctx: &Context<'_>,
        p: &PodSandbox,
        overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> HandlerResult<()> {
        self.note(
            ctx,
            format!(
                "{} overhead={} total={}",
                p.id, overhead.cpu.cpus, resources.cpu.cpus
            ),
        )
    }
    fn post_update_pod_sandbox(&self, ctx: &Context<'_>, p: &PodSandbox) -> HandlerResult<()> {
        self.note(ctx, p.id.clone())
    }
    fn stop_pod_sandbox(&self, ctx: &Context<'_>, p: &PodSandbox) -> HandlerResult<()> {
        self.note(ctx, p.id.clone())
    }
    fn remove_pod_sandbox(&self, ctx: &Context<'_>, p: &PodSandbox) -> HandlerResult<()> {
        self.note(ctx, p.id.clone())
    }
    fn post_create_container(
        &self,
        ctx: &Context<'_>,
        p: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.note(ctx, format!("{}/{}", p.id, c.id))
    }
    fn start_container(
        &self,
        ctx: &Context<'_>,
        p: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.note(ctx, format!("{}/{}", p.id, c.id))
    }
    fn post_start_container(
        &self,
        ctx: &Context<'_>,
        p: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.note(ctx, format!("{}/{}", p.id, c.id))
    }
    fn post_update_container(
        &self,
        ctx: &Context<'_>,
        p: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.note(ctx, format!("{}/{}", p.id, c.id))
    }
    fn remove_container(
        &self,
        ctx: &Context<'_>,
        p: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.note(ctx, format!("{}/{}", p.id, c.id))
    }
    fn validate_container_adjustment(
        &self,
        ctx: &Context<'_>,
        req: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        let c = req.container.get_or_default();
        self.note(ctx, c.id.clone()).ok();
        match c.id.as_str() {
            "reject" => Err("no hooks here".into()),
            "broken" => Err(Box::new(Status::new(
                Code::Unavailable,
                "policy store down",
            ))),
            _ => Ok(()),
        }
    }
}

/// A runtime's Configure request with a name, version and NRI version.
fn configure_as(runtime: &str, version: &str, nri: &str) -> ConfigureRequest {
    ConfigureRequest {
        runtime_name: runtime.into(),
        runtime_version: version.into(),
        NRI_version: nri.into(),
        ..configure_req("")
    }
}

/// Starts a stub for `plugin`, answers RegisterPlugin, sends `configure`
/// and returns the runtime, the stub, the Configure reply (or error) and
/// what `start()` returned.
fn start<P: Plugin>(
    plugin: P,
    build: impl FnOnce(nri::stub::StubBuilder) -> nri::stub::StubBuilder,
    configure: ConfigureRequest,
) -> (
    FakeRuntime,
    Stub,
    nri::Result<ConfigureResponse>,
    nri::Result<()>,
    String,
) {
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let stub = build(
        Stub::builder(plugin)
            .plugin_name("v12")
            .plugin_index("10")
            .connection(a),
    )
    .build()
    .unwrap();
    let s2 = stub.clone();
    let started = thread::spawn(move || s2.start());
    let reg = rt
        .registered
        .recv_timeout(T)
        .expect("RegisterPlugin arrives");
    let reply = rt.call("Configure", &configure);
    let outcome = started.join().unwrap();
    (rt, stub, reply, outcome, reg.NRI_version)
}

fn v12() -> ConfigureRequest {
    configure_as("containerd", "v2.4.2", "v0.12.3")
}

fn both(p: &str, c: &str) -> (MessageField<PodSandbox>, MessageField<Container>) {
    (MessageField::some(pod(p)), MessageField::some(ctr(c)))
}

#[test]
fn registration_sends_the_crates_nri_version() {
    let (_rt, stub, reply, outcome, sent) = start(Everything::default(), |b| b, v12());
    outcome.unwrap();
    reply.unwrap();
    assert_eq!(sent, NRI_VERSION);
    assert_eq!(stub.plugin_nri_version(), "v0.12.5");
}

#[test]
fn every_event_reaches_its_handler_through_its_own_rpc_and_through_state_change() {
    let plugin = Arc::new(Everything::default());
    let (rt, _stub, reply, outcome, _) = start(plugin.clone(), |b| b, v12());
    outcome.unwrap();
    assert_eq!(reply.unwrap().events, EventMask::ALL.bits());

    // Through the per-event RPCs of NRI v0.12.
    let p = MessageField::some(pod("p1"));
    let (pp, cc) = both("p1", "c1");
    let _: RunPodSandboxResponse = rt
        .call(
            "RunPodSandbox",
            &RunPodSandboxRequest {
                pod: p.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: PostUpdatePodSandboxResponse = rt
        .call(
            "PostUpdatePodSandbox",
            &PostUpdatePodSandboxRequest {
                pod: p.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: StopPodSandboxResponse = rt
        .call(
            "StopPodSandbox",
            &StopPodSandboxRequest {
                pod: p.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: RemovePodSandboxResponse = rt
        .call(
            "RemovePodSandbox",
            &RemovePodSandboxRequest {
                pod: p.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: PostCreateContainerResponse = rt
        .call(
            "PostCreateContainer",
            &PostCreateContainerRequest {
                pod: pp.clone(),
                container: cc.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: StartContainerResponse = rt
        .call(
            "StartContainer",
            &StartContainerRequest {
                pod: pp.clone(),
                container: cc.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: PostStartContainerResponse = rt
        .call(
            "PostStartContainer",
            &PostStartContainerRequest {
                pod: pp.clone(),
                container: cc.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: PostUpdateContainerResponse = rt
        .call(
            "PostUpdateContainer",
            &PostUpdateContainerRequest {
                pod: pp.clone(),
                container: cc.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let _: RemoveContainerResponse = rt
        .call(
            "RemoveContainer",
            &RemoveContainerRequest {
                pod: pp.clone(),
                container: cc.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let through_rpcs = plugin.take();

    // The same events through StateChange, as runtimes before v0.12 send them.
    for event in [
        Event::RUN_POD_SANDBOX,
        Event::POST_UPDATE_POD_SANDBOX,
        Event::STOP_POD_SANDBOX,
        Event::REMOVE_POD_SANDBOX,
        Event::POST_CREATE_CONTAINER,
        Event::START_CONTAINER,
        Event::POST_START_CONTAINER,
        Event::POST_UPDATE_CONTAINER,
        Event::REMOVE_CONTAINER,
    ] {
        let container = if event.is_pod_event() {
            MessageField::none()
        } else {
            cc.clone()
        };
        let _: Empty = rt
            .call(
                "StateChange",
                &StateChangeEvent {
                    event: event.into(),
                    pod: p.clone(),
                    container,
                    ..Default::default()
                },
            )
            .unwrap();
    }
    let through_state_change = plugin.take();
    assert_eq!(
        through_rpcs,
        [
            "RunPodSandbox p1",
            "PostUpdatePodSandbox p1",
            "StopPodSandbox p1",
            "RemovePodSandbox p1",
            "PostCreateContainer p1/c1",
            "StartContainer p1/c1",
            "PostStartContainer p1/c1",
            "PostUpdateContainer p1/c1",
            "RemoveContainer p1/c1",
        ]
    );
    // The handler cannot tell the two ways apart, not even by ctx.method().
    assert_eq!(through_state_change, through_rpcs);
}

#[test]
fn update_pod_sandbox_brings_overhead_and_resources_and_its_error_fails_the_update() {
    let plugin = Arc::new(Everything::default());
    let (rt, _stub, _, outcome, _) = start(plugin.clone(), |b| b, v12());
    outcome.unwrap();
    let req = UpdatePodSandboxRequest {
        pod: MessageField::some(pod("p2")),
        overhead_linux_resources: MessageField::some(cpus("0")),
        linux_resources: MessageField::some(cpus("0-3")),
        ..Default::default()
    };
    let _: UpdatePodSandboxResponse = rt.call("UpdatePodSandbox", &req).unwrap();
    assert_eq!(plugin.take(), ["UpdatePodSandbox p2 overhead=0 total=0-3"]);

    let mut failing = req.clone();
    failing.pod.mut_or_insert_default().id = "fail".into();
    let err = rt
        .call::<_, UpdatePodSandboxResponse>("UpdatePodSandbox", &failing)
        .unwrap_err();
    assert!(err.to_string().contains("asked to fail"), "{err}");
}

fn cpus(list: &str) -> LinuxResources {
    let mut r = LinuxResources::new();
    r.cpu.mut_or_insert_default().cpus = list.into();
    r
}

#[test]
fn a_validator_accepts_rejects_with_its_reason_or_fails_with_a_status() {
    let plugin = Arc::new(Everything::default());
    let (rt, _stub, _, outcome, _) = start(plugin.clone(), |b| b, v12());
    outcome.unwrap();
    let validate = |id: &str| {
        let (pod, container) = both("p3", id);
        rt.call::<_, ValidateContainerAdjustmentResponse>(
            "ValidateContainerAdjustment",
            &ValidateContainerAdjustmentRequest {
                pod,
                container,
                ..Default::default()
            },
        )
    };
    let ok = validate("fine").unwrap();
    assert!(!ok.reject && ok.reason.is_empty());
    let no = validate("reject").unwrap();
    assert!(no.reject);
    assert_eq!(no.reason, "no hooks here");
    let err = validate("broken").unwrap_err();
    match err {
        Error::Status { code, message, .. } => {
            assert_eq!(code, Code::Unavailable);
            assert_eq!(message, "policy store down");
        }
        other => panic!("expected the validator's status, got {other}"),
    }
    assert_eq!(
        plugin.take(),
        [
            "ValidateContainerAdjustment fine",
            "ValidateContainerAdjustment reject",
            "ValidateContainerAdjustment broken"
        ]
    );
}

#[test]
fn an_unknown_state_change_event_is_acknowledged_and_the_plugin_keeps_serving() {
    let plugin = Arc::new(Everything::default());
    let (rt, _stub, _, outcome, _) = start(plugin.clone(), |b| b, v12());
    outcome.unwrap();
    for raw in [0, 4, 12, 14, 15, 99, -1] {
        let evt = StateChangeEvent {
            event: protobuf::EnumOrUnknown::from_i32(raw),
            pod: MessageField::some(pod("p")),
            ..Default::default()
        };
        let _: Empty = rt.call("StateChange", &evt).unwrap();
    }
    assert!(plugin.take().is_empty());
    let _: RunPodSandboxResponse = rt
        .call(
            "RunPodSandbox",
            &RunPodSandboxRequest {
                pod: MessageField::some(pod("after")),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(plugin.take(), ["RunPodSandbox after"]);
}

#[test]
fn an_old_runtime_gets_only_the_events_it_knows_and_the_plugin_serves_on() {
    // containerd 2.1 embeds NRI v0.8 and sends no NRI version.
    let plugin = Arc::new(Everything::default());
    let (rt, stub, reply, outcome, _) = start(
        plugin.clone(),
        |b| b,
        configure_as("containerd", "v2.1.4", ""),
    );
    outcome.unwrap();
    let mask = EventMask::from_bits(reply.unwrap().events);
    assert_eq!(mask, EventMask::V0_9_EVENTS);
    assert_eq!(stub.subscribed_events(), EventMask::V0_9_EVENTS);
    let runtime = stub.runtime().unwrap();
    assert_eq!(runtime.nri_version.as_ref().unwrap().to_string(), "v0.8.0");
    assert_eq!(runtime.nri_version_source, NriVersionSource::Inferred);
    assert_eq!(stub.runtime_nri_version().as_deref(), Some("v0.8.0"));
    let _: Empty = rt
        .state_change(Event::START_CONTAINER, pod("p"), ctr("c"))
        .unwrap();
    assert_eq!(plugin.take(), ["StartContainer p/c"]);
}

#[test]
fn a_runtime_inferred_as_v0_11_gets_the_new_events() {
    let (_rt, stub, reply, outcome, _) = start(
        Everything::default(),
        |b| b,
        configure_as("containerd", "v2.2.9", ""),
    );
    outcome.unwrap();
    assert_eq!(reply.unwrap().events, EventMask::ALL.bits());
    assert_eq!(stub.runtime_nri_version().as_deref(), Some("v0.11.0"));
}

#[test]
fn an_unknown_or_malformed_runtime_version_counts_as_v0_9() {
    for (name, version, nri) in [
        ("fake", "0.0", ""),
        ("containerd", "garbage", ""),
        ("fake", "1.0", "not-a-version"),
        ("fake", "1.0", "0.0.0-unknown"),
    ] {
        let (_rt, stub, reply, outcome, _) = start(
            Everything::default(),
            |b| b,
            configure_as(name, version, nri),
        );
        outcome.unwrap();
        assert_eq!(
            reply.unwrap().events,
            EventMask::V0_9_EVENTS.bits(),
            "{name} {version} {nri:?}"
        );
        assert_eq!(stub.runtime().unwrap().nri_version, None);
    }
}

#[test]
fn a_required_event_the_runtime_cannot_deliver_fails_registration_naming_both() {
    let (_rt, stub, reply, outcome, _) = start(
        Everything::default(),
        |b| b.require_events(Event::VALIDATE_CONTAINER_ADJUSTMENT),
        configure_as("cri-o", "1.32.3", ""),
    );
    let err = outcome.unwrap_err();
    assert!(matches!(err, Error::EventsUnavailable { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("10-v12"), "{text}");
    assert!(text.contains("ValidateContainerAdjustment"), "{text}");
    assert!(
        text.contains("cri-o 1.32.3 (NRI v0.9.0, inferred)"),
        "{text}"
    );
    assert_eq!(err.exit_code(), nri::EXIT_CONFIG);
    // The runtime heard it too, as the Configure error.
    let reply_err = reply.unwrap_err().to_string();
    assert!(
        reply_err.contains("ValidateContainerAdjustment"),
        "{reply_err}"
    );
    assert!(!stub.is_connected());
}

#[test]
fn a_required_event_a_new_runtime_delivers_is_simply_subscribed() {
    let (_rt, stub, reply, outcome, _) = start(
        Everything::default(),
        |b| b.require_events(Event::VALIDATE_CONTAINER_ADJUSTMENT),
        v12(),
    );
    outcome.unwrap();
    assert_eq!(reply.unwrap().events, EventMask::ALL.bits());
    assert!(stub
        .subscribed_events()
        .is_set(Event::VALIDATE_CONTAINER_ADJUSTMENT));
}

#[test]
fn requiring_an_event_the_plugin_does_not_handle_is_refused_at_build() {
    struct OnlyCreate;
    impl Plugin for OnlyCreate {
        fn events(&self) -> EventMask {
            Event::CREATE_CONTAINER.into()
        }
    }
    let err = Stub::builder(OnlyCreate)
        .plugin_name("x")
        .plugin_index("10")
        .require_events(Event::VALIDATE_CONTAINER_ADJUSTMENT)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("ValidateContainerAdjustment"),
        "{err}"
    );
}

#[test]
fn a_plugin_handling_only_new_events_is_refused_by_an_old_runtime_not_subscribed_to_everything() {
    struct PodUpdates;
    impl Plugin for PodUpdates {
        fn events(&self) -> EventMask {
            Event::UPDATE_POD_SANDBOX.into()
        }
    }
    let (_rt, _stub, reply, outcome, _) =
        start(PodUpdates, |b| b, configure_as("containerd", "v2.0.0", ""));
    assert!(matches!(outcome, Err(Error::EventsUnavailable { .. })));
    // Never an empty mask, which the runtime would read as "every event".
    assert!(reply.is_err());
}

#[test]
fn the_failure_policy_is_sent_only_when_set() {
    let (_rt, _stub, reply, outcome, _) = start(Everything::default(), |b| b, v12());
    outcome.unwrap();
    assert!(reply.unwrap().failure_policy.is_none());
    let (_rt, _stub, reply, outcome, _) = start(
        Everything::default(),
        |b| b.failure_policy(FailurePolicy::from_flags(true, false)),
        v12(),
    );
    outcome.unwrap();
    let policy = reply.unwrap().failure_policy.unwrap();
    assert!(policy.fail_request);
    assert!(!policy.keep_connected);
}

#[test]
fn stats_count_requests_errors_and_the_connection() {
    let plugin = Arc::new(Everything::default());
    let (rt, stub, _, outcome, _) = start(plugin.clone(), |b| b, v12());
    outcome.unwrap();
    let before = stub.stats();
    assert!(before.is_ready());
    assert_eq!(before.registrations, 1);
    assert_eq!(before.reconnects, 0);
    assert_eq!(before.subscribed, EventMask::ALL);
    assert_eq!(before.request("Configure").unwrap().calls, 1);
    assert_eq!(
        before.runtime.as_ref().unwrap().to_string(),
        "containerd v2.4.2 (NRI v0.12.3)"
    );

    for id in ["ok1", "fail", "ok2"] {
        let _ = rt.call::<_, StartContainerResponse>(
            "StartContainer",
            &StartContainerRequest {
                pod: MessageField::some(pod("p")),
                container: MessageField::some(ctr(id)),
                ..Default::default()
            },
        );
    }
    // The same event through StateChange counts under the same name.
    let _: Empty = rt
        .state_change(Event::START_CONTAINER, pod("p"), ctr("ok3"))
        .unwrap();
    let stats = stub.stats();
    let start = stats.request("StartContainer").unwrap();
    assert_eq!(start.calls, 4);
    assert_eq!(start.errors, 1);
    assert!(start.latency.max >= start.latency.p50);
    assert!(start.latency.p99 <= start.latency.max);
    assert_eq!(stats.request("CreateContainer").unwrap().calls, 0);

    let text = stats.to_prometheus();
    assert!(
        text.contains("nri_plugin_registered{plugin=\"10-v12\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("nri_plugin_requests_total{plugin=\"10-v12\",request=\"StartContainer\"} 4"),
        "{text}"
    );
    assert!(
        text.contains(
            "nri_plugin_request_errors_total{plugin=\"10-v12\",request=\"StartContainer\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("nri_version=\"v0.12.3\""), "{text}");
    assert!(
        text.contains(
            "request_duration_seconds_count{plugin=\"10-v12\",request=\"StartContainer\"} 4"
        ),
        "{text}"
    );

    rt.conn.close();
    let until = std::time::Instant::now() + T;
    while stub.stats().is_ready() && std::time::Instant::now() < until {
        thread::sleep(std::time::Duration::from_millis(5));
    }
    let after = stub.stats();
    assert!(!after.is_ready());
    assert_eq!(after.disconnects, 1);
}

#[test]
fn a_configure_failure_is_reported_even_when_the_runtime_closes_right_after_it() {
    // The Go runtime closes the connection as soon as it reads a Configure
    // error; start() must still report the failure, not the close. The
    // plugin's own after-reply action holds the worker after the reply, so
    // that the close is always seen first.
    struct SlowAfterReply;
    impl Plugin for SlowAfterReply {
        fn events(&self) -> EventMask {
            Event::CREATE_CONTAINER.mask() | Event::VALIDATE_CONTAINER_ADJUSTMENT.mask()
        }
        fn configure(
            &self,
            ctx: &Context<'_>,
            _config: &str,
            _runtime: &str,
            _version: &str,
        ) -> HandlerResult<Option<EventMask>> {
            ctx.after_reply(|_| thread::sleep(std::time::Duration::from_millis(300)));
            Ok(None)
        }
    }
    let (a, b) = UnixStream::pair().unwrap();
    let rt = FakeRuntime::new(b, OnRegister::Accept, false);
    let stub = Stub::builder(SlowAfterReply)
        .plugin_name("v12")
        .plugin_index("10")
        .require_events(Event::VALIDATE_CONTAINER_ADJUSTMENT)
        .connection(a)
        .build()
        .unwrap();
    let s2 = stub.clone();
    let started = thread::spawn(move || s2.start());
    rt.registered
        .recv_timeout(T)
        .expect("RegisterPlugin arrives");
    let reply = rt.call::<_, ConfigureResponse>("Configure", &configure_as("cri-o", "1.32.3", ""));
    assert!(reply.is_err());
    rt.conn.close();
    let err = started.join().unwrap().unwrap_err();
    assert!(
        matches!(err, Error::EventsUnavailable { .. }),
        "start() reported {err} instead of the Configure failure"
    );
}

#[test]
fn a_validation_request_with_missing_parts_reaches_the_validator_with_empty_ones() {
    let plugin = Arc::new(Everything::default());
    let (rt, _stub, _, outcome, _) = start(plugin.clone(), |b| b, v12());
    outcome.unwrap();
    // No pod, no container, no adjustment, no owners, no plugins.
    let verdict: ValidateContainerAdjustmentResponse = rt
        .call(
            "ValidateContainerAdjustment",
            &ValidateContainerAdjustmentRequest::new(),
        )
        .unwrap();
    assert!(!verdict.reject);
    assert_eq!(plugin.take(), ["ValidateContainerAdjustment "]);
    // A payload that does not decode (a pod field whose length runs past
    // the end): INTERNAL, and the plugin goes on serving.
    let err = rt
        .client
        .call_raw(
            nri::api::PLUGIN_SERVICE,
            "ValidateContainerAdjustment",
            vec![0x0a, 0x7f, 0x01],
            Some(T),
            Vec::new(),
        )
        .unwrap_err();
    match err {
        Error::Status { code, .. } => assert_eq!(code, Code::Internal),
        other => panic!("expected INTERNAL, got {other}"),
    }
    let ok: ValidateContainerAdjustmentResponse = rt
        .call(
            "ValidateContainerAdjustment",
            &ValidateContainerAdjustmentRequest::new(),
        )
        .unwrap();
    assert!(!ok.reject);
}
