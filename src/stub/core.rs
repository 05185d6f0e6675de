//! The stub: connects a [`Plugin`] to the runtime and serves it.

use std::cell::Cell;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::plugin::{Context, HandlerError, Plugin};
use super::sync::{scan_chunk, SyncState};

/// Full name of the Synchronize method, for messages.
const SYNCHRONIZE: &str = "nri.pkg.api.v1alpha1.Plugin/Synchronize";
use crate::api::{
    self, ConfigureRequest, ConfigureResponse, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Empty, Event, EventMask, RegisterPluginRequest, StateChangeEvent,
    StopContainerRequest, StopContainerResponse, SynchronizeResponse, UpdateContainerRequest,
    UpdateContainerResponse, UpdateContainersRequest, UpdateContainersResponse, PLUGIN_SERVICE,
    RUNTIME_SERVICE,
};
use crate::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{
    encode_result, Client, Code, Connection, ConnectionBuilder, ConnectionOptions, DeadlineGuard,
    Framing, RequestContext, Services, Status,
};
use crate::{Error, Result};

/// Opens a connection to the runtime's socket.
pub type Dialer = Arc<dyn Fn(&Path) -> io::Result<UnixStream> + Send + Sync>;

type OnCloseFn = Arc<dyn Fn() + Send + Sync>;

thread_local! {
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

struct HandlerScope(bool);

impl HandlerScope {
    fn enter() -> Self {
        HandlerScope(IN_HANDLER.with(|f| f.replace(true)))
    }
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        IN_HANDLER.with(|f| f.set(self.0));
    }
}

/// Builds a [`Stub`]; the counterpart of Go's `stub.New(plugin, options...)`.
///
/// ```
/// use nri::api::{EventMask, Event};
/// use nri::stub::{Plugin, Stub};
///
/// struct Quiet;
/// impl Plugin for Quiet {
///     fn events(&self) -> EventMask { Event::RUN_POD_SANDBOX.into() }
/// }
///
/// let stub = Stub::builder(Quiet)
///     .plugin_name("quiet")
///     .plugin_index("42")
///     .socket_path("/tmp/does-not-matter.sock")
///     .build()
///     .unwrap();
/// assert_eq!(stub.name(), "42-quiet");
/// ```
pub struct StubBuilder {
    plugin: Arc<dyn Plugin>,
    name: Option<String>,
    index: Option<String>,
    socket_path: PathBuf,
    connection: Option<UnixStream>,
    dialer: Option<Dialer>,
    on_close: Option<OnCloseFn>,
    options: ConnectionOptions,
    allow_updates_in_handlers: bool,
    timeouts: (Duration, Duration),
    max_sync_bytes: usize,
}

/// Default bound on the encoded Synchronize state the stub collects.
pub const DEFAULT_MAX_SYNC_STATE_BYTES: usize = 256 << 20;

impl std::fmt::Debug for StubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubBuilder")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("socket_path", &self.socket_path)
            .finish()
    }
}

impl StubBuilder {
    /// Sets the plugin name (else `NRI_PLUGIN_NAME`, else the executable's name).
    pub fn plugin_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the two-digit plugin index (else `NRI_PLUGIN_IDX`, else the
    /// executable's `NN-` prefix).
    pub fn plugin_index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }

