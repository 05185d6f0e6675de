//! What a running plugin has done: per-request counters and latency
//! histograms, the connection's state and history, and the runtime it
//! talks to, as a [`Stats`] snapshot from [`Stub::stats`](super::Stub::stats).
//!
//! Recording costs a few relaxed atomic additions per request, on the
//! thread that served it: no lock, no allocation. A snapshot copies the
//! counters; it is meant to be taken every few seconds (for a metrics file
//! or a readiness probe), not per request.
//!
//! Latencies are kept in a log-linear histogram of microseconds (four
//! buckets per power of two, so a reported quantile is at most about 25%
//! above the true value, and never above the maximum).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::api::{rpc, Event, EventMask};
use crate::locking::lock;

use super::negotiate::RuntimeInfo;

/// A request of the plugin service that is not an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifecycleRequest {
    /// Configure.
    Configure,
    /// Synchronize (counted once per state, however many chunks).
    Synchronize,
    /// Shutdown.
    Shutdown,
}

impl LifecycleRequest {
    /// Every lifecycle request, in the order [`Stats::requests`] lists them.
    pub const ALL: [LifecycleRequest; 3] = [
        LifecycleRequest::Configure,
        LifecycleRequest::Synchronize,
        LifecycleRequest::Shutdown,
    ];

    /// The request's NRI name (`"Configure"`).
    pub const fn name(self) -> &'static str {
        match self {
            LifecycleRequest::Configure => rpc::CONFIGURE.method,
            LifecycleRequest::Synchronize => rpc::SYNCHRONIZE.method,
            LifecycleRequest::Shutdown => rpc::SHUTDOWN.method,
        }
    }
}

/// Slots: the lifecycle requests, then every event of the event table in
/// wire order (`Event::UNKNOWN` and the `Event::LAST` sentinel have none).
const SLOTS: usize = LifecycleRequest::ALL.len() + Event::LAST as usize - 1;

/// The slot of a request: an index below [`SLOTS`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot(usize);

impl Slot {
    /// The slot of a lifecycle request.
    pub(crate) const fn lifecycle(request: LifecycleRequest) -> Slot {
        Slot(request as usize)
    }

    /// The slot of an event of the event table (events 1 to 14 follow the
    /// lifecycle requests). Meant for constants: `UNKNOWN` and `LAST` have
    /// no slot, and evaluating this for them fails the build.
    pub(crate) const fn event(event: Event) -> Slot {
        assert!(
            event.facts().is_some(),
            "only the events of the table have a slot"
        );
        Slot(LifecycleRequest::ALL.len() - 1 + event as usize)
    }

    /// The request's NRI name.
    fn name(self) -> &'static str {
        match LifecycleRequest::ALL.get(self.0) {
            Some(request) => request.name(),
            None => {
                let n = (self.0 + 1 - LifecycleRequest::ALL.len()) as i32;
                <Event as protobuf::Enum>::from_i32(n).map_or("Unknown", Event::name)
            }
        }
    }
}

const BUCKETS: usize = 256;

/// The histogram bucket of a value: exact below 8, then four buckets per
/// power of two.
fn bucket(v: u64) -> usize {
    if v < 8 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize;
    let sub = ((v >> (e - 2)) & 3) as usize;
    8 + 4 * (e - 3) + sub
}

/// The largest value a bucket holds.
fn bucket_top(i: usize) -> u64 {
    if i < 8 {
        return i as u64;
    }
    let e = (i - 8) / 4 + 3;
    let sub = ((i - 8) % 4) as u128;
    let top = ((5 + sub) << (e - 2)) - 1;
    u64::try_from(top).unwrap_or(u64::MAX)
}

