//! One connected plugin, seen from the runtime: its registration, the
//! requests the runtime sends it and the calls it makes back.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use protobuf::{EnumOrUnknown, Message, MessageDyn, MessageField};

use super::{lock, Hub, RuntimeInner};
use crate::api::{
    ConfigureRequest, ConfigureResponse, Container, ContainerUpdate, CreateContainerResponse,
    Empty, Event, EventMask, LinuxResources, PodSandbox, RegisterPluginRequest, StateChangeEvent,
    StopContainerResponse, UpdateContainerResponse, UpdateContainersRequest,
    UpdateContainersResponse, PLUGIN_SERVICE, RUNTIME_SERVICE,
};
use crate::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{
    Client, Code, Connection, ConnectionBuilder, ConnectionOptions, Framing, Services, Status,
};
use crate::{Error, Result};

/// A plugin the runtime started itself.
pub(crate) struct Launched {
    pub(crate) base: String,
    pub(crate) index: String,
    pub(crate) config: String,
    pub(crate) child: Child,
}

/// What the plugin's connection handlers and the handle share.
struct PluginShared {
    /// External plugins name themselves; launched ones were named by us.
    external: bool,
    /// `(index, base name)`.
    identity: Mutex<(String, String)>,
    registered: Sender<std::result::Result<(), String>>,
    /// Dropped (closing the channel) when the connection closes.
    closed: Mutex<Option<Sender<()>>>,
    /// Why the plugin was dropped, once it was.
    dropped: Mutex<Option<String>>,
    child: Mutex<Option<Child>>,
    updates: Mutex<VecDeque<ContainerUpdate>>,
    updates_cv: Condvar,
    hub: Arc<Hub>,
}

impl PluginShared {
    fn full_name(&self) -> String {
        let id = lock(&self.identity);
        let index = if id.0.is_empty() { "??" } else { id.0.as_str() };
        let base = if id.1.is_empty() {
            "plugin"
        } else {
            id.1.as_str()
        };
        format!("{index}-{base}")
    }

    /// Serves RegisterPlugin, checking an external plugin's identity like
    /// the reference. A refusal is an UNKNOWN status; the connection stays.
    fn register(&self, req: RegisterPluginRequest) -> std::result::Result<Empty, Status> {
        if self.external {
            let refusal = if req.plugin_name.is_empty() {
                Some("invalid (empty) plugin name".to_string())
            } else if crate::api::validate_plugin_index(&req.plugin_idx).is_err() {
                Some(format!(
                    "invalid plugin index: invalid plugin index {:?}, must be 2 digits (00-99)",
                    req.plugin_idx
                ))
            } else {
                None
            };
            if let Some(message) = refusal {
                log::warn!(
                    "refusing registration of plugin {:?} with index {:?}: {message}",
                    req.plugin_name,
                    req.plugin_idx
                );
                let _ = self.registered.try_send(Err(message.clone()));
                return Err(Status::new(Code::Unknown, message));
            }
            *lock(&self.identity) = (req.plugin_idx, req.plugin_name);
        }
        log::info!("plugin {} registered", self.full_name());
        let _ = self.registered.try_send(Ok(()));
        Ok(Empty::new())
    }

    /// Serves UpdateContainers: hands the updates to the runtime's callback
    /// (after any event in flight, when updates block during events) and
    /// answers with the ones that failed.
    fn update_containers(&self, req: UpdateContainersRequest) -> UpdateContainersResponse {
        let _event = self.hub.event_guard();
        log::info!(
            "plugin {} requested {} container update(s)",
            self.full_name(),
            req.update.len()
        );
        let failed = (self.hub.update_fn)(&req.update);
        {
            let mut record = lock(&self.updates);
            record.extend(req.update);
            if record.len() > MAX_RECORDED_UPDATES {
                let excess = record.len() - MAX_RECORDED_UPDATES;
                record.drain(..excess);
                log::debug!(
                    "plugin {}: dropped the {excess} oldest recorded updates (the record keeps {MAX_RECORDED_UPDATES})",
                    self.full_name()
                );
            }
        }
        self.updates_cv.notify_all();
        UpdateContainersResponse {
            failed,
            ..Default::default()
        }
    }