    /// Sets the runtime's socket path (default `/var/run/nri/nri.sock`).
    pub fn socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket_path = path.into();
        self
    }

    /// Uses an already connected socket for the first start, instead of
    /// `NRI_PLUGIN_SOCKET` or dialing. Later starts dial the socket path.
    pub fn connection(mut self, stream: UnixStream) -> Self {
        self.connection = Some(stream);
        self
    }

    /// Like [`StubBuilder::connection`], from an owned file descriptor of a
    /// connected Unix stream socket.
    pub fn connection_fd(self, fd: OwnedFd) -> Self {
        self.connection(UnixStream::from(fd))
    }

    /// Replaces how the socket path is dialed.
    pub fn dialer(
        mut self,
        dialer: impl Fn(&Path) -> io::Result<UnixStream> + Send + Sync + 'static,
    ) -> Self {
        self.dialer = Some(Arc::new(dialer));
        self
    }

    /// Called each time a connection to the runtime ends (the runtime went
    /// away, or [`Stub::stop`]), exactly once per connection. Unlike Go's
    /// stub, which exits the process when no callback is set, this library
    /// never exits the process: [`Stub::run`] returns instead.
    pub fn on_close(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_close = Some(Arc::new(f));
        self
    }

    /// Worker threads serving requests (default 4, at least 2 are used so
    /// that a handler waiting on the runtime never blocks the reader).
    pub fn workers(mut self, n: usize) -> Self {
        self.options.workers = n;
        self
    }

    /// Requests read but waiting for a worker before new ones are refused
    /// with RESOURCE_EXHAUSTED (default 64).
    pub fn max_queued_requests(mut self, n: usize) -> Self {
        self.options.max_queued_requests = n;
        self
    }

    /// Turns the deadline guard on: a handler still running shortly before
    /// the runtime's deadline gets a reply sent on its behalf (by default an
    /// empty "no changes" reply), its late result is discarded and logged,
    /// and the runtime keeps the plugin instead of dropping it.
    pub fn deadline_guard(mut self, guard: DeadlineGuard) -> Self {
        self.options.deadline_guard = Some(guard);
        self
    }

    /// Sets the registration timeout used until the runtime's Configure
    /// tells its own (default 5 s): how long [`Stub::start`] waits for the
    /// RegisterPlugin reply and Configure together.
    pub fn registration_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.0 = timeout;
        self
    }

    /// Sets the request timeout used until Configure tells the runtime's
    /// (default 2 s); it bounds [`Stub::update_containers`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.1 = timeout;
        self
    }

    /// Allows [`Stub::update_containers`] from inside a handler (refused by
    /// default, since it deadlocks v0.9.0 runtimes; newer runtimes, from
    /// v0.12.1, accept it).
    pub fn allow_updates_in_handlers(mut self, allow: bool) -> Self {
        self.allow_updates_in_handlers = allow;
        self
    }

    /// Bounds the encoded Synchronize state collected across chunks (default
    /// [`DEFAULT_MAX_SYNC_STATE_BYTES`], 256 MiB: about 100,000 typical
    /// containers). A larger state is refused with RESOURCE_EXHAUSTED.
    pub fn max_sync_state_bytes(mut self, bytes: usize) -> Self {
        self.max_sync_bytes = bytes;
        self
    }

    /// Checks the plugin and its identity and creates the stub. Nothing is
    /// connected yet.
    pub fn build(self) -> Result<Stub> {
        let events = self.plugin.events();
        if events.is_empty() {
            return Err(Error::Config(
                "the plugin handles no events: Plugin::events() must name at least one event"
                    .into(),
            ));
        }
        if !events.is_valid() {
            return Err(Error::Config(format!(
                "Plugin::events() returned {events}, which has bits outside the valid events"
            )));
        }
        let env_name = std::env::var(api::PLUGIN_NAME_ENV_VAR)
            .ok()
            .filter(|s| !s.is_empty());
        let env_index = std::env::var(api::PLUGIN_IDX_ENV_VAR)
            .ok()
            .filter(|s| !s.is_empty());
        let (name, index) = resolve_identity(self.name.or(env_name), self.index.or(env_index))?;
        let mut options = self.options;
        options.workers = options.workers.max(2);
        options.name = format!("nri-{index}-{name}");
        let inner = Inner {
            plugin: self.plugin,
            events,
            name,
            index,
            socket_path: self.socket_path,
            given: Mutex::new(self.connection),
            dialer: self.dialer,
            on_close: self.on_close,
            options,
            allow_updates_in_handlers: self.allow_updates_in_handlers,
            timeouts: Mutex::new(self.timeouts),
            start_lock: Mutex::new(()),
            session: Mutex::new(None),
            sync: Mutex::new(None),
            max_sync_bytes: self.max_sync_bytes,
            configured: Mutex::new(None),
            session_ids: AtomicU64::new(0),
            stop_gen: AtomicU64::new(0),
            env_fd_taken: AtomicBool::new(false),
            stopping: Mutex::new(()),
            stopping_cv: Condvar::new(),
        };
        log::info!(
            "created plugin {}-{} (handles {})",
            inner.index,
            inner.name,
            inner.events
        );
        Ok(Stub {
            inner: Arc::new(inner),
        })
    }
}

