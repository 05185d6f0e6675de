//! The one dispatch table for events.
//!
//! An event reaches the stub in one of two ways: through its own RPC (NRI
//! v0.12 runtimes: `RunPodSandbox`, `StartContainer`, ...) or, for the
//! notifications, through `StateChange` (v0.9 to v0.11 runtimes, and v0.12
//! runtimes talking to an older plugin). Both are turned into an [`Event`]
//! value here, before any plugin code runs, and [`Stub::dispatch`] is the
//! only place that calls a plugin's event handlers: a plugin writes each
//! handler once and never learns which way an event came.

use crate::api::Container;
use crate::api::{
    ContainerAdjustment, ContainerUpdate, CreateContainerRequest, CreateContainerResponse, Empty,
    Event as EventKind, LinuxResources, PodSandbox, PostCreateContainerRequest,
    PostCreateContainerResponse, PostStartContainerRequest, PostStartContainerResponse,
    PostUpdateContainerRequest, PostUpdateContainerResponse, PostUpdatePodSandboxRequest,
    PostUpdatePodSandboxResponse, RemoveContainerRequest, RemoveContainerResponse,
    RemovePodSandboxRequest, RemovePodSandboxResponse, RunPodSandboxRequest, RunPodSandboxResponse,
    StartContainerRequest, StartContainerResponse, StateChangeEvent, StopContainerRequest,
    StopContainerResponse, StopPodSandboxRequest, StopPodSandboxResponse, UpdateContainerRequest,
    UpdateContainerResponse, UpdatePodSandboxRequest, UpdatePodSandboxResponse,
    ValidateContainerAdjustmentRequest, ValidateContainerAdjustmentResponse, PLUGIN_SERVICE,
};
use crate::ttrpc::{RequestContext, Services, Status};

use super::context::Context;
use super::lifecycle::{HandlerScope, Stub};
use super::serve::{handler, handler_status};
use super::stats::Slot;

/// A pod sandbox event's subject.
type Pod = PodSandbox;

/// One event, however it arrived.
pub(crate) enum Event {
    RunPodSandbox(Pod),
    UpdatePodSandbox {
        pod: Pod,
        overhead: LinuxResources,
        resources: LinuxResources,
    },
    PostUpdatePodSandbox(Pod),
    StopPodSandbox(Pod),
    RemovePodSandbox(Pod),
    CreateContainer(Pod, Container),
    PostCreateContainer(Pod, Container),
    StartContainer(Pod, Container),
    PostStartContainer(Pod, Container),
    UpdateContainer(Pod, Container, LinuxResources),
    PostUpdateContainer(Pod, Container),
    StopContainer(Pod, Container),
    RemoveContainer(Pod, Container),
    ValidateContainerAdjustment(Box<ValidateContainerAdjustmentRequest>),
}

/// What a handler gave back.
pub(crate) enum Reply {
    /// A notification was handled.
    Done,
    /// CreateContainer's adjustment and updates.
    Create(ContainerAdjustment, Vec<ContainerUpdate>),
    /// UpdateContainer's or StopContainer's updates.
    Updates(Vec<ContainerUpdate>),
    /// A validator's verdict.
    Verdict(ValidateContainerAdjustmentResponse),
}

impl Event {
    /// The event's kind.
    pub(crate) fn kind(&self) -> EventKind {
        match self {
            Event::RunPodSandbox(_) => EventKind::RUN_POD_SANDBOX,
            Event::UpdatePodSandbox { .. } => EventKind::UPDATE_POD_SANDBOX,
            Event::PostUpdatePodSandbox(_) => EventKind::POST_UPDATE_POD_SANDBOX,
            Event::StopPodSandbox(_) => EventKind::STOP_POD_SANDBOX,
            Event::RemovePodSandbox(_) => EventKind::REMOVE_POD_SANDBOX,
            Event::CreateContainer(..) => EventKind::CREATE_CONTAINER,
            Event::PostCreateContainer(..) => EventKind::POST_CREATE_CONTAINER,
            Event::StartContainer(..) => EventKind::START_CONTAINER,
            Event::PostStartContainer(..) => EventKind::POST_START_CONTAINER,
            Event::UpdateContainer(..) => EventKind::UPDATE_CONTAINER,
            Event::PostUpdateContainer(..) => EventKind::POST_UPDATE_CONTAINER,
            Event::StopContainer(..) => EventKind::STOP_CONTAINER,
            Event::RemoveContainer(..) => EventKind::REMOVE_CONTAINER,
            Event::ValidateContainerAdjustment(_) => EventKind::VALIDATE_CONTAINER_ADJUSTMENT,
        }
    }

