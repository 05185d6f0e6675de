//! One plugin of a `PluginSet` misbehaving must not hold up the others
//! beyond its own request timeout: a plugin that stops answering, one its
//! failure policy keeps through every timeout, and callers racing for one
//! plugin.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::common::plugin::{Spec, TestPlugin};
use crate::runtime_support::*;
use std::io::Write;

use nri::api::{
    ConfigureResponse, ContainerAdjustment, ContainerUpdate, CreateContainerResponse, Event,
    EventMask, FailurePolicy, UpdateContainersRequest,
};
use nri::runtime::{PluginHandle, PluginSet, Runtime};
use nri::Error;
use protobuf::{Message, MessageField};

/// A plugin that annotates created containers with `from-<name>`.
fn annotating(name: &str, idx: &str) -> Spec {
    let key = format!("from-{name}");
    Spec::new(name, idx, EventMask::ALL).on_create(move |_, req| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert(key.clone(), req.container.id.clone());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    })
}

/// A plugin subscribed to CreateContainer only, whose handler does not
/// answer until released (the sender dropped) or [`STEP`] passed; counts
/// its calls. (Each unanswered call holds one of the test plugin's three
/// workers: two at a time at most, so that the third reads.)
fn silent(name: &str, idx: &str) -> (Spec, Sender<()>, Arc<AtomicUsize>) {
    let (release, wait): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(0);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let spec = Spec::new(name, idx, Event::CREATE_CONTAINER.into()).on_create(move |_, _| {
        c.fetch_add(1, Ordering::SeqCst);
        let _ = wait.recv_timeout(STEP);
        Ok(CreateContainerResponse::new())
    });
    (spec, release, calls)
}

fn accept(rt: &Runtime, spec: Spec) -> (PluginHandle, TestPlugin) {
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let plugin = TestPlugin::start(plugin_end, spec);
    (rt.accept_stream(rt_end).expect("registered"), plugin)
}