fn resolve_identity(name: Option<String>, index: Option<String>) -> Result<(String, String)> {
    let exe = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let (name, index) = match (name, index) {
        (Some(n), Some(i)) => (n, i),
        (None, Some(i)) => (exe, i),
        (name, None) => {
            let (i, n) = api::parse_plugin_name(&exe).map_err(|e| {
                Error::Config(format!(
                    "plugin index not set: give one with StubBuilder::plugin_index, NRI_PLUGIN_IDX, \
                     or name the executable NN-name ({e})"
                ))
            })?;
            (name.unwrap_or(n), i)
        }
    };
    api::validate_plugin_index(&index)?;
    api::validate_plugin_name(&name)?;
    Ok((name, index))
}

/// A plugin's connection to the runtime: the counterpart of Go's `stub.Stub`.
///
/// Cheap to clone; clones share the same plugin and connection, so one can
/// call [`Stub::update_containers`] or [`Stub::stop`] from another thread
/// while [`Stub::run`] blocks.
#[derive(Clone)]
pub struct Stub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("name", &self.name())
            .field("events", &self.inner.events)
            .field("connected", &self.is_connected())
            .finish()
    }
}

struct Session {
    id: u64,
    conn: Connection,
    client: Client,
    stopped: Arc<AtomicBool>,
    launched: bool,
}

struct Inner {
    plugin: Arc<dyn Plugin>,
    events: EventMask,
    name: String,
    index: String,
    socket_path: PathBuf,
    given: Mutex<Option<UnixStream>>,
    dialer: Option<Dialer>,
    on_close: Option<OnCloseFn>,
    options: ConnectionOptions,
    allow_updates_in_handlers: bool,
    timeouts: Mutex<(Duration, Duration)>,
    start_lock: Mutex<()>,
    session: Mutex<Option<Session>>,
    sync: Mutex<Option<SyncState>>,
    max_sync_bytes: usize,
    configured: Mutex<Option<Sender<Result<()>>>>,
    session_ids: AtomicU64,
    stop_gen: AtomicU64,
    env_fd_taken: AtomicBool,
    stopping: Mutex<()>,
    stopping_cv: Condvar,
}

use crate::ttrpc::lock;

/// How a finished connection ended.
enum Ended {
    Stopped,
    Lost(String),
}

impl Stub {
    /// Starts building a stub for `plugin`.
    pub fn builder(plugin: impl Plugin) -> StubBuilder {
        StubBuilder {
            plugin: Arc::new(plugin),
            name: None,
            index: None,
            socket_path: PathBuf::from(api::DEFAULT_SOCKET_PATH),
            connection: None,
            dialer: None,
            on_close: None,
            options: ConnectionOptions::default(),
            allow_updates_in_handlers: false,
            max_sync_bytes: DEFAULT_MAX_SYNC_STATE_BYTES,
            timeouts: (
                api::DEFAULT_REGISTRATION_TIMEOUT,
                api::DEFAULT_REQUEST_TIMEOUT,
            ),
        }
    }

    /// A stub with default options; the counterpart of Go's `stub.New(p)`.
    pub fn new(plugin: impl Plugin) -> Result<Stub> {
        Self::builder(plugin).build()
    }