/// Live counters of one kind of request.
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    guarded: AtomicU64,
    slow: AtomicU64,
    /// Nanoseconds, so that sub-microsecond handlers add up truly.
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Counters {
    fn new() -> Counters {
        Counters {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            guarded: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The stub's live statistics.
pub(crate) struct Recorder {
    enabled: bool,
    requests: Box<[Counters]>,
    pub(crate) registrations: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) updates_sent: AtomicU64,
    pub(crate) updates_failed: AtomicU64,
    started: Instant,
}

/// How a request went, for the recorder.
pub(crate) struct Outcome {
    /// The handler returned an error (or rejected, for a validator).
    pub failed: bool,
    /// How long the handler ran.
    pub took: Duration,
    /// The runtime's timeout for the request.
    pub timeout: Option<Duration>,
    /// The deadline guard's margin, when the guard is on.
    pub guard_margin: Option<Duration>,
}

impl Recorder {
    pub(crate) fn new(enabled: bool) -> Recorder {
        Recorder {
            enabled,
            requests: (0..SLOTS).map(|_| Counters::new()).collect(),
            registrations: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            updates_sent: AtomicU64::new(0),
            updates_failed: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// The time a request starts, when counting: `None` when not, so that
    /// a stub that does not count reads no clock either.
    pub(crate) fn clock(&self) -> Option<Instant> {
        self.enabled.then(Instant::now)
    }

    /// Counts one served request.
    pub(crate) fn record(&self, slot: Slot, o: Outcome) {
        if !self.enabled {
            return;
        }
        let c = &self.requests[slot.0];
        let ns = u64::try_from(o.took.as_nanos()).unwrap_or(u64::MAX);
        let us = ns / 1000;
        c.calls.fetch_add(1, Ordering::Relaxed);
        if o.failed {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        c.sum_ns.fetch_add(ns, Ordering::Relaxed);
        c.max_ns.fetch_max(ns, Ordering::Relaxed);
        c.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        if let Some(timeout) = o.timeout {
            if o.took * 2 > timeout {
                c.slow.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(margin) = o.guard_margin {
                // The guard answers `margin` (at most a quarter of the
                // timeout) before the deadline: a handler still running
                // then was answered for.
                if o.took + margin.min(timeout / 4) >= timeout {
                    c.guarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn request_stats(&self) -> Vec<RequestStats> {
        self.requests
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let counts: Vec<u64> = c
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                let max_ns = c.max_ns.load(Ordering::Relaxed);
                let max = max_ns / 1000;
                RequestStats {
                    name: Slot(i).name(),
                    calls: c.calls.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                    guard_answers: c.guarded.load(Ordering::Relaxed),
                    slow: c.slow.load(Ordering::Relaxed),
                    latency: Latency {
                        sum: Duration::from_nanos(c.sum_ns.load(Ordering::Relaxed)),
                        max: Duration::from_nanos(max_ns),
                        p50: Duration::from_micros(quantile(&counts, 0.50, max)),
                        p99: Duration::from_micros(quantile(&counts, 0.99, max)),
                        buckets: counts,
                    },
                }
            })
            .collect()
    }
}

/// The value under which a fraction `q` of the recorded values fall, as the
/// top of its bucket, never above `max`.
fn quantile(counts: &[u64], q: f64, max: u64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_top(i).min(max);
        }
    }
    max
}

/// Where the plugin's connection to the runtime stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected (not started yet, stopped, or between reconnects).
    Disconnected,
    /// Connected, registration and Configure under way.
    Registering,
    /// Configured by the runtime and serving it.
    Registered,
}

/// The connection's state, and since when it is registered.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConnectionStatus {
    pub(super) state: ConnectionState,
    pub(super) registered_since: Option<SystemTime>,
}

/// The current [`ConnectionStatus`], moved on as the connection goes.
pub(super) struct StatusCell(Mutex<ConnectionStatus>);

impl StatusCell {
    pub(super) fn new() -> StatusCell {
        StatusCell(Mutex::new(ConnectionStatus {
            state: ConnectionState::Disconnected,
            registered_since: None,
        }))
    }

    pub(super) fn get(&self) -> ConnectionStatus {
        *lock(&self.0)
    }

    fn set(&self, state: ConnectionState, registered_since: Option<SystemTime>) {
        *lock(&self.0) = ConnectionStatus {
            state,
            registered_since,
        };
    }

    pub(super) fn registering(&self) {
        self.set(ConnectionState::Registering, None);
    }

    /// Registered now, unless the connection ended meanwhile.
    pub(super) fn registered(&self) {
        let mut status = lock(&self.0);
        if status.state == ConnectionState::Registering {
            status.state = ConnectionState::Registered;
            status.registered_since = Some(SystemTime::now());
        }
    }

    pub(super) fn disconnected(&self) {
        self.set(ConnectionState::Disconnected, None);
    }
}

/// A snapshot of a plugin's statistics; see [`Stub::stats`](super::Stub::stats).
#[derive(Clone, Debug)]
pub struct Stats {
    /// The full plugin name (`NN-name`).
    pub plugin: String,
    /// The NRI version the plugin speaks.
    pub plugin_nri_version: &'static str,
    /// The connection's state.
    pub state: ConnectionState,
    /// When the current connection was registered (configured).
    pub registered_since: Option<SystemTime>,
    /// Registrations that succeeded since the stub was built.
    pub registrations: u64,
    /// Registrations after the first: reconnects to a restarted runtime.
    pub reconnects: u64,
    /// Connections that ended (lost or stopped).
    pub disconnects: u64,
    /// The runtime of the current (or last) connection.
    pub runtime: Option<Arc<RuntimeInfo>>,
    /// The events subscribed to on the current connection.
    pub subscribed: EventMask,
    /// Unsolicited updates sent ([`Stub::update_containers`](super::Stub::update_containers) calls).
    pub updates_sent: u64,
    /// Unsolicited update calls that failed, or that the runtime could not
    /// fully apply.
    pub updates_failed: u64,
    /// Time since the stub was built.
    pub uptime: Duration,
    /// One entry per kind of request (Configure, Synchronize, Shutdown and
    /// each event), also those never received.
    pub requests: Vec<RequestStats>,
}

/// Counters of one kind of request.
#[derive(Clone, Debug)]
pub struct RequestStats {
    /// The request's NRI name (`CreateContainer`).
    pub name: &'static str,
    /// Requests served.
    pub calls: u64,
    /// Requests whose handler failed (or rejected, for validation).
    pub errors: u64,
    /// Requests the deadline guard answered for, the handler being too slow.
    pub guard_answers: u64,
    /// Requests whose handler took more than half the runtime's timeout:
    /// close calls with the deadline after which a runtime drops a plugin.
    pub slow: u64,
    /// How long the handler took.
    pub latency: Latency,
}

/// A latency distribution.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    /// The median (bucket resolution).
    pub p50: Duration,
    /// The 99th percentile (bucket resolution).
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
    /// The sum of all, to the nanosecond (the buckets and quantiles count
    /// whole microseconds).
    pub sum: Duration,
    /// Counts per histogram bucket, in microseconds: exact below 8 µs, then
    /// four buckets per power of two; [`Latency::bucket_upper_bound`] gives
    /// each bucket's top.
    pub buckets: Vec<u64>,
}

impl Latency {
    /// The largest latency bucket `i` holds.
    pub fn bucket_upper_bound(i: usize) -> Duration {
        Duration::from_micros(bucket_top(i))
    }
}

impl RequestStats {
    /// Whether these are the stats of `event`.
    pub fn is_event(&self, event: Event) -> bool {
        event.facts().is_some() && self.name == event.name()
    }
}

/// Builds a snapshot from the recorder and the stub's current state.
pub(crate) struct Snapshot<'a> {
    pub recorder: &'a Recorder,
    pub plugin: String,
    pub status: ConnectionStatus,
    pub runtime: Option<Arc<RuntimeInfo>>,
    pub subscribed: EventMask,
}

impl Snapshot<'_> {
    pub(crate) fn take(self) -> Stats {
        let r = self.recorder;
        let registrations = r.registrations.load(Ordering::Relaxed);
        Stats {
            plugin: self.plugin,
            plugin_nri_version: crate::api::NRI_VERSION,
            state: self.status.state,
            registered_since: self.status.registered_since,
            registrations,
            reconnects: registrations.saturating_sub(1),
            disconnects: r.disconnects.load(Ordering::Relaxed),
            runtime: self.runtime,
            subscribed: self.subscribed,
            updates_sent: r.updates_sent.load(Ordering::Relaxed),
            updates_failed: r.updates_failed.load(Ordering::Relaxed),
            uptime: r.started.elapsed(),
            requests: r.request_stats(),
        }
    }
}

impl Stats {
    /// The counters of one kind of request by its NRI name
    /// (`"CreateContainer"`, `"Configure"`); [`Stats::event`] and
    /// [`Stats::lifecycle`] are the typed forms, which a typo cannot miss.
    pub fn request(&self, name: &str) -> Option<&RequestStats> {
        self.requests.iter().find(|r| r.name == name)
    }

    /// The counters of one event; `None` only for `Event::UNKNOWN` and
    /// `Event::LAST`, which are not events.
    ///
    /// ```
    /// # use nri::api::{Event, EventMask};
    /// # struct P;
    /// # impl nri::stub::Plugin for P { fn events(&self) -> EventMask { Event::START_CONTAINER.into() } }
    /// let stub = nri::stub::Stub::builder(P).plugin_name("demo").plugin_index("10").build()?;
    /// let stats = stub.stats();
    /// assert_eq!(stats.event(Event::START_CONTAINER).map(|r| r.calls), Some(0));
    /// assert!(stats.event(Event::UNKNOWN).is_none());
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn event(&self, event: Event) -> Option<&RequestStats> {
        self.requests.iter().find(|r| r.is_event(event))
    }

    /// The counters of Configure, Synchronize or Shutdown.
    ///
    /// ```
    /// # use nri::api::{Event, EventMask};
    /// # use nri::stub::LifecycleRequest;
    /// # struct P;
    /// # impl nri::stub::Plugin for P { fn events(&self) -> EventMask { Event::START_CONTAINER.into() } }
    /// let stub = nri::stub::Stub::builder(P).plugin_name("demo").plugin_index("10").build()?;
    /// let configure = stub.stats().lifecycle(LifecycleRequest::Configure).map(|r| r.calls);
    /// assert_eq!(configure, Some(0));
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn lifecycle(&self, request: LifecycleRequest) -> Option<&RequestStats> {
        self.requests.iter().find(|r| r.name == request.name())
    }

    /// Whether the plugin is registered with a runtime and serving it: what
    /// a readiness probe asks.
    pub fn is_ready(&self) -> bool {
        self.state == ConnectionState::Registered
    }

    /// The statistics in the Prometheus text exposition format (version
    /// 0.0.4), for node_exporter's textfile collector or any scraper. Every
    /// metric carries a `plugin` label; request metrics a `request` label.
    ///
    /// ```
    /// # use nri::api::{Event, EventMask};
    /// # struct P;
    /// # impl nri::stub::Plugin for P { fn events(&self) -> EventMask { Event::START_CONTAINER.into() } }
    /// let stub = nri::stub::Stub::builder(P).plugin_name("demo").plugin_index("10").build()?;
    /// let text = stub.stats().to_prometheus();
    /// assert!(text.contains("nri_plugin_registered{plugin=\"10-demo\"} 0"));
    /// assert!(text.contains("# TYPE nri_plugin_request_duration_seconds histogram"));
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let p = escape(&self.plugin);
        let ready = u8::from(self.is_ready()).to_string();
        let uptime = self.uptime.as_secs_f64().to_string();
        // (name, help, kind, value) of the plugin's own metrics.
        #[rustfmt::skip]
        let metrics: [(&str, &str, &str, String); 6] = [
            ("nri_plugin_registered", "Whether the plugin is registered with the runtime (1) or not (0).", "gauge", ready),
            ("nri_plugin_registrations_total", "Successful registrations with a runtime.", "counter", self.registrations.to_string()),
            ("nri_plugin_disconnects_total", "Connections to the runtime that ended.", "counter", self.disconnects.to_string()),
            ("nri_plugin_updates_sent_total", "Unsolicited container update calls.", "counter", self.updates_sent.to_string()),
            ("nri_plugin_updates_failed_total", "Unsolicited container update calls that failed.", "counter", self.updates_failed.to_string()),
            ("nri_plugin_uptime_seconds", "Seconds since the plugin started.", "gauge", uptime),
        ];
        for (name, help, kind, value) in metrics {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name}{{plugin=\"{p}\"}} {value}");
        }
        if let Some(rt) = &self.runtime {
            let _ = writeln!(
                out,
                "# HELP nri_plugin_runtime_info The runtime the plugin is connected to."
            );
            let _ = writeln!(out, "# TYPE nri_plugin_runtime_info gauge");
            let nri = rt
                .nri_version
                .as_ref()
                .map_or_else(String::new, ToString::to_string);
            let _ = writeln!(
                out,
                "nri_plugin_runtime_info{{plugin=\"{p}\",runtime=\"{}\",version=\"{}\",nri_version=\"{}\"}} 1",
                escape(&rt.name),
                escape(&rt.version),
                escape(&nri)
            );
        }
        let seen: Vec<&RequestStats> = self.requests.iter().filter(|r| r.calls > 0).collect();
        type Counter = (&'static str, &'static str, fn(&RequestStats) -> u64);
        let counters: [Counter; 4] = [
            (
                "nri_plugin_requests_total",
                "Requests served, by kind.",
                |r| r.calls,
            ),
            (
                "nri_plugin_request_errors_total",
                "Requests whose handler failed or rejected.",
                |r| r.errors,
            ),
            (
                "nri_plugin_request_guard_answers_total",
                "Requests the deadline guard answered for.",
                |r| r.guard_answers,
            ),
            (
                "nri_plugin_request_slow_total",
                "Requests that took more than half the runtime's timeout.",
                |r| r.slow,
            ),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for r in &seen {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{p}\",request=\"{}\"}} {}",
                    r.name,
                    get(r)
                );
            }
        }
        let name = "nri_plugin_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} How long handlers took, by request kind."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for r in &seen {
            let mut cumulative = 0;
            for (i, n) in r.latency.buckets.iter().enumerate() {
                cumulative += n;
                // Only the buckets where the count changes, and the last.
                if *n > 0 {
                    let le = Latency::bucket_upper_bound(i).as_secs_f64();
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{plugin=\"{p}\",request=\"{}\",le=\"{le}\"}} {cumulative}",
                        r.name
                    );
                }
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{plugin=\"{p}\",request=\"{}\",le=\"+Inf\"}} {}",
                r.name, r.calls
            );
            let _ = writeln!(
                out,
                "{name}_sum{{plugin=\"{p}\",request=\"{}\"}} {}",
                r.name,
                r.latency.sum.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "{name}_count{{plugin=\"{p}\",request=\"{}\"}} {}",
                r.name, r.calls
            );
        }
        out
    }
}

