//! The template plugin: every handler of [`Plugin`], each logging what it
//! sees and changing nothing. Copy it, delete the handlers you do not need,
//! and fill in the ones you keep.
//!
//! Like upstream's template, it keeps nothing of what it sees but its
//! configuration: a plugin runs for as long as the node does, and anything
//! kept per event grows without end. [`Template::with_journal`] adds a
//! journal of the most recent events, bounded in bytes, for the demo and
//! the tests.

use std::collections::VecDeque;
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

/// The most recent event lines, at most `max_bytes` bytes of them held
/// (each line's text and its `String`).
#[derive(Debug, Default)]
pub struct Journal {
    lines: VecDeque<String>,
    bytes: usize,
    max_bytes: usize,
    dropped: u64,
}

// Used through Template::with_journal (the demo and the tests).
#[allow(dead_code)]
impl Journal {
    /// An empty journal holding at most `max_bytes` bytes.
    pub fn new(max_bytes: usize) -> Journal {
        Journal {
            max_bytes,
            ..Journal::default()
        }
    }

    fn cost(line: &str) -> usize {
        line.len() + std::mem::size_of::<String>()
    }

    /// Adds a line, dropping the oldest ones to stay within the bound (a
    /// line too long to fit on its own is cut).
    pub fn push(&mut self, mut line: String) {
        let room = self.max_bytes.saturating_sub(std::mem::size_of::<String>());
        if line.len() > room {
            let mut end = room;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        line.shrink_to_fit();
        while !self.lines.is_empty() && self.bytes + Self::cost(&line) > self.max_bytes {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= Self::cost(&old);
                self.dropped += 1;
            }
        }
        if Self::cost(&line) <= self.max_bytes {
            self.bytes += Self::cost(&line);
            self.lines.push_back(line);
        } else {
            self.dropped += 1;
        }
    }

    /// The lines held, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines dropped to stay within the bound.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The template plugin.
#[derive(Default)]
pub struct Template {
    config: Mutex<Config>,
    /// The most recent events, when asked for (the demo and the tests).
    journal: Option<Mutex<Journal>>,
}

impl Template {
    /// A plugin with the default configuration, keeping no events.
    pub fn new() -> Self {
        Self::default()
    }

    fn saw(&self, what: String) {
        log::info!("{what}");
        if let Some(journal) = &self.journal {
            journal.lock().unwrap_or_else(|e| e.into_inner()).push(what);
        }
    }
}

// For the demo and the tests.
#[allow(dead_code)]
impl Template {
    /// A plugin that also keeps the most recent events it sees, at most
    /// `max_bytes` bytes of them.
    pub fn with_journal(max_bytes: usize) -> Self {
        Template {
            journal: Some(Mutex::new(Journal::new(max_bytes))),
            ..Self::default()
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The most recent events seen, as `Event pod/container` lines (none
    /// without a journal).
    pub fn seen(&self) -> Vec<String> {
        self.journal.as_ref().map_or_else(Vec::new, |j| {
            j.lock().unwrap_or_else(|e| e.into_inner()).lines()
        })
    }

    /// The journal's bytes held and lines dropped, `None` without one.
    pub fn journal_usage(&self) -> Option<(usize, u64)> {
        self.journal.as_ref().map(|j| {
            let j = j.lock().unwrap_or_else(|e| e.into_inner());
            (j.bytes(), j.dropped())
        })
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
