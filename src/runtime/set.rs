//! Several plugins behind one runtime, called in index order with their
//! replies merged and adjustments validated, as the reference relays every
//! event.

use std::sync::{Arc, Mutex};

use protobuf::MessageField;

use crate::api::rpc::{self, Rpc};
use crate::api::*;
use crate::{Error, Result};

use super::emulation::Emulation;
use super::encoding::shape;
use super::handle::PluginHandle;
use super::host::Runtime;
use super::host_state::Hub;
use super::merge::{pristine_container, Collector};
use super::relay::{check_notification, is_fatal, Sent};
use super::validators::validate;
use crate::locking::lock;
use crate::log_text::Escape;

/// The plugins of one [`Runtime`], relayed to like the reference relays
/// every pod and container event.
///
/// Plugins are kept sorted by index and called one after another while the
/// runtime's event lock is held (see
/// [`RuntimeBuilder::block_updates_during_events`](super::RuntimeBuilder::block_updates_during_events)).
/// Plugins not subscribed to an event are skipped, and so is a plugin whose
/// connection closed since the last event (from v0.12.5; earlier versions
/// relay to it all the same, as failing on a closed connection).
///
/// - **Merging.** For CreateContainer, UpdateContainer and StopContainer the
///   replies are merged with the emulated version's rules: each plugin gets
///   the request as the earlier ones adjusted it, and two plugins setting
///   the same field of the same container fail the operation with
///   [`Error::Conflict`] naming both (a plugin takes an item over without
///   conflict by removing it first). The merged CreateContainer reply is
///   what the reference hands its runtime: its adjustment always carries an
///   empty skeleton (hooks, `linux.resources.memory` and `.cpu`; from
///   v0.11 also `linux.rdt` once a plugin adjusted a `linux` part).
/// - **Validation** (v0.10+). After merging CreateContainer, every plugin
///   subscribed to ValidateContainerAdjustment gets the container as it was
///   before any adjustment, the merged adjustment and updates, the owners
///   of every field and the plugins that took part, concurrently. A
///   rejection fails the creation with [`Error::Rejected`] carrying the
///   validator's reason; a validator that fails to answer fails it with
///   [`Error::Handler`] (`validator plugin NN-name failed: ...`).
///   Upstream's built-in default validator is not emulated.
/// - **Failures.** A non-OK status from a plugin fails the operation at
///   once with [`Error::Status`]; later plugins are not called. A fatal
///   failure (timeout, closed connection) drops the plugin (a plugin whose
///   failure policy sets `keep_connected` stays after a timeout); then the
///   operation proceeds without it, or, when its failure policy sets
///   `fail_request` (v0.12.4), fails with [`Error::Handler`] naming the
///   plugin and the event. Dropped plugins leave the set after each relay;
///   until then, before v0.12.5, a closed validator is still asked (and
///   fails the creation once), as with the reference.
/// - **Isolation.** A plugin that stops answering, or floods the runtime
///   with `UpdateContainers` and stops reading, holds up the plugins after
///   it by at most its request timeout. Plugins are called one after
///   another because the protocol needs it (each CreateContainer and
///   UpdateContainer request carries what the plugins before adjusted, and
///   a status stops the relay before later plugins see the event), so the
///   set does not relay concurrently, except to validators, which are asked
///   all at once as the reference asks them; instead every wait of a
///   plugin's request is bounded by that request's timeout, counted from
///   the moment it waits for its turn (the plugin's previous request, the
///   connection's writer, the write, the reply), and a plugin that misses
///   it is dropped (by default: its failure policy may keep it, and each
///   later event then waits its timeout too, as with the reference, until
///   the connection's write timeout cuts off a plugin that stopped
///   reading). Dropping never waits: the connection is shut down and a
///   launched plugin killed, and reaped in the background if it does not
///   die at once. A relay thus takes at most the request timeouts of the
///   subscribed plugins added up (one more for the validators), and one
///   stalled plugin adds at most one request timeout.
///
/// ```no_run
/// use std::os::unix::net::UnixStream;
/// use nri::api::{Container, PodSandbox};
/// use nri::runtime::{PluginSet, Runtime};
///
/// let runtime = Runtime::new();
/// let plugins = PluginSet::new(&runtime);
/// # let (a, _a) = UnixStream::pair()?;
/// # let (b, _b) = UnixStream::pair()?;
/// // `a` and `b`: runtime ends of two plugins' connections.
/// plugins.add(runtime.accept_stream(a)?)?;
/// plugins.add(runtime.accept_stream(b)?)?;
/// let merged = plugins.create_container(&PodSandbox::new(), &Container::new())?;
/// println!("merged adjustment: {:?}", merged.adjust);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PluginSet {
    hub: Arc<Hub>,
    version: Emulation,
    plugins: Mutex<Vec<Arc<PluginHandle>>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet")
            .field("plugins", &self.names())
            .field("nri_version", &self.version)
            .finish()
    }
}

