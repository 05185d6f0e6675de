//! A hand-rolled plugin for the tests of `nri::runtime`, built on
//! `nri::ttrpc` only (no stub): it serves the plugin service on logical
//! connection 1 and calls RegisterPlugin on connection 2 from another
//! thread (so Configure may arrive before the reply). A [`Spec`] says what
//! it answers; a [`Recorder`] keeps what it saw.
//!
//! It speaks the API of NRI v0.12 by default (every per-event RPC,
//! UpdatePodSandbox, ValidateContainerAdjustment, its NRI version in the
//! registration) or, with [`PluginApi::V0_9`], only what a v0.9.0 plugin
//! serves (everything else is answered UNIMPLEMENTED by the ttrpc layer).

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Receiver;
use nri::api::{
    ConfigureRequest, ConfigureResponse, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Empty, EventMask, FailurePolicy, PostCreateContainerRequest,
    PostStartContainerRequest, PostUpdateContainerRequest, PostUpdatePodSandboxRequest,
    RegisterPluginRequest, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StateChangeEvent, StopContainerRequest, StopContainerResponse,
    StopPodSandboxRequest, SynchronizeRequest, SynchronizeResponse, UpdateContainerRequest,
    UpdateContainerResponse, UpdateContainersRequest, UpdateContainersResponse,
    UpdatePodSandboxRequest, ValidateContainerAdjustmentRequest,
    ValidateContainerAdjustmentResponse, PLUGIN_SERVICE, RUNTIME_SERVICE,
};
use nri::ttrpc::{
    Client, Connection, ConnectionBuilder, ConnectionOptions, Framing, Services, Status,
};
use protobuf::MessageField;

use super::STEP;

/// Which plugin API the test plugin serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginApi {
    /// NRI v0.9.0: Configure, Synchronize, Shutdown, CreateContainer,
    /// UpdateContainer, StopContainer and StateChange only.
    V0_9,
    /// NRI v0.12: also every per-event RPC, UpdatePodSandbox and
    /// ValidateContainerAdjustment.
    V0_12,
}

/// What a handler gets besides its request.
pub struct Peer<'a> {
    /// Client for the runtime service (connection 2).
    pub runtime: &'a Client,
    /// The plugin's connection (to close it from a handler).
    pub conn: &'a Connection,
}

