//! Soak: a stub connected to `nri::runtime` over a socket pair takes a long,
//! deterministic stream of events of random sizes while another thread
//! keeps calling `update_containers`; memory must stay flat and every event
//! must be answered correctly.
//!
//! It sends `NRI_SOAK_EVENTS` events (default: a million in an optimized
//! build, as CI runs it with `cargo test --release --test soak`; 150,000 in
//! the debug build of a plain `cargo test`), bounded by `NRI_SOAK_SECS`
//! seconds (default 600) so that it always ends; not reaching the count in
//! that time fails it. Speed is not asserted here (a busy machine would make
//! that flaky; `benches/` measures it), but the events/s and RSS samples are
//! printed (`-- --nocapture`).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::XorShift;
use crossbeam_channel::bounded;
use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::runtime::Runtime;
use nri::stub::{Context, HandlerResult, Plugin, Stub};

const STEP: Duration = Duration::from_secs(10);
const MIB: usize = 1 << 20;
/// Largest payload carried by one event.
const MAX_PAYLOAD: usize = 64 * 1024;
/// Events sent by default: measured on a 2-core VM, the debug build runs
/// about 13,000 events/s and the release build about 35,000.
const DEFAULT_EVENTS: u64 = if cfg!(debug_assertions) {
    150_000
} else {
    1_000_000
};
/// Allowed RSS growth between the first and the last quarter.
const RSS_SLACK: usize = 20 * MIB;

/// The state-change events the plugin handles.
const STATE_EVENTS: [Event; 4] = [
    Event::RUN_POD_SANDBOX,
    Event::START_CONTAINER,
    Event::POST_START_CONTAINER,
    Event::REMOVE_CONTAINER,
];

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn mib(b: usize) -> f64 {
    b as f64 / MIB as f64
}

/// Counts what it handles and checks that each payload arrived whole: the
/// container's name states the payload's length and its first byte.
#[derive(Default)]
struct Soaker {
    creates: AtomicU64,
    state_changes: AtomicU64,
    bytes: AtomicU64,
    corrupt: AtomicU64,
}

fn payload_of(c: &Container) -> Option<&String> {
    c.annotations.get("soak")
}

