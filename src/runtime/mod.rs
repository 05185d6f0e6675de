//! A small, synchronous runtime side of NRI: drive a plugin through its
//! lifecycle without containerd.
//!
//! This module plays the part containerd or CRI-O play through the Go
//! reference runtime (`pkg/adaptation` of containerd/nri), in the version
//! chosen with [`RuntimeBuilder::emulate`]: v0.12.5 by default, or
//! v0.12.3, v0.11.0 and v0.9.0 to test a plugin against older runtimes
//! ([`Emulation`] lists what differs). It accepts a plugin, waits for
//! `RegisterPlugin`, calls `Configure` and `Synchronize`, relays pod and
//! container events to the plugin and serves the plugin's unsolicited
//! `UpdateContainers` calls. It judges the plugin the way the reference
//! does, so that a plugin's own tests fail where production would:
//!
//! - registration must arrive within the registration timeout (default 5 s);
//!   an external plugin with an empty name or an index that is not two
//!   digits gets an error reply with code UNKNOWN, and the runtime leaves
//!   the connection open (the plugin must close it);
//! - `Configure` carries the emulated NRI version (v0.12+) and the plugin's
//!   registration carries its own ([`PluginHandle::plugin_nri_version`]);
//!   a reply with event mask 0 subscribes to every event the version knows;
//!   bits outside them are refused (v0.9.0 refuses the pod update and
//!   validation events, naming them);
//! - `Synchronize` is split into chunks when the whole state would exceed the
//!   4 MiB ttrpc limit, with one deadline for all chunks;
//! - notifications go as per-event RPCs from v0.12 on; a plugin that answers
//!   UNIMPLEMENTED gets `StateChange` for the rest of its connection;
//! - at most one runtime→plugin request is in flight per plugin; a request
//!   that misses the request timeout (default 2 s), a closed connection or a
//!   broken connection is *fatal*: the plugin is dropped (its connection
//!   closed, a launched plugin killed) and every later call fails at once,
//!   unless its failure policy (v0.12.5) keeps it through a timeout; a
//!   non-OK status from the plugin only fails that call;
//! - with v0.9.0 and v0.11.0 an `UpdateContainers` call from the plugin
//!   waits while an event is in flight, like the reference's global lock,
//!   so a plugin that calls it synchronously from inside a handler
//!   deadlocks here too until the request times out and is then dropped.
//!
//! Plugins come in three ways, each returning a [`PluginHandle`] once the
//! plugin is registered, configured and synchronized:
//! [`Runtime::accept_stream`] (an already-connected socket, such as one end
//! of [`UnixStream::pair`]), [`Runtime::listen`] + [`PluginListener::accept`]
//! (external plugins dialing a socket path) and [`Runtime::launch`] (spawn a
//! plugin binary with the socket as fd 3, like pre-installed plugins).
//!
//! A [`PluginSet`] holds several plugins of one runtime and relays each
//! event to all of them in index order, merging their replies with the
//! version's conflict rules, having validators check merged adjustments and
//! applying failure policies, as the reference does.
//!
//! What this module does not do: discover plugins in a directory or read
//! drop-in configuration files, act on container adjustments or updates
//! itself (adjustments are returned to the caller; unsolicited updates go
//! to the [`RuntimeBuilder::on_update_containers`] callback), run
//! upstream's built-in default validator or any builtin plugin, record
//! metrics or deprecations (a plugin falling back to StateChange is only
//! logged), or speak anything but ttrpc over NRI's multiplexer (no WASM
//! plugins). A runtime deadline shorter than the request timeout (Go's
//! request context) has no counterpart: every request gets the full
//! request timeout.
//!
//! # Example
//!
//! ```no_run
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use nri::api::{Container, PodSandbox};
//! use nri::runtime::Runtime;
//!
//! let runtime = Runtime::builder()
//!     .name("test-runtime")
//!     .version("0.1.0")
//!     .request_timeout(Duration::from_millis(500))
//!     .build();
//! let (runtime_end, plugin_end) = UnixStream::pair()?;
//! // Start the plugin under test on `plugin_end` on another thread (a stub
//! // takes it with `StubBuilder::connection`), then let the runtime take it
//! // through registration, Configure and Synchronize.
//! # let _plugin_end = plugin_end;
//! let plugin = runtime.accept_stream(runtime_end)?;
//! println!("{} subscribed to {}", plugin.name(), plugin.events());
//!
//! let mut pod = PodSandbox::new();
//! pod.id = "pod-1".into();
//! let mut ctr = Container::new();
//! ctr.id = "ctr-1".into();
//! ctr.pod_sandbox_id = pod.id.clone();
//! let reply = plugin.create_container(&pod, &ctr)?;
//! println!("adjustment: {:?}", reply.adjust);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod connect;
mod handle;
mod launch;
mod listener;
mod lock;
mod merge;
mod relay;
mod reply;
mod set;
mod sync;
mod validate;
mod version;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{
    Container, ContainerUpdate, PodSandbox, DEFAULT_REGISTRATION_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
};
use crate::ttrpc::Connection;
use crate::{Error, Result};

