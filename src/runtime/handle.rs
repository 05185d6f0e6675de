//! [`PluginHandle`]: one registered plugin, seen from the runtime; its
//! identity, its state and the requests a test or a runtime sends it. Its
//! event methods are expanded from the event table, one per event, in the
//! shape of the event's kind.

use super::process::Process;
use std::sync::Arc;
use std::time::Duration;

use crate::api::rpc;
use crate::api::*;
use crate::Result;

use super::emulation::Emulation;
use super::encoding::shape;
use super::host_state::Hub;
use super::relay::Relay;
use super::reply::CreateContainerReply;
use crate::api::PluginId;
use crate::locking::lock;

/// What the connection setup hands to a new handle besides its relay.
pub(crate) struct Registered {
    pub(crate) id: PluginId,
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
/// and fails at once with [`Error::State`](crate::Error::State) saying so,
/// so that a test cannot mistake a forgotten subscription for a plugin that
/// adjusted nothing ([`PluginHandle::is_subscribed`] tells in advance).
///
/// A request that times out, or finds the connection closed or broken,
/// returns that error ([`Error::DeadlineExceeded`](crate::Error::DeadlineExceeded),
/// [`Error::ConnectionClosed`](crate::Error::ConnectionClosed), ...) and
/// drops the plugin (its connection is closed and a launched plugin killed;
/// later requests fail at once with `Error::ConnectionClosed` saying the
/// plugin was dropped), except that a plugin whose failure policy sets
/// `keep_connected` stays connected after a timeout (NRI v0.12.4). A non-OK
/// status from the plugin returns [`Error::Status`](crate::Error::Status)
/// and keeps the plugin.
///
/// Dropping the handle closes the connection and kills a launched plugin.
pub struct PluginHandle {
    pub(super) relay: Relay,
    id: PluginId,
    sync_updates: Vec<ContainerUpdate>,
    nri_version: String,
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.relay.name)
            .field("events", &self.relay.events)
            .field("launched", &!self.relay.state.external)
            .field("connected", &self.is_connected())
            .field("nri_version", &self.nri_version)
            .finish_non_exhaustive()
    }
}

/// Notes that an event arrived after the first releases, for the docs of
/// its methods.
macro_rules! since_note {
    ((0, 2, 0)) => {
        ""
    };
    (($major:literal, $minor:literal, $patch:literal)) => {
        concat!(" (NRI v", $major, ".", $minor, "+)")
    };
}

/// One method of [`PluginHandle`] for an event, by the event's kind.
macro_rules! handle_method {
    (PodNotification $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), " (see [`PluginHandle::state_change`]).")]
        pub fn $h(&self, pod: &PodSandbox) -> Result<()> {
            self.state_change(Event::$event, pod, None)
        }
    };
    (ContainerNotification $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), " (see [`PluginHandle::state_change`]).")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
            self.state_change(Event::$event, pod, Some(container))
        }
    };
    (PodUpdate $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), " with the pod's new \
            overhead and resources. There is no StateChange form of it: a plugin subscribed to \
            it that answers UNIMPLEMENTED fails the request, as upstream.")]
        pub fn $h(&self, pod: &PodSandbox, overhead: &LinuxResources, resources: &LinuxResources)
            -> Result<()> {
            let req = shape::numbered([pod, overhead, resources]);
            let sent = self.relay.request(rpc::$event, Some(Event::$event), &req, true)?;
            self.relay.delivered(Event::$event, sent).map(|_| ())
        }
    };
    (Create $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), "; the reply carries \
            the plugin's adjustment of the new container (empty when it sent none: an absent \
            and an empty adjustment read the same, see [`CreateContainerReply`]) and updates \
            of other containers.")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container) -> Result<CreateContainerReply> {
            let req = shape::numbered([pod, container]);
            let sent = self.relay.request(rpc::$event, Some(Event::$event), &req, true)?;
            self.relay.delivered(Event::$event, sent).map(CreateContainerReply::from)
        }
    };
    (UpdateWithUpdates $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), " with the requested \
            new resources; the reply carries the plugin's updates.")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container, resources: &LinuxResources)
            -> Result<$resp> {
            let req = shape::numbered([pod, container, resources]);
            let sent = self.relay.request(rpc::$event, Some(Event::$event), &req, true)?;
            self.relay.delivered(Event::$event, sent)
        }
    };
    (StopWithUpdates $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), "; the reply carries \
            the plugin's updates of other containers.")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container) -> Result<$resp> {
            let req = shape::numbered([pod, container]);
            let sent = self.relay.request(rpc::$event, Some(Event::$event), &req, true)?;
            self.relay.delivered(Event::$event, sent)
        }
    };
    (Validation $name:ident $event:ident $h:ident $req:ident $resp:ident $since:tt) => {
        #[doc = concat!("Sends ", stringify!($name), since_note!($since), " and returns the \
            plugin's verdict as it answered it (a [`PluginSet`](super::PluginSet) builds the \
            request itself after merging and turns a rejection into an error). There is no \
            StateChange form of it.")]
        pub fn $h(&self, req: &$req) -> Result<$resp> {
            let sent = self.relay.request(rpc::$event, Some(Event::$event), req, true)?;
            self.relay.delivered(Event::$event, sent)
        }
    };
}