fn annotations(reply: &CreateContainerResponse) -> Vec<String> {
    let mut keys: Vec<String> = reply.adjust.annotations.keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn a_plugin_that_stops_answering_costs_the_others_one_request_timeout_once() {
    let timeout = Duration::from_millis(500);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let set = PluginSet::new(&rt);
    let (a, _pa) = accept(&rt, annotating("a", "10"));
    let (spec, release, calls) = silent("silent", "20");
    let (s, _ps) = accept(&rt, spec);
    let (c, _pc) = accept(&rt, annotating("c", "30"));
    for h in [a, s, c] {
        set.add(h).expect("added");
    }

    let started = Instant::now();
    let reply = set
        .create_container(&pod("p"), &ctr("c1"))
        .expect("the creation proceeds without the silent plugin");
    let took = started.elapsed();
    println!(
        "measured: PluginSet CreateContainer with a {timeout:?} request timeout, the middle of \
         three plugins silent: {took:?}"
    );
    assert_eq!(annotations(&reply), ["from-a", "from-c"]);
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert_eq!(
        set.names(),
        ["10-a", "30-c"],
        "the silent plugin is dropped"
    );

    // It costs nothing more.
    let started = Instant::now();
    let reply = set
        .create_container(&pod("p"), &ctr("c2"))
        .expect("created");
    assert_eq!(annotations(&reply), ["from-a", "from-c"]);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(release);
}

#[test]
fn a_silent_plugin_its_policy_keeps_costs_each_event_its_timeout_and_no_more() {
    let timeout = Duration::from_millis(400);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let set = PluginSet::new(&rt);
    let (spec, release, calls) = silent("kept", "10");
    let (k, _pk) = accept(&rt, spec.policy(false, true));
    let (b, _pb) = accept(&rt, annotating("b", "20"));
    set.add(k).expect("added");
    set.add(b).expect("added");
    for i in 0..2 {
        let started = Instant::now();
        let reply = set
            .create_container(&pod("p"), &ctr(&format!("c{i}")))
            .expect("created without the silent plugin's answer");
        let took = started.elapsed();
        assert_eq!(annotations(&reply), ["from-b"]);
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(400),
            "event {i}: {took:?}"
        );
    }
    assert_eq!(
        set.names(),
        ["10-kept", "20-b"],
        "kept by its failure policy"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    drop(release);
}

#[test]
fn callers_racing_for_one_plugin_each_wait_at_most_their_own_timeout() {
    let timeout = Duration::from_millis(400);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let (spec, release, calls) = silent("slow", "10");
    let (h, _p) = accept(&rt, spec.policy(false, true));
    let h = Arc::new(h);
    let racing: Vec<_> = (0..3)
        .map(|i| {
            let h = h.clone();
            thread::spawn(move || {
                let started = Instant::now();
                let r = h.create_container(&pod("p"), &ctr(&format!("c{i}")));
                (r.map(|_| ()), started.elapsed())
            })
        })
        .collect();
    for t in racing {
        let (r, took) = t.join().expect("caller");
        assert!(matches!(r, Err(Error::DeadlineExceeded { .. })), "{r:?}");
        // Before, the third waited for the two ahead of it: three timeouts.
        assert!(took < timeout + Duration::from_millis(300), "{took:?}");
    }
    assert!(h.is_connected(), "kept by its failure policy");
    assert!(calls.load(Ordering::SeqCst) >= 1);
    drop(release);
}

/// Registers a plugin that then floods UpdateContainers without ever
/// reading a reply; `keep` asks the runtime to keep it through timeouts.
/// Returns it and the flooding thread.
fn flooding(rt: &Runtime, idx: &str, keep: bool) -> (PluginHandle, thread::JoinHandle<()>) {
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let rt2 = rt.clone();
    let accepted = thread::spawn(move || rt2.accept_stream(rt_end));
    let mut plugin = ScriptedPlugin::new(plugin_end);
    plugin.send_register("flood", idx, Duration::ZERO);
    plugin.serve_setup(&ConfigureResponse {
        events: EventMask::ALL.bits(),
        failure_policy: MessageField::from_option(keep.then(|| FailurePolicy {
            keep_connected: true,
            ..Default::default()
        })),
        ..Default::default()
    });
    let handle = accepted.join().expect("accept").expect("accepted");
    let update = UpdateContainersRequest {
        update: vec![ContainerUpdate::for_container("c".repeat(512))],
        ..Default::default()
    };
    let flood = thread::spawn(move || {
        let mut s = plugin.peer.stream.try_clone().expect("clone");
        let _ = s.set_write_timeout(Some(STEP));
        for i in 0..20_000u32 {
            let frame = runtime_request(
                1001 + 2 * i,
                "UpdateContainers",
                &update.write_to_bytes().expect("encoding"),
            );
            if s.write_all(&frame).is_err() {
                return;
            }
        }
        // Holds the connection open, unread, until the runtime closes it.
        let _ = closed_by_peer(&mut plugin.peer.stream, STEP);
    });
    (handle, flood)
}

#[test]
fn a_plugin_that_floods_and_stops_reading_holds_the_others_up_at_most_its_timeout() {
    for keep in [false, true] {
        let timeout = Duration::from_secs(1);
        let rt = Runtime::builder().request_timeout(timeout).build();
        let set = PluginSet::new(&rt);
        let (a, _pa) = accept(&rt, annotating("a", "10"));
        let (f, flood) = flooding(&rt, "20", keep);
        let (c, _pc) = accept(&rt, annotating("c", "30"));
        for h in [a, f, c] {
            set.add(h).expect("added");
        }
        thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let reply = set
            .create_container(&pod("p"), &ctr("c1"))
            .expect("the creation proceeds without the flooding plugin");
        let took = started.elapsed();
        println!(
            "measured: PluginSet CreateContainer with a {timeout:?} request timeout, the middle \
             of three plugins flooding UpdateContainers and not reading (keep_connected: \
             {keep}): {took:?}"
        );
        assert_eq!(annotations(&reply), ["from-a", "from-c"]);
        assert!(took < timeout + Duration::from_millis(500), "{took:?}");
        // Kept or not, a plugin that stopped reading is cut off by the
        // write timeout (the request timeout), and costs nothing more.
        let start = Instant::now();
        while set.get("20-flood").is_some_and(|h| h.is_connected()) {
            assert!(
                start.elapsed() < STEP,
                "the flooding plugin is still connected"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let reply = set
            .create_container(&pod("p"), &ctr("c2"))
            .expect("created");
        assert_eq!(annotations(&reply), ["from-a", "from-c"]);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(set.names(), ["10-a", "30-c"]);
        flood.join().expect("flooding thread");
    }
}