    fn connection_closed(&self, reason: &str) {
        log::info!("connection to plugin {} closed: {reason}", self.full_name());
        {
            let mut dropped = lock(&self.dropped);
            if dropped.is_none() {
                *dropped = Some(format!("connection closed: {reason}"));
            }
        }
        lock(&self.closed).take();
        self.kill_child();
    }

    fn kill_child(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            log::debug!("killing plugin {} (pid {})", self.full_name(), child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Takes a connected plugin through registration, Configure and
/// Synchronize.
pub(crate) fn start(
    rt: &RuntimeInner,
    stream: UnixStream,
    launched: Option<Launched>,
) -> Result<PluginHandle> {
    let (reg_tx, reg_rx) = crossbeam_channel::bounded(1);
    let (closed_tx, closed_rx) = crossbeam_channel::bounded::<()>(0);
    let (identity, config, child) = match launched {
        Some(l) => ((l.index, l.base), Some(l.config), Some(l.child)),
        None => ((String::new(), String::new()), None, None),
    };
    let shared = Arc::new(PluginShared {
        external: config.is_none(),
        identity: Mutex::new(identity),
        registered: reg_tx,
        closed: Mutex::new(Some(closed_tx)),
        dropped: Mutex::new(None),
        child: Mutex::new(child),
        updates: Mutex::new(VecDeque::new()),
        updates_cv: Condvar::new(),
        hub: rt.hub.clone(),
    });

    let mut services = Services::new();
    let s = shared.clone();
    services.add_unary(
        RUNTIME_SERVICE,
        "RegisterPlugin",
        move |_ctx, req: RegisterPluginRequest| s.register(req),
    );
    let s = shared.clone();
    services.add_unary(
        RUNTIME_SERVICE,
        "UpdateContainers",
        move |_ctx, req: UpdateContainersRequest| Ok(s.update_containers(req)),
    );
    let s = shared.clone();
    let conn = ConnectionBuilder::new(stream, Framing::Mux)
        .options(ConnectionOptions {
            workers: rt.workers,
            name: "nri-runtime".to_string(),
            ..Default::default()
        })
        .serve(RUNTIME_SERVICE_CONN, Arc::new(services))
        .open(PLUGIN_SERVICE_CONN)
        .on_close(move |reason| s.connection_closed(reason))
        .start();
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            shared.kill_child();
            return Err(e);
        }
    };
    let fail = |e: Error| {
        conn.close();
        shared.kill_child();
        e
    };
    let client = conn.client(PLUGIN_SERVICE_CONN).map_err(fail)?;

    wait_registration(rt, &shared, &conn, &reg_rx, &closed_rx)?;

    let (index, base) = lock(&shared.identity).clone();
    let name = format!("{index}-{base}");
    let config = config.unwrap_or_else(|| rt.config_for(&index, &base));
    let req = ConfigureRequest {
        config,
        runtime_name: rt.name.clone(),
        runtime_version: rt.version.clone(),
        registration_timeout: millis(rt.registration_timeout),
        request_timeout: millis(rt.request_timeout),
        ..Default::default()
    };
    let reply: ConfigureResponse = client
        .call(PLUGIN_SERVICE, "Configure", &req, Some(rt.request_timeout))
        .map_err(|e| {
            log::warn!("failed to configure plugin {name}: {e}");
            fail(e)
        })?;
    let mut events = EventMask::from_bits(reply.events);
    if events.is_empty() {
        events = EventMask::ALL;
    } else if !events.is_valid() {
        let extra = events.bits() & !EventMask::ALL.bits();
        return Err(fail(Error::Protocol(format!(
            "plugin {name} subscribed to invalid events 0x{extra:x} (valid events are 0x{:x})",
            EventMask::ALL.bits()
        ))));
    }
    log::info!("plugin {name} configured, subscribed to {events}");

    let state = lock(&rt.state).clone();
    let sync_updates = super::sync::synchronize(
        &client,
        &name,
        rt.request_timeout,
        &state.pods,
        &state.containers,
    )
    .map_err(|e| {
        log::warn!("failed to synchronize plugin {name}: {e}");
        fail(e)
    })?;
    log::info!("plugin {name} connected and synchronized");

    Ok(PluginHandle {
        shared,
        conn,
        client,
        request_timeout: rt.request_timeout,
        name,
        index,
        base,
        events,
        sync_updates,
        call_lock: Mutex::new(()),
    })
}

fn wait_registration(
    rt: &RuntimeInner,
    shared: &PluginShared,
    conn: &Connection,
    reg_rx: &Receiver<std::result::Result<(), String>>,
    closed_rx: &Receiver<()>,
) -> Result<()> {
    let timeout = rt.registration_timeout;
    crossbeam_channel::select! {
        recv(reg_rx) -> r => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => {
                // Like the reference: refuse, but leave closing to the plugin.
                rt.keep_refused(conn.clone());
                Err(Error::RegistrationRefused { plugin: shared.full_name(), message })
            }
            Err(_) => Err(Error::ConnectionClosed("plugin registration channel closed".into())),
        },
        recv(closed_rx) -> _ => Err(Error::ConnectionClosed(format!(
            "plugin connection closed before registration: {}",
            conn.close_reason().unwrap_or_else(|| "connection closed".into())
        ))),
        default(timeout) => {
            log::warn!("plugin {} did not register within {timeout:?}", shared.full_name());
            conn.close();
            shared.kill_child();
            Err(Error::DeadlineExceeded {
                service: RUNTIME_SERVICE.to_string(),
                method: "RegisterPlugin".to_string(),
                timeout,
            })
        }
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// True for failures after which the reference drops the plugin: no reply
/// in time, a closed or broken connection. A status from the plugin, an
/// oversized message or an undecodable reply only fail the one request.
pub(crate) fn is_fatal(e: &Error) -> bool {
    !matches!(
        e,
        Error::Status { .. } | Error::MessageTooLarge { .. } | Error::Protobuf { .. }
    )
}

/// Refuses events that do not travel as StateChange.
pub(crate) fn check_state_change(event: Event) -> Result<()> {
    match event {
        Event::RUN_POD_SANDBOX
        | Event::STOP_POD_SANDBOX
        | Event::REMOVE_POD_SANDBOX
        | Event::POST_CREATE_CONTAINER
        | Event::START_CONTAINER
        | Event::POST_START_CONTAINER
        | Event::POST_UPDATE_CONTAINER
        | Event::REMOVE_CONTAINER => Ok(()),
        other => Err(Error::Config(format!(
            "{other:?} is not a state-change event (those are RUN_POD_SANDBOX, STOP_POD_SANDBOX, \
             REMOVE_POD_SANDBOX, POST_CREATE_CONTAINER, START_CONTAINER, POST_START_CONTAINER, \
             POST_UPDATE_CONTAINER and REMOVE_CONTAINER)"
        ))),
    }
}

pub(crate) fn state_change_event(
    event: Event,
    pod: &PodSandbox,
    container: Option<&Container>,
) -> StateChangeEvent {
    StateChangeEvent {
        event: EnumOrUnknown::new(event),
        pod: MessageField::some(pod.clone()),
        container: MessageField::from_option(container.cloned()),
        ..Default::default()
    }
}

/// How many unsolicited updates a [`PluginHandle`] records at most; older
/// ones are dropped first.
pub const MAX_RECORDED_UPDATES: usize = 10_000;

/// A registered, configured and synchronized plugin, as the runtime sees
/// it. Made by [`Runtime::accept_stream`](super::Runtime::accept_stream),
/// [`PluginListener::accept`](super::PluginListener::accept) and
/// [`Runtime::launch`](super::Runtime::launch).
///
/// Every request method sends one request and waits for the reply within
/// the runtime's request timeout. Requests for events the plugin did not
/// subscribe to are not sent: they return an empty reply at once. Requests
/// are serialized: at most one is in flight per plugin. A request that
/// times out, or finds the connection closed or broken, drops the plugin
/// (its connection is closed and a launched plugin killed) and returns that
/// error ([`Error::DeadlineExceeded`], [`Error::ConnectionClosed`], ...);
/// later requests fail at once with [`Error::ConnectionClosed`] saying the
/// plugin was dropped. A non-OK status from the plugin returns
/// [`Error::Status`] and keeps the plugin.
///
/// Dropping the handle closes the connection and kills a launched plugin.
pub struct PluginHandle {
    shared: Arc<PluginShared>,
    conn: Connection,
    client: Client,
    request_timeout: Duration,
    name: String,
    index: String,
    base: String,
    events: EventMask,
    sync_updates: Vec<ContainerUpdate>,
    call_lock: Mutex<()>,
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.name)
            .field("events", &self.events)
            .field("launched", &!self.shared.external)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl PluginHandle {
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
    /// reply reads as every event).
    pub fn events(&self) -> EventMask {
        self.events
    }

    /// True when the plugin subscribed to `event`, so that it is sent.
    pub fn is_subscribed(&self, event: Event) -> bool {
        self.events.is_set(event)
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
    /// the new container and updates of other containers. An empty reply
    /// when the plugin did not subscribe to it.
    pub fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse> {
        // CreateContainerRequest{pod = 1, container = 2}, encoded from the
        // borrowed messages instead of cloning them into a request.
        let req = Fields(&[Field::Message(1, pod), Field::Message(2, container)]);
        self.relay::<_, CreateContainerResponse>(
            Some(Event::CREATE_CONTAINER),
            "CreateContainer",
            &req,
            true,
        )
        .map(Option::unwrap_or_default)
    }

    /// Sends UpdateContainer with the requested new resources; the reply
    /// carries the plugin's updates. An empty reply when the plugin did not
    /// subscribe to it.
    pub fn update_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
    ) -> Result<UpdateContainerResponse> {
        // UpdateContainerRequest{pod = 1, container = 2, linux_resources = 3}.
        let req = Fields(&[
            Field::Message(1, pod),
            Field::Message(2, container),
            Field::Message(3, resources),
        ]);
        self.relay::<_, UpdateContainerResponse>(
            Some(Event::UPDATE_CONTAINER),
            "UpdateContainer",
            &req,
            true,
        )
        .map(Option::unwrap_or_default)
    }

    /// Sends StopContainer; the reply carries the plugin's updates of other
    /// containers. An empty reply when the plugin did not subscribe to it.
    pub fn stop_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<StopContainerResponse> {
        // StopContainerRequest{pod = 1, container = 2}.
        let req = Fields(&[Field::Message(1, pod), Field::Message(2, container)]);
        self.relay::<_, StopContainerResponse>(
            Some(Event::STOP_CONTAINER),
            "StopContainer",
            &req,
            true,
        )
        .map(Option::unwrap_or_default)
    }

    /// Sends a StateChange notification: one of RUN_POD_SANDBOX,
    /// STOP_POD_SANDBOX, REMOVE_POD_SANDBOX, POST_CREATE_CONTAINER,
    /// START_CONTAINER, POST_START_CONTAINER, POST_UPDATE_CONTAINER and
    /// REMOVE_CONTAINER (pod events carry no container). Not sent when the
    /// plugin did not subscribe to the event.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for any other event (CreateContainer,
    /// UpdateContainer and StopContainer have their own requests), then as
    /// for every request.
    pub fn state_change(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<()> {
        check_state_change(event)?;
        // StateChangeEvent{event = 1, pod = 2, container = 3}.
        let mut fields = vec![Field::Enum(1, event as i32), Field::Message(2, pod)];
        if let Some(c) = container {
            fields.push(Field::Message(3, c));
        }
        self.relay::<_, Empty>(Some(event), "StateChange", &Fields(&fields), true)
            .map(|_| ())
    }

    /// Sends RunPodSandbox (a StateChange).
    pub fn run_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::RUN_POD_SANDBOX, pod, None)
    }

    /// Sends StopPodSandbox (a StateChange).
    pub fn stop_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::STOP_POD_SANDBOX, pod, None)
    }

    /// Sends RemovePodSandbox (a StateChange).
    pub fn remove_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::REMOVE_POD_SANDBOX, pod, None)
    }

    /// Sends PostCreateContainer (a StateChange).
    pub fn post_create_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_CREATE_CONTAINER, pod, Some(container))
    }

    /// Sends StartContainer (a StateChange).
    pub fn start_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::START_CONTAINER, pod, Some(container))
    }

    /// Sends PostStartContainer (a StateChange).
    pub fn post_start_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_START_CONTAINER, pod, Some(container))
    }

    /// Sends PostUpdateContainer (a StateChange).
    pub fn post_update_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_UPDATE_CONTAINER, pod, Some(container))
    }

    /// Sends RemoveContainer (a StateChange).
    pub fn remove_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::REMOVE_CONTAINER, pod, Some(container))
    }

    /// Sends Shutdown, which needs no subscription. The v0.9.0 runtime never
    /// sends it (its plugins learn about shutdown from the connection
    /// closing); newer runtimes do. The connection stays open: call
    /// [`PluginHandle::close`] or drop the handle to end it.
    pub fn shutdown(&self) -> Result<()> {
        self.relay::<_, Empty>(None, "Shutdown", &Empty::new(), true)
            .map(|_| ())
    }

    pub(crate) fn same_hub(&self, hub: &Arc<Hub>) -> bool {
        Arc::ptr_eq(&self.shared.hub, hub)
    }

    /// Sends one request and judges the outcome; `None` when the plugin did
    /// not subscribe to `event`. With `take_event_lock` the call holds the
    /// runtime's event lock (when updates block during events); callers
    /// relaying to several plugins hold it themselves across all of them.
    pub(crate) fn relay<Req: EncodeRequest + ?Sized, Resp: Message>(
        &self,
        event: Option<Event>,
        method: &'static str,
        req: &Req,
        take_event_lock: bool,
    ) -> Result<Option<Resp>> {
        if event.is_some_and(|e| !self.is_subscribed(e)) {
            return Ok(None);
        }
        let _event = if take_event_lock {
            self.shared.hub.event_guard()
        } else {
            None
        };
        let _call = lock(&self.call_lock);
        self.ensure_alive()?;
        let outcome = req.encode().and_then(|payload| {
            let out = self.client.call_raw(
                PLUGIN_SERVICE,
                method,
                payload,
                Some(self.request_timeout),
                Vec::new(),
            )?;
            crate::pb::decode::<Resp>(&out).map_err(|e| Error::Protobuf {
                what: "decoding",
                message: Resp::NAME,
                source: e,
            })
        });
        match outcome {
            Ok(reply) => Ok(Some(reply)),
            Err(e) if is_fatal(&e) => {
                log::error!("dropping plugin {}: {method} failed: {e}", self.name);
                self.drop_plugin(&format!("{method} failed: {e}"));
                Err(e)
            }
            Err(e) => {
                log::warn!("plugin {} failed {method}: {e}", self.name);
                Err(e)
            }
        }
    }

    fn ensure_alive(&self) -> Result<()> {
        if let Some(reason) = lock(&self.shared.dropped).clone() {
            return Err(Error::ConnectionClosed(format!(
                "plugin {} was dropped: {reason}",
                self.name
            )));
        }
        if self.conn.is_closed() {
            let reason = self
                .conn
                .close_reason()
                .unwrap_or_else(|| "connection closed".into());
            self.drop_plugin(&format!("connection closed: {reason}"));
            return Err(Error::ConnectionClosed(format!(
                "plugin {} was dropped: connection closed: {reason}",
                self.name
            )));
        }
        Ok(())
    }

    fn drop_plugin(&self, reason: &str) {
        {
            let mut dropped = lock(&self.shared.dropped);
            if dropped.is_none() {
                *dropped = Some(reason.to_string());
            }
        }
        self.conn.close();
        self.shared.kill_child();
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        self.drop_plugin("the plugin handle was dropped");
    }
}

