//! [`Runtime`] and [`RuntimeBuilder`]: a runtime's settings, and the three
//! ways plugins come to it.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{
    Container, ContainerUpdate, PodSandbox, DEFAULT_REGISTRATION_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
use crate::{Error, Result};

use super::emulation::Emulation;
use super::fair_lock::FairLock;
use super::handle::PluginHandle;
use super::host_state::{HostState, Hub, Inventory, PluginOutput, Settings, UpdateContainersFn};
use super::launch;
use super::listener::PluginListener;
use super::recorded_updates::DEFAULT_MAX_RECORDED_UPDATE_BYTES;
use super::setup;
use crate::api::PluginId;
use crate::locking::lock;

/// How many connections may wait to register at a time by default (see
/// [`RuntimeBuilder::max_unregistered_connections`]).
pub const DEFAULT_MAX_UNREGISTERED_CONNECTIONS: usize = 512;

/// Sets up a [`Runtime`].
///
/// ```
/// use std::time::Duration;
/// use nri::runtime::Runtime;
///
/// let runtime = Runtime::builder()
///     .name("my-test")
///     .version("1.0")
///     .registration_timeout(Duration::from_secs(1))
///     .request_timeout(Duration::from_millis(300))
///     .plugin_config("10-logger", "level: debug")
///     .on_update_containers(|updates| {
///         // Pretend every update of container "ctr-x" fails.
///         updates.iter().filter(|u| u.container_id == "ctr-x").cloned().collect()
///     })
///     .build();
/// assert_eq!(runtime.request_timeout(), Duration::from_millis(300));
/// ```
pub struct RuntimeBuilder {
    settings: Settings,
    update_fn: Arc<UpdateContainersFn>,
    /// Unset: what the emulated version does.
    block_updates: Option<bool>,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("settings", &self.settings)
            .field("block_updates_during_events", &self.block_updates)
            .finish_non_exhaustive()
    }
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            settings: Settings {
                emulation: Emulation::default(),
                name: "nri-rs-runtime".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                configs: HashMap::new(),
                workers: 4,
                output: PluginOutput::Null,
                max_recorded_update_bytes: DEFAULT_MAX_RECORDED_UPDATE_BYTES,
                max_unregistered_connections: DEFAULT_MAX_UNREGISTERED_CONNECTIONS,
            },
            update_fn: Arc::new(|_: &[ContainerUpdate]| Vec::new()),
            block_updates: None,
        }
    }
}

impl RuntimeBuilder {
    setters! {
        /// Runtime name sent to plugins in `Configure` (default `nri-rs-runtime`).
        name(name: impl Into<String>) => settings.name = name.into();

        /// Runtime version sent to plugins in `Configure` (default: this crate's
        /// version).
        version(version: impl Into<String>) => settings.version = version.into();

        /// How long a plugin has to call `RegisterPlugin` after it connected
        /// (default 5 s). Also sent to the plugin in `Configure`.
        registration_timeout(timeout: Duration) => settings.registration_timeout = timeout;

        /// How long a plugin has to answer each request (default 2 s); one
        /// deadline of this length covers all chunks of `Synchronize`. Also sent
        /// to the plugin in `Configure`.
        request_timeout(timeout: Duration) => settings.request_timeout = timeout;
    }

    /// Configuration text sent in `Configure` to the plugin named `name`,
    /// either the full `NN-name` or the name alone; the full name wins, as
    /// with the reference's drop-in files `NN-name.conf` and `name.conf`.
    ///
    /// The reference passes configuration only to plugins it launched
    /// itself and an empty string to external ones; here external plugins
    /// get their configuration too, which is what a plugin's own tests want.
    /// [`Runtime::launch`] takes the configuration as an argument instead.
    pub fn plugin_config(mut self, name: impl Into<String>, config: impl Into<String>) -> Self {
        self.settings.configs.insert(name.into(), config.into());
        self
    }

    /// Performs the container updates plugins request with
    /// `UpdateContainers`; returns the ones that failed. The default
    /// accepts every update. Requests are also recorded on each
    /// [`PluginHandle`] ([`PluginHandle::unsolicited_updates`]).
    pub fn on_update_containers(
        mut self,
        f: impl Fn(&[ContainerUpdate]) -> Vec<ContainerUpdate> + Send + Sync + 'static,
    ) -> Self {
        self.update_fn = Arc::new(f);
        self
    }

