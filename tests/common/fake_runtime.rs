//! A minimal hand-driven runtime side for the tests of `nri::stub`, built
//! from the crate's ttrpc connection, so that each test controls exactly
//! what the "runtime" does and when.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use nri::api::{
    ConfigureRequest, ConfigureResponse, Container, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Empty, Event, PodSandbox, RegisterPluginRequest, StateChangeEvent,
    SynchronizeRequest, SynchronizeResponse, UpdateContainersRequest, UpdateContainersResponse,
    PLUGIN_SERVICE, RUNTIME_SERVICE,
};
use nri::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use nri::ttrpc::{Client, Code, Connection, ConnectionBuilder, Framing, Services, Status};

use super::STEP;

/// What the fake runtime does on RegisterPlugin.
#[derive(Clone, Copy, PartialEq)]
pub enum OnRegister {
    Accept,
    Refuse,
    /// Calls Configure itself before replying to RegisterPlugin.
    ConfigureFirst,
}

pub struct FakeRuntime {
    pub conn: Connection,
    pub client: Client,
    pub registered: Receiver<RegisterPluginRequest>,
    pub updates: Receiver<Vec<ContainerUpdate>>,
}

pub fn configure_req(config: &str) -> ConfigureRequest {
    ConfigureRequest {
        config: config.into(),
        runtime_name: "fake".into(),
        runtime_version: "0.0".into(),
        registration_timeout: 5000,
        request_timeout: 2000,
        ..Default::default()
    }
}

impl FakeRuntime {
    pub fn new(stream: UnixStream, on_register: OnRegister, fail_updates: bool) -> FakeRuntime {
        let (reg_tx, reg_rx) = bounded(8);
        let (upd_tx, upd_rx): (Sender<Vec<ContainerUpdate>>, _) = bounded(64);
        let client_slot: Arc<Mutex<Option<Client>>> = Arc::new(Mutex::new(None));
        let mut services = Services::new();
        let slot = client_slot.clone();
        services.add_unary(
            RUNTIME_SERVICE,
            "RegisterPlugin",
            move |ctx, req: RegisterPluginRequest| {
                // Told once the reply is on the wire: a test that goes on to
                // call Configure and close the connection must not race
                // the reply to RegisterPlugin.
                let tx = reg_tx.clone();
                ctx.after_reply(move || {
                    let _ = tx.send(req);
                });
                match on_register {
                    OnRegister::Accept => Ok(Empty::new()),
                    OnRegister::Refuse => {
                        Err(Status::new(Code::Unknown, "plugin index \"7\" is invalid"))
                    }
                    OnRegister::ConfigureFirst => {
                        let c = slot.lock().unwrap().clone().unwrap();
                        let resp: ConfigureResponse = c
                            .call(PLUGIN_SERVICE, "Configure", &configure_req(""), Some(STEP))
                            .map_err(|e| Status::new(Code::Internal, e.to_string()))?;
                        assert_ne!(resp.events, 0);
                        Ok(Empty::new())
                    }
                }
            },
        );
        services.add_unary(
            RUNTIME_SERVICE,
            "UpdateContainers",
            move |_ctx, req: UpdateContainersRequest| {
                let failed = if fail_updates {
                    req.update.clone()
                } else {
                    Vec::new()
                };
                let _ = upd_tx.send(req.update);
                Ok(UpdateContainersResponse {
                    failed,
                    ..Default::default()
                })
            },
        );
        let conn = ConnectionBuilder::new(stream, Framing::Mux)
            .serve(RUNTIME_SERVICE_CONN, Arc::new(services))
            .open(PLUGIN_SERVICE_CONN)
            .start()
            .unwrap();
        let client = conn.client(PLUGIN_SERVICE_CONN).unwrap();
        *client_slot.lock().unwrap() = Some(client.clone());
        FakeRuntime {
            conn,
            client,
            registered: reg_rx,
            updates: upd_rx,
        }
    }

    pub fn configure(&self, config: &str) -> nri::Result<ConfigureResponse> {
        self.client.call(
            PLUGIN_SERVICE,
            "Configure",
            &configure_req(config),
            Some(STEP),
        )
    }

    /// Calls any Plugin method with any request.
    pub fn call<Req: protobuf::Message, Resp: protobuf::Message>(
        &self,
        method: &str,
        req: &Req,
    ) -> nri::Result<Resp> {
        self.client.call(PLUGIN_SERVICE, method, req, Some(STEP))
    }

    pub fn synchronize(
        &self,
        pods: Vec<PodSandbox>,
        containers: Vec<Container>,
        more: bool,
    ) -> nri::Result<SynchronizeResponse> {
        let req = SynchronizeRequest {
            pods,
            containers,
            more,
            ..Default::default()
        };
        self.client
            .call(PLUGIN_SERVICE, "Synchronize", &req, Some(STEP))
    }

    pub fn create(
        &self,
        pod: PodSandbox,
        ctr: Container,
        timeout: Duration,
    ) -> nri::Result<CreateContainerResponse> {
        let req = CreateContainerRequest {
            pod: Some(pod).into(),
            container: Some(ctr).into(),
            ..Default::default()
        };
        self.client
            .call(PLUGIN_SERVICE, "CreateContainer", &req, Some(timeout))
    }

    pub fn state_change(
        &self,
        event: Event,
        pod: PodSandbox,
        ctr: Container,
    ) -> nri::Result<Empty> {
        let req = StateChangeEvent {
            event: event.into(),
            pod: Some(pod).into(),
            container: Some(ctr).into(),
            ..Default::default()
        };
        self.client
            .call(PLUGIN_SERVICE, "StateChange", &req, Some(STEP))
    }
}

pub fn pod(id: &str) -> PodSandbox {
    PodSandbox {
        id: id.into(),
        name: format!("{id}-name"),
        namespace: "default".into(),
        ..Default::default()
    }
}

pub fn ctr(id: &str) -> Container {
    Container {
        id: id.into(),
        pod_sandbox_id: "pod0".into(),
        name: format!("{id}-name"),
        ..Default::default()
    }
}