/// A request handler.
pub type Handler<Req, Resp> = Arc<dyn Fn(&Peer<'_>, Req) -> Result<Resp, Status> + Send + Sync>;

/// Runs before every event request, with the name it is recorded under
/// (`CreateContainer`, `StartContainer`, `StateChange:START_CONTAINER`...):
/// an error becomes the reply; it may also sleep or close the connection.
pub type Before = Arc<dyn Fn(&Peer<'_>, &str) -> Result<(), Status> + Send + Sync>;

/// How the test plugin behaves.
#[derive(Clone)]
pub struct Spec {
    pub name: String,
    pub idx: String,
    pub events: i32,
    pub api: PluginApi,
    /// Sent in RegisterPluginRequest.NRI_version.
    pub nri_version: String,
    /// Sent in the Configure reply.
    pub policy: Option<FailurePolicy>,
    pub on_configure: Option<Handler<ConfigureRequest, ConfigureResponse>>,
    pub on_sync: Handler<SynchronizeRequest, SynchronizeResponse>,
    pub on_create: Handler<CreateContainerRequest, CreateContainerResponse>,
    pub on_update: Handler<UpdateContainerRequest, UpdateContainerResponse>,
    pub on_stop: Handler<StopContainerRequest, StopContainerResponse>,
    pub on_validate:
        Handler<ValidateContainerAdjustmentRequest, ValidateContainerAdjustmentResponse>,
    pub before: Option<Before>,
}

impl Spec {
    /// A v0.12 plugin that subscribes to `events`, annotates created
    /// containers with `seen=<container id>`, updates nothing and accepts
    /// every adjustment it validates.
    pub fn new(name: &str, idx: &str, events: EventMask) -> Spec {
        Spec {
            name: name.to_string(),
            idx: idx.to_string(),
            events: events.bits(),
            api: PluginApi::V0_12,
            nri_version: "v0.12.5".to_string(),
            policy: None,
            on_configure: None,
            on_sync: Arc::new(|_, req: SynchronizeRequest| {
                Ok(SynchronizeResponse {
                    more: req.more,
                    ..Default::default()
                })
            }),
            on_create: Arc::new(|_, req: CreateContainerRequest| {
                let mut adjust = nri::api::ContainerAdjustment::new();
                adjust
                    .annotations
                    .insert("seen".into(), req.container.id.clone());
                Ok(CreateContainerResponse {
                    adjust: MessageField::some(adjust),
                    ..Default::default()
                })
            }),
            on_update: Arc::new(|_, _| Ok(UpdateContainerResponse::new())),
            on_stop: Arc::new(|_, _| Ok(StopContainerResponse::new())),
            on_validate: Arc::new(|_, _| Ok(ValidateContainerAdjustmentResponse::new())),
            before: None,
        }
    }

    /// Serves only what a v0.9.0 plugin serves and sends no NRI version.
    pub fn v0_9(mut self) -> Spec {
        self.api = PluginApi::V0_9;
        self.nri_version = String::new();
        self
    }

    pub fn policy(mut self, fail_request: bool, keep_connected: bool) -> Spec {
        self.policy = Some(FailurePolicy {
            fail_request,
            keep_connected,
            ..Default::default()
        });
        self
    }

    pub fn on_sync(
        mut self,
        f: impl Fn(&Peer<'_>, SynchronizeRequest) -> Result<SynchronizeResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_sync = Arc::new(f);
        self
    }

    pub fn on_create(
        mut self,
        f: impl Fn(&Peer<'_>, CreateContainerRequest) -> Result<CreateContainerResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_create = Arc::new(f);
        self
    }

    pub fn on_update(
        mut self,
        f: impl Fn(&Peer<'_>, UpdateContainerRequest) -> Result<UpdateContainerResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_update = Arc::new(f);
        self
    }

    pub fn on_stop(
        mut self,
        f: impl Fn(&Peer<'_>, StopContainerRequest) -> Result<StopContainerResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_stop = Arc::new(f);
        self
    }

    pub fn on_configure(
        mut self,
        f: impl Fn(&Peer<'_>, ConfigureRequest) -> Result<ConfigureResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_configure = Some(Arc::new(f));
        self
    }

    pub fn on_validate(
        mut self,
        f: impl Fn(
                &Peer<'_>,
                ValidateContainerAdjustmentRequest,
            ) -> Result<ValidateContainerAdjustmentResponse, Status>
            + Send
            + Sync
            + 'static,
    ) -> Spec {
        self.on_validate = Arc::new(f);
        self
    }

    pub fn before(
        mut self,
        f: impl Fn(&Peer<'_>, &str) -> Result<(), Status> + Send + Sync + 'static,
    ) -> Spec {
        self.before = Some(Arc::new(f));
        self
    }
}

/// What the test plugin saw.
#[derive(Default)]
pub struct Recorder {
    /// Every request, in arrival order, by the name it is recorded under.
    pub calls: Mutex<Vec<String>>,
    /// `(call, pod id, container id)` of every event request.
    pub events: Mutex<Vec<(String, String, String)>>,
    pub configure: Mutex<Option<ConfigureRequest>>,
    /// `(pods, containers, more)` of each Synchronize request.
    pub sync_chunks: Mutex<Vec<(usize, usize, bool)>>,
    pub validations: Mutex<Vec<ValidateContainerAdjustmentRequest>>,
    pub pod_updates: Mutex<Vec<UpdatePodSandboxRequest>>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls after Configure and Synchronize.
    pub fn event_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c != "Configure" && c != "Synchronize")
            .collect()
    }

    pub fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

/// The parts of the plugin a handler closure needs.
#[derive(Clone)]
struct Shared {
    rec: Arc<Recorder>,
    runtime: Arc<OnceLock<Client>>,
    conn: Arc<OnceLock<Connection>>,
    before: Option<Before>,
}

impl Shared {
    /// Records an event request and runs the `before` hook.
    fn event(&self, call: &str, pod: &str, ctr: &str) -> Result<(), Status> {
        self.rec.note(call.to_string());
        self.rec
            .events
            .lock()
            .unwrap()
            .push((call.to_string(), pod.to_string(), ctr.to_string()));
        match &self.before {
            Some(f) => self.with_peer(|p| f(p, call)),
            None => Ok(()),
        }
    }

    fn with_peer<T>(&self, f: impl FnOnce(&Peer<'_>) -> T) -> T {
        let runtime = self
            .runtime
            .get()
            .expect("runtime client set before any request");
        let conn = self.conn.get().expect("connection set before any request");
        f(&Peer { runtime, conn })
    }
}

pub struct TestPlugin {
    pub conn: Connection,
    pub rec: Arc<Recorder>,
    pub runtime: Client,
    registered: Receiver<nri::Result<Empty>>,
}

/// Registers a per-event RPC whose request has `pod` (and `container`).
macro_rules! per_event {
    ($services:expr, $shared:expr, $method:literal, $req:ty, pod) => {{
        let s = $shared.clone();
        $services.add_unary(PLUGIN_SERVICE, $method, move |_ctx, req: $req| {
            s.event($method, &req.pod.id, "-")?;
            Ok(Empty::new())
        });
    }};
    ($services:expr, $shared:expr, $method:literal, $req:ty, container) => {{
        let s = $shared.clone();
        $services.add_unary(PLUGIN_SERVICE, $method, move |_ctx, req: $req| {
            s.event($method, &req.pod.id, &req.container.id)?;
            Ok(Empty::new())
        });
    }};
}

impl TestPlugin {
    /// Serves the plugin service on `stream`, then registers (from another
    /// thread, so Configure may arrive before the reply).
    pub fn start(stream: UnixStream, spec: Spec) -> TestPlugin {
        Self::start_with(stream, spec, true)
    }

    pub fn start_with(stream: UnixStream, spec: Spec, register: bool) -> TestPlugin {
        let shared = Shared {
            rec: Arc::new(Recorder::default()),
            runtime: Arc::new(OnceLock::new()),
            conn: Arc::new(OnceLock::new()),
            before: spec.before.clone(),
        };
        let rec = shared.rec.clone();
        let mut services = Services::new();

        let (s, sp) = (shared.clone(), spec.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "Configure",
            move |_ctx, req: ConfigureRequest| {
                s.rec.note("Configure".into());
                *s.rec.configure.lock().unwrap() = Some(req.clone());
                match &sp.on_configure {
                    Some(f) => s.with_peer(|p| f(p, req)),
                    None => Ok(ConfigureResponse {
                        events: sp.events,
                        failure_policy: MessageField::from_option(sp.policy.clone()),
                        ..Default::default()
                    }),
                }
            },
        );
        let (s, sp) = (shared.clone(), spec.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "Synchronize",
            move |_ctx, req: SynchronizeRequest| {
                s.rec.note("Synchronize".into());
                s.rec.sync_chunks.lock().unwrap().push((
                    req.pods.len(),
                    req.containers.len(),
                    req.more,
                ));
                s.with_peer(|p| (sp.on_sync)(p, req))
            },
        );
        let s = shared.clone();
        services.add_unary(PLUGIN_SERVICE, "Shutdown", move |_ctx, _req: Empty| {
            s.rec.note("Shutdown".into());
            Ok(Empty::new())
        });
        let (s, sp) = (shared.clone(), spec.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "CreateContainer",
            move |_ctx, req: CreateContainerRequest| {
                s.event("CreateContainer", &req.pod.id, &req.container.id)?;
                s.with_peer(|p| (sp.on_create)(p, req))
            },
        );
        let (s, sp) = (shared.clone(), spec.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "UpdateContainer",
            move |_ctx, req: UpdateContainerRequest| {
                s.event("UpdateContainer", &req.pod.id, &req.container.id)?;
                s.with_peer(|p| (sp.on_update)(p, req))
            },
        );
        let (s, sp) = (shared.clone(), spec.clone());
        services.add_unary(
            PLUGIN_SERVICE,
            "StopContainer",
            move |_ctx, req: StopContainerRequest| {
                s.event("StopContainer", &req.pod.id, &req.container.id)?;
                s.with_peer(|p| (sp.on_stop)(p, req))
            },
        );
        let s = shared.clone();
        services.add_unary(
            PLUGIN_SERVICE,
            "StateChange",
            move |_ctx, req: StateChangeEvent| {
                let call = format!("StateChange:{:?}", req.event.enum_value_or_default());
                let ctr = if req.container.is_some() {
                    req.container.id.as_str()
                } else {
                    "-"
                };
                s.event(&call, &req.pod.id, ctr)?;
                Ok(Empty::new())
            },
        );
        if spec.api == PluginApi::V0_12 {
            per_event!(services, shared, "RunPodSandbox", RunPodSandboxRequest, pod);
            per_event!(
                services,
                shared,
                "PostUpdatePodSandbox",
                PostUpdatePodSandboxRequest,
                pod
            );
            per_event!(
                services,
                shared,
                "StopPodSandbox",
                StopPodSandboxRequest,
                pod
            );
            per_event!(
                services,
                shared,
                "RemovePodSandbox",
                RemovePodSandboxRequest,
                pod
            );
            per_event!(
                services,
                shared,
                "PostCreateContainer",
                PostCreateContainerRequest,
                container
            );
            per_event!(
                services,
                shared,
                "StartContainer",
                StartContainerRequest,
                container
            );
            per_event!(
                services,
                shared,
                "PostStartContainer",
                PostStartContainerRequest,
                container
            );
            per_event!(
                services,
                shared,
                "PostUpdateContainer",
                PostUpdateContainerRequest,
                container
            );
            per_event!(
                services,
                shared,
                "RemoveContainer",
                RemoveContainerRequest,
                container
            );
            let s = shared.clone();
            services.add_unary(
                PLUGIN_SERVICE,
                "UpdatePodSandbox",
                move |_ctx, req: UpdatePodSandboxRequest| {
                    s.event("UpdatePodSandbox", &req.pod.id, "-")?;
                    s.rec.pod_updates.lock().unwrap().push(req);
                    Ok(Empty::new())
                },
            );
            let (s, sp) = (shared.clone(), spec.clone());
            services.add_unary(
                PLUGIN_SERVICE,
                "ValidateContainerAdjustment",
                move |_ctx, req: ValidateContainerAdjustmentRequest| {
                    s.event(
                        "ValidateContainerAdjustment",
                        &req.pod.id,
                        &req.container.id,
                    )?;
                    s.rec.validations.lock().unwrap().push(req.clone());
                    s.with_peer(|p| (sp.on_validate)(p, req))
                },
            );
        }

        let conn = ConnectionBuilder::new(stream, Framing::Mux)
            .options(ConnectionOptions {
                workers: 3,
                name: format!("test-plugin-{}", spec.name),
                ..Default::default()
            })
            .serve(1, Arc::new(services))
            .open(2)
            .start()
            .expect("start the test plugin's connection");
        let runtime = conn.client(2).expect("client on connection 2");
        let _ = shared.runtime.set(runtime.clone());
        let _ = shared.conn.set(conn.clone());

        let (tx, registered) = crossbeam_channel::bounded(1);
        if register {
            let client = runtime.clone();
            let req = RegisterPluginRequest {
                plugin_name: spec.name.clone(),
                plugin_idx: spec.idx.clone(),
                NRI_version: spec.nri_version.clone(),
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

    pub fn registration(&self) -> nri::Result<Empty> {
        self.registered
            .recv_timeout(STEP)
            .expect("RegisterPlugin call did not finish in time")
    }

    pub fn update_containers(
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
    pub fn closed_within(&self, timeout: Duration) -> bool {
        self.conn.wait_timeout(timeout) && self.conn.is_closed()
    }
}

impl Drop for TestPlugin {
    fn drop(&mut self) {
        self.conn.close();
    }
}