impl PluginSet {
    /// An empty set for plugins accepted by `runtime`.
    pub fn new(runtime: &Runtime) -> PluginSet {
        PluginSet {
            hub: runtime.host.hub.clone(),
            version: runtime.host.settings.emulation,
            plugins: Mutex::new(Vec::new()),
        }
    }

    /// Adds a plugin, keeping the set sorted by index (plugins with the same
    /// index keep the order they were added in).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the plugin was accepted by another
    /// [`Runtime`]; the plugin is then closed.
    pub fn add(&self, plugin: PluginHandle) -> Result<()> {
        if !plugin.same_hub(&self.hub) {
            return Err(Error::Config(format!(
                "plugin {} belongs to another runtime than this plugin set",
                plugin.name()
            )));
        }
        let _event = self.hub.event_guard();
        let mut plugins = lock(&self.plugins);
        let at = plugins.partition_point(|p| p.index() <= plugin.index());
        plugins.insert(at, Arc::new(plugin));
        Ok(())
    }

    /// Removes the plugin named `name` (`NN-name`) and hands it back; it is
    /// closed once the last reference to it goes.
    pub fn remove(&self, name: &str) -> Option<Arc<PluginHandle>> {
        let _event = self.hub.event_guard();
        let mut plugins = lock(&self.plugins);
        let at = plugins.iter().position(|p| p.name() == name)?;
        Some(plugins.remove(at))
    }

    /// Full names of the plugins, in invocation order.
    pub fn names(&self) -> Vec<String> {
        lock(&self.plugins)
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    }

    /// Full names of the plugins subscribed to ValidateContainerAdjustment.
    pub fn validators(&self) -> Vec<String> {
        lock(&self.plugins)
            .iter()
            .filter(|p| p.is_subscribed(Event::VALIDATE_CONTAINER_ADJUSTMENT))
            .map(|p| p.name().to_string())
            .collect()
    }

    /// Number of plugins in the set.
    pub fn len(&self) -> usize {
        lock(&self.plugins).len()
    }

    /// True when the set holds no plugin.
    pub fn is_empty(&self) -> bool {
        lock(&self.plugins).is_empty()
    }

    /// The plugin named `name` (`NN-name`), to send it requests of its own
    /// or look at it.
    pub fn get(&self, name: &str) -> Option<Arc<PluginHandle>> {
        lock(&self.plugins)
            .iter()
            .find(|p| p.name() == name)
            .cloned()
    }

