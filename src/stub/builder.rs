//! Building a [`Stub`]: the options of Go's `stub.New`, and the plugin's identity.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{self, EventMask, FailurePolicy};
use crate::ttrpc::{ConnectionOptions, DeadlineGuard};
use crate::{Error, Result};

use super::dial::{Connector, Dialer};
use super::lifecycle::{Inner, OnCloseFn, Stub};
use super::negotiate::{Negotiated, Wants};
use super::plugin::Plugin;
use super::plugin_service;
use super::registration::{ConfigureWait, Timeouts};
use super::stats::{Recorder, StatusCell};
use super::synchronize_state::ChunkCollector;
use crate::api::PluginId;
use crate::log_text::Escape;

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
    default_name: Option<String>,
    default_index: Option<String>,
    socket_path: PathBuf,
    connection: Option<UnixStream>,
    dialer: Option<Dialer>,
    on_close: Option<OnCloseFn>,
    options: ConnectionOptions,
    allow_updates_in_handlers: bool,
    timeouts: Timeouts,
    max_synchronize_bytes: usize,
    required: EventMask,
    failure_policy: Option<FailurePolicy>,
    collect_stats: bool,
}

/// Default bound on the memory the Synchronize state the stub collects can
/// hold (see [`StubBuilder::max_sync_state_bytes`]).
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
    setters! {
        /// Sets the plugin name (else `NRI_PLUGIN_NAME`, else the executable's name).
        plugin_name(name: impl Into<String>) => name = Some(name.into());

        /// Sets the two-digit plugin index (else `NRI_PLUGIN_IDX`, else the
        /// executable's `NN-` prefix).
        plugin_index(index: impl Into<String>) => index = Some(index.into());

        /// The plugin name to use when the runtime did not launch the plugin
        /// (no `NRI_PLUGIN_NAME`): one binary then works both launched, with
        /// the identity the runtime gives it, and external, with this one.
        /// [`StubBuilder::plugin_name`] overrides both.
        ///
        /// ```
        /// # use nri::api::{Event, EventMask};
        /// # struct P;
        /// # impl nri::stub::Plugin for P { fn events(&self) -> EventMask { Event::START_CONTAINER.into() } }
        /// // Launched as /opt/nri/plugins/20-gpu, the runtime sets NRI_PLUGIN_NAME=gpu and
        /// // NRI_PLUGIN_IDX=20, and those win; started by hand, it registers as 90-gpu-injector.
        /// let stub = nri::stub::Stub::builder(P)
        ///     .default_plugin_name("gpu-injector")
        ///     .default_plugin_index("90")
        ///     .build()?;
        /// # if std::env::var_os("NRI_PLUGIN_NAME").is_none() {
        /// assert_eq!(stub.name(), "90-gpu-injector");
        /// # }
        /// # Ok::<(), nri::Error>(())
        /// ```
        default_plugin_name(name: impl Into<String>) => default_name = Some(name.into());

        /// The plugin index to use when the runtime did not launch the plugin
        /// (no `NRI_PLUGIN_IDX`); see [`StubBuilder::default_plugin_name`].
        default_plugin_index(index: impl Into<String>) => default_index = Some(index.into());

        /// Events the plugin cannot work without, a subset of
        /// [`Plugin::events`]. A runtime too old to deliver one of them (for
        /// example ValidateContainerAdjustment, from NRI v0.10) fails the
        /// registration with [`Error::EventsUnavailable`], naming the events and
        /// the runtime, instead of running without them. Handled events that
        /// are not required and that the runtime cannot deliver are left out
        /// of the subscription and logged once.
        require_events(events: impl Into<EventMask>) => required = events.into();

        /// The failure policy sent to the runtime in the Configure reply (NRI
        /// v0.12.4): whether a request fails, and whether the plugin stays
        /// connected, when the plugin times out or its connection fails. Unset
        /// by default, which means what older runtimes always do: drop the
        /// plugin and let the request proceed without it. Runtimes before
        /// v0.12.4 ignore it.
        failure_policy(policy: FailurePolicy) => failure_policy = Some(policy);

        /// Whether [`Stub::stats`] counts requests (default on). Counting
        /// costs two clock reads and a few atomic additions per request; turned
        /// off, neither happens and the request counters of the snapshot stay
        /// at zero (the connection's state and history are still kept).
        collect_stats(on: bool) => collect_stats = on;

        /// Sets the runtime's socket path (default `/var/run/nri/nri.sock`).
        socket_path(path: impl Into<PathBuf>) => socket_path = path.into();

        /// Uses an already connected socket for the first start, instead of
        /// `NRI_PLUGIN_SOCKET` or dialing. Later starts dial the socket path.
        connection(stream: UnixStream) => connection = Some(stream);
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

    setters! {
        /// Called each time a connection to the runtime ends (the runtime went
        /// away, or [`Stub::stop`]), exactly once per connection. Unlike Go's
        /// stub, which exits the process when no callback is set, this library
        /// never exits the process: [`Stub::run`] returns instead.
        on_close(f: impl Fn() + Send + Sync + 'static) => on_close = Some(Arc::new(f));

        /// Worker threads serving requests (default 4, at least 2 are used so
        /// that a handler waiting on the runtime never blocks the reader).
        workers(n: usize) => options.workers = n;

        /// Requests read but waiting for a worker before new ones are refused
        /// with RESOURCE_EXHAUSTED (default 64).
        max_queued_requests(n: usize) => options.max_queued_requests = n;

        /// Bytes that received requests and replies may hold in memory while
        /// they wait for a worker or their caller (default 16 MiB, at least
        /// 4 MiB + 64 KiB). A request beyond it is refused with
        /// RESOURCE_EXHAUSTED naming the budget.
        max_pending_bytes(bytes: usize) => options.max_pending_bytes = bytes;

        /// The longest one message may take to leave once it holds the writer
        /// (default 2 s): a runtime that stops reading for longer is treated
        /// as gone and the connection closes with a reason naming it. A reply
        /// waits at most twice this long for the writer. At least 1 ms.
        write_timeout(timeout: Duration) => options.write_timeout = timeout;

        /// Turns the deadline guard on: a handler still running shortly before
        /// the runtime's deadline gets a reply sent on its behalf (by default an
        /// empty "no changes" reply), its late result is discarded and logged,
        /// and the runtime keeps the plugin instead of dropping it.
        deadline_guard(guard: DeadlineGuard) => options.deadline_guard = Some(guard);

        /// Sets the registration timeout used until the runtime's Configure
        /// tells its own (default 5 s): how long [`Stub::start`] waits for the
        /// RegisterPlugin reply and Configure together.
        registration_timeout(timeout: Duration) => timeouts.registration = timeout;

        /// Sets the request timeout used until Configure tells the runtime's
        /// (default 2 s); it bounds [`Stub::update_containers`].
        request_timeout(timeout: Duration) => timeouts.request = timeout;

        /// Allows [`Stub::update_containers`] from inside a handler (refused by
        /// default, since it deadlocks v0.9.0 runtimes; newer runtimes, from
        /// v0.12.1, accept it).
        allow_updates_in_handlers(allow: bool) => allow_updates_in_handlers = allow;

        /// Bounds the memory the Synchronize state can hold (default
        /// [`DEFAULT_MAX_SYNC_STATE_BYTES`], 256 MiB: about 17,000 containers
        /// like the benchmark's, of 2 KB encoded each). What counts is what the state holds once the handler
        /// has decoded all of it: the received chunks, the index of their items
        /// and an upper bound of every item's decoded form, computed from its
        /// bytes as they arrive. A larger state is refused with
        /// RESOURCE_EXHAUSTED, as soon as a chunk takes it over the bound.
        max_sync_state_bytes(bytes: usize) => max_synchronize_bytes = bytes;
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
        let unhandled = self.required & !events;
        if !unhandled.is_empty() {
            return Err(Error::Config(format!(
                "require_events names {unhandled}, which the plugin does not handle (Plugin::events() is {events})"
            )));
        }
        let env_name = std::env::var(api::PLUGIN_NAME_ENV_VAR)
            .ok()
            .filter(|s| !s.is_empty());
        let env_index = std::env::var(api::PLUGIN_IDX_ENV_VAR)
            .ok()
            .filter(|s| !s.is_empty());
        let identity = resolve_identity(
            self.name.or(env_name).or(self.default_name),
            self.index.or(env_index).or(self.default_index),
        )?;
        let mut options = self.options;
        options.workers = options.workers.max(2);
        options.name = format!("nri-{}", identity.full_name());
        options.peer = format!("the runtime of plugin {:?}", identity.full_name());
        log::debug!(
            "created plugin {} (handles {events})",
            Escape(identity.full_name())
        );
        let plugin = self.plugin;
        let inner = Inner {
            identity,
            wants: Wants {
                handled: events,
                required: self.required,
                failure_policy: self.failure_policy,
            },
            negotiated: Negotiated::default(),
            timeouts: Mutex::new(self.timeouts),
            configure_wait: ConfigureWait::default(),
            synchronize: ChunkCollector::new(self.max_synchronize_bytes),
            stats: Recorder::new(self.collect_stats),
            status: StatusCell::new(),
            connector: Connector::new(self.socket_path, self.connection, self.dialer),
            connection: Default::default(),
            stop: Default::default(),
            services: Box::new(move |stub| plugin_service::services(&plugin, stub)),
            options,
            on_close: self.on_close,
            allow_updates_in_handlers: self.allow_updates_in_handlers,
        };
        Ok(Stub {
            inner: Arc::new(inner),
        })
    }
}

/// The plugin's identity from what was set (builder, else environment,
/// else builder defaults), else from the executable's `NN-name`.
fn resolve_identity(name: Option<String>, index: Option<String>) -> Result<PluginId> {
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
    Ok(PluginId { index, name })
}

impl Stub {
    /// Starts building a stub for `plugin`.
    pub fn builder(plugin: impl Plugin) -> StubBuilder {
        StubBuilder {
            plugin: Arc::new(plugin),
            name: None,
            index: None,
            default_name: None,
            default_index: None,
            socket_path: PathBuf::from(api::DEFAULT_SOCKET_PATH),
            connection: None,
            dialer: None,
            on_close: None,
            options: ConnectionOptions::default(),
            allow_updates_in_handlers: false,
            max_synchronize_bytes: DEFAULT_MAX_SYNC_STATE_BYTES,
            required: EventMask::EMPTY,
            failure_policy: None,
            collect_stats: true,
            timeouts: Timeouts {
                registration: api::DEFAULT_REGISTRATION_TIMEOUT,
                request: api::DEFAULT_REQUEST_TIMEOUT,
            },
        }
    }

    /// A stub with default options; the counterpart of Go's `stub.New(p)`.
    pub fn new(plugin: impl Plugin) -> Result<Stub> {
        Self::builder(plugin).build()
    }
}
