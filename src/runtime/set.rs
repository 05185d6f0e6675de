//! Several plugins behind one runtime, called in index order with their
//! replies merged, as the reference relays every event.

use std::sync::{Arc, Mutex};

use protobuf::MessageField;

use super::plugin::{check_state_change, is_fatal, state_change_event};
use super::result::Collector;
use super::{lock, Hub, PluginHandle, Runtime};
use crate::api::{
    Container, CreateContainerRequest, CreateContainerResponse, Empty, Event, LinuxResources,
    PodSandbox, StopContainerRequest, StopContainerResponse, UpdateContainerRequest,
    UpdateContainerResponse,
};
use crate::{Error, Result};

/// The plugins of one [`Runtime`], relayed to like the reference relays
/// every pod and container event.
///
/// Plugins are kept sorted by index and called one after another while the
/// runtime's event lock is held (see
/// [`RuntimeBuilder::block_updates_during_events`](super::RuntimeBuilder::block_updates_during_events)).
/// For CreateContainer, UpdateContainer and StopContainer the replies are
/// merged: each plugin gets the request as the earlier ones adjusted it,
/// and two plugins setting the same item of the same container fail the
/// operation with [`Error::Handler`] naming both (a plugin takes an item
/// over without conflict by removing it first). A plugin that fails
/// fatally (timeout, closed connection) is dropped and counts as having
/// answered nothing; the others still run. A non-OK status from a plugin
/// fails the operation at once with [`Error::Status`] and later plugins are
/// not called. Dropped plugins leave the set after each relay.
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
    plugins: Mutex<Vec<Arc<PluginHandle>>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet")
            .field("plugins", &self.names())
            .finish()
    }
}

impl PluginSet {
    /// An empty set for plugins accepted by `runtime`.
    pub fn new(runtime: &Runtime) -> PluginSet {
        PluginSet {
            hub: runtime.inner.hub.clone(),
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

    /// Relays CreateContainer to every subscribed plugin and returns the
    /// merged adjustment and updates.
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
        let mut result = Collector::create(req);
        self.relay_all(|p| {
            let req = result.create_request().ok_or_else(|| {
                Error::State(
                    "internal error: the CreateContainer collector holds no request".into(),
                )
            })?;
            let reply = p.relay::<_, CreateContainerResponse>(
                Some(Event::CREATE_CONTAINER),
                "CreateContainer",
                req,
                false,
            )?;
            match reply {
                Some(reply) => result.apply_create(&reply, p.name()),
                None => Ok(()),
            }
        })?;
        Ok(result.create_response())
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
        let mut result = Collector::update(req);
        self.relay_all(|p| {
            let req = result.update_request().ok_or_else(|| {
                Error::State(
                    "internal error: the UpdateContainer collector holds no request".into(),
                )
            })?;
            let reply = p.relay::<_, UpdateContainerResponse>(
                Some(Event::UPDATE_CONTAINER),
                "UpdateContainer",
                req,
                false,
            )?;
            match reply {
                Some(reply) => result.apply_updates(&reply.update, p.name()),
                None => Ok(()),
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
        let req = StopContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(container.clone()),
            ..Default::default()
        };
        let mut result = Collector::stop();
        self.relay_all(|p| {
            let reply = p.relay::<_, StopContainerResponse>(
                Some(Event::STOP_CONTAINER),
                "StopContainer",
                &req,
                false,
            )?;
            match reply {
                Some(reply) => result.apply_updates(&reply.update, p.name()),
                None => Ok(()),
            }
        })?;
        Ok(result.stop_response())
    }

    /// Relays a StateChange event (see [`PluginHandle::state_change`] for
    /// the events it carries) to every subscribed plugin.
    pub fn state_change(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> Result<()> {
        if event == Event::UNKNOWN {
            return Err(Error::Config(
                "invalid (unset) event in state change notification".into(),
            ));
        }
        check_state_change(event)?;
        let req = state_change_event(event, pod, container);
        self.relay_all(|p| {
            p.relay::<_, Empty>(Some(event), "StateChange", &req, false)
                .map(|_| ())
        })
    }

    /// Relays RunPodSandbox.
    pub fn run_pod_sandbox(&self, pod: &PodSandbox) -> Result<()> {
        self.state_change(Event::RUN_POD_SANDBOX, pod, None)
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

    /// Calls `f` on each plugin in order under the event lock. A fatal
    /// failure skips the plugin (it was dropped); any other error stops the
    /// relay. Dropped plugins leave the set afterwards.
    fn relay_all(&self, mut f: impl FnMut(&PluginHandle) -> Result<()>) -> Result<()> {
        let _event = self.hub.event_guard();
        let mut plugins = lock(&self.plugins);
        let mut outcome = Ok(());
        for p in plugins.iter() {
            match f(p) {
                Ok(()) => {}
                Err(e) if is_fatal(&e) && !p.is_connected() => {
                    log::warn!("plugin {} dropped while relaying an event: {e}", p.name());
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        plugins.retain(|p| {
            let keep = p.is_connected();
            if !keep {
                log::info!("removing closed plugin {}", p.name());
            }
            keep
        });
        outcome
    }
}