    /// `pod/container` (or the pod alone) for log lines.
    pub(crate) fn subject(&self) -> String {
        let (pod, ctr) = match self {
            Event::RunPodSandbox(p)
            | Event::PostUpdatePodSandbox(p)
            | Event::StopPodSandbox(p)
            | Event::RemovePodSandbox(p)
            | Event::UpdatePodSandbox { pod: p, .. } => (p, None),
            Event::CreateContainer(p, c)
            | Event::PostCreateContainer(p, c)
            | Event::StartContainer(p, c)
            | Event::PostStartContainer(p, c)
            | Event::UpdateContainer(p, c, _)
            | Event::PostUpdateContainer(p, c)
            | Event::StopContainer(p, c)
            | Event::RemoveContainer(p, c) => (p, Some(c)),
            Event::ValidateContainerAdjustment(r) => {
                (r.pod.get_or_default(), Some(r.container.get_or_default()))
            }
        };
        let pod_name = if pod.namespace.is_empty() {
            pod.name.clone()
        } else {
            format!("{}/{}", pod.namespace, pod.name)
        };
        match ctr {
            Some(c) => format!("container {pod_name}/{} ({})", c.name, c.id),
            None => format!("pod {pod_name} ({})", pod.id),
        }
    }

    /// The event a `StateChange` carries, or `None` for an event that
    /// `StateChange` never carries (a runtime bug, or an event of a newer
    /// NRI): those are logged and acknowledged, as Go's stub does.
    fn from_state_change(evt: StateChangeEvent) -> Option<Event> {
        let StateChangeEvent {
            event,
            pod,
            container,
            ..
        } = evt;
        let pod = pod.unwrap_or_default();
        let ctr = move || container.unwrap_or_default();
        Some(match event.enum_value() {
            Ok(EventKind::RUN_POD_SANDBOX) => Event::RunPodSandbox(pod),
            Ok(EventKind::POST_UPDATE_POD_SANDBOX) => Event::PostUpdatePodSandbox(pod),
            Ok(EventKind::STOP_POD_SANDBOX) => Event::StopPodSandbox(pod),
            Ok(EventKind::REMOVE_POD_SANDBOX) => Event::RemovePodSandbox(pod),
            Ok(EventKind::POST_CREATE_CONTAINER) => Event::PostCreateContainer(pod, ctr()),
            Ok(EventKind::START_CONTAINER) => Event::StartContainer(pod, ctr()),
            Ok(EventKind::POST_START_CONTAINER) => Event::PostStartContainer(pod, ctr()),
            Ok(EventKind::POST_UPDATE_CONTAINER) => Event::PostUpdateContainer(pod, ctr()),
            Ok(EventKind::REMOVE_CONTAINER) => Event::RemoveContainer(pod, ctr()),
            _ => return None,
        })
    }
}

impl Stub {
    /// Calls the plugin's handler for `event`. Every event goes through
    /// here, whichever RPC carried it.
    pub(crate) fn dispatch(&self, rc: &RequestContext, event: Event) -> Result<Reply, Status> {
        let started = self.inner.stats.clock();
        let kind = event.kind();
        let reply = self.call_handler(rc, &event, kind);
        let failed = match &reply {
            Ok(Reply::Verdict(v)) => v.reject,
            Ok(_) => false,
            Err(_) => true,
        };
        self.record(Slot::event(kind), rc, started, failed);
        reply
    }