/// Escapes a Prometheus label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_every_value() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS);
            assert!(b >= last || v > 100_000, "{v}");
            assert!(
                bucket_top(b) >= v,
                "{v} in bucket {b} topped at {}",
                bucket_top(b)
            );
            if b > 0 {
                assert!(bucket_top(b - 1) < v, "{v}");
            }
            last = b;
        }
    }

    /// A request that took `took`, under `timeout`, without the guard.
    fn outcome(failed: bool, took: Duration, timeout: Option<Duration>) -> Outcome {
        Outcome {
            failed,
            took,
            timeout,
            guard_margin: None,
        }
    }

    /// The counters of `event` in a snapshot of `r`.
    fn stats_of(r: &Recorder, event: Event) -> RequestStats {
        let requests = r.request_stats();
        requests.into_iter().find(|s| s.is_event(event)).unwrap()
    }

    #[test]
    fn quantiles_are_within_a_bucket_and_never_above_the_max() {
        let r = Recorder::new(true);
        let slot = Slot::event(Event::CREATE_CONTAINER);
        for us in 1..=1000u64 {
            let took = Duration::from_micros(us);
            r.record(
                slot,
                outcome(us % 100 == 0, took, Some(Duration::from_millis(1))),
            );
        }
        let create = stats_of(&r, Event::CREATE_CONTAINER);
        assert_eq!(create.calls, 1000);
        assert_eq!(create.errors, 10);
        assert_eq!(create.slow, 500);
        let p50 = create.latency.p50.as_micros() as f64;
        let p99 = create.latency.p99.as_micros() as f64;
        assert!((500.0..=500.0 * 1.25).contains(&p50), "{p50}");
        assert!((990.0..=1000.0).contains(&p99), "{p99}");
        assert_eq!(create.latency.max, Duration::from_micros(1000));
        assert_eq!(create.latency.sum, Duration::from_micros(500_500));
    }

    #[test]
    fn sub_microsecond_handlers_add_up_in_the_sum_and_the_max() {
        let r = Recorder::new(true);
        for _ in 0..1000 {
            let took = Duration::from_nanos(250);
            r.record(
                Slot::event(Event::START_CONTAINER),
                outcome(false, took, None),
            );
        }
        let start = stats_of(&r, Event::START_CONTAINER);
        assert_eq!(start.latency.sum, Duration::from_micros(250));
        assert_eq!(start.latency.max, Duration::from_nanos(250));
        assert_eq!(start.latency.p50, Duration::ZERO);
        assert_eq!(start.latency.buckets[0], 1000);
    }

    #[test]
    fn a_handler_past_the_guards_moment_counts_as_guarded() {
        let r = Recorder::new(true);
        let o = |ms| Outcome {
            failed: false,
            took: Duration::from_millis(ms),
            timeout: Some(Duration::from_secs(2)),
            guard_margin: Some(Duration::from_millis(250)),
        };
        r.record(Slot::lifecycle(LifecycleRequest::Configure), o(100));
        r.record(Slot::lifecycle(LifecycleRequest::Configure), o(1800));
        let stats = r.request_stats();
        assert_eq!(stats[0].guard_answers, 1);
        assert_eq!(stats[0].slow, 1);
    }

    #[test]
    fn a_recorder_that_does_not_count_reads_no_clock_and_counts_nothing() {
        let r = Recorder::new(false);
        assert!(r.clock().is_none());
        assert!(Recorder::new(true).clock().is_some());
        let failed = outcome(true, Duration::from_millis(1), None);
        r.record(Slot::lifecycle(LifecycleRequest::Configure), failed);
        assert!(r
            .request_stats()
            .iter()
            .all(|s| s.calls == 0 && s.errors == 0));
    }

    #[test]
    fn slots_follow_event_numbers() {
        for i in LifecycleRequest::ALL.len()..SLOTS {
            let name = Slot(i).name();
            let event = Event::from_i32_or_unknown(i as i32 - 2);
            assert_eq!(event.name(), name);
            assert_eq!(Slot::event(event).0, i);
        }
        let names: Vec<&str> = (0..SLOTS).map(|i| Slot(i).name()).collect();
        assert_eq!(names.len(), 17);
        assert_eq!(
            names[..4],
            ["Configure", "Synchronize", "Shutdown", "RunPodSandbox"]
        );
        assert_eq!(names[16], "ValidateContainerAdjustment");
        assert!(!names.iter().any(|n| *n == "Unknown" || *n == "Last"));
    }

    trait FromI32 {
        fn from_i32_or_unknown(n: i32) -> Event;
    }

    impl FromI32 for Event {
        fn from_i32_or_unknown(n: i32) -> Event {
            <Event as protobuf::Enum>::from_i32(n).unwrap_or(Event::UNKNOWN)
        }
    }
}