/// A request the runtime can send: any message, or [`Fields`] borrowed from
/// the caller.
pub(crate) trait EncodeRequest {
    /// The encoded request.
    fn encode(&self) -> Result<Vec<u8>>;
}

impl<M: Message> EncodeRequest for M {
    fn encode(&self) -> Result<Vec<u8>> {
        self.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: M::NAME,
            source: e,
        })
    }
}

/// One field of a request encoded from borrowed values.
pub(crate) enum Field<'a> {
    /// A message field: its number and value.
    Message(u32, &'a dyn MessageDyn),
    /// An enum field: its number and value (0, the default, is not written).
    Enum(u32, i32),
}

/// A request message written field by field from borrowed values, so the
/// runtime need not clone a pod and a container into a request just to
/// encode it. Fields must be listed in field-number order.
pub(crate) struct Fields<'a>(pub(crate) &'a [Field<'a>]);

impl EncodeRequest for Fields<'_> {
    fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut os = protobuf::CodedOutputStream::vec(&mut out);
        let res = self.0.iter().try_for_each(|f| match f {
            Field::Message(n, m) => os
                .write_tag(*n, protobuf::rt::WireType::LengthDelimited)
                .and_then(|()| os.write_message_no_tag_dyn(*m)),
            Field::Enum(_, 0) => Ok(()),
            Field::Enum(n, v) => os.write_enum(*n, *v),
        });
        res.and_then(|()| os.flush()).map_err(|e| Error::Protobuf {
            what: "encoding",
            message: "request fields",
            source: e,
        })?;
        drop(os);
        Ok(out)
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;
    use crate::api::{CreateContainerRequest, UpdateContainerRequest};

    fn sample() -> (PodSandbox, Container, LinuxResources) {
        let mut pod = PodSandbox::new();
        pod.id = "pod-1".into();
        pod.labels.insert("app".into(), "web".into());
        let mut ctr = Container::new();
        ctr.id = "ctr-1".into();
        ctr.env = vec!["A=1".into(), "B=2".into()];
        let mut res = LinuxResources::new();
        res.cpu.mut_or_insert_default().cpus = "0-3".into();
        (pod, ctr, res)
    }

    #[test]
    fn borrowed_fields_encode_exactly_like_the_request_message() {
        let (pod, ctr, res) = sample();
        let owned = CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            ..Default::default()
        };
        let fields = Fields(&[Field::Message(1, &pod), Field::Message(2, &ctr)]);
        assert_eq!(fields.encode().unwrap(), owned.encode().unwrap());

        let owned = UpdateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            linux_resources: MessageField::some(res.clone()),
            ..Default::default()
        };
        let fields = Fields(&[
            Field::Message(1, &pod),
            Field::Message(2, &ctr),
            Field::Message(3, &res),
        ]);
        assert_eq!(fields.encode().unwrap(), owned.encode().unwrap());

        for container in [None, Some(&ctr)] {
            let owned = state_change_event(Event::START_CONTAINER, &pod, container);
            let mut f = vec![
                Field::Enum(1, Event::START_CONTAINER as i32),
                Field::Message(2, &pod),
            ];
            if let Some(c) = container {
                f.push(Field::Message(3, c));
            }
            assert_eq!(Fields(&f).encode().unwrap(), owned.encode().unwrap());
        }
    }
}
