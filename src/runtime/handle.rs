//! [`PluginHandle`]: one registered plugin, seen from the runtime; its
//! identity, its state and the requests a test or a runtime sends it.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::connect::PluginShared;
use super::lock;
use super::relay::{Part, Parts, Sent};
use super::reply::CreateContainerReply;
use super::version::Emulation;
use super::Hub;
use crate::api::{
    Container, ContainerUpdate, CreateContainerResponse, Empty, Event, EventMask, FailurePolicy,
    LinuxResources, PodSandbox, StopContainerResponse, UpdateContainerResponse,
    UpdatePodSandboxResponse, ValidateContainerAdjustmentRequest,
    ValidateContainerAdjustmentResponse,
};
use crate::ttrpc::{Client, Code, Connection};
use crate::{Error, Result};

/// How many unsolicited updates a [`PluginHandle`] records at most; older
/// ones are dropped first.
pub const MAX_RECORDED_UPDATES: usize = 10_000;

/// What the connection setup hands to a new handle.
pub(crate) struct Setup {
    pub(crate) version: Emulation,
    pub(crate) request_timeout: Duration,
    pub(crate) name: String,
    pub(crate) index: String,
    pub(crate) base: String,
    pub(crate) events: EventMask,
    pub(crate) policy: FailurePolicy,
    pub(crate) sync_updates: Vec<ContainerUpdate>,
    pub(crate) nri_version: String,
}

/// A registered, configured and synchronized plugin, as the runtime sees
/// it. Made by [`Runtime::accept_stream`](super::Runtime::accept_stream),
/// [`PluginListener::accept`](super::PluginListener::accept) and
/// [`Runtime::launch`](super::Runtime::launch).
///
/// Every request method sends one request and waits for the reply within
/// the runtime's request timeout, the way the emulated NRI version sends
/// it (see [`Emulation`]). Requests are serialized: at most one is in
/// flight per plugin.
///
/// A request for an event the plugin did not subscribe to is **not sent**
/// and fails at once with [`Error::State`] saying so, so that a test cannot
/// mistake a forgotten subscription for a plugin that adjusted nothing
/// ([`PluginHandle::is_subscribed`] tells in advance).
///
/// A request that times out, or finds the connection closed or broken,
/// returns that error ([`Error::DeadlineExceeded`],
/// [`Error::ConnectionClosed`], ...) and drops the plugin (its connection is
/// closed and a launched plugin killed; later requests fail at once with
/// [`Error::ConnectionClosed`] saying the plugin was dropped), except that a
/// plugin whose failure policy sets `keep_connected` stays connected after
/// a timeout (NRI v0.12.5). A non-OK status from the plugin returns
/// [`Error::Status`] and keeps the plugin.
///
/// Dropping the handle closes the connection and kills a launched plugin.
pub struct PluginHandle {
    pub(super) shared: Arc<PluginShared>,
    pub(super) conn: Connection,
    pub(super) client: Client,
    pub(super) version: Emulation,
    pub(super) request_timeout: Duration,
    pub(super) name: String,
    index: String,
    base: String,
    events: EventMask,
    pub(super) policy: FailurePolicy,
    sync_updates: Vec<ContainerUpdate>,
    nri_version: String,
    pub(super) call_lock: Mutex<()>,
    /// Set once the plugin answered UNIMPLEMENTED to a per-event RPC:
    /// notifications then go as StateChange for the rest of the connection.
    pub(super) fallback: AtomicBool,
    /// Events whose StateChange fallback was already warned about.
    pub(super) warned: Mutex<EventMask>,
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.name)
            .field("events", &self.events)
            .field("launched", &!self.shared.external)
            .field("connected", &self.is_connected())
            .field("nri_version", &self.nri_version)
            .finish_non_exhaustive()
    }
}

impl PluginHandle {
    pub(crate) fn new(
        shared: Arc<PluginShared>,
        conn: Connection,
        client: Client,
        s: Setup,
    ) -> PluginHandle {
        PluginHandle {
            shared,
            conn,
            client,
            version: s.version,
            request_timeout: s.request_timeout,
            name: s.name,
            index: s.index,
            base: s.base,
            events: s.events,
            policy: s.policy,
            sync_updates: s.sync_updates,
            nri_version: s.nri_version,
            call_lock: Mutex::new(()),
            fallback: AtomicBool::new(false),
            warned: Mutex::new(EventMask::EMPTY),
        }
    }

    /// Full plugin name, `NN-name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The two-digit index (invocation order: lower first).
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The name without the index.
    pub fn base_name(&self) -> &str {
        &self.base
    }