    fn call_handler(
        &self,
        rc: &RequestContext,
        event: &Event,
        kind: EventKind,
    ) -> Result<Reply, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
            request: kind.name(),
        };
        let p = &self.inner.plugin;
        let _scope = HandlerScope::enter();
        let result = match event {
            Event::RunPodSandbox(pod) => p.run_pod_sandbox(&ctx, pod).map(|()| Reply::Done),
            Event::UpdatePodSandbox {
                pod,
                overhead,
                resources,
            } => p
                .update_pod_sandbox(&ctx, pod, overhead, resources)
                .map(|()| Reply::Done),
            Event::PostUpdatePodSandbox(pod) => {
                p.post_update_pod_sandbox(&ctx, pod).map(|()| Reply::Done)
            }
            Event::StopPodSandbox(pod) => p.stop_pod_sandbox(&ctx, pod).map(|()| Reply::Done),
            Event::RemovePodSandbox(pod) => p.remove_pod_sandbox(&ctx, pod).map(|()| Reply::Done),
            Event::CreateContainer(pod, c) => p
                .create_container(&ctx, pod, c)
                .map(|(adjust, updates)| Reply::Create(adjust, updates)),
            Event::PostCreateContainer(pod, c) => {
                p.post_create_container(&ctx, pod, c).map(|()| Reply::Done)
            }
            Event::StartContainer(pod, c) => p.start_container(&ctx, pod, c).map(|()| Reply::Done),
            Event::PostStartContainer(pod, c) => {
                p.post_start_container(&ctx, pod, c).map(|()| Reply::Done)
            }
            Event::UpdateContainer(pod, c, resources) => p
                .update_container(&ctx, pod, c, resources)
                .map(Reply::Updates),
            Event::PostUpdateContainer(pod, c) => {
                p.post_update_container(&ctx, pod, c).map(|()| Reply::Done)
            }
            Event::StopContainer(pod, c) => p.stop_container(&ctx, pod, c).map(Reply::Updates),
            Event::RemoveContainer(pod, c) => {
                p.remove_container(&ctx, pod, c).map(|()| Reply::Done)
            }
            Event::ValidateContainerAdjustment(req) => {
                // A validator's error is its rejection, as in Go's stub;
                // only a ttrpc Status fails the request itself.
                return Ok(Reply::Verdict(
                    match p.validate_container_adjustment(&ctx, req) {
                        Ok(()) => ValidateContainerAdjustmentResponse::new(),
                        Err(e) if e.is::<Status>() => {
                            let status = handler_status(e);
                            log::warn!(
                                "plugin {}: {kind} handler failed for {}: {}",
                                self.name(),
                                event.subject(),
                                status.message
                            );
                            return Err(status);
                        }
                        Err(e) => {
                            log::info!(
                                "plugin {}: rejected the adjustment of {}: {e}",
                                self.name(),
                                event.subject()
                            );
                            ValidateContainerAdjustmentResponse {
                                reject: true,
                                reason: e.to_string(),
                                ..Default::default()
                            }
                        }
                    },
                ));
            }
        };
        result.map_err(|e| {
            let status = handler_status(e);
            log::warn!(
                "plugin {}: {kind} handler failed for {}: {}",
                self.name(),
                event.subject(),
                status.message
            );
            status
        })
    }

    /// Serves a `StateChange`: the notifications of runtimes before v0.12.
    fn state_change(&self, rc: &RequestContext, evt: StateChangeEvent) -> Result<Empty, Status> {
        let raw = evt.event;
        match Event::from_state_change(evt) {
            Some(event) => self.dispatch(rc, event).map(|_| Empty::new()),
            None => {
                log::debug!(
                    "plugin {}: ignoring a StateChange for event {} (not a state change event)",
                    self.name(),
                    raw.value()
                );
                Ok(Empty::new())
            }
        }
    }
}

/// Serves a per-event RPC whose reply is empty.
macro_rules! notification {
    ($services:expr, $weak:expr, $method:literal, $req:ty, $resp:ty, |$r:ident| $event:expr) => {
        $services.add_unary(
            PLUGIN_SERVICE,
            $method,
            handler($weak, |stub: &Stub, rc: &RequestContext, $r: $req| {
                stub.dispatch(rc, $event).map(|_| <$resp>::new())
            }),
        );
    };
}

