//! Several plugins behind one runtime, called in index order with their
//! replies merged and adjustments validated, as the reference relays every
//! event.

use std::sync::{Arc, Mutex};

use protobuf::MessageField;

use super::handle::PluginHandle;
use super::merge::{pristine_container, Collector};
use super::relay::{check_notification, is_fatal, Sent};
use super::validate::validate;
use super::version::Emulation;
use super::{lock, Hub, Runtime};
use crate::api::{
    Container, CreateContainerRequest, CreateContainerResponse, Event, LinuxResources,
    PluginInstance, PodSandbox, StopContainerResponse, UpdateContainerRequest,
    UpdateContainerResponse, ValidateContainerAdjustmentRequest,
};
use crate::{Error, Result};

/// The plugins of one [`Runtime`], relayed to like the reference relays
/// every pod and container event.
///
/// Plugins are kept sorted by index and called one after another while the
/// runtime's event lock is held (see
/// [`RuntimeBuilder::block_updates_during_events`](super::RuntimeBuilder::block_updates_during_events)).
/// Plugins not subscribed to an event are skipped, and so is a plugin whose
/// connection closed since the last event.
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
///   `fail_request` (v0.12.5), fails with [`Error::Handler`] naming the
///   plugin and the event. Dropped plugins leave the set after each relay.
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
            hub: runtime.inner.hub.clone(),
            version: runtime.inner.nri,
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

    /// Relays CreateContainer to every subscribed plugin, merges the
    /// adjustments and updates, has validators check the result (v0.10+)
    /// and returns it.
    pub fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse> {
        let req = CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(container.clone()),
            ..Default::default()
        };
        let mut result = Collector::create(req, self.version.profile().merge);
        let event = Event::CREATE_CONTAINER;
        let _event = self.hub.event_guard();
        let mut plugins = lock(&self.plugins);
        let validators: Vec<Arc<PluginHandle>> = plugins
            .iter()
            .filter(|p| p.is_connected() && p.is_subscribed(Event::VALIDATE_CONTAINER_ADJUSTMENT))
            .cloned()
            .collect();
        // As the reference: the container validators see is taken after the
        // skeleton was filled in, before any plugin adjusted it.
        let pristine = (!validators.is_empty())
            .then(|| pristine_container(&result))
            .flatten();
        let mut took_part = Vec::new();
        let relayed = relay_each(&plugins, event, |p| {
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
            match p.relay::<_, CreateContainerResponse>(
                Some(event),
                "CreateContainer",
                req,
                false,
            )? {
                Sent::Reply(reply) => result.apply_create(&reply, p.name()),
                Sent::NotSubscribed => Ok(()),
            }
        });
        let outcome = relayed.and_then(|()| {
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
            let live: Vec<&PluginHandle> = validators
                .iter()
                .filter(|p| p.is_connected())
                .map(|p| p.as_ref())
                .collect();
            validate(&live, &check)?;
            Ok(CreateContainerResponse {
                adjust: std::mem::take(&mut check.adjust),
                update: std::mem::take(&mut check.update),
                ..Default::default()
            })
        });
        remove_closed(&mut plugins);
        outcome
    }

    /// Relays UpdateContainer to every subscribed plugin and returns the
    /// merged updates: those of other containers, then the merged update of
    /// this container when a plugin changed it.
    pub fn update_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
    ) -> Result<UpdateContainerResponse> {
        let req = UpdateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(container.clone()),
            linux_resources: MessageField::some(resources.clone()),
            ..Default::default()
        };
        let mut result = Collector::update(req, self.version.profile().merge);
        let event = Event::UPDATE_CONTAINER;
        self.relay_all(event, |p| {
            let req = result.update_request().ok_or_else(|| {
                Error::State(
                    "internal error: the UpdateContainer collector holds no request".into(),
                )
            })?;
            match p.relay::<_, UpdateContainerResponse>(
                Some(event),
                "UpdateContainer",
                req,
                false,
            )? {
                Sent::Reply(reply) => result.apply_updates(&reply.update, p.name()),
                Sent::NotSubscribed => Ok(()),
            }
        })?;
        Ok(result.update_response())
    }

    /// Relays StopContainer to every subscribed plugin and returns the
    /// merged updates of other containers.
    pub fn stop_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<StopContainerResponse> {
        let mut result = Collector::stop(self.version.profile().merge);
        self.relay_all(Event::STOP_CONTAINER, |p| {
            match p.send_stop_container(pod, container, false)? {
                Sent::Reply(reply) => result.apply_updates(&reply.update, p.name()),
                Sent::NotSubscribed => Ok(()),
            }
        })?;
        Ok(result.stop_response())
    }

    /// Relays UpdatePodSandbox (NRI v0.10+) to every subscribed plugin, in
    /// index order. A subscribed plugin that answers UNIMPLEMENTED fails
    /// the request: the event has no StateChange form.
    pub fn update_pod_sandbox(
        &self,
        pod: &PodSandbox,
        overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> Result<()> {
        self.relay_all(Event::UPDATE_POD_SANDBOX, |p| {
            p.send_update_pod_sandbox(pod, overhead, resources, false)
                .map(|_| ())
        })
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
            p.notify(event, pod, container, false).map(|_| ())
        })
    }

    /// Relays RunPodSandbox.
    pub fn run_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::RUN_POD_SANDBOX, pod, None)
    }

    /// Relays PostUpdatePodSandbox (NRI v0.10+).
    pub fn post_update_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::POST_UPDATE_POD_SANDBOX, pod, None)
    }

    /// Relays StopPodSandbox.
    pub fn stop_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::STOP_POD_SANDBOX, pod, None)
    }

    /// Relays RemovePodSandbox.
    pub fn remove_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::REMOVE_POD_SANDBOX, pod, None)
    }

    /// Relays PostCreateContainer.
    pub fn post_create_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_CREATE_CONTAINER, pod, Some(container))
    }

    /// Relays StartContainer.
    pub fn start_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::START_CONTAINER, pod, Some(container))
    }

    /// Relays PostStartContainer.
    pub fn post_start_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_START_CONTAINER, pod, Some(container))
    }

    /// Relays PostUpdateContainer.
    pub fn post_update_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::POST_UPDATE_CONTAINER, pod, Some(container))
    }

    /// Relays RemoveContainer.
    pub fn remove_container(&self, pod: &PodSandbox, container: &Container) -> Result<()> {
        self.state_change(Event::REMOVE_CONTAINER, pod, Some(container))
    }

    /// Calls `f` on each connected plugin in order under the event lock,
    /// then removes the plugins that were dropped.
    fn relay_all(&self, event: Event, f: impl FnMut(&PluginHandle) -> Result<()>) -> Result<()> {
        let _event = self.hub.event_guard();
        let mut plugins = lock(&self.plugins);
        let outcome = relay_each(&plugins, event, f);
        remove_closed(&mut plugins);
        outcome
    }
}

/// Calls `f` on each connected plugin in order. A fatal failure of a
/// plugin (it did not answer: timeout, closed connection) fails the relay
/// when the plugin's failure policy asks so, and is otherwise passed over;
/// any other error stops the relay.
fn relay_each(
    plugins: &[Arc<PluginHandle>],
    event: Event,
    mut f: impl FnMut(&PluginHandle) -> Result<()>,
) -> Result<()> {
    for p in plugins {
        if !p.is_connected() {
            log::debug!("skipping closed plugin {} for {event}", p.name());
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
                    "plugin {} failed to handle {event} request, proceeding without it: {e}",
                    p.name()
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn remove_closed(plugins: &mut Vec<Arc<PluginHandle>>) {
    plugins.retain(|p| {
        let keep = p.is_connected();
        if !keep {
            log::info!("removing closed plugin {}", p.name());
        }
        keep
    });
}
