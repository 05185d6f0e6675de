//! The [`Stub`] and its connection lifecycle: start, run, wait, stop, and
//! unsolicited updates.
//!
//! The stub's state is one named part per concern, each owned by the file
//! of that concern ([`Inner`] lists them); this file owns the connection to
//! the runtime and the stop signal. The plugin itself is not held here: the
//! builder leaves a function that makes the plugin service's handlers
//! ([`ServicesFn`]), so that this file and those handlers depend one way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::api::{self, rpc, ContainerUpdate, EventMask, UpdateContainersRequest};
use crate::locking::lock;
use crate::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{Client, Connection, ConnectionBuilder, ConnectionOptions, Framing, Services};
use crate::{Error, Result};

use super::dial::Connector;
use super::in_handler::{in_handler, HandlerScope};
use super::negotiate::{Negotiated, RuntimeInfo, Wants};
use super::registration::{self, ConfigureWait, Timeouts};
use super::stats::{Recorder, Snapshot, Stats, StatusCell};
use super::synchronize_state::ChunkCollector;
use crate::api::PluginId;
use crate::log_text::Escape;

/// Called when a connection ends.
pub(super) type OnCloseFn = Arc<dyn Fn() + Send + Sync>;

/// Makes the handlers of the plugin service for one connection.
pub(super) type ServicesFn = dyn Fn(&Weak<Inner>) -> Services + Send + Sync;

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
            .field("events", &self.inner.wants.handled)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Everything a stub holds, one part per concern.
pub(super) struct Inner {
    /// Who the plugin is (registration).
    pub(super) identity: PluginId,
    /// What the plugin asks of Configure (negotiation).
    pub(super) wants: Wants,
    /// What Configure settled (negotiation).
    pub(super) negotiated: Negotiated,
    /// The timeouts in force (registration).
    pub(super) timeouts: Mutex<Timeouts>,
    /// `start()` waiting for Configure (registration).
    pub(super) configure_wait: ConfigureWait,
    /// The chunks of a Synchronize in progress.
    pub(super) synchronize: ChunkCollector,
    /// Request counters and latencies (statistics).
    pub(super) stats: Recorder,
    /// The connection's state, for statistics.
    pub(super) status: StatusCell,
    /// Where connections come from.
    pub(super) connector: Connector,
    /// The current connection.
    pub(super) connection: ConnectionSlot,
    /// Stop requests, for `run()` and the supervisor.
    pub(super) stop: StopSignal,
    /// The plugin service's handlers, made for each connection.
    pub(super) services: Box<ServicesFn>,
    /// Options of every connection.
    pub(super) options: ConnectionOptions,
    /// Runs when a connection ends.
    pub(super) on_close: Option<OnCloseFn>,
    /// Whether `update_containers` may run inside a handler.
    pub(super) allow_updates_in_handlers: bool,
}

/// The stub's connection to the runtime while it lasts.
pub(super) struct RuntimeConnection {
    /// Tells this connection from the next one.
    id: u64,
    conn: Connection,
    client: Client,
    /// Set when the stub closed it on purpose (stop, failed start).
    stopped: Arc<AtomicBool>,
    /// The runtime launched the plugin and passed this connection.
    pub(super) launched: bool,
}

/// The current [`RuntimeConnection`], if any.
#[derive(Default)]
pub(super) struct ConnectionSlot {
    current: Mutex<Option<RuntimeConnection>>,
    /// Serializes `start()` calls.
    starting: Mutex<()>,
    /// The last connection's id.
    last_id: AtomicU64,
}

impl ConnectionSlot {
    fn current(&self) -> MutexGuard<'_, Option<RuntimeConnection>> {
        lock(&self.current)
    }

    /// The open connection and its stop flag, if any.
    fn conn(&self) -> Option<(Connection, Arc<AtomicBool>)> {
        self.current()
            .as_ref()
            .map(|c| (c.conn.clone(), c.stopped.clone()))
    }

    /// Whether the current connection was passed by the runtime.
    pub(super) fn launched(&self) -> bool {
        self.current().as_ref().is_some_and(|c| c.launched)
    }
}

/// Counts stop requests and wakes whoever sleeps until the next one.
#[derive(Default)]
pub(super) struct StopSignal {
    generation: AtomicU64,
    lock: Mutex<()>,
    wake: Condvar,
}