    setters! {
        /// Worker threads per plugin connection (default 4, at least 2). The
        /// workers take turns reading the plugin's socket and serve its
        /// `RegisterPlugin` and `UpdateContainers` calls; an `UpdateContainers`
        /// call waiting for an event to finish (see
        /// [`RuntimeBuilder::block_updates_during_events`]) holds a worker, and
        /// the event's reply can only be read by another one.
        workers(n: usize) => settings.workers = n.max(2);

        /// The NRI version whose runtime side to emulate (default
        /// [`Emulation::V0_12_5`]): which events a plugin may subscribe to,
        /// how notifications are sent, whether versions are exchanged, failure
        /// policies honoured and `UpdateContainers` blocked during events, and
        /// how replies of several plugins are merged.
        ///
        /// ```
        /// use nri::runtime::{Emulation, Runtime};
        /// let old = Runtime::builder().emulate(Emulation::V0_9_0).build();
        /// assert_eq!(old.emulation(), Emulation::V0_9_0);
        /// assert!(old.blocks_updates_during_events());
        /// assert!(!Runtime::new().blocks_updates_during_events());
        /// ```
        emulate(version: Emulation) => settings.emulation = version;

        /// Whether an `UpdateContainers` call from a plugin waits until no event
        /// is in flight to any plugin of this runtime (default: what the
        /// emulated version does, [`Emulation::blocks_updates_during_events`]:
        /// yes before v0.12).
        ///
        /// Runtimes before NRI v0.12.1 hold one global lock while they relay an
        /// event and need the same lock to serve `UpdateContainers`, so a plugin
        /// that calls `UpdateContainers` synchronously from inside an event
        /// handler deadlocks them until the request times out, and is then
        /// dropped. Emulating v0.9.0 or v0.11.0 reproduces that, so a plugin's
        /// tests catch it.
        block_updates_during_events(block: bool) => block_updates = Some(block);

        /// How many bytes of memory the unsolicited updates recorded for each
        /// plugin may hold (default
        /// [`DEFAULT_MAX_RECORDED_UPDATE_BYTES`](super::DEFAULT_MAX_RECORDED_UPDATE_BYTES),
        /// 16 MiB); the oldest are dropped beyond it (see
        /// [`PluginHandle::unsolicited_updates`]).
        max_recorded_update_bytes(bytes: usize) => settings.max_recorded_update_bytes = bytes;

        /// How many connections may wait to register at a time (default
        /// [`DEFAULT_MAX_UNREGISTERED_CONNECTIONS`], 512; at least 1). A
        /// [`PluginListener`] reads the registrations of all its connections at
        /// once, on one thread, each within the registration timeout; a
        /// connection that has not registered costs one descriptor and at most
        /// [`MAX_REGISTRATION_MESSAGE`](super::MAX_REGISTRATION_MESSAGE) bytes.
        /// The count includes the connections of refused plugins, which the
        /// runtime holds open (costing a descriptor each) until their plugins
        /// close them. A new connection beyond the cap closes the oldest refused
        /// one, or, when there is none, is closed at once with a log line.
        max_unregistered_connections(n: usize) => settings.max_unregistered_connections = n.max(1);

        /// Where launched plugins' standard output and error go (default
        /// `/dev/null`, like the reference).
        plugin_output(output: PluginOutput) => settings.output = output;
    }

    /// Builds the runtime.
    pub fn build(self) -> Runtime {
        let emulation = self.settings.emulation;
        let hub = Hub {
            update_fn: self.update_fn,
            block_updates: self
                .block_updates
                .unwrap_or(emulation.blocks_updates_during_events()),
            event_lock: FairLock::default(),
        };
        Runtime {
            host: Arc::new(HostState::new(self.settings, hub)),
        }
    }
}

/// The runtime side of NRI for tests and demos. Cheap to clone; clones share
/// the configuration, the state sent in `Synchronize` and the event lock.
///
/// See the [module documentation](crate::runtime) for what it checks and an example.
#[derive(Clone)]
pub struct Runtime {
    pub(super) host: Arc<HostState>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("settings", &self.host.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::builder().build()
    }
}

impl Runtime {
    /// A builder with the reference's defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the reference's defaults.
    pub fn new() -> Runtime {
        Runtime::default()
    }

    /// Runtime name sent in `Configure`.
    pub fn name(&self) -> &str {
        &self.host.settings.name
    }

    /// Runtime version sent in `Configure`.
    pub fn version(&self) -> &str {
        &self.host.settings.version
    }

