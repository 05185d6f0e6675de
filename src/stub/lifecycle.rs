//! The [`Stub`] and its connection lifecycle: start, run, wait, stop, and
//! unsolicited updates.

use std::cell::Cell;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use super::plugin::Plugin;
use super::sync::SyncState;
use crate::api::{
    self, ContainerUpdate, Empty, EventMask, FailurePolicy, RegisterPluginRequest,
    UpdateContainersRequest, UpdateContainersResponse, RUNTIME_SERVICE,
};
use crate::locking::lock;
use crate::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{Client, Connection, ConnectionBuilder, ConnectionOptions, Framing};
use crate::{Error, Result};

use super::connect::Dialer;
use super::negotiate::RuntimeInfo;
use super::serve::configured;
use super::stats::{ConnectionState, Recorder, Snapshot, Stats};

pub(super) type OnCloseFn = Arc<dyn Fn() + Send + Sync>;

thread_local! {
    pub(super) static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
}

pub(super) struct HandlerScope(bool);

impl HandlerScope {
    pub(super) fn enter() -> Self {
        HandlerScope(IN_HANDLER.with(|f| f.replace(true)))
    }
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        IN_HANDLER.with(|f| f.set(self.0));
    }
}

/// A plugin's connection to the runtime: the counterpart of Go's `stub.Stub`.
///
/// Cheap to clone; clones share the same plugin and connection, so one can
/// call [`Stub::update_containers`] or [`Stub::stop`] from another thread
/// while [`Stub::run`] blocks.
#[derive(Clone)]
pub struct Stub {
    pub(super) inner: Arc<Inner>,
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

pub(super) struct Session {
    pub(super) id: u64,
    pub(super) conn: Connection,
    pub(super) client: Client,
    pub(super) stopped: Arc<AtomicBool>,
    pub(super) launched: bool,
}

pub(super) struct Inner {
    pub(super) plugin: Arc<dyn Plugin>,
    pub(super) events: EventMask,
    pub(super) name: String,
    pub(super) index: String,
    pub(super) socket_path: PathBuf,
    pub(super) given: Mutex<Option<UnixStream>>,
    pub(super) dialer: Option<Dialer>,
    pub(super) on_close: Option<OnCloseFn>,
    pub(super) options: ConnectionOptions,
    pub(super) allow_updates_in_handlers: bool,
    pub(super) timeouts: Mutex<(Duration, Duration)>,
    pub(super) start_lock: Mutex<()>,
    pub(super) session: Mutex<Option<Session>>,
    pub(super) sync: Mutex<Option<SyncState>>,
    pub(super) max_sync_bytes: usize,
    pub(super) required: EventMask,
    pub(super) failure_policy: Option<FailurePolicy>,
    pub(super) runtime: Mutex<Option<Arc<RuntimeInfo>>>,
    pub(super) subscribed: Mutex<EventMask>,
    pub(super) stats: Recorder,
    pub(super) state: Mutex<(ConnectionState, Option<SystemTime>)>,
    pub(super) configured: Mutex<Option<Sender<Result<()>>>>,
    pub(super) configure_failure: Mutex<Option<Error>>,
    pub(super) session_ids: AtomicU64,
    pub(super) stop_gen: AtomicU64,
    pub(super) env_fd_taken: AtomicBool,
    pub(super) stopping: Mutex<()>,
    pub(super) stopping_cv: Condvar,
}

/// How a finished connection ended.
pub(super) enum Ended {
    Stopped,
    Lost(String),
}

impl Stub {
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

    /// What the stub knows of the runtime it is connected to (name,
    /// version, NRI version sent or inferred, events it can deliver), from
    /// the last Configure; `None` before the first Configure of a
    /// connection.
    pub fn runtime(&self) -> Option<Arc<RuntimeInfo>> {
        lock(&self.inner.runtime).clone()
    }

    /// The runtime's NRI version as Go's `RuntimeNRIVersion` gives it: sent
    /// by the runtime, else inferred from its name and version; `None`
    /// when unknown or before Configure.
    pub fn runtime_nri_version(&self) -> Option<String> {
        self.runtime()
            .and_then(|r| r.nri_version.as_ref().map(ToString::to_string))
    }

    /// The NRI version this plugin speaks, [`api::NRI_VERSION`] (Go's
    /// `PluginNRIVersion`).
    pub fn plugin_nri_version(&self) -> &'static str {
        api::NRI_VERSION
    }

    /// The events this plugin is subscribed to on the current connection:
    /// what it handles (or what Configure narrowed it to), less what the
    /// runtime cannot deliver. Empty before Configure.
    pub fn subscribed_events(&self) -> EventMask {
        *lock(&self.inner.subscribed)
    }

    /// The events the plugin cannot run without (see
    /// [`crate::stub::StubBuilder::require_events`]).
    pub fn required_events(&self) -> EventMask {
        self.inner.required
    }

