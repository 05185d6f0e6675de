//! The deadline guard against far deadlines and late handlers: it forgets
//! a request once it is answered, answers only for guarded methods, and a
//! late handler's after-reply actions run exactly once.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::wire_support::*;
use crate::common::{request_envelope, test_services, ttrpc_frame, SVC};
use nri::api::{Event, EventMask};
use nri::runtime::Runtime;
use nri::stub::{Context, DeadlineGuard, HandlerResult, LifecycleRequest, Plugin, Stub};
use nri::ttrpc::codec::TYPE_REQUEST;
use nri::ttrpc::{Code, ConnectionOptions, Framing, GuardReply, Services};

fn guarded(name: &str, margin: Duration) -> ConnectionOptions {
    ConnectionOptions {
        name: name.into(),
        deadline_guard: Some(DeadlineGuard {
            margin,
            reply: GuardReply::Empty,
        }),
        ..Default::default()
    }
}

#[test]
fn far_deadlines_under_the_guard_keep_memory_flat() {
    const NAME: &str = "wire_guard::far_deadlines_under_the_guard_keep_memory_flat";
    if !in_own_process(NAME) {
        return;
    }
    let total: u32 = std::env::var("NRI_WIRE_GUARD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    const BATCH: u32 = 64;
    let mut s = serve(
        Framing::Raw,
        guarded("wG", Duration::from_millis(250)),
        test_services(),
    );
    // `Sleep` is guarded; 0 ms; timeout_nano = i64::MAX (292 years).
    let env = request_envelope(SVC, "Sleep", &0u64.to_be_bytes(), i64::MAX);
    let mut next = 1u32;
    let mut run = |s: &mut Served, n: u32| {
        for _ in 0..n / BATCH {
            let mut wire = Vec::new();
            for _ in 0..BATCH {
                wire.extend(ttrpc_frame(next, TYPE_REQUEST, 0, &env));
                next += 2;
            }
            s.peer.send_bytes(&wire);
            for (_, r) in s.peer.expect_replies(BATCH as usize, "Sleep replies") {
                assert_eq!(r.code, Code::Ok);
                assert_eq!(r.payload.len(), 8, "the handler's own reply");
            }
            // The raw peer's own record of what it read would grow.
            s.peer.messages.clear();
            s.peer.frames.clear();
        }
    };
    // Warm up: buffers, the allocator's arenas, the guard's table.
    run(&mut s, total / 10);
    let before = rss_kib();
    let switches_before = thread_switches("wG-guard").expect("the guard's thread");
    let started = Instant::now();
    run(&mut s, total - total / 10);
    let took = started.elapsed();
    let after = rss_kib();
    let grew = after.saturating_sub(before);
    let woken = thread_switches("wG-guard").expect("the guard's thread") - switches_before;
    println!(
        "measured: {} requests with far deadlines under the guard in {took:?}: RSS {before} KiB -> {after} KiB (+{grew} KiB); the guard's thread ran {woken} times",
        total - total / 10
    );
    // Handlers in time cost the guard's thread no wake-up: it sleeps until
    // the earliest deadline, 292 years away.
    assert!(woken < 10, "the guard's thread was woken {woken} times");
    // An entry kept per request until its deadline cost about 80 bytes
    // each: 7 MiB for 90,000.
    assert!(
        grew * 1024 < u64::from(total) * 20,
        "RSS grew by {grew} KiB over {total} requests"
    );
    s.conn.close();
}

/// A plugin whose Configure takes 900 ms and subscribes to CreateContainer
/// only.
struct SlowConfigure;

impl Plugin for SlowConfigure {
    fn events(&self) -> EventMask {
        EventMask::ALL
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        _config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        thread::sleep(Duration::from_millis(900));
        Ok(Some(Event::CREATE_CONTAINER.into()))
    }
}

#[test]
fn a_late_configure_is_answered_by_its_handler_and_never_by_the_guard() {
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    let stub = Stub::builder(SlowConfigure)
        .plugin_name("late-configure")
        .plugin_index("10")
        .connection(stub_end)
        .deadline_guard(DeadlineGuard::default())
        .build()
        .expect("stub");
    let rt = Runtime::builder()
        .request_timeout(Duration::from_secs(1))
        .registration_timeout(STEP)
        .build();
    let s = stub.clone();
    let started = thread::spawn(move || s.start());
    let handle = rt
        .accept_stream(rt_end)
        .expect("the runtime configures the plugin");
    // The guard (250 ms margin) would have answered at 750 ms with an
    // empty reply: events = 0, which the runtime reads as "every event".
    assert_eq!(handle.events(), EventMask::from(Event::CREATE_CONTAINER));
    started
        .join()
        .expect("start")
        .expect("the plugin is configured and started");
    assert_eq!(
        stub.subscribed_events(),
        EventMask::from(Event::CREATE_CONTAINER)
    );
    let stats = stub.stats();
    let configure = stats
        .lifecycle(LifecycleRequest::Configure)
        .expect("Configure is counted");
    assert_eq!(configure.calls, 1);
    assert_eq!(
        configure.guard_answers, 0,
        "not counted as answered by the guard"
    );
    stub.stop();
    assert!(handle.wait_closed(STEP));
}

/// Services with `Late` (guarded) and `LateUnguarded`: each sleeps 500 ms,
/// queues an after-reply action that counts its runs and notes when it
/// ran, and returns `done`.
fn late_services(runs: Arc<AtomicUsize>, ran_at: Arc<Mutex<Vec<Instant>>>) -> Arc<Services> {
    let mut s = Services::new();
    for method in ["Late", "LateUnguarded"] {
        let (runs, ran_at) = (runs.clone(), ran_at.clone());
        s.add_method(
            SVC,
            method,
            Box::new(move |ctx, _| {
                thread::sleep(Duration::from_millis(500));
                let (runs, ran_at) = (runs.clone(), ran_at.clone());
                ctx.after_reply(move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    ran_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Instant::now());
                });
                Ok(b"done".to_vec())
            }),
        );
    }
    assert!(s.set_guarded(SVC, "Late", true));
    assert!(!s.set_guarded(SVC, "NoSuchMethod", true));
    Arc::new(s)
}

