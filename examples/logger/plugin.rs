//! The logger plugin: logs every event it is subscribed to, with the full
//! pod and container it carries, and can stamp an annotation or an
//! environment variable on every container it sees created.
//!
//! Configuration (flags when run by hand, or the Configure text):
//!
//! ```yaml
//! events: [RunPodSandbox, CreateContainer]  # or "pod,container", default all
//! logFile: /var/log/nri-logger.log           # see nri::logging
//! addAnnotation: logger.nri.io/seen          # add, unless another plugin did
//! setAnnotation: logger.nri.io/owner         # remove any value, then add
//! addEnv: NRI_LOGGER                         # same for environment variables
//! setEnv: NRI_LOGGER_PID
//! ```
//!
//! The value stamped is `logger-pid-<pid>`, as in the Go sample.
//!
//! `setAnnotation` records a removal and an addition of the same key in one
//! adjustment, as the Go logger does. containerd applies an adjustment's
//! annotations in Go map order, so the annotation is missing from some
//! containers (2 creations in 12 under containerd 2.4.2): the port keeps
//! the original's behaviour, and the deployment example uses
//! `addAnnotation`, which replaces a value the container already has.

use std::sync::Mutex;

use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, Dump, EventMask, LinuxResources, PodSandbox,
    ValidateContainerAdjustmentRequest,
};
use nri::decode::Value;
use nri::stub::{Context, HandlerResult, Plugin, SyncState};
use serde::Deserialize;

/// What the logger does besides logging.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Events to log; `None` logs them all.
    pub events: Option<EventMask>,
    /// Annotation key to add to every created container.
    pub add_annotation: String,
    /// Annotation key to set (remove, then add) on every created container.
    pub set_annotation: String,
    /// Environment variable to add to every created container.
    pub add_env: String,
    /// Environment variable to set (remove, then add) in every created container.
    pub set_env: String,
}

/// The keys a configuration text sets, decoded as the Go logger decodes
/// its `config` struct (`nri::decode`); absent keys are `None`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Keys {
    /// A list of event names, or one comma-separated string of them.
    events: Option<Value>,
    add_annotation: Option<String>,
    set_annotation: Option<String>,
    add_env: Option<String>,
    set_env: Option<String>,
}

impl Config {
    /// Reads the configuration text of Configure; keys that are absent keep
    /// their value from `self` (the flags).
    pub fn merge(&self, text: &str) -> Result<Config, String> {
        let keys: Keys =
            nri::decode::from_yaml(text).map_err(|e| format!("invalid configuration: {e}"))?;
        let mut cfg = self.clone();
        if let Some(events) = &keys.events {
            let names: Vec<&str> = match events {
                Value::Seq(items) => items
                    .iter()
                    .map(|i| i.as_str().ok_or("events: expected event names"))
                    .collect::<Result<_, _>>()?,
                Value::String(list) => vec![list.as_str()],
                Value::Null => Vec::new(),
                _ => return Err("events: expected a list of event names".into()),
            };
            let mask = EventMask::parse(&names.join(","))
                .map_err(|e| format!("invalid events in configuration: {e}"))?;
            cfg.events = Some(mask);
        }
        let set = |value: Option<String>, slot: &mut String| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(keys.add_annotation, &mut cfg.add_annotation);
        set(keys.set_annotation, &mut cfg.set_annotation);
        set(keys.add_env, &mut cfg.add_env);
        set(keys.set_env, &mut cfg.set_env);
        nri::logging::configure_from_text(text).map_err(|e| e.to_string())?;
        Ok(cfg)
    }
}

/// The logger plugin.
pub struct Logger {
    flags: Config,
    config: Mutex<Config>,
}

impl Logger {
    /// A logger with the settings from the command line.
    pub fn new(flags: Config) -> Self {
        Logger {
            config: Mutex::new(flags.clone()),
            flags,
        }
    }

    fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Logs `what`, then each message's dump (nri::api::Dump), one line at a
/// time, as the Go logger logs each object as YAML.
fn dump(what: &str, objects: &[(&str, &dyn Dump)]) {
    log::info!("{what}");
    for (tag, object) in objects {
        nri::api::dump::log(log::Level::Info, "", tag, *object);
    }
}

impl Plugin for Logger {
    fn events(&self) -> EventMask {
        EventMask::ALL
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        log::info!("Configure: runtime {runtime} {version}, configuration {config:?}");
        let cfg = self.flags.merge(config)?;
        let events = cfg.events;
        log::info!(
            "logging events: {}",
            events.map_or_else(|| "all".to_string(), |m| m.to_string())
        );
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        Ok(events)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        log::info!(
            "Synchronize: {} pods, {} containers",
            state.pod_count(),
            state.container_count()
        );
        for pod in state.pods() {
            dump("Synchronize", &[("pod", &pod?)]);
        }
        for ctr in state.containers() {
            dump("Synchronize", &[("container", &ctr?)]);
        }
        Ok(Vec::new())
    }

    fn shutdown(&self, _ctx: &Context<'_>) {
        log::info!("Shutdown");
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        dump("RunPodSandbox", &[("pod", pod)]);
        Ok(())
    }

    fn stop_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        dump("StopPodSandbox", &[("pod", pod)]);
        Ok(())
    }

    fn remove_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        dump("RemovePodSandbox", &[("pod", pod)]);
        Ok(())
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        dump("CreateContainer", &[("pod", pod), ("container", container)]);
        let cfg = self.config();
        let stamp = format!("logger-pid-{}", std::process::id());
        let mut adjust = ContainerAdjustment::new();
        if !cfg.add_annotation.is_empty() {
            adjust.add_annotation(&cfg.add_annotation, &stamp);
        }
        if !cfg.set_annotation.is_empty() {
            adjust
                .remove_annotation(&cfg.set_annotation)
                .add_annotation(&cfg.set_annotation, &stamp);
        }
        if !cfg.add_env.is_empty() {
            adjust.add_env(&cfg.add_env, &stamp);
        }
        if !cfg.set_env.is_empty() {
            adjust
                .remove_env(&cfg.set_env)
                .add_env(&cfg.set_env, &stamp);
        }
        Ok((adjust, Vec::new()))
    }

    fn post_create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        dump(
            "PostCreateContainer",
            &[("pod", pod), ("container", container)],
        );
        Ok(())
    }

    fn start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        dump("StartContainer", &[("pod", pod), ("container", container)]);
        Ok(())
    }

    fn post_start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        dump(
            "PostStartContainer",
            &[("pod", pod), ("container", container)],
        );
        Ok(())
    }

    fn update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        dump(
            "UpdateContainer",
            &[
                ("pod", pod),
                ("container", container),
                ("resources", resources),
            ],
        );
        Ok(Vec::new())
    }

    fn post_update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        dump(
            "PostUpdateContainer",
            &[("pod", pod), ("container", container)],
        );
        Ok(())
    }

    fn stop_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        dump("StopContainer", &[("pod", pod), ("container", container)]);
        Ok(Vec::new())
    }

    fn remove_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        dump("RemoveContainer", &[("pod", pod), ("container", container)]);
        Ok(())
    }

    fn update_pod_sandbox(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> HandlerResult<()> {
        dump(
            "UpdatePodSandbox",
            &[
                ("pod", pod),
                ("overhead", overhead),
                ("resources", resources),
            ],
        );
        Ok(())
    }

    fn post_update_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        dump("PostUpdatePodSandbox", &[("pod", pod)]);
        Ok(())
    }

    fn validate_container_adjustment(
        &self,
        _ctx: &Context<'_>,
        request: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        dump("ValidateContainerAdjustment", &[("request", request)]);
        Ok(())
    }
}