    /// A snapshot of what the plugin has done: requests served per kind
    /// with errors, deadline-guard answers, slow handlers and latency
    /// quantiles; the connection's state, registrations and reconnects; the
    /// runtime and its versions. Cheap enough to take every few seconds for
    /// a metrics file or a readiness probe ([`Stats::to_prometheus`],
    /// [`Stats::is_ready`]).
    pub fn stats(&self) -> Stats {
        let (state, registered_since) = *lock(&self.inner.state);
        Snapshot {
            recorder: &self.inner.stats,
            plugin: self.name(),
            state,
            registered_since,
            runtime: self.runtime(),
            subscribed: self.subscribed_events(),
        }
        .take()
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
        lock(&self.inner.configure_failure).take();
        *lock(&self.inner.sync) = None;
        *lock(&self.inner.runtime) = None;
        *lock(&self.inner.subscribed) = EventMask::EMPTY;
        *lock(&self.inner.state) = (ConnectionState::Registering, None);
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
                        configured(&inner, Some(reason));
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
                log::debug!("plugin {} started", self.name());
                self.inner
                    .stats
                    .registrations
                    .fetch_add(1, Ordering::Relaxed);
                let mut state = lock(&self.inner.state);
                if state.0 == ConnectionState::Registering {
                    *state = (ConnectionState::Registered, Some(SystemTime::now()));
                }
                Ok(())
            }
            Err(e) => {
                log::error!("plugin {} failed to start: {e}", self.name());
                *lock(&self.inner.state) = (ConnectionState::Disconnected, None);
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
        log::debug!(
            "plugin {}: registering (NRI {})",
            self.name(),
            api::NRI_VERSION
        );
        let req = RegisterPluginRequest {
            plugin_name: self.inner.name.clone(),
            plugin_idx: self.inner.index.clone(),
            NRI_version: api::NRI_VERSION.to_string(),
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

    /// Starts, then blocks until the connection ends, and says whether the
    /// plugin ended normally:
    ///
    /// - `Ok(())` after [`Stub::stop`] (also when the stop came while
    ///   starting), and when the runtime closes the connection of a plugin it
    ///   launched (`NRI_PLUGIN_SOCKET`): the runtime is stopping or
    ///   restarting, and starts the plugin again itself;
    /// - [`Error::ConnectionClosed`] with the reason when the runtime went
    ///   away from an external plugin: a process supervisor (systemd's
    ///   `Restart=on-failure`, a Kubernetes pod) should restart it, or use
    ///   [`Stub::run_supervised`] to reconnect in-process;
    /// - any other error when starting failed (see [`Error::exit_code`] for
    ///   which of them a restart cannot fix).
    ///
    /// The stub can be started again afterwards.
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
        let launched = lock(&self.inner.session)
            .as_ref()
            .is_some_and(|s| s.launched);
        match self.wait_ended() {
            Ended::Stopped => Ok(()),
            Ended::Lost(_) if launched => Ok(()),
            Ended::Lost(reason) => Err(Error::ConnectionClosed(reason)),
        }
    }

    pub(super) fn wait_ended(&self) -> Ended {
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
                    Ended::Lost(close_reason(&conn))
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
            log::debug!("stopping plugin {}", self.name());
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
    /// [`crate::stub::Context::update_containers_after_reply`]; this method refuses such a
    /// call unless [`crate::stub::StubBuilder::allow_updates_in_handlers`] is set.
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
        self.inner
            .stats
            .updates_sent
            .fetch_add(1, Ordering::Relaxed);
        let resp: Result<UpdateContainersResponse> = client
            .call(RUNTIME_SERVICE, "UpdateContainers", &req, Some(timeout))
            .map_err(|e| match e {
                Error::ConnectionClosed(_) => Error::NotConnected,
                e => e,
            });
        if resp.as_ref().map_or(true, |r| !r.failed.is_empty()) {
            self.inner
                .stats
                .updates_failed
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(resp?.failed)
    }
}

pub(super) fn connection_closed(weak: &Weak<Inner>, id: u64, reason: &str) {
    let Some(inner) = weak.upgrade() else { return };
    let name = format!("{}-{}", inner.index, inner.name);
    inner.stats.disconnects.fetch_add(1, Ordering::Relaxed);
    *lock(&inner.state) = (ConnectionState::Disconnected, None);
    {
        let mut s = lock(&inner.session);
        if s.as_ref().is_some_and(|s| s.id == id) {
            let stopped = s
                .as_ref()
                .is_some_and(|s| s.stopped.load(Ordering::Acquire));
            let launched = s.as_ref().is_some_and(|s| s.launched);
            if stopped {
                log::info!("plugin {name}: disconnected from the runtime (stopped)");
            } else if launched {
                log::info!(
                    "plugin {name}: the runtime closed the connection ({reason}); \
                     a plugin the runtime launched ends with it"
                );
            } else {
                log::warn!("plugin {name}: lost the connection to the runtime ({reason})");
            }
            // Keep the session until run()/wait() have seen it end; a new
            // start() replaces it.
            if stopped {
                s.take();
            }
        }
    }
    configured(&inner, Some(reason));
    if let Some(cb) = &inner.on_close {
        // It runs on one of the connection's own threads: a stop() called
        // from it must not wait for that thread.
        let _scope = HandlerScope::enter();
        cb();
    }
}

/// Why a connection closed.
pub(super) fn close_reason(conn: &Connection) -> String {
    conn.close_reason()
        .unwrap_or_else(|| "the connection closed".into())
}
