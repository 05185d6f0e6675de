//! The template plugin: every handler of [`Plugin`], each logging what it
//! sees and changing nothing. Copy it, delete the handlers you do not need,
//! and fill in the ones you keep.

use std::sync::Mutex;

use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, EventMask, LinuxResources, PodSandbox,
    ValidateContainerAdjustmentRequest,
};
use nri::stub::{Context, HandlerResult, Plugin, SyncState};
use serde::Deserialize;

/// The plugin's own settings, from the configuration text the runtime sends
/// in Configure (for a pre-registered plugin, `/etc/nri/conf.d/NN-name.conf`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `cfgParam1: <text>`: an example parameter.
    pub cfg_param1: String,
}

/// The keys a configuration text sets (absent ones are `None`), decoded as
/// the Go plugin decodes its `config` struct (`nri::decode`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PartialConfig {
    #[serde(rename = "cfgParam1")]
    cfg_param1: Option<String>,
}

/// `pod/container`, for log messages.
fn container_name(pod: &PodSandbox, container: &Container) -> String {
    if pod.name.is_empty() {
        container.name.clone()
    } else {
        format!("{}/{}", pod.name, container.name)
    }
}

/// The template plugin.
#[derive(Default)]
pub struct Template {
    config: Mutex<Config>,
    /// The events seen so far, in order (for the demo and the tests).
    seen: Mutex<Vec<String>>,
}

impl Template {
    /// A plugin with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    fn saw(&self, what: String) {
        log::info!("{what}");
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

// Accessors for the demo and the tests.
#[allow(dead_code)]
impl Template {
    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events seen so far, as `Event pod/container` lines.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Plugin for Template {
    fn events(&self) -> EventMask {
        // Every event: the template implements every handler.
        EventMask::ALL
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        self.saw(format!("Configure: connected to {runtime} {version}"));
        if !config.is_empty() {
            // Decoded over the configuration in force, as Go's
            // yaml.Unmarshal into the plugin's config struct: keys that are
            // absent keep their value.
            let mut cfg = self.config.lock().unwrap_or_else(|e| e.into_inner());
            let decoded: Option<String> = nri::decode::from_yaml::<PartialConfig>(config)
                .map_err(|e| format!("invalid configuration: {e}"))?
                .cfg_param1;
            nri::logging::configure_from_text(config)?;
            if let Some(value) = decoded {
                cfg.cfg_param1 = value;
            }
            log::info!("configuration: {cfg:?}");
        }
        // None: subscribe to every event of events(). Return Some(mask) to
        // narrow the subscription from the configuration.
        Ok(None)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.saw(format!(
            "Synchronize: {} pods, {} containers",
            state.pod_count(),
            state.container_count()
        ));
        // The state decodes as it is read, one pod or container at a time
        // (`state.into_decoded()?` gives two vectors instead).
        for pod in state.pods() {
            let pod = pod?;
            log::info!("  pod {}/{} ({})", pod.namespace, pod.name, pod.id);
        }
        for ctr in state.containers() {
            let ctr = ctr?;
            log::info!(
                "  container {} ({}) of pod {}",
                ctr.name,
                ctr.id,
                ctr.pod_sandbox_id
            );
        }
        // Updates returned here apply to the containers that already exist.
        Ok(Vec::new())
    }

    fn shutdown(&self, _ctx: &Context<'_>) {
        // Not sent by v0.9.0 runtimes: see the stub's on_close callback.
        self.saw("Shutdown".into());
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.saw(format!("RunPodSandbox {}/{}", pod.namespace, pod.name));
        Ok(())
    }

    fn stop_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.saw(format!("StopPodSandbox {}/{}", pod.namespace, pod.name));
        Ok(())
    }

    fn remove_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.saw(format!("RemovePodSandbox {}/{}", pod.namespace, pod.name));
        Ok(())
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        self.saw(format!(
            "CreateContainer {}",
            container_name(pod, container)
        ));
        // The container does not exist yet: this is where most of its
        // configuration can still be changed (annotations, mounts, env,
        // hooks, devices, rlimits, resources; see ContainerAdjustment's
        // methods). Updates to other, running containers may go along.
        let adjustment = ContainerAdjustment::new();
        let updates = Vec::new();
        Ok((adjustment, updates))
    }

    fn post_create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.saw(format!(
            "PostCreateContainer {}",
            container_name(pod, container)
        ));
        Ok(())
    }

    fn start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.saw(format!("StartContainer {}", container_name(pod, container)));
        Ok(())
    }

    fn post_start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.saw(format!(
            "PostStartContainer {}",
            container_name(pod, container)
        ));
        Ok(())
    }

    fn update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
        _resources: &LinuxResources,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.saw(format!(
            "UpdateContainer {}",
            container_name(pod, container)
        ));
        // An update for this container replaces the requested one; updates
        // for other containers apply to them.
        Ok(Vec::new())
    }

    fn post_update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.saw(format!(
            "PostUpdateContainer {}",
            container_name(pod, container)
        ));
        Ok(())
    }

    fn stop_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.saw(format!("StopContainer {}", container_name(pod, container)));
        // The container is stopping: the place to hand its resources to the
        // containers that remain.
        Ok(Vec::new())
    }

    fn remove_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.saw(format!(
            "RemoveContainer {}",
            container_name(pod, container)
        ));
        Ok(())
    }

    // The events below arrived in NRI v0.10: a runtime embedding an older
    // NRI cannot send them, and the stub leaves them out of the
    // subscription (see StubBuilder::require_events to insist).

    fn update_pod_sandbox(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        _overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> HandlerResult<()> {
        self.saw(format!(
            "UpdatePodSandbox {}/{} (cpus {:?})",
            pod.namespace, pod.name, resources.cpu.cpus
        ));
        Ok(())
    }

    fn post_update_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.saw(format!(
            "PostUpdatePodSandbox {}/{}",
            pod.namespace, pod.name
        ));
        Ok(())
    }

    fn validate_container_adjustment(
        &self,
        _ctx: &Context<'_>,
        request: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        let plugins: Vec<String> = request.plugins.iter().map(|p| p.full_name()).collect();
        self.saw(format!(
            "ValidateContainerAdjustment {} (by {})",
            container_name(
                request.pod.get_or_default(),
                request.container.get_or_default()
            ),
            plugins.join(",")
        ));
        // Returning an error rejects the whole creation, with the error's
        // text as the reason (see examples/validator for a real policy).
        Ok(())
    }
}