    /// The NRI version whose runtime side this runtime emulates.
    pub fn emulation(&self) -> Emulation {
        self.host.settings.emulation
    }

    /// Whether `UpdateContainers` calls wait while an event is in flight
    /// (see [`RuntimeBuilder::block_updates_during_events`]).
    pub fn blocks_updates_during_events(&self) -> bool {
        self.host.hub.block_updates
    }

    /// The registration timeout.
    pub fn registration_timeout(&self) -> Duration {
        self.host.settings.registration_timeout
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.host.settings.request_timeout
    }

    /// Sets the pods and containers sent to plugins that connect from now on
    /// in `Synchronize` (initially none).
    pub fn set_state(&self, pods: Vec<PodSandbox>, containers: Vec<Container>) {
        *lock(&self.host.inventory) = Arc::new(Inventory { pods, containers });
    }

    /// Takes a plugin through registration, `Configure` and `Synchronize`
    /// over an already-connected socket, such as one end of
    /// [`UnixStream::pair`] whose other end the plugin's stub uses. The
    /// plugin is treated as external: its name and index come from its
    /// `RegisterPlugin` request and are checked.
    ///
    /// # Errors
    ///
    /// [`Error::DeadlineExceeded`] when the plugin did not register within
    /// the registration timeout (the connection is then closed);
    /// [`Error::RegistrationRefused`] for an empty name or a bad index,
    /// naming what the plugin sent (the plugin got an UNKNOWN error reply;
    /// the connection stays open, as with the reference, until the plugin
    /// closes it or the runtime is dropped, costing one descriptor and no
    /// thread meanwhile);
    /// [`Error::ConnectionClosed`] when the plugin went away; any error of
    /// `Configure` or `Synchronize`, or [`Error::Protocol`] for an invalid
    /// event mask or a plugin that mishandles split `Synchronize` requests
    /// (the connection is then closed).
    pub fn accept_stream(&self, stream: UnixStream) -> Result<PluginHandle> {
        setup::start(&self.host, stream, None)
    }

    /// Listens for external plugins on a Unix socket at `path`, like the
    /// reference: an existing file at `path` is removed first and a missing
    /// parent directory is created with mode 0700. From now on a thread of
    /// the listener accepts plugins and reads their registrations, all at
    /// once (see [`PluginListener`]); [`PluginListener::accept`] takes them
    /// on. The socket file is removed when the listener is dropped.
    pub fn listen(&self, path: impl AsRef<Path>) -> Result<PluginListener> {
        PluginListener::bind(self.host.clone(), path.as_ref().to_path_buf())
    }

    /// Launches a plugin binary the way the reference starts pre-installed
    /// plugins, and takes it through registration, `Configure` (with
    /// `config`) and `Synchronize`.
    ///
    /// The child gets one end of a socket pair as fd 3, no arguments, an
    /// environment holding only `NRI_PLUGIN_NAME=name`,
    /// `NRI_PLUGIN_IDX=index` and `NRI_PLUGIN_SOCKET=3` (no `PATH`, no
    /// `HOME`), `/dev/null` as standard input and, unless
    /// [`RuntimeBuilder::plugin_output`] says otherwise, as standard output
    /// and error. The name and index in its `RegisterPlugin` request are
    /// ignored. The child is killed (SIGKILL) when it misses the
    /// registration timeout, fails `Configure` or `Synchronize`, is dropped
    /// for a fatal error, or when the handle is closed or dropped.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPluginIndex`] / [`Error::InvalidPluginName`] for a bad
    /// index or an empty name, [`Error::Io`] when the binary cannot be
    /// started, and the errors of [`Runtime::accept_stream`].
    pub fn launch(
        &self,
        binary: impl AsRef<Path>,
        name: &str,
        index: &str,
        config: &str,
    ) -> Result<PluginHandle> {
        crate::api::validate_plugin_index(index)?;
        if name.is_empty() {
            return Err(Error::InvalidPluginName {
                name: name.to_string(),
                rule: "it must not be empty",
            });
        }
        let output = &self.host.settings.output;
        let (stream, child) = launch::spawn(binary.as_ref(), name, index, output)?;
        let id = PluginId {
            index: index.to_string(),
            name: name.to_string(),
        };
        let launched = setup::Launched {
            id,
            config: config.to_string(),
            child,
        };
        setup::start(&self.host, stream, Some(launched))
    }
}
