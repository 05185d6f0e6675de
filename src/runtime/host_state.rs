//! What every plugin connection of one runtime shares: its settings, the
//! pods and containers it sends in Synchronize, the update callback and the
//! runtime-wide event lock, and the connections of refused plugins.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{Container, ContainerUpdate, PodSandbox};

use super::emulation::Emulation;
use super::fair_lock::{FairGuard, FairLock};
use super::refused::RefusedConnections;

/// The callback that performs container updates a plugin asked for on its
/// own (`UpdateContainers`). It returns the updates that failed.
pub type UpdateContainersFn = dyn Fn(&[ContainerUpdate]) -> Vec<ContainerUpdate> + Send + Sync;

/// Where the standard output and error of launched plugins go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PluginOutput {
    /// `/dev/null`, as the reference runtime does.
    #[default]
    Null,
    /// This process's own standard output and error (handy when debugging a
    /// plugin under test).
    Inherit,
    /// Appended to this file (created if missing), both streams.
    File(PathBuf),
}

/// How the runtime presents itself and treats plugins.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The emulated NRI version.
    pub(crate) emulation: Emulation,
    /// Sent in Configure.
    pub(crate) name: String,
    /// Sent in Configure.
    pub(crate) version: String,
    pub(crate) registration_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// Configuration per plugin, by `NN-name` or `name`.
    pub(crate) configs: HashMap<String, String>,
    /// Worker threads per plugin connection.
    pub(crate) workers: usize,
    /// Where launched plugins' output goes.
    pub(crate) output: PluginOutput,
    /// Bytes the recorded unsolicited updates of one plugin may hold.
    pub(crate) max_recorded_update_bytes: usize,
    /// Connections of a listener waiting to register, plus refused ones
    /// held open, at most.
    pub(crate) max_unregistered_connections: usize,
}

impl Settings {
    /// The configuration for plugin `index`-`base`: by full name, else by
    /// name, else empty.
    pub(crate) fn config_for(&self, index: &str, base: &str) -> String {
        self.configs
            .get(&format!("{index}-{base}"))
            .or_else(|| self.configs.get(base))
            .cloned()
            .unwrap_or_default()
    }
}

/// Pods and containers sent to plugins in `Synchronize`.
#[derive(Default)]
pub(crate) struct Inventory {
    pub(crate) pods: Vec<PodSandbox>,
    pub(crate) containers: Vec<Container>,
}

/// What the serving side of every plugin connection shares: the update
/// callback and the runtime-wide event lock.
pub(crate) struct Hub {
    pub(crate) update_fn: Arc<UpdateContainersFn>,
    pub(crate) block_updates: bool,
    pub(crate) event_lock: FairLock,
}

impl Hub {
    /// Holds the runtime-wide event lock when updates are to be blocked
    /// during events.
    pub(crate) fn event_guard(&self) -> Option<FairGuard<'_>> {
        self.block_updates.then(|| self.event_lock.lock())
    }
}

/// Everything one runtime's plugin connections share.
pub(crate) struct HostState {
    pub(crate) settings: Settings,
    pub(crate) hub: Arc<Hub>,
    /// What the next plugins get in Synchronize.
    pub(crate) inventory: Mutex<Arc<Inventory>>,
    /// Connections of plugins whose registration was refused: like the
    /// reference, the runtime does not close them; it keeps them open until
    /// the plugin closes them or the runtime goes away.
    pub(crate) refused: RefusedConnections,
}

impl HostState {
    pub(crate) fn new(settings: Settings, hub: Hub) -> HostState {
        let refused = RefusedConnections::new(settings.max_unregistered_connections);
        HostState {
            settings,
            hub: Arc::new(hub),
            inventory: Mutex::new(Arc::new(Inventory::default())),
            refused,
        }
    }
}