/// Registers every event RPC (the per-event ones and `StateChange`).
pub(crate) fn add_event_methods(s: &mut Services, w: &std::sync::Weak<super::lifecycle::Inner>) {
    notification!(
        s,
        w,
        "RunPodSandbox",
        RunPodSandboxRequest,
        RunPodSandboxResponse,
        |r| Event::RunPodSandbox(r.pod.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "UpdatePodSandbox",
        UpdatePodSandboxRequest,
        UpdatePodSandboxResponse,
        |r| {
            Event::UpdatePodSandbox {
                pod: r.pod.unwrap_or_default(),
                overhead: r.overhead_linux_resources.unwrap_or_default(),
                resources: r.linux_resources.unwrap_or_default(),
            }
        }
    );
    notification!(
        s,
        w,
        "PostUpdatePodSandbox",
        PostUpdatePodSandboxRequest,
        PostUpdatePodSandboxResponse,
        |r| Event::PostUpdatePodSandbox(r.pod.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "StopPodSandbox",
        StopPodSandboxRequest,
        StopPodSandboxResponse,
        |r| Event::StopPodSandbox(r.pod.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "RemovePodSandbox",
        RemovePodSandboxRequest,
        RemovePodSandboxResponse,
        |r| Event::RemovePodSandbox(r.pod.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "PostCreateContainer",
        PostCreateContainerRequest,
        PostCreateContainerResponse,
        |r| Event::PostCreateContainer(r.pod.unwrap_or_default(), r.container.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "StartContainer",
        StartContainerRequest,
        StartContainerResponse,
        |r| Event::StartContainer(r.pod.unwrap_or_default(), r.container.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "PostStartContainer",
        PostStartContainerRequest,
        PostStartContainerResponse,
        |r| Event::PostStartContainer(r.pod.unwrap_or_default(), r.container.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "PostUpdateContainer",
        PostUpdateContainerRequest,
        PostUpdateContainerResponse,
        |r| Event::PostUpdateContainer(r.pod.unwrap_or_default(), r.container.unwrap_or_default())
    );
    notification!(
        s,
        w,
        "RemoveContainer",
        RemoveContainerRequest,
        RemoveContainerResponse,
        |r| Event::RemoveContainer(r.pod.unwrap_or_default(), r.container.unwrap_or_default())
    );
    s.add_unary(
        PLUGIN_SERVICE,
        "CreateContainer",
        handler(
            w,
            |stub: &Stub, rc: &RequestContext, r: CreateContainerRequest| {
                let event = Event::CreateContainer(
                    r.pod.unwrap_or_default(),
                    r.container.unwrap_or_default(),
                );
                match stub.dispatch(rc, event)? {
                    Reply::Create(adjust, update) => Ok(CreateContainerResponse {
                        adjust: protobuf::MessageField::some(adjust),
                        update,
                        ..Default::default()
                    }),
                    _ => Ok(CreateContainerResponse::new()),
                }
            },
        ),
    );
    s.add_unary(
        PLUGIN_SERVICE,
        "UpdateContainer",
        handler(
            w,
            |stub: &Stub, rc: &RequestContext, r: UpdateContainerRequest| {
                let event = Event::UpdateContainer(
                    r.pod.unwrap_or_default(),
                    r.container.unwrap_or_default(),
                    r.linux_resources.unwrap_or_default(),
                );
                let update = match stub.dispatch(rc, event)? {
                    Reply::Updates(u) => u,
                    _ => Vec::new(),
                };
                Ok(UpdateContainerResponse {
                    update,
                    ..Default::default()
                })
            },
        ),
    );
    s.add_unary(
        PLUGIN_SERVICE,
        "StopContainer",
        handler(
            w,
            |stub: &Stub, rc: &RequestContext, r: StopContainerRequest| {
                let event = Event::StopContainer(
                    r.pod.unwrap_or_default(),
                    r.container.unwrap_or_default(),
                );
                let update = match stub.dispatch(rc, event)? {
                    Reply::Updates(u) => u,
                    _ => Vec::new(),
                };
                Ok(StopContainerResponse {
                    update,
                    ..Default::default()
                })
            },
        ),
    );
    s.add_unary(
        PLUGIN_SERVICE,
        "ValidateContainerAdjustment",
        handler(
            w,
            |stub: &Stub, rc: &RequestContext, r: ValidateContainerAdjustmentRequest| match stub
                .dispatch(rc, Event::ValidateContainerAdjustment(Box::new(r)))?
            {
                Reply::Verdict(v) => Ok(v),
                _ => Ok(ValidateContainerAdjustmentResponse::new()),
            },
        ),
    );
    s.add_unary(
        PLUGIN_SERVICE,
        "StateChange",
        handler(w, Stub::state_change),
    );
}