    /// Relays a notification event (see [`PluginHandle::state_change`] for
    /// the events it covers and how each version sends them) to every
    /// subscribed plugin.
    pub fn state_change(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<()> {
        check_notification(event, container)?;
        self.relay_all(event, |p| {
            p.relay.notify(event, pod, container, false).map(|_| ())
        })
    }

    /// Relays CreateContainer, merges and validates (see the type's docs).
    fn create(
        &self,
        method: Rpc<CreateContainerRequest, CreateContainerResponse>,
        event: Event,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse> {
        let mut result = Collector::create_for(pod, container, self.version.profile().merge);
        let skips_closed = self.version.profile().skips_closed_plugins;
        self.with_plugins(|plugins| {
            // As the reference: a validator that closed is asked all the same
            // (and fails the creation) until the version skips closed plugins.
            let validators: Vec<Arc<PluginHandle>> = plugins
                .iter()
                .filter(|p| p.is_subscribed(Event::VALIDATE_CONTAINER_ADJUSTMENT))
                .filter(|p| !skips_closed || p.is_connected())
                .cloned()
                .collect();
            // As the reference: the container validators see is taken after the
            // skeleton was filled in, before any plugin adjusted it.
            let pristine = (!validators.is_empty())
                .then(|| pristine_container(&result))
                .flatten();
            let mut took_part = Vec::new();
            let relayed = self.relay_each(plugins, event, |p| {
                if pristine.is_some() {
                    took_part.push(PluginInstance {
                        name: p.base_name().to_string(),
                        index: p.index().to_string(),
                        ..Default::default()
                    });
                }
                let req = result.create_request().ok_or_else(|| {
                    Error::State(
                        "internal error: the CreateContainer collector holds no request".into(),
                    )
                })?;
                match p.relay.request(method, Some(event), req, false)? {
                    Sent::Reply(reply) => result.apply_create(&reply, p.name()),
                    Sent::NotSubscribed => Ok(()),
                }
            });
            relayed.and_then(|()| {
                let Some(container) = pristine else {
                    return Ok(result.create_response());
                };
                let owners = result.owners();
                let response = result.create_response();
                // The merged reply travels inside the validation request and is
                // taken back out of it afterwards, instead of being cloned.
                let mut check = ValidateContainerAdjustmentRequest {
                    pod: MessageField::some(pod.clone()),
                    container: MessageField::some(container),
                    adjust: response.adjust,
                    update: response.update,
                    owners: MessageField::some(owners),
                    plugins: took_part,
                    ..Default::default()
                };
                let asked: Vec<&PluginHandle> = validators
                    .iter()
                    .filter(|p| !skips_closed || p.is_connected())
                    .map(|p| p.as_ref())
                    .collect();
                validate(&asked, &check)?;
                Ok(CreateContainerResponse {
                    adjust: std::mem::take(&mut check.adjust),
                    update: std::mem::take(&mut check.update),
                    ..Default::default()
                })
            })
        })
    }

    /// Relays UpdateContainer and merges the updates: those of other
    /// containers, then the merged update of this container when a plugin
    /// changed it.
    fn update(
        &self,
        method: Rpc<UpdateContainerRequest, UpdateContainerResponse>,
        event: Event,
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
    ) -> Result<UpdateContainerResponse> {
        let rules = self.version.profile().merge;
        let mut result = Collector::update_for(pod, container, resources, rules);
        self.relay_all(event, |p| {
            let req = result.update_request().ok_or_else(|| {
                Error::State(
                    "internal error: the UpdateContainer collector holds no request".into(),
                )
            })?;
            match p.relay.request(method, Some(event), req, false)? {
                Sent::Reply(reply) => result.apply_updates(&reply.update, p.name()),
                Sent::NotSubscribed => Ok(()),
            }
        })?;
        Ok(result.update_response())
    }

    /// Relays StopContainer and merges the updates of other containers.
    fn stop(
        &self,
        method: Rpc<StopContainerRequest, StopContainerResponse>,
        event: Event,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<StopContainerResponse> {
        let mut result = Collector::stop(self.version.profile().merge);
        let req = shape::numbered([pod, container]);
        self.relay_all(event, |p| {
            match p.relay.request(method, Some(event), &req, false)? {
                Sent::Reply(reply) => result.apply_updates(&reply.update, p.name()),
                Sent::NotSubscribed => Ok(()),
            }
        })?;
        Ok(result.stop_response())
    }

    /// Calls `f` on each plugin in order under the event lock, then removes
    /// the plugins that were dropped.
    fn relay_all(&self, event: Event, f: impl FnMut(&PluginHandle) -> Result<()>) -> Result<()> {
        self.with_plugins(|plugins| self.relay_each(plugins, event, f))
    }

    /// Runs `f` on the plugins under the event lock, then removes the
    /// plugins that were dropped.
    fn with_plugins<T>(&self, f: impl FnOnce(&[Arc<PluginHandle>]) -> Result<T>) -> Result<T> {
        let _event = self.hub.event_guard();
        let mut plugins = lock(&self.plugins);
        let outcome = f(&plugins);
        remove_closed(&mut plugins);
        outcome
    }

    /// Calls `f` on each plugin in order, passing over the closed ones when
    /// the version skips them (else `f` finds them closed). A fatal failure
    /// of a plugin (it did not answer: timeout, closed connection) fails
    /// the relay when the plugin's failure policy asks so, and is otherwise
    /// passed over; any other error stops the relay.
    fn relay_each(
        &self,
        plugins: &[Arc<PluginHandle>],
        event: Event,
        mut f: impl FnMut(&PluginHandle) -> Result<()>,
    ) -> Result<()> {
        let skips_closed = self.version.profile().skips_closed_plugins;
        for p in plugins {
            if skips_closed && !p.is_connected() {
                log::debug!("skipping closed plugin {} for {event}", Escape(p.name()));
                continue;
            }
            match f(p) {
                Ok(()) => {}
                Err(e) if is_fatal(&e) => {
                    if p.failure_policy().fail_request {
                        return Err(Error::Handler(format!(
                            "plugin {} failed to handle {event} request: {e}",
                            p.name()
                        )));
                    }
                    log::warn!(
                        "plugin {} failed to handle {event} request, proceeding without it: {}",
                        Escape(p.name()),
                        Escape(&e)
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One method of [`PluginSet`] for an event, by the event's kind.
macro_rules! set_method {
    (PodNotification $name:ident $event:ident $h:ident $req:ident $resp:ident) => {
        #[doc = concat!("Relays ", stringify!($name), " (see [`PluginSet::state_change`]).")]
        pub fn $h(&self, pod: &PodSandbox) -> Result<()> {
            self.state_change(Event::$event, pod, None)
        }
    };
    (ContainerNotification $name:ident $event:ident $h:ident $req:ident $resp:ident) => {
        #[doc = concat!("Relays ", stringify!($name), " (see [`PluginSet::state_change`]).")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
            self.state_change(Event::$event, pod, Some(container))
        }
    };
    (PodUpdate $name:ident $event:ident $h:ident $req:ident $resp:ident) => {
        #[doc = concat!("Relays ", stringify!($name), " to every subscribed plugin, in index \
            order. A subscribed plugin that answers UNIMPLEMENTED fails the request: the event \
            has no StateChange form.")]
        pub fn $h(&self, pod: &PodSandbox, overhead: &LinuxResources, resources: &LinuxResources)
            -> Result<()> {
            let req = shape::numbered([pod, overhead, resources]);
            self.relay_all(Event::$event, |p| {
                p.relay.request(rpc::$event, Some(Event::$event), &req, false).map(|_| ())
            })
        }
    };
    (Create $name:ident $event:ident $h:ident $req:ident $resp:ident) => {
        #[doc = concat!("Relays ", stringify!($name), " to every subscribed plugin, merges the \
            adjustments and updates, has validators check the result (v0.10+) and returns it.")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container) -> Result<$resp> {
            self.create(rpc::$event, Event::$event, pod, container)
        }
    };
    (UpdateWithUpdates $name:ident $event:ident $h:ident $req:ident $resp:ident) => {
        #[doc = concat!("Relays ", stringify!($name), " to every subscribed plugin and returns \
            the merged updates: those of other containers, then the merged update of this \
            container when a plugin changed it.")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container, resources: &LinuxResources)
            -> Result<$resp> {
            self.update(rpc::$event, Event::$event, pod, container, resources)
        }
    };
    (StopWithUpdates $name:ident $event:ident $h:ident $req:ident $resp:ident) => {
        #[doc = concat!("Relays ", stringify!($name), " to every subscribed plugin and returns \
            the merged updates of other containers.")]
        pub fn $h(&self, pod: &PodSandbox, container: &Container) -> Result<$resp> {
            self.stop(rpc::$event, Event::$event, pod, container)
        }
    };
    // Validators are asked by the creation, after merging.
    (Validation $($rest:tt)*) => {};
}

macro_rules! set_methods {
    ($({ name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
         rpc: $req:ident => $resp:ident, $($rest:tt)* })*) => {
        /// The event methods, one per event of the event table.
        impl PluginSet {
            $(set_method!($kind $name $event $handler $req $resp);)*
        }
    };
}

crate::event_table::for_each_event!(set_methods);

fn remove_closed(plugins: &mut Vec<Arc<PluginHandle>>) {
    plugins.retain(|p| {
        let keep = p.is_connected();
        if !keep {
            log::info!("removing closed plugin {}", Escape(p.name()));
        }
        keep
    });
}