macro_rules! handle_methods {
    ($({ name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
         rpc: $req:ident => $resp:ident, since: $since:tt, $($rest:tt)* })*) => {
        /// The event methods, one per event of the event table.
        impl PluginHandle {
            $(handle_method!($kind $name $event $handler $req $resp $since);)*
        }
    };
}

crate::event_table::for_each_event!(handle_methods);

impl PluginHandle {
    pub(crate) fn new(relay: Relay, registered: Registered) -> PluginHandle {
        PluginHandle {
            relay,
            id: registered.id,
            sync_updates: registered.sync_updates,
            nri_version: registered.nri_version,
        }
    }

    /// Full plugin name, `NN-name`.
    pub fn name(&self) -> &str {
        &self.relay.name
    }

    /// The two-digit index (invocation order: lower first).
    pub fn index(&self) -> &str {
        &self.id.index
    }

    /// The name without the index.
    pub fn base_name(&self) -> &str {
        &self.id.name
    }

    /// The events the plugin subscribed to (a 0 mask in its `Configure`
    /// reply reads as every event the emulated version knows).
    pub fn events(&self) -> EventMask {
        self.relay.events
    }

    /// True when the plugin subscribed to `event`, so that it is sent.
    pub fn is_subscribed(&self, event: Event) -> bool {
        self.relay.is_subscribed(event)
    }

    /// The NRI version the plugin registered with
    /// (`RegisterPluginRequest.NRI_version`, sent by plugins built on NRI
    /// v0.12 or newer); `None` when it sent none.
    pub fn plugin_nri_version(&self) -> Option<&str> {
        (!self.nri_version.is_empty()).then_some(self.nri_version.as_str())
    }

    /// The NRI version the runtime emulates towards this plugin.
    pub fn emulation(&self) -> Emulation {
        self.relay.emulation
    }

    /// The failure policy applied to the plugin: the one in its Configure
    /// reply when the emulated version honours policies (v0.12.4 on), else
    /// the default (both fields false: a timeout or a lost connection drops
    /// the plugin and the operation proceeds without it).
    pub fn failure_policy(&self) -> &FailurePolicy {
        &self.relay.policy
    }

    /// True once the plugin answered UNIMPLEMENTED to a per-event RPC, so
    /// that notifications go to it as StateChange for the rest of the
    /// connection. Always false for versions that only use StateChange.
    pub fn state_change_fallback(&self) -> bool {
        self.relay.state_change_fallback()
    }

    /// True for a plugin started by [`Runtime::launch`](super::Runtime::launch).
    pub fn is_launched(&self) -> bool {
        !self.relay.state.external
    }

