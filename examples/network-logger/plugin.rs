//! The network logger: logs each pod's network namespace and IP addresses
//! when the runtime synchronizes and as pods start, stop and go away. A
//! port of containerd/nri's `plugins/network-logger`.
//!
//! Its lines are the Go plugin's, word for word, so that what operators grep
//! for stays the same:
//!
//! ```text
//! Synchronized state with the runtime (2 pods, 3 containers)...
//! pod default/web: namespace=/var/run/netns/cni-1234 ips=[10.244.1.5 fd00::5]
//! Started pod default/web: namespace=/var/run/netns/cni-1234 ips=[10.244.1.5 fd00::5]
//! Stopped pod default/web: ips=[10.244.1.5 fd00::5]
//! Removed pod default/web: ips=[10.244.1.5 fd00::5]
//! Runtime shutting down...
//! ```
//!
//! A pod in the host's network namespace has `namespace=<host-network>`, and
//! no addresses, `ips=[]` (Go prints a list of strings as `[a b]`).
//!
//! When the connection to the runtime is lost the plugin logs `Connection to
//! the runtime lost, exiting...` and exits, as the Go plugin does, with the
//! library's exit status (1 for an external plugin, 0 for one the runtime
//! launched and let go, where Go always exits 1); with `-reconnect` it
//! stays up and reconnects instead, and logs that.
//!
//! Like every example here (and unlike the Go plugin, which takes no
//! configuration), it reads `logFile`, `syslog` and `verbose` from the
//! configuration text the runtime sends (see `nri::logging`): the only
//! settings a plugin the runtime launches gets.

use std::sync::Arc;

use nri::api::{ContainerUpdate, Event, EventMask, LinuxNamespace, PodSandbox};
use nri::stub::{Context, HandlerResult, Plugin, SyncState};

/// Where each line goes besides the log (tests collect them).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The network logger plugin.
#[derive(Default)]
pub struct NetworkLogger {
    sink: Option<Sink>,
}

impl NetworkLogger {
    /// A logger that only logs.
    pub fn new() -> Self {
        Self::default()
    }

    /// A logger that also hands every line to `sink`.
    #[allow(dead_code)] // used by the tests
    pub fn with_sink(sink: Sink) -> Self {
        Self { sink: Some(sink) }
    }

    fn line(&self, text: String) {
        log::info!("{text}");
        if let Some(sink) = &self.sink {
            sink(&text);
        }
    }
}

/// The pod's network namespace, as the Go plugin names it: the path of its
/// first namespace of kind `network`, else `<host-network>`.
pub fn network_namespace(pod: &PodSandbox) -> &str {
    match pod.linux.namespace(LinuxNamespace::NETWORK) {
        Some(ns) => &ns.path,
        None => "<host-network>",
    }
}

/// A list of strings as Go's `%v` prints it: `[a b c]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// The line for one pod of the synchronized state.
pub fn pod_line(pod: &PodSandbox) -> String {
    format!(
        "pod {}/{}: namespace={} ips={}",
        pod.namespace,
        pod.name,
        network_namespace(pod),
        go_list(&pod.ips)
    )
}

/// The line for a pod that started.
pub fn started_line(pod: &PodSandbox) -> String {
    format!(
        "Started pod {}/{}: namespace={} ips={}",
        pod.namespace,
        pod.name,
        network_namespace(pod),
        go_list(&pod.ips)
    )
}

/// The line for a pod that stopped (`verb` "Stopped") or went away
/// ("Removed").
pub fn ended_line(verb: &str, pod: &PodSandbox) -> String {
    format!(
        "{verb} pod {}/{}: ips={}",
        pod.namespace,
        pod.name,
        go_list(&pod.ips)
    )
}

impl Plugin for NetworkLogger {
    fn events(&self) -> EventMask {
        Event::RUN_POD_SANDBOX | Event::STOP_POD_SANDBOX | Event::REMOVE_POD_SANDBOX
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        // The logging keys (logFile, syslog, verbose), as every example.
        nri::logging::configure_from_text(config)?;
        Ok(None)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.line(format!(
            "Synchronized state with the runtime ({} pods, {} containers)...",
            state.pod_count(),
            state.container_count()
        ));
        for pod in state.pods() {
            self.line(pod_line(&pod?));
        }
        Ok(Vec::new())
    }

    fn shutdown(&self, _ctx: &Context<'_>) {
        self.line("Runtime shutting down...".into());
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.line(started_line(pod));
        Ok(())
    }

    fn stop_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.line(ended_line("Stopped", pod));
        Ok(())
    }

    fn remove_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.line(ended_line("Removed", pod));
        Ok(())
    }
}