impl Soaker {
    fn check(&self, c: &Container) {
        let ok = match (payload_of(c), c.name.split_once(':')) {
            (Some(p), Some((len, first))) => {
                len.parse::<usize>().ok() == Some(p.len())
                    && p.as_bytes()
                        .first()
                        .map(|b| b.to_string())
                        .unwrap_or_default()
                        == first
            }
            _ => false,
        };
        if !ok {
            self.corrupt.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes.fetch_add(
            payload_of(c).map_or(0, |p| p.len()) as u64,
            Ordering::Relaxed,
        );
    }
}

impl Plugin for Soaker {
    fn events(&self) -> EventMask {
        STATE_EVENTS
            .iter()
            .fold(Event::CREATE_CONTAINER.mask(), |m, e| m | e.mask())
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, _pod: &PodSandbox) -> HandlerResult<()> {
        self.state_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn start_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.check(c);
        self.state_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn post_start_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.check(c);
        self.state_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn remove_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.check(c);
        self.state_changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        self.check(c);
        self.creates.fetch_add(1, Ordering::Relaxed);
        let mut a = ContainerAdjustment::new();
        a.add_env("CREATED", c.id.as_str());
        Ok((a, Vec::new()))
    }
}

/// Payload sizes spread over every order of magnitude from 1 byte to
/// 64 KiB (log-uniform), so small and large messages both get their share.
fn payload_len(rng: &mut XorShift) -> usize {
    let bits = rng.range(0, 16);
    let hi = (1usize << bits).min(MAX_PAYLOAD);
    rng.range(hi / 2, hi).max(1)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(default)
}

#[test]
fn a_long_stream_of_random_events_keeps_memory_flat() {
    let target = env_number("NRI_SOAK_EVENTS", DEFAULT_EVENTS);
    let run_for = Duration::from_secs(env_number("NRI_SOAK_SECS", 600));
    let plugin = Arc::new(Soaker::default());
    let updates_applied = Arc::new(AtomicUsize::new(0));
    let applied = updates_applied.clone();
    let rt = Runtime::builder()
        .name("soak")
        .on_update_containers(move |u| {
            applied.fetch_add(u.len(), Ordering::Relaxed);
            Vec::new()
        })
        .build();
    rt.set_state(vec![pod()], Vec::new());
    let (rt_end, stub_end) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let stub = Stub::builder(plugin.clone())
        .plugin_name("soak")
        .plugin_index("50")
        .connection(stub_end)
        .build()
        .expect("build");
    let s = stub.clone();
    let (started_tx, started) = bounded(1);
    thread::spawn(move || {
        let _ = started_tx.send(s.start());
    });
    let handle = rt.accept_stream(rt_end).expect("accept");
    started
        .recv_timeout(STEP)
        .expect("start returns")
        .expect("start");

    let stop = Arc::new(AtomicBool::new(false));

    // RSS sampler.
    let samples = Arc::new(Mutex::new(Vec::<(Duration, usize)>::new()));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((t0.elapsed(), rss_bytes()));
                thread::sleep(Duration::from_millis(250));
            }
        })
    };

    // Unsolicited updates from another thread, all the time.
    let updater = {
        let (stop, stub) = (stop.clone(), stub.clone());
        thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, Vec::new());
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut u = ContainerUpdate::for_container(format!("ctr-{}", i % 97));
                u.ignore_failure = i % 2 == 0;
                match stub.update_containers(vec![u]) {
                    Ok(f) if f.is_empty() => ok += 1,
                    Ok(f) => failed.push(format!("{} updates refused", f.len())),
                    Err(e) => failed.push(e.to_string()),
                }
                thread::sleep(Duration::from_millis(1));
            }
            (ok, failed)
        })
    };

    // The event stream.
    let mut rng = XorShift::new(0x50a6_2026);
    let pod = pod();
    let t0 = Instant::now();
    let (mut sent, mut creates, mut changes, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    let mut drained = 0usize;
    while sent < target && t0.elapsed() < run_for {
        // Check the clock every 64 events.
        for _ in 0..64 {
            let len = payload_len(&mut rng);
            let fill = b'a' + (rng.next() % 26) as u8;
            let c = container(sent, len, fill);
            bytes += len as u64;
            sent += 1;
            if rng.next() % 2 == 0 {
                creates += 1;
                match handle.create_container(&pod, &c) {
                    Ok(r) if r.adjust.env.first().is_some_and(|kv| kv.value == c.id) => {}
                    Ok(r) => errors.push(format!("event {sent}: wrong reply {:?}", r.adjust)),
                    Err(e) => errors.push(format!("event {sent}: {e}")),
                }
            } else {
                changes += 1;
                let ev = STATE_EVENTS[(rng.next() % STATE_EVENTS.len() as u64) as usize];
                let res = if ev == Event::RUN_POD_SANDBOX {
                    handle.run_pod_sandbox(&pod)
                } else {
                    handle.state_change(ev, &pod, Some(&c))
                };
                if let Err(e) = res {
                    errors.push(format!("event {sent} ({ev:?}): {e}"));
                }
            }
            if errors.len() > 10 {
                break;
            }
        }
        if errors.len() > 10 {
            break;
        }
        // A long-running runtime applies updates and forgets them. The
        // handle's record is bounded, but taking it here keeps the memory
        // samples about the plugin and lets the count be checked exactly.
        drained += handle.take_unsolicited_updates().len();
    }
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (updates_ok, update_failures) = updater.join().expect("updater");
    sampler.join().expect("sampler");
    stub.stop();
    assert!(handle.wait_closed(STEP));
    drained += handle.take_unsolicited_updates().len();

    let rate = sent as f64 / elapsed.as_secs_f64();
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let q = (samples.len() / 4).max(1);
    let first_max = samples[..q].iter().map(|s| s.1).max().unwrap_or(0);
    let last_max = samples[samples.len() - q..]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let shown: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 12).max(1))
        .map(|(t, r)| format!("{:.0}s:{:.1}", t.as_secs_f64(), mib(*r)))
        .collect();
    eprintln!(
        "soak: {sent} events ({creates} CreateContainer, {changes} StateChange) in {elapsed:.1?}: \
         {rate:.0} events/s, {:.1} MiB of payload (mean {:.0} B); {updates_ok} \
         update_containers calls ({} applied by the runtime, {} failed)",
        mib(bytes as usize),
        bytes as f64 / sent.max(1) as f64,
        updates_applied.load(Ordering::Relaxed),
        update_failures.len()
    );
    eprintln!(
        "soak: RSS MiB {} | first-quarter max {:.1}, last-quarter max {:.1} ({} samples)",
        shown.join(" "),
        mib(first_max),
        mib(last_max),
        samples.len()
    );

    assert!(errors.is_empty(), "events failed:\n{}", errors.join("\n"));
    assert_eq!(
        plugin.corrupt.load(Ordering::Relaxed),
        0,
        "corrupted payloads"
    );
    assert_eq!(plugin.creates.load(Ordering::Relaxed), creates);
    assert_eq!(plugin.state_changes.load(Ordering::Relaxed), changes);
    assert!(
        update_failures.is_empty(),
        "update_containers failed: {:?}",
        &update_failures[..update_failures.len().min(5)]
    );
    assert!(updates_ok > 0, "no update_containers call got through");
    assert_eq!(
        drained,
        updates_applied.load(Ordering::Relaxed),
        "every update the runtime applied is recorded once by the handle"
    );
    assert!(
        sent >= target,
        "only {sent} of {target} events within {run_for:?} ({rate:.0}/s)"
    );
    assert!(
        last_max <= first_max + RSS_SLACK,
        "RSS grew from {:.1} MiB (first quarter max) to {:.1} MiB (last quarter max)",
        mib(first_max),
        mib(last_max)
    );
}

fn pod() -> PodSandbox {
    PodSandbox {
        id: "soak-pod".into(),
        name: "soak".into(),
        namespace: "default".into(),
        ..Default::default()
    }
}

/// A container whose annotation carries `len` bytes of `fill`; its name
/// says how long the payload is and what its first byte is.
fn container(n: u64, len: usize, fill: u8) -> Container {
    let mut c = Container {
        id: format!("ctr-{n}"),
        pod_sandbox_id: "soak-pod".into(),
        name: format!("{len}:{fill}"),
        ..Default::default()
    };
    c.annotations.insert(
        "soak".into(),
        String::from_utf8(vec![fill; len]).unwrap_or_default(),
    );
    c
}