impl StopSignal {
    /// The number of stop requests so far.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn request(&self) {
        // Under the lock, so a sleeping supervisor cannot miss the wake-up.
        let _g = lock(&self.lock);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_all();
    }

    /// Sleeps until `until`, or until a stop request after `generation`.
    /// True when stopped.
    pub(super) fn sleep_until(&self, until: Instant, generation: u64) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        let guard = lock(&self.lock);
        let _ = self
            .wake
            .wait_timeout_while(guard, left, |_| self.generation() == generation);
        self.generation() != generation
    }
}

/// How a finished connection ended.
pub(super) enum Ended {
    Stopped,
    Lost(String),
}

impl Stub {
    /// The full plugin name, `NN-name`.
    pub fn name(&self) -> String {
        self.inner.identity.full_name()
    }

    /// The plugin name without its index.
    pub fn plugin_name(&self) -> &str {
        &self.inner.identity.name
    }

    /// The two-digit plugin index.
    pub fn plugin_index(&self) -> &str {
        &self.inner.identity.index
    }

    /// The events the plugin handles (from [`Plugin::events`](super::Plugin::events)).
    pub fn events(&self) -> EventMask {
        self.inner.wants.handled
    }

    /// The registration timeout: 5 s until Configure tells the runtime's.
    pub fn registration_timeout(&self) -> Duration {
        lock(&self.inner.timeouts).registration
    }

    /// The request timeout: 2 s until Configure tells the runtime's.
    pub fn request_timeout(&self) -> Duration {
        lock(&self.inner.timeouts).request
    }

    /// What the stub knows of the runtime it is connected to (name,
    /// version, NRI version sent or inferred, events it can deliver), from
    /// the last Configure; `None` before the first Configure of a
    /// connection.
    pub fn runtime(&self) -> Option<Arc<RuntimeInfo>> {
        self.inner.negotiated.runtime()
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
        self.inner.negotiated.subscribed()
    }

    /// The events the plugin cannot run without (see
    /// [`crate::stub::StubBuilder::require_events`]).
    pub fn required_events(&self) -> EventMask {
        self.inner.wants.required
    }

    /// A snapshot of what the plugin has done: requests served per kind
    /// with errors, deadline-guard answers, slow handlers and latency
    /// quantiles; the connection's state, registrations and reconnects; the
    /// runtime and its versions. Cheap enough to take every few seconds for
    /// a metrics file or a readiness probe ([`Stats::to_prometheus`],
    /// [`Stats::is_ready`]).
    pub fn stats(&self) -> Stats {
        Snapshot {
            recorder: &self.inner.stats,
            plugin: self.name(),
            status: self.inner.status.get(),
            runtime: self.runtime(),
            subscribed: self.subscribed_events(),
        }
        .take()
    }

    /// True while connected to a runtime.
    pub fn is_connected(&self) -> bool {
        self.inner
            .connection
            .current()
            .as_ref()
            .is_some_and(|c| !c.conn.is_closed())
    }