pub use handle::{PluginHandle, MAX_RECORDED_UPDATES};
pub use listener::PluginListener;
pub use reply::CreateContainerReply;
pub use set::PluginSet;
pub use version::Emulation;

pub(crate) use lock::{lock, FairGuard, FairLock};

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
    name: String,
    version: String,
    registration_timeout: Duration,
    request_timeout: Duration,
    configs: HashMap<String, String>,
    update_fn: Arc<UpdateContainersFn>,
    workers: usize,
    block_updates: Option<bool>,
    output: PluginOutput,
    nri: Emulation,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("nri_version", &self.nri)
            .field("registration_timeout", &self.registration_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("workers", &self.workers)
            .field("block_updates_during_events", &self.block_updates)
            .finish_non_exhaustive()
    }
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            name: "nri-rs-runtime".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            configs: HashMap::new(),
            update_fn: Arc::new(|_: &[ContainerUpdate]| Vec::new()),
            workers: 4,
            block_updates: None,
            output: PluginOutput::Null,
            nri: Emulation::default(),
        }
    }
}

impl RuntimeBuilder {
    /// Runtime name sent to plugins in `Configure` (default `nri-rs-runtime`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Runtime version sent to plugins in `Configure` (default: this crate's
    /// version).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// How long a plugin has to call `RegisterPlugin` after it connected
    /// (default 5 s). Also sent to the plugin in `Configure`.
    pub fn registration_timeout(mut self, timeout: Duration) -> Self {
        self.registration_timeout = timeout;
        self
    }

    /// How long a plugin has to answer each request (default 2 s); one
    /// deadline of this length covers all chunks of `Synchronize`. Also sent
    /// to the plugin in `Configure`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
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
        self.configs.insert(name.into(), config.into());
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

    /// Worker threads per plugin connection (default 4, at least 2). The
    /// workers take turns reading the plugin's socket and serve its
    /// `RegisterPlugin` and `UpdateContainers` calls; an `UpdateContainers`
    /// call waiting for an event to finish (see
    /// [`RuntimeBuilder::block_updates_during_events`]) holds a worker, and
    /// the event's reply can only be read by another one.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(2);
        self
    }

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
    pub fn emulate(mut self, version: Emulation) -> Self {
        self.nri = version;
        self
    }

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
    pub fn block_updates_during_events(mut self, block: bool) -> Self {
        self.block_updates = Some(block);
        self
    }

    /// Where launched plugins' standard output and error go (default
    /// `/dev/null`, like the reference).
    pub fn plugin_output(mut self, output: PluginOutput) -> Self {
        self.output = output;
        self
    }

    /// Builds the runtime.
    pub fn build(self) -> Runtime {
        Runtime {
            inner: Arc::new(RuntimeInner {
                nri: self.nri,
                name: self.name,
                version: self.version,
                registration_timeout: self.registration_timeout,
                request_timeout: self.request_timeout,
                configs: self.configs,
                workers: self.workers,
                output: self.output,
                hub: Arc::new(Hub {
                    update_fn: self.update_fn,
                    block_updates: self
                        .block_updates
                        .unwrap_or(self.nri.blocks_updates_during_events()),
                    event_lock: FairLock::default(),
                }),
                state: Mutex::new(Arc::new(State::default())),
                refused: Mutex::new(Vec::new()),
            }),
        }
    }
}