    /// The full plugin name, `NN-name`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.inner.index, self.inner.name)
    }

    /// The plugin name without its index.
    pub fn plugin_name(&self) -> &str {
        &self.inner.name
    }

    /// The two-digit plugin index.
    pub fn plugin_index(&self) -> &str {
        &self.inner.index
    }

    /// The events the plugin handles (from [`Plugin::events`]).
    pub fn events(&self) -> EventMask {
        self.inner.events
    }

    /// The registration timeout: 5 s until Configure tells the runtime's.
    pub fn registration_timeout(&self) -> Duration {
        lock(&self.inner.timeouts).0
    }

    /// The request timeout: 2 s until Configure tells the runtime's.
    pub fn request_timeout(&self) -> Duration {
        lock(&self.inner.timeouts).1
    }

    /// True while connected to a runtime.
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.session)
            .as_ref()
            .is_some_and(|s| !s.conn.is_closed())
    }

    /// Connects, registers and waits until the runtime has configured the
    /// plugin. Fails with a clear error if registration is refused (the stub
    /// then closes the connection itself), or if Configure does not arrive
    /// within the registration timeout.
    pub fn start(&self) -> Result<()> {
        let _g = lock(&self.inner.start_lock);
        if lock(&self.inner.session)
            .as_ref()
            .is_some_and(|s| !s.conn.is_closed())
        {
            return Err(Error::State(format!(
                "plugin {} is already started",
                self.name()
            )));
        }
        let stop_gen = self.inner.stop_gen.load(Ordering::Acquire);
        let (stream, launched) = self.connect()?;
        let id = self.inner.session_ids.fetch_add(1, Ordering::Relaxed) + 1;
        let (cfg_tx, cfg_rx) = crossbeam_channel::bounded(2);
        *lock(&self.inner.configured) = Some(cfg_tx);
        *lock(&self.inner.sync) = None;
        let stopped = Arc::new(AtomicBool::new(false));
        let services = Arc::new(self.services());
        let weak = Arc::downgrade(&self.inner);
        let conn = ConnectionBuilder::new(stream, Framing::Mux)
            .options(self.inner.options.clone())
            .serve(PLUGIN_SERVICE_CONN, services)
            .open(RUNTIME_SERVICE_CONN)
            .on_closing({
                let weak = weak.clone();
                move |reason| {
                    // start() may be waiting for Configure: tell it now,
                    // not once every handler has returned.
                    if let Some(inner) = weak.upgrade() {
                        if let Some(tx) = lock(&inner.configured).take() {
                            let _ = tx.try_send(Err(Error::ConnectionClosed(reason.to_string())));
                        }
                    }
                }
            })
            .on_close(move |reason| connection_closed(&weak, id, reason))
            .start()?;
        let client = conn.client(RUNTIME_SERVICE_CONN)?;
        *lock(&self.inner.session) = Some(Session {
            id,
            conn: conn.clone(),
            client: client.clone(),
            stopped: stopped.clone(),
            launched,
        });
        let outcome = self.register_and_wait(&client, cfg_rx).and_then(|()| {
            // A stop() that raced this start (a signal during registration)
            // wins: do not leave a running plugin behind it.
            if self.inner.stop_gen.load(Ordering::Acquire) != stop_gen {
                Err(Error::State(format!(
                    "plugin {} was stopped while starting",
                    self.name()
                )))
            } else {
                Ok(())
            }
        });
        match outcome {
            Ok(()) => {
                log::info!("started plugin {}", self.name());
                Ok(())
            }
            Err(e) => {
                log::error!("plugin {} failed to start: {e}", self.name());
                stopped.store(true, Ordering::Release);
                lock(&self.inner.session).take();
                conn.close();
                // Short: a handler stuck in Configure must not hold up the error.
                conn.wait_timeout(Duration::from_millis(200));
                Err(e)
            }
        }
    }

    fn register_and_wait(&self, client: &Client, cfg_rx: Receiver<Result<()>>) -> Result<()> {
        let timeout = self.registration_timeout();
        let started = Instant::now();
        log::info!("registering plugin {}", self.name());
        let req = RegisterPluginRequest {
            plugin_name: self.inner.name.clone(),
            plugin_idx: self.inner.index.clone(),
            ..Default::default()
        };
        match client.call::<_, Empty>(RUNTIME_SERVICE, "RegisterPlugin", &req, Some(timeout)) {
            Ok(_) => {}
            Err(Error::Status { message, .. }) => {
                return Err(Error::RegistrationRefused {
                    plugin: self.name(),
                    message,
                })
            }
            Err(e) => return Err(e),
        }
        let left = timeout.saturating_sub(started.elapsed());
        match cfg_rx.recv_timeout(left) {
            Ok(r) => r,
            Err(_) => Err(Error::ConfigureTimeout {
                plugin: self.name(),
                timeout,
            }),
        }
    }

    fn connect(&self) -> Result<(UnixStream, bool)> {
        if let Some(s) = lock(&self.inner.given).take() {
            log::info!("plugin {} using the given connection", self.name());
            return Ok((s, false));
        }
        if let Ok(value) = std::env::var(api::PLUGIN_SOCKET_ENV_VAR) {
            if !value.is_empty() {
                if self.inner.env_fd_taken.load(Ordering::Acquire) {
                    return Err(Error::Config(format!(
                        "{}={value:?}: the connection inherited from the runtime was already used and \
                         closed; a launched plugin cannot reconnect",
                        api::PLUGIN_SOCKET_ENV_VAR
                    )));
                }
                let stream = socket_from_env(&value)?;
                self.inner.env_fd_taken.store(true, Ordering::Release);
                return Ok((stream, true));
            }
        }
        let path = &self.inner.socket_path;
        let res = match &self.inner.dialer {
            Some(d) => d(path),
            None => UnixStream::connect(path),
        };
        res.map(|s| (s, false)).map_err(|e| {
            Error::io(
                format!("cannot connect to the NRI socket {}", path.display()),
                e,
            )
        })
    }

    /// Starts, then blocks until the connection ends. Returns `Ok(())`
    /// after [`Stub::stop`] (also when the stop came while starting), or
    /// [`Error::ConnectionClosed`] with the reason when the runtime went
    /// away. The stub can be started again afterwards.
    pub fn run(&self) -> Result<()> {
        let gen = self.inner.stop_gen.load(Ordering::Acquire);
        if let Err(e) = self.start() {
            // A stop() that came while starting (from a signal handler, or
            // from the on-close callback when the runtime hung up right
            // after Configure) is a requested stop, not a failure.
            if self.inner.stop_gen.load(Ordering::Acquire) != gen {
                log::debug!("plugin {} stopped while starting: {e}", self.name());
                return Ok(());
            }
            return Err(e);
        }
        match self.wait_ended() {
            Ended::Stopped => Ok(()),
            Ended::Lost(reason) => Err(Error::ConnectionClosed(reason)),
        }
    }

    fn wait_ended(&self) -> Ended {
        let s = lock(&self.inner.session)
            .as_ref()
            .map(|s| (s.conn.clone(), s.stopped.clone()));
        match s {
            None => Ended::Stopped,
            Some((conn, stopped)) => {
                // Bounded: a handler that never returns must not keep run()
                // (or a supervisor) from noticing that the runtime is gone.
                conn.wait_closed();
                conn.wait_timeout(Duration::from_secs(5));
                if stopped.load(Ordering::Acquire) {
                    Ended::Stopped
                } else {
                    Ended::Lost(
                        conn.close_reason()
                            .unwrap_or_else(|| "connection closed".into()),
                    )
                }
            }
        }
    }

    /// Blocks until the current connection (if any) has ended.
    pub fn wait(&self) {
        let _ = self.wait_ended();
    }

    /// Closes the connection and waits (at most a few seconds for a stuck
    /// handler) for the stub's threads. Also ends [`Stub::run_supervised`].
    /// Idempotent; the stub can be started again.
    pub fn stop(&self) {
        {
            // Under the lock, so a sleeping supervisor cannot miss the wake-up.
            let _g = lock(&self.inner.stopping);
            self.inner.stop_gen.fetch_add(1, Ordering::AcqRel);
            self.inner.stopping_cv.notify_all();
        }
        let s = lock(&self.inner.session)
            .as_ref()
            .map(|s| (s.conn.clone(), s.stopped.clone()));
        if let Some((conn, stopped)) = s {
            log::info!("stopping plugin {}", self.name());
            stopped.store(true, Ordering::Release);
            conn.close();
            if !IN_HANDLER.with(|f| f.get()) {
                conn.wait_timeout(Duration::from_secs(5));
            }
        }
    }

    /// Sends unsolicited updates to the runtime and returns the updates it
    /// failed to apply. Bounded by the request timeout.
    ///
    /// Do not call it from inside a handler: a v0.9.0 runtime waits for the
    /// handler's reply under the same lock UpdateContainers needs, so the
    /// call deadlocks until the request times out and the runtime drops the
    /// plugin. From a handler use
    /// [`Context::update_containers_after_reply`]; this method refuses such a
    /// call unless [`StubBuilder::allow_updates_in_handlers`] is set.
    pub fn update_containers(&self, updates: Vec<ContainerUpdate>) -> Result<Vec<ContainerUpdate>> {
        self.update_containers_with_timeout(updates, self.request_timeout())
    }

    /// [`Stub::update_containers`] with an explicit timeout.
    pub fn update_containers_with_timeout(
        &self,
        updates: Vec<ContainerUpdate>,
        timeout: Duration,
    ) -> Result<Vec<ContainerUpdate>> {
        if IN_HANDLER.with(|f| f.get()) && !self.inner.allow_updates_in_handlers {
            return Err(Error::State(
                "update_containers called from inside a handler would deadlock a v0.9.0 runtime; \
                 use Context::update_containers_after_reply (or allow_updates_in_handlers for newer runtimes)"
                    .into(),
            ));
        }
        let client = lock(&self.inner.session)
            .as_ref()
            .map(|s| s.client.clone())
            .ok_or(Error::NotConnected)?;
        let req = UpdateContainersRequest {
            update: updates,
            ..Default::default()
        };
        let resp: UpdateContainersResponse = client
            .call(RUNTIME_SERVICE, "UpdateContainers", &req, Some(timeout))
            .map_err(|e| match e {
                Error::ConnectionClosed(_) => Error::NotConnected,
                e => e,
            })?;
        Ok(resp.failed)
    }

    /// Runs an external plugin for as long as [`Stub::stop`] is not called:
    /// waits for the runtime's socket, connects, registers and serves; when
    /// the runtime goes away (restart, upgrade) it reconnects with bounded
    /// exponential backoff, registers again and is synchronized again. Each
    /// lost connection is logged and runs the on-close callback.
    ///
    /// A plugin launched by the runtime (`NRI_PLUGIN_SOCKET`) cannot
    /// reconnect: when its connection ends, this returns `Ok(())`.
    pub fn run_supervised(&self, backoff: Backoff) -> Result<()> {
        let gen = self.inner.stop_gen.load(Ordering::Acquire);
        let stopped = || self.inner.stop_gen.load(Ordering::Acquire) != gen;
        let mut delay = backoff.initial;
        let mut attempt: u64 = 0;
        loop {
            if stopped() {
                return Ok(());
            }
            attempt += 1;
            match self.start() {
                Ok(()) => {
                    delay = backoff.initial;
                    attempt = 0;
                    let launched = lock(&self.inner.session)
                        .as_ref()
                        .is_some_and(|s| s.launched);
                    match self.wait_ended() {
                        Ended::Stopped => return Ok(()),
                        Ended::Lost(reason) if launched => {
                            log::info!("plugin {}: connection ended ({reason}); launched plugins do not reconnect", self.name());
                            return Ok(());
                        }
                        Ended::Lost(reason) => {
                            log::warn!(
                                "plugin {}: runtime connection lost ({reason}); reconnecting",
                                self.name()
                            );
                        }
                    }
                }
                Err(e) => {
                    if let Some(max) = backoff.max_attempts {
                        if attempt >= max {
                            return Err(e);
                        }
                    }
                    if matches!(e, Error::Config(_))
                        && std::env::var_os(api::PLUGIN_SOCKET_ENV_VAR).is_some()
                    {
                        return Err(e);
                    }
                    log::warn!(
                        "plugin {}: connecting failed ({e}); retrying in {delay:?} (attempt {attempt})",
                        self.name()
                    );
                }
            }
            // Sleep, but wake at once on stop().
            let mut guard = lock(&self.inner.stopping);
            let until = Instant::now() + delay;
            while !stopped() {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                guard = self
                    .inner
                    .stopping_cv
                    .wait_timeout(guard, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            drop(guard);
            if stopped() {
                return Ok(());
            }
            delay = (delay * 2).min(backoff.max);
        }
    }

    fn services(&self) -> Services {
        let mut s = Services::new();
        let w = Arc::downgrade(&self.inner);
        s.add_unary(PLUGIN_SERVICE, "Configure", handler(&w, Stub::configure));
        s.add_method_owned(
            PLUGIN_SERVICE,
            "Synchronize",
            Box::new(handler(&w, Stub::synchronize)),
        );
        s.add_unary(PLUGIN_SERVICE, "Shutdown", handler(&w, Stub::shutdown_req));
        s.add_unary(
            PLUGIN_SERVICE,
            "CreateContainer",
            handler(&w, Stub::create_container),
        );
        s.add_unary(
            PLUGIN_SERVICE,
            "UpdateContainer",
            handler(&w, Stub::update_container),
        );
        s.add_unary(
            PLUGIN_SERVICE,
            "StopContainer",
            handler(&w, Stub::stop_container),
        );
        s.add_unary(
            PLUGIN_SERVICE,
            "StateChange",
            handler(&w, Stub::state_change),
        );
        s
    }

    fn configure(
        &self,
        rc: &RequestContext,
        req: ConfigureRequest,
    ) -> Result<ConfigureResponse, Status> {
        log::info!(
            "configuring plugin {} for runtime {}/{}",
            self.name(),
            req.runtime_name,
            req.runtime_version
        );
        {
            let mut t = lock(&self.inner.timeouts);
            if req.registration_timeout > 0 {
                t.0 = Duration::from_millis(req.registration_timeout as u64);
            }
            if req.request_timeout > 0 {
                t.1 = Duration::from_millis(req.request_timeout as u64);
            }
        }
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let result = {
            let _scope = HandlerScope::enter();
            self.inner
                .plugin
                .configure(&ctx, &req.config, &req.runtime_name, &req.runtime_version)
        };
        let result = match result {
            Err(e) => Err(handler_status(e)),
            Ok(mask) => {
                let mask = mask.filter(|m| !m.is_empty()).unwrap_or(self.inner.events);
                let extra = mask & !self.inner.events;
                if !extra.is_empty() {
                    Err(Status::new(
                        Code::Unknown,
                        format!(
                            "plugin {} subscribed to events it does not handle: {extra} (handled: {})",
                            self.name(),
                            self.inner.events
                        ),
                    ))
                } else {
                    log::info!("subscribing plugin {} to {mask}", self.name());
                    Ok(ConfigureResponse {
                        events: mask.bits(),
                        ..Default::default()
                    })
                }
            }
        };
        // Tell start() only once the reply is on the wire: on failure it
        // closes the connection, which must not overtake the reply.
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(st) => Err(Error::Handler(format!("Configure failed: {}", st.message))),
        };
        let inner = self.inner.clone();
        rc.after_reply(move || {
            if let Some(tx) = lock(&inner.configured).take() {
                let _ = tx.try_send(outcome);
            }
        });
        result
    }

    /// Synchronize, served raw: chunks are kept encoded (see [`SyncState`])
    /// and the handler runs once, on the final chunk.
    fn synchronize(&self, rc: &RequestContext, payload: Vec<u8>) -> Result<Vec<u8>, Status> {
        let scan = scan_chunk(&payload).map_err(|e| Status::new(Code::Internal, e.to_string()))?;
        let more = scan.more;
        let state = {
            let mut acc = lock(&self.inner.sync);
            let held = acc.as_ref().map_or(0, SyncState::encoded_len);
            if held.saturating_add(payload.len()) > self.inner.max_sync_bytes {
                acc.take();
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "plugin {}: the Synchronize state exceeds {} bytes ({held} held, a chunk of {} more)",
                        self.name(),
                        self.inner.max_sync_bytes,
                        payload.len()
                    ),
                ));
            }
            acc.get_or_insert_with(SyncState::default)
                .push_chunk(payload, scan);
            if more {
                None
            } else {
                acc.take()
            }
        };
        let Some(state) = state else {
            return encode_result(
                SYNCHRONIZE,
                &SynchronizeResponse {
                    more: true,
                    ..Default::default()
                },
            );
        };
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let update = {
            let _scope = HandlerScope::enter();
            self.inner
                .plugin
                .synchronize(&ctx, state)
                .map_err(handler_status)?
        };
        encode_result(
            SYNCHRONIZE,
            &SynchronizeResponse {
                update,
                more: false,
                ..Default::default()
            },
        )
    }

    fn shutdown_req(&self, rc: &RequestContext, _req: Empty) -> Result<Empty, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        self.inner.plugin.shutdown(&ctx);
        Ok(Empty::new())
    }

    fn create_container(
        &self,
        rc: &RequestContext,
        req: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        let (adjust, update) = self
            .inner
            .plugin
            .create_container(
                &ctx,
                req.pod.get_or_default(),
                req.container.get_or_default(),
            )
            .map_err(handler_status)?;
        Ok(CreateContainerResponse {
            adjust: protobuf::MessageField::some(adjust),
            update,
            ..Default::default()
        })
    }

    fn update_container(
        &self,
        rc: &RequestContext,
        req: UpdateContainerRequest,
    ) -> Result<UpdateContainerResponse, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        let update = self
            .inner
            .plugin
            .update_container(
                &ctx,
                req.pod.get_or_default(),
                req.container.get_or_default(),
                req.linux_resources.get_or_default(),
            )
            .map_err(handler_status)?;
        Ok(UpdateContainerResponse {
            update,
            ..Default::default()
        })
    }

    fn stop_container(
        &self,
        rc: &RequestContext,
        req: StopContainerRequest,
    ) -> Result<StopContainerResponse, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let _scope = HandlerScope::enter();
        let update = self
            .inner
            .plugin
            .stop_container(
                &ctx,
                req.pod.get_or_default(),
                req.container.get_or_default(),
            )
            .map_err(handler_status)?;
        Ok(StopContainerResponse {
            update,
            ..Default::default()
        })
    }

    fn state_change(&self, rc: &RequestContext, evt: StateChangeEvent) -> Result<Empty, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
        };
        let p = &self.inner.plugin;
        let pod = evt.pod.get_or_default();
        let c = evt.container.get_or_default();
        let _scope = HandlerScope::enter();
        let r = match evt.event.enum_value() {
            Ok(Event::RUN_POD_SANDBOX) => p.run_pod_sandbox(&ctx, pod),
            Ok(Event::STOP_POD_SANDBOX) => p.stop_pod_sandbox(&ctx, pod),
            Ok(Event::REMOVE_POD_SANDBOX) => p.remove_pod_sandbox(&ctx, pod),
            Ok(Event::POST_CREATE_CONTAINER) => p.post_create_container(&ctx, pod, c),
            Ok(Event::START_CONTAINER) => p.start_container(&ctx, pod, c),
            Ok(Event::POST_START_CONTAINER) => p.post_start_container(&ctx, pod, c),
            Ok(Event::POST_UPDATE_CONTAINER) => p.post_update_container(&ctx, pod, c),
            Ok(Event::REMOVE_CONTAINER) => p.remove_container(&ctx, pod, c),
            other => {
                log::debug!("plugin {}: ignoring state change {other:?}", self.name());
                Ok(())
            }
        };
        r.map_err(handler_status)?;
        Ok(Empty::new())
    }
}