    /// Connects, registers and waits until the runtime has configured the
    /// plugin. Fails with a clear error if registration is refused (the stub
    /// then closes the connection itself), or if Configure does not arrive
    /// within the registration timeout.
    pub fn start(&self) -> Result<()> {
        let inner = &self.inner;
        let _g = lock(&inner.connection.starting);
        if self.is_connected() {
            return Err(Error::State(format!(
                "plugin {} is already started",
                self.name()
            )));
        }
        let stop_gen = inner.stop.generation();
        let dialed = inner.connector.dial(&self.name())?;
        let id = inner.connection.last_id.fetch_add(1, Ordering::Relaxed) + 1;
        let configured = inner.configure_wait.arm();
        inner.synchronize.reset();
        inner.negotiated.reset();
        inner.status.registering();
        let stopped = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(inner);
        let services = Arc::new((inner.services)(&weak));
        let conn = ConnectionBuilder::new(dialed.stream, Framing::Mux)
            .options(inner.options.clone())
            .serve(PLUGIN_SERVICE_CONN, services)
            .open(RUNTIME_SERVICE_CONN)
            .on_closing({
                let weak = weak.clone();
                move |reason| {
                    // start() may be waiting for Configure: tell it now,
                    // not once every handler has returned.
                    if let Some(inner) = weak.upgrade() {
                        inner.configure_wait.finish(Some(reason));
                    }
                }
            })
            .on_close(move |reason| connection_closed(&weak, id, reason))
            .start()?;
        let client = conn.client(RUNTIME_SERVICE_CONN)?;
        *inner.connection.current() = Some(RuntimeConnection {
            id,
            conn: conn.clone(),
            client: client.clone(),
            stopped: stopped.clone(),
            launched: dialed.launched,
        });
        let timeout = self.registration_timeout();
        let outcome =
            registration::register_and_wait(&client, &inner.identity, timeout, configured)
                .and_then(|()| {
                    // A stop() that raced this start (a signal during
                    // registration) wins: do not leave a running plugin behind it.
                    if inner.stop.generation() != stop_gen {
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
                log::debug!("plugin {} started", Escape(self.name()));
                inner.stats.registrations.fetch_add(1, Ordering::Relaxed);
                inner.status.registered();
                Ok(())
            }
            Err(e) => {
                log::error!(
                    "plugin {} failed to start: {}",
                    Escape(self.name()),
                    Escape(&e)
                );
                inner.status.disconnected();
                stopped.store(true, Ordering::Release);
                inner.connection.current().take();
                conn.close();
                // Short: a handler stuck in Configure must not hold up the error.
                conn.wait_timeout(Duration::from_millis(200));
                Err(e)
            }
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
        let gen = self.inner.stop.generation();
        if let Err(e) = self.start() {
            // A stop() that came while starting (from a signal handler, or
            // from the on-close callback when the runtime hung up right
            // after Configure) is a requested stop, not a failure.
            if self.inner.stop.generation() != gen {
                log::debug!(
                    "plugin {} stopped while starting: {}",
                    Escape(self.name()),
                    Escape(&e)
                );
                return Ok(());
            }
            return Err(e);
        }
        let launched = self.inner.connection.launched();
        match self.wait_ended() {
            Ended::Stopped => Ok(()),
            Ended::Lost(_) if launched => Ok(()),
            Ended::Lost(reason) => Err(Error::ConnectionClosed(reason)),
        }
    }

    pub(super) fn wait_ended(&self) -> Ended {
        match self.inner.connection.conn() {
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
        self.inner.stop.request();
        if let Some((conn, stopped)) = self.inner.connection.conn() {
            log::debug!("stopping plugin {}", Escape(self.name()));
            stopped.store(true, Ordering::Release);
            conn.close();
            if !in_handler() {
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
        if in_handler() && !self.inner.allow_updates_in_handlers {
            return Err(Error::State(
                "update_containers called from inside a handler would deadlock a v0.9.0 runtime; \
                 use Context::update_containers_after_reply (or allow_updates_in_handlers for newer runtimes)"
                    .into(),
            ));
        }
        let client = self
            .inner
            .connection
            .current()
            .as_ref()
            .map(|c| c.client.clone())
            .ok_or(Error::NotConnected)?;
        let req = UpdateContainersRequest {
            update: updates,
            ..Default::default()
        };
        let stats = &self.inner.stats;
        stats.updates_sent.fetch_add(1, Ordering::Relaxed);
        let resp = registration::call(&client, rpc::UPDATE_CONTAINERS, &req, Some(timeout))
            .map_err(|e| match e {
                Error::ConnectionClosed(_) => Error::NotConnected,
                e => e,
            });
        if resp.as_ref().map_or(true, |r| !r.failed.is_empty()) {
            stats.updates_failed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(resp?.failed)
    }
}

/// Records the end of connection `id`, tells a waiting `start()` and runs
/// the on-close callback.
fn connection_closed(weak: &Weak<Inner>, id: u64, reason: &str) {
    let Some(inner) = weak.upgrade() else { return };
    let name = inner.identity.full_name();
    inner.stats.disconnects.fetch_add(1, Ordering::Relaxed);
    inner.status.disconnected();
    {
        let mut current = inner.connection.current();
        if let Some(c) = current.as_ref().filter(|c| c.id == id) {
            let stopped = c.stopped.load(Ordering::Acquire);
            if stopped {
                log::info!(
                    "plugin {}: disconnected from the runtime (stopped)",
                    Escape(&name)
                );
            } else if c.launched {
                log::info!(
                    "plugin {}: the runtime closed the connection ({}); \
                     a plugin the runtime launched ends with it",
                    Escape(&name),
                    Escape(reason)
                );
            } else {
                log::warn!(
                    "plugin {}: lost the connection to the runtime ({})",
                    Escape(&name),
                    Escape(reason)
                );
            }
            // Keep the connection until run()/wait() have seen it end; a
            // new start() replaces it.
            if stopped {
                current.take();
            }
        }
    }
    inner.configure_wait.finish(Some(reason));
    if let Some(cb) = &inner.on_close {
        // It runs on one of the connection's own threads: a stop() called
        // from it must not wait for that thread.
        let _scope = HandlerScope::enter();
        cb();
    }
}

/// Why a connection closed.
fn close_reason(conn: &Connection) -> String {
    conn.close_reason()
        .unwrap_or_else(|| "the connection closed".into())
}