/// The runtime side of NRI for tests and demos. Cheap to clone; clones share
/// the configuration, the state sent in `Synchronize` and the event lock.
///
/// See the [module documentation](self) for what it checks and an example.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("name", &self.inner.name)
            .field("version", &self.inner.version)
            .field("nri_version", &self.inner.nri)
            .field("registration_timeout", &self.inner.registration_timeout)
            .field("request_timeout", &self.inner.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::builder().build()
    }
}

/// Pods and containers sent to plugins in `Synchronize`.
#[derive(Default)]
pub(crate) struct State {
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

pub(crate) struct RuntimeInner {
    /// The emulated NRI version.
    pub(crate) nri: Emulation,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) registration_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) configs: HashMap<String, String>,
    pub(crate) workers: usize,
    pub(crate) output: PluginOutput,
    pub(crate) hub: Arc<Hub>,
    pub(crate) state: Mutex<Arc<State>>,
    /// Connections of plugins whose registration was refused: like the
    /// reference, the runtime does not close them; it keeps them open until
    /// the plugin closes them or the runtime goes away.
    pub(crate) refused: Mutex<Vec<Connection>>,
}

impl RuntimeInner {
    pub(crate) fn config_for(&self, index: &str, base: &str) -> String {
        self.configs
            .get(&format!("{index}-{base}"))
            .or_else(|| self.configs.get(base))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn keep_refused(&self, conn: Connection) {
        let mut refused = lock(&self.refused);
        refused.retain(|c| !c.is_closed());
        refused.push(conn);
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        for conn in lock(&self.refused).drain(..) {
            conn.close();
        }
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
        &self.inner.name
    }

    /// Runtime version sent in `Configure`.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The NRI version whose runtime side this runtime emulates.
    pub fn emulation(&self) -> Emulation {
        self.inner.nri
    }

    /// Whether `UpdateContainers` calls wait while an event is in flight
    /// (see [`RuntimeBuilder::block_updates_during_events`]).
    pub fn blocks_updates_during_events(&self) -> bool {
        self.inner.hub.block_updates
    }

    /// The registration timeout.
    pub fn registration_timeout(&self) -> Duration {
        self.inner.registration_timeout
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Sets the pods and containers sent to plugins that connect from now on
    /// in `Synchronize` (initially none).
    pub fn set_state(&self, pods: Vec<PodSandbox>, containers: Vec<Container>) {
        *lock(&self.inner.state) = Arc::new(State { pods, containers });
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
    /// [`Error::RegistrationRefused`] for an empty name or a bad index (the
    /// plugin got an UNKNOWN error reply; the connection stays open, as with
    /// the reference, until the plugin closes it or the runtime is dropped);
    /// [`Error::ConnectionClosed`] when the plugin went away; any error of
    /// `Configure` or `Synchronize`, or [`Error::Protocol`] for an invalid
    /// event mask or a plugin that mishandles split `Synchronize` requests
    /// (the connection is then closed).
    pub fn accept_stream(&self, stream: UnixStream) -> Result<PluginHandle> {
        connect::start(&self.inner, stream, None)
    }

    /// Listens for external plugins on a Unix socket at `path`, like the
    /// reference: an existing file at `path` is removed first and a missing
    /// parent directory is created with mode 0700. The socket file is
    /// removed when the listener is dropped.
    pub fn listen(&self, path: impl AsRef<Path>) -> Result<PluginListener> {
        let path = path.as_ref().to_path_buf();
        let _ = fs::remove_file(&path);
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| {
                        Error::io(
                            format!("cannot create the socket directory {}", dir.display()),
                            e,
                        )
                    })?;
            }
        }
        let listener = UnixListener::bind(&path)
            .map_err(|e| Error::io(format!("cannot listen on {}", path.display()), e))?;
        Ok(PluginListener {
            runtime: self.clone(),
            listener,
            path,
        })
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
        let (stream, child) = launch::spawn(binary.as_ref(), name, index, &self.inner.output)?;
        connect::start(
            &self.inner,
            stream,
            Some(connect::Launched {
                base: name.to_string(),
                index: index.to_string(),
                config: config.to_string(),
                child,
            }),
        )
    }
}