    /// The events the plugin subscribed to (a 0 mask in its `Configure`
    /// reply reads as every event the emulated version knows).
    pub fn events(&self) -> EventMask {
        self.events
    }

    /// True when the plugin subscribed to `event`, so that it is sent.
    pub fn is_subscribed(&self, event: Event) -> bool {
        self.events.is_set(event)
    }

    /// The NRI version the plugin registered with
    /// (`RegisterPluginRequest.NRI_version`, sent by plugins built on NRI
    /// v0.12 or newer); `None` when it sent none.
    pub fn plugin_nri_version(&self) -> Option<&str> {
        (!self.nri_version.is_empty()).then_some(self.nri_version.as_str())
    }

    /// The NRI version the runtime emulates towards this plugin.
    pub fn emulation(&self) -> Emulation {
        self.version
    }

    /// The failure policy applied to the plugin: the one in its Configure
    /// reply when the emulated version honours policies (v0.12.5), else
    /// the default (both fields false: a timeout or a lost connection drops
    /// the plugin and the operation proceeds without it).
    pub fn failure_policy(&self) -> &FailurePolicy {
        &self.policy
    }

    /// True once the plugin answered UNIMPLEMENTED to a per-event RPC, so
    /// that notifications go to it as StateChange for the rest of the
    /// connection. Always false for versions that only use StateChange.
    pub fn state_change_fallback(&self) -> bool {
        self.fallback.load(Ordering::Acquire)
    }

    /// True for a plugin started by [`Runtime::launch`](super::Runtime::launch).
    pub fn is_launched(&self) -> bool {
        !self.shared.external
    }