#[test]
fn a_late_guarded_handler_runs_its_after_reply_actions_once_after_the_guard_reply() {
    let runs = Arc::new(AtomicUsize::new(0));
    let ran_at = Arc::new(Mutex::new(Vec::new()));
    let mut s = serve(
        Framing::Mux,
        guarded("wL", Duration::from_millis(100)),
        late_services(runs.clone(), ran_at.clone()),
    );
    // Deadline at 400 ms, the guard at 300 ms, the handler done at 500 ms.
    let sent = Instant::now();
    let env = request_envelope(SVC, "Late", b"", 400_000_000);
    s.peer.send_message(&ttrpc_frame(1, TYPE_REQUEST, 0, &env));
    let (id, r) = s.peer.expect_reply("the guard's reply");
    let answered = sent.elapsed();
    assert_eq!((id, r.code, r.payload.len()), (1, Code::Ok, 0));
    assert!(answered >= Duration::from_millis(250), "{answered:?}");
    assert!(answered < Duration::from_millis(400), "{answered:?}");
    s.peer
        .expect_silence(Duration::from_millis(700), "the late result is dropped");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "after-reply actions run once"
    );
    let at = ran_at.lock().unwrap_or_else(|e| e.into_inner())[0];
    assert!(
        at.duration_since(sent) >= Duration::from_millis(500),
        "they run once the handler returned"
    );

    // The same timing on a method not registered as guarded: no made-up
    // reply; the handler's own comes, late.
    let sent = Instant::now();
    let env = request_envelope(SVC, "LateUnguarded", b"", 400_000_000);
    s.peer.send_message(&ttrpc_frame(3, TYPE_REQUEST, 0, &env));
    let (id, r) = s.peer.expect_reply("the handler's reply");
    let answered = sent.elapsed();
    assert_eq!(
        (id, r.code, r.payload.as_slice()),
        (3, Code::Ok, &b"done"[..])
    );
    assert!(answered >= Duration::from_millis(500), "{answered:?}");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    s.conn.close();
    assert_eq!(threads_settle("wL-", 0, STEP), 0, "threads left behind");
}