fn handler<Req, Resp>(
    weak: &Weak<Inner>,
    f: fn(&Stub, &RequestContext, Req) -> Result<Resp, Status>,
) -> impl Fn(&RequestContext, Req) -> Result<Resp, Status> + Send + Sync + 'static
where
    Req: 'static,
    Resp: 'static,
{
    let weak = weak.clone();
    move |rc, req| {
        let inner = weak
            .upgrade()
            .ok_or_else(|| Status::new(Code::Unavailable, "the plugin stub is gone"))?;
        f(&Stub { inner }, rc, req)
    }
}

fn handler_status(e: HandlerError) -> Status {
    let e = match e.downcast::<Status>() {
        Ok(st) => return *st,
        Err(e) => e,
    };
    match e.downcast::<Error>() {
        Ok(err) => Status::new(
            match *err {
                Error::Handler(_) => Code::Unknown,
                ref other => other.code(),
            },
            err.to_string(),
        ),
        Err(e) => Status::new(Code::Unknown, e.to_string()),
    }
}

fn connection_closed(weak: &Weak<Inner>, id: u64, reason: &str) {
    let Some(inner) = weak.upgrade() else { return };
    let name = format!("{}-{}", inner.index, inner.name);
    {
        let mut s = lock(&inner.session);
        if s.as_ref().is_some_and(|s| s.id == id) {
            let stopped = s
                .as_ref()
                .is_some_and(|s| s.stopped.load(Ordering::Acquire));
            if !stopped {
                log::warn!("plugin {name}: connection to the runtime closed: {reason}");
            }
            // Keep the session until run()/wait() have seen it end; a new
            // start() replaces it.
            if stopped {
                s.take();
            }
        }
    }
    if let Some(tx) = lock(&inner.configured).take() {
        let _ = tx.try_send(Err(Error::ConnectionClosed(reason.to_string())));
    }
    if let Some(cb) = &inner.on_close {
        // It runs on one of the connection's own threads: a stop() called
        // from it must not wait for that thread.
        let _scope = HandlerScope::enter();
        cb();
    }
}