    /// Process id of a launched plugin that is still running.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.shared.child).as_ref().map(Child::id)
    }

    /// The updates the plugin returned for the initial `Synchronize`.
    pub fn sync_updates(&self) -> &[ContainerUpdate] {
        &self.sync_updates
    }

    /// The request timeout applied to each request.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// True while the connection is open and the plugin was not dropped.
    pub fn is_connected(&self) -> bool {
        !self.conn.is_closed() && lock(&self.shared.dropped).is_none()
    }

    /// Why the plugin was dropped or its connection closed, once it was.
    pub fn drop_reason(&self) -> Option<String> {
        let dropped = lock(&self.shared.dropped).clone();
        dropped.or_else(|| {
            self.conn.is_closed().then(|| {
                format!(
                    "connection closed: {}",
                    self.conn.close_reason().unwrap_or_default()
                )
            })
        })
    }

    /// Waits up to `timeout` for the connection to close (the plugin went
    /// away, or was dropped). Returns true once it has.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        self.conn.wait_timeout(timeout) && self.conn.is_closed()
    }

    /// Closes the connection and kills a launched plugin. Later requests
    /// fail. Idempotent; dropping the handle does the same.
    pub fn close(&self) {
        self.drop_plugin("closed by the runtime");
    }

    /// The container updates the plugin sent with `UpdateContainers` so far,
    /// in order (failed ones included). They are kept until taken with
    /// [`PluginHandle::take_unsolicited_updates`], the latest
    /// [`MAX_RECORDED_UPDATES`] at most: older ones are dropped, so a
    /// runtime that never takes them still runs in bounded memory.
    pub fn unsolicited_updates(&self) -> Vec<ContainerUpdate> {
        lock(&self.shared.updates).iter().cloned().collect()
    }

    /// Removes and returns the container updates received so far.
    pub fn take_unsolicited_updates(&self) -> Vec<ContainerUpdate> {
        std::mem::take(&mut *lock(&self.shared.updates)).into()
    }

    /// Waits up to `timeout` until the plugin has sent at least `count`
    /// container updates with `UpdateContainers`; returns all received so
    /// far (fewer than `count` when the time ran out).
    pub fn wait_unsolicited_updates(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ContainerUpdate> {
        let deadline = Instant::now() + timeout;
        let mut updates = lock(&self.shared.updates);
        while updates.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            updates = self
                .shared
                .updates_cv
                .wait_timeout(updates, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        updates.iter().cloned().collect()
    }

    /// Sends CreateContainer; the reply carries the plugin's adjustment of
    /// the new container (empty when it sent none: an absent and an empty
    /// adjustment read the same) and updates of other containers.
    ///
    /// ```no_run
    /// # fn f(plugin: &nri::runtime::PluginHandle, pod: &nri::api::PodSandbox, ctr: &nri::api::Container) -> nri::Result<()> {
    /// let reply = plugin.create_container(pod, ctr)?;
    /// assert_eq!(reply.adjust, Default::default(), "the plugin adjusted nothing");
    /// # Ok(()) }
    /// ```
    pub fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerReply> {
        // CreateContainerRequest{pod = 1, container = 2}, encoded from the
        // borrowed messages instead of cloning them into a request.
        let req = Parts(&[Part::Message(1, pod), Part::Message(2, container)]);
        let sent = self.relay::<_, CreateContainerResponse>(
            Some(Event::CREATE_CONTAINER),
            "CreateContainer",
            &req,
            true,
        )?;
        self.delivered(Event::CREATE_CONTAINER, sent)
            .map(CreateContainerReply::from)
    }

    /// Sends UpdateContainer with the requested new resources; the reply
    /// carries the plugin's updates.
    pub fn update_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
    ) -> Result<UpdateContainerResponse> {
        // UpdateContainerRequest{pod = 1, container = 2, linux_resources = 3}.
        let req = Parts(&[
            Part::Message(1, pod),
            Part::Message(2, container),
            Part::Message(3, resources),
        ]);
        let sent = self.relay(Some(Event::UPDATE_CONTAINER), "UpdateContainer", &req, true)?;
        self.delivered(Event::UPDATE_CONTAINER, sent)
    }

    /// Sends StopContainer; the reply carries the plugin's updates of other
    /// containers.
    pub fn stop_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<StopContainerResponse> {
        let sent = self.send_stop_container(pod, container, true)?;
        self.delivered(Event::STOP_CONTAINER, sent)
    }

    /// Sends UpdatePodSandbox (NRI v0.10+) with the pod's new overhead and
    /// resources. There is no StateChange form of it: a plugin subscribed
    /// to it that answers UNIMPLEMENTED fails the request, as upstream.
    pub fn update_pod_sandbox(
        &self,
        pod: &PodSandbox,
        overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> Result<()> {
        let sent = self.send_update_pod_sandbox(pod, overhead, resources, true)?;
        self.delivered(Event::UPDATE_POD_SANDBOX, sent)
    }

    /// Sends ValidateContainerAdjustment (NRI v0.10+) and returns the
    /// plugin's verdict as it answered it (a [`PluginSet`](super::PluginSet)
    /// builds the request itself after merging and turns a rejection into
    /// an error). There is no StateChange form of it.
    pub fn validate_container_adjustment(
        &self,
        req: &ValidateContainerAdjustmentRequest,
    ) -> Result<ValidateContainerAdjustmentResponse> {
        let sent = self.send_validation(req, true)?;
        self.delivered(Event::VALIDATE_CONTAINER_ADJUSTMENT, sent)
    }

    /// Sends a notification event: one of RunPodSandbox,
    /// PostUpdatePodSandbox, StopPodSandbox, RemovePodSandbox,
    /// PostCreateContainer, StartContainer, PostStartContainer,
    /// PostUpdateContainer and RemoveContainer (pod events carry no
    /// container). From NRI v0.12 it goes as the event's own RPC, falling
    /// back to StateChange for the rest of the connection when the plugin
    /// answers UNIMPLEMENTED; older versions always send StateChange.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for any other event (they have their own methods)
    /// or a container event without a container, [`Error::State`] when the
    /// plugin is not subscribed to the event, then as for every request.
    pub fn state_change(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<()> {
        let sent = self.notify(event, pod, container, true)?;
        self.delivered(event, sent)
    }

    /// Sends RunPodSandbox.
    pub fn run_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::RUN_POD_SANDBOX, pod, None)
    }

    /// Sends PostUpdatePodSandbox (NRI v0.10+).
    pub fn post_update_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::POST_UPDATE_POD_SANDBOX, pod, None)
    }

    /// Sends StopPodSandbox.
    pub fn stop_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::STOP_POD_SANDBOX, pod, None)
    }

    /// Sends RemovePodSandbox.
    pub fn remove_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::REMOVE_POD_SANDBOX, pod, None)
    }

    /// Sends PostCreateContainer.
    pub fn post_create_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_CREATE_CONTAINER, pod, Some(container))
    }

    /// Sends StartContainer.
    pub fn start_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::START_CONTAINER, pod, Some(container))
    }

    /// Sends PostStartContainer.
    pub fn post_start_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_START_CONTAINER, pod, Some(container))
    }

    /// Sends PostUpdateContainer.
    pub fn post_update_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_UPDATE_CONTAINER, pod, Some(container))
    }

    /// Sends RemoveContainer.
    pub fn remove_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::REMOVE_CONTAINER, pod, Some(container))
    }

    /// Sends Shutdown, which needs no subscription. The v0.9.0 runtime never
    /// sends it (its plugins learn about shutdown from the connection
    /// closing). The connection stays open: call [`PluginHandle::close`] or
    /// drop the handle to end it.
    pub fn shutdown(&self) -> Result<()> {
        self.relay::<_, Empty>(None, "Shutdown", &Empty::new(), true)
            .map(|_| ())
    }

    /// Sends StopContainer, for this handle and for a
    /// [`PluginSet`](super::PluginSet) (which holds the event lock itself).
    pub(crate) fn send_stop_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
        take_event_lock: bool,
    ) -> Result<Sent<StopContainerResponse>> {
        // StopContainerRequest{pod = 1, container = 2}.
        let req = Parts(&[Part::Message(1, pod), Part::Message(2, container)]);
        self.relay(
            Some(Event::STOP_CONTAINER),
            "StopContainer",
            &req,
            take_event_lock,
        )
    }

    /// Sends UpdatePodSandbox, for this handle and for a
    /// [`PluginSet`](super::PluginSet). An UNIMPLEMENTED answer says that
    /// the event has no StateChange fallback.
    pub(crate) fn send_update_pod_sandbox(
        &self,
        pod: &PodSandbox,
        overhead: &LinuxResources,
        resources: &LinuxResources,
        take_event_lock: bool,
    ) -> Result<Sent<()>> {
        let event = Event::UPDATE_POD_SANDBOX;
        // UpdatePodSandboxRequest{pod = 1, overhead_linux_resources = 2,
        // linux_resources = 3}.
        let req = Parts(&[
            Part::Message(1, pod),
            Part::Message(2, overhead),
            Part::Message(3, resources),
        ]);
        self.relay::<_, UpdatePodSandboxResponse>(
            Some(event),
            "UpdatePodSandbox",
            &req,
            take_event_lock,
        )
        .map(|sent| match sent {
            Sent::Reply(_) => Sent::Reply(()),
            Sent::NotSubscribed => Sent::NotSubscribed,
        })
        .map_err(|e| no_fallback(e, &self.name, event))
    }

    /// Sends ValidateContainerAdjustment, for this handle and for the
    /// validation of a [`PluginSet`](super::PluginSet). An UNIMPLEMENTED
    /// answer says that the event has no StateChange fallback.
    pub(crate) fn send_validation(
        &self,
        req: &ValidateContainerAdjustmentRequest,
        take_event_lock: bool,
    ) -> Result<Sent<ValidateContainerAdjustmentResponse>> {
        let event = Event::VALIDATE_CONTAINER_ADJUSTMENT;
        self.relay(
            Some(event),
            "ValidateContainerAdjustment",
            req,
            take_event_lock,
        )
        .map_err(|e| no_fallback(e, &self.name, event))
    }

    pub(crate) fn same_hub(&self, hub: &Arc<Hub>) -> bool {
        Arc::ptr_eq(&self.shared.hub, hub)
    }

    /// The reply, or the error saying the request was not sent.
    fn delivered<T>(&self, event: Event, sent: Sent<T>) -> Result<T> {
        match sent {
            Sent::Reply(r) => Ok(r),
            Sent::NotSubscribed => Err(self.not_subscribed(event)),
        }
    }

    /// The error for a request to an event the plugin did not subscribe to.
    pub(crate) fn not_subscribed(&self, event: Event) -> Error {
        let unknown = if self.version.valid_events().is_set(event) {
            String::new()
        } else {
            format!(
                "; a runtime on NRI {} does not have this event",
                self.version
            )
        };
        Error::State(format!(
            "plugin {} is not subscribed to {event} (it subscribed to {}), so the request was \
             not sent{unknown}",
            self.name,
            if self.events.is_empty() {
                "nothing".to_string()
            } else {
                self.events.to_string()
            }
        ))
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        self.drop_plugin("the plugin handle was dropped");
    }
}

/// Adds the rule to an UNIMPLEMENTED answer for an event without a
/// StateChange form.
fn no_fallback(e: Error, plugin: &str, event: Event) -> Error {
    match e {
        Error::Status {
            service,
            method,
            code: Code::Unimplemented,
            message,
        } => Error::Status {
            service,
            method,
            code: Code::Unimplemented,
            message: format!(
                "plugin {plugin} subscribed to {event} but does not implement it ({message}); \
                 {event} has no StateChange fallback"
            ),
        },
        other => other,
    }
}