    /// Process id of a launched plugin that is still running.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.relay.state.child).as_ref().map(Process::id)
    }

    /// The updates the plugin returned for the initial `Synchronize`.
    pub fn sync_updates(&self) -> &[ContainerUpdate] {
        &self.sync_updates
    }

    /// The request timeout applied to each request.
    pub fn request_timeout(&self) -> Duration {
        self.relay.request_timeout
    }

    /// True while the connection is open and the plugin was not dropped.
    pub fn is_connected(&self) -> bool {
        self.relay.is_connected()
    }

    /// Why the plugin was dropped or its connection closed, once it was.
    pub fn drop_reason(&self) -> Option<String> {
        let dropped = lock(&self.relay.state.dropped).clone();
        let conn = &self.relay.conn;
        dropped.or_else(|| {
            conn.is_closed().then(|| {
                format!(
                    "connection closed: {}",
                    conn.close_reason().unwrap_or_default()
                )
            })
        })
    }

    /// Waits up to `timeout` for the connection to close (the plugin went
    /// away, or was dropped). Returns true once it has.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        self.relay.conn.wait_timeout(timeout) && self.relay.conn.is_closed()
    }

    /// Closes the connection and kills a launched plugin. Later requests
    /// fail. Idempotent; dropping the handle does the same.
    pub fn close(&self) {
        self.relay.drop_plugin("closed by the runtime");
    }

    /// The container updates the plugin sent with `UpdateContainers` so far,
    /// in order (failed ones included). They are kept until taken with
    /// [`PluginHandle::take_unsolicited_updates`], within a budget of bytes
    /// held in memory
    /// ([`RuntimeBuilder::max_recorded_update_bytes`](super::RuntimeBuilder::max_recorded_update_bytes),
    /// 16 MiB by default) and [`MAX_RECORDED_UPDATES`](super::MAX_RECORDED_UPDATES)
    /// updates: older ones are dropped, and an update larger than the whole
    /// budget is not recorded (it is still handed to the
    /// [`RuntimeBuilder::on_update_containers`](super::RuntimeBuilder::on_update_containers)
    /// callback), so a runtime that never takes them still runs in bounded
    /// memory, whatever the plugin sends.
    pub fn unsolicited_updates(&self) -> Vec<ContainerUpdate> {
        lock(&self.relay.state.updates).to_vec()
    }

    /// Removes and returns the container updates received so far.
    pub fn take_unsolicited_updates(&self) -> Vec<ContainerUpdate> {
        lock(&self.relay.state.updates).take()
    }

    /// Waits up to `timeout` until the plugin has sent at least `count`
    /// container updates with `UpdateContainers` (counting those still
    /// recorded); returns all recorded so far (fewer than `count` when the
    /// time ran out).
    pub fn wait_unsolicited_updates(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ContainerUpdate> {
        let state = &self.relay.state;
        let updates = lock(&state.updates);
        let (updates, _) = state
            .updates_cv
            .wait_timeout_while(updates, timeout, |u| u.len() < count)
            .unwrap_or_else(|e| e.into_inner());
        updates.to_vec()
    }

    /// Bytes of memory the recorded unsolicited updates hold (an upper
    /// bound, allocator rounding included).
    pub fn unsolicited_update_bytes(&self) -> usize {
        lock(&self.relay.state.updates).bytes()
    }

    /// Sends a notification event: one whose handler takes a pod (and a
    /// container, for container events) and returns nothing (RunPodSandbox,
    /// StopPodSandbox, RemovePodSandbox, PostCreateContainer, StartContainer,
    /// PostStartContainer, PostUpdateContainer, RemoveContainer,
    /// PostUpdatePodSandbox; pod events carry no container). From NRI v0.12
    /// it goes as the event's own RPC, falling back to StateChange for the
    /// rest of the connection when the plugin answers UNIMPLEMENTED; older
    /// versions always send StateChange.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) for any other event (they
    /// have their own methods) or a container event without a container,
    /// [`Error::State`](crate::Error::State) when the plugin is not
    /// subscribed to the event, then as for every request.
    pub fn state_change(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<()> {
        let sent = self.relay.notify(event, pod, container, true)?;
        self.relay.delivered(event, sent)
    }

    /// Sends Shutdown, which needs no subscription. The v0.9.0 runtime never
    /// sends it (its plugins learn about shutdown from the connection
    /// closing). The connection stays open: call [`PluginHandle::close`] or
    /// drop the handle to end it.
    pub fn shutdown(&self) -> Result<()> {
        self.relay
            .request(rpc::SHUTDOWN, None, &Empty::new(), true)
            .map(|_| ())
    }

    pub(crate) fn same_hub(&self, hub: &Arc<Hub>) -> bool {
        Arc::ptr_eq(&self.relay.state.hub, hub)
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        self.relay.drop_plugin("the plugin handle was dropped");
    }
}