/// Turns the value of `NRI_PLUGIN_SOCKET` into a connected socket.
fn socket_from_env(value: &str) -> Result<UnixStream> {
    let var = api::PLUGIN_SOCKET_ENV_VAR;
    let fd: i32 = value
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("{var}={value:?} is not a file descriptor number")))?;
    if fd < 0 {
        return Err(Error::Config(format!(
            "{var}={value:?} is not a file descriptor number"
        )));
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|e| {
        Error::Config(format!(
            "{var}={value:?}: file descriptor {fd} is not open ({e})"
        ))
    })?;
    if !link.to_string_lossy().starts_with("socket:") {
        return Err(Error::Config(format!(
            "{var}={value:?}: file descriptor {fd} is not a socket ({})",
            link.display()
        )));
    }
    // SAFETY: the descriptor is open (checked through /proc above) and we take
    // sole ownership of it: the runtime hands it to the plugin for this use.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if let Err(e) = stream.peer_addr() {
        // Not ours to close after all: hand the descriptor back untouched.
        let _ = stream.into_raw_fd();
        return Err(Error::Config(format!(
            "{var}={value:?}: file descriptor {fd} is not a connected Unix socket ({e})"
        )));
    }
    Ok(stream)
}

/// Reconnection policy of [`Stub::run_supervised`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First delay after a failed attempt.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}
