//! Plugins that connect and do not register: idle connections, refused
//! ones held open, floods of connections over the cap, connections opened
//! and closed in a loop, registrations dripped byte by byte or stalled.
//! A real plugin must register within its own timeout meanwhile, and the
//! runtime's threads and descriptors must come back to where they were.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::plugin::{Spec, TestPlugin};
use crate::runtime_support::*;
use nri::api::{ConfigureResponse, EventMask};
use nri::runtime::{PluginHandle, PluginListener, Runtime};
use nri::ttrpc::Code;
use nri::Error;

/// Accepts until a plugin comes out, skipping the errors of connections
/// that did not register; returns it with the errors seen.
fn accept_plugin(listener: &PluginListener) -> (PluginHandle, Vec<Error>) {
    let mut errors = Vec::new();
    loop {
        match listener.accept_timeout(STEP) {
            Ok(h) => return (h, errors),
            Err(e @ Error::DeadlineExceeded { .. }) if e.to_string().contains("accept") => {
                panic!(
                    "no plugin registered within {STEP:?} (after {} errors)",
                    errors.len()
                )
            }
            Err(e) => errors.push(e),
        }
    }
}

#[test]
fn five_hundred_idle_or_refused_connections_cost_a_descriptor_each_and_a_plugin_registers_meanwhile(
) {
    if in_own_process(
        "runtime_connections::five_hundred_idle_or_refused_connections_cost_a_descriptor_each_and_a_plugin_registers_meanwhile",
    ) {
        return;
    }
    let dir = temp_dir("five-hundred");
    let rt = Runtime::builder()
        .registration_timeout(Duration::from_secs(5))
        .request_timeout(STEP)
        .build();
    let listener = rt.listen(dir.join("nri.sock")).expect("listen");
    let (threads0, fds0) = (threads(), fds());

    // 250 idle connections and 250 refused ones (bad index), all held.
    let mut idle = Vec::new();
    let mut refused = Vec::new();
    for i in 0..500 {
        let mut s = UnixStream::connect(listener.path()).expect("dial");
        if i % 2 == 1 {
            s.write_all(&register_bytes(1, &format!("bad-{i}"), "7"))
                .expect("send a bad registration");
            refused.push(ScriptedPlugin::new(s));
        } else {
            idle.push(s);
        }
    }
    for p in &mut refused {
        let (_, code, message) = p.next_reply("the refusal");
        assert_eq!(code, Code::Unknown, "{message}");
    }
    let start = Instant::now();
    while listener.pending() < idle.len() {
        assert!(
            start.elapsed() < STEP,
            "only {} pending",
            listener.pending()
        );
        thread::sleep(Duration::from_millis(5));
    }
    let (threads1, fds1) = (threads(), fds());
    println!(
        "measured: 250 idle + 250 refused connections held: threads {threads0} -> {threads1}, \
         descriptors {fds0} -> {fds1} (500 of them the test's own ends)"
    );
    // One watcher thread for the refused ones; no thread per connection.
    assert!(threads1 <= threads0 + 2, "threads {threads0} -> {threads1}");
    // One descriptor per connection on the runtime's side.
    assert!(fds1 <= fds0 + 2 * 500 + 4, "descriptors {fds0} -> {fds1}");

    // A real plugin registers meanwhile, within its own timeout. (A
    // scripted one: the test plugin's connection holds itself.)
    let started = Instant::now();
    let path = listener.path().to_path_buf();
    let plugin = thread::spawn(move || {
        let mut p = ScriptedPlugin::dial(&path);
        p.register("real", "10", EventMask::ALL);
        p
    });
    let (handle, errors) = accept_plugin(&listener);
    let took = started.elapsed();
    println!("measured: a plugin registered among 500 idle or refused connections in {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let plugin = plugin.join().expect("the plugin was set up");
    assert_eq!(handle.name(), "10-real");
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, Error::RegistrationRefused { .. })),
        "{errors:?}"
    );
    assert!(!errors.is_empty() && errors.len() <= 64, "{}", errors.len());

    // Everything goes back once the peers close.
    drop(idle);
    drop(refused);
    drop(handle);
    drop(plugin);
    let threads2 = settles(STEP, threads0, threads);
    let fds2 = settles(STEP, fds0, fds);
    println!("measured: after the peers closed: threads {threads2}, descriptors {fds2}");
    assert_eq!(threads2, threads0, "threads left behind");
    assert_eq!(fds2, fds0, "descriptors left behind");
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn over_the_cap_a_new_connection_is_closed_at_once_and_refused_ones_make_room() {
    let dir = temp_dir("cap");
    let rt = Runtime::builder()
        .registration_timeout(STEP)
        .max_unregistered_connections(3)
        .build();
    let listener = rt.listen(dir.join("nri.sock")).expect("listen");
    let mut idle: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(listener.path()).expect("dial"))
        .collect();
    let start = Instant::now();
    while listener.pending() < 3 {
        assert!(start.elapsed() < STEP);
        thread::sleep(Duration::from_millis(2));
    }
    let mut over = UnixStream::connect(listener.path()).expect("dial");
    let start = Instant::now();
    assert!(
        closed_by_peer(&mut over, Duration::from_secs(2)),
        "the connection over the cap was not closed"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(listener.pending(), 3);

    // One idle connection goes; a refused plugin takes its place and is
    // held open.
    idle.pop();
    let start = Instant::now();
    while listener.pending() > 2 {
        assert!(start.elapsed() < STEP);
        thread::sleep(Duration::from_millis(2));
    }
    let mut bad = ScriptedPlugin::dial(listener.path());
    bad.send_register("bad", "x", Duration::ZERO);
    assert_eq!(bad.next_reply("the refusal").1, Code::Unknown);
    // The idle connection that went is reported first.
    match listener.accept_timeout(STEP) {
        Err(Error::ConnectionClosed(reason)) => assert!(reason.contains("before registration")),
        other => panic!("{other:?}"),
    }
    match listener.accept_timeout(STEP) {
        Err(Error::RegistrationRefused { plugin, .. }) => assert_eq!(plugin, "x-bad"),
        other => panic!("{other:?}"),
    }
    assert!(
        !bad.closed_within(Duration::from_millis(50)),
        "refused connection closed"
    );
    // The cap is full again (2 waiting, 1 refused): a newcomer closes the
    // refused connection instead of being turned away.
    let newcomer = ScriptedPlugin::dial(listener.path());
    assert!(
        bad.closed_within(STEP),
        "the refused connection was not closed to make room"
    );
    let start = Instant::now();
    while listener.pending() < 3 {
        assert!(start.elapsed() < STEP);
        thread::sleep(Duration::from_millis(2));
    }
    drop(newcomer);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connections_opened_and_closed_in_a_loop_leave_nothing_behind() {
    if in_own_process(
        "runtime_connections::connections_opened_and_closed_in_a_loop_leave_nothing_behind",
    ) {
        return;
    }
    let dir = temp_dir("churn");
    let rt = Runtime::builder().registration_timeout(STEP).build();
    let listener = rt.listen(dir.join("nri.sock")).expect("listen");
    let (threads0, fds0) = (threads(), fds());
    let started = Instant::now();
    for i in 0..2000u32 {
        let mut s = UnixStream::connect(listener.path()).expect("dial");
        match i % 4 {
            0 => {}
            // Half a trunk header.
            1 => send_quietly(&mut s, &[0, 0, 0]),
            // A whole refused registration.
            2 => send_quietly(&mut s, &register_bytes(1, "", "10")),
            // A trunk frame over the limit.
            _ => send_quietly(&mut s, &[0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff]),
        }
    }
    let churn = started.elapsed();
    let fds1 = settles(STEP, fds0, fds);
    let threads1 = settles(STEP, threads0, threads);
    println!(
        "measured: 2000 connections opened and closed in {churn:?}: descriptors {fds0} -> \
         {fds1}, threads {threads0} -> {threads1}"
    );
    assert_eq!(fds1, fds0, "descriptors left behind");
    assert_eq!(threads1, threads0, "threads left behind");
    assert_eq!(listener.pending(), 0);
    // The listener still serves a plugin at once.
    let started = Instant::now();
    let stream = UnixStream::connect(listener.path()).expect("dial");
    let plugin = TestPlugin::start(stream, Spec::new("after", "10", EventMask::ALL));
    let (handle, errors) = accept_plugin(&listener);
    println!(
        "measured: then a plugin registered in {:?} ({} queued errors reported first)",
        started.elapsed(),
        errors.len()
    );
    assert!(errors.len() <= 64);
    assert_eq!(handle.name(), "10-after");
    drop(plugin);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dripped_registration_works_and_a_stalled_one_holds_up_nobody() {
    let dir = temp_dir("drip");
    let rt = Runtime::builder()
        .registration_timeout(Duration::from_millis(1500))
        .build();
    let listener = rt.listen(dir.join("nri.sock")).expect("listen");
    // Stalls in the middle of its request.
    let mut stalled = UnixStream::connect(listener.path()).expect("dial");
    stalled
        .write_all(&register_bytes(1, "stalled", "30")[..20])
        .expect("send");
    // Drips its registration a byte per millisecond.
    let path = listener.path().to_path_buf();
    let dripping = thread::spawn(move || {
        let mut p = ScriptedPlugin::dial(&path);
        p.send_register("drip", "20", Duration::from_millis(1));
        p.serve_setup(&ConfigureResponse {
            events: EventMask::ALL.bits(),
            ..Default::default()
        });
        p
    });
    // A plugin registering at once is not held up by either.
    let started = Instant::now();
    let stream = UnixStream::connect(listener.path()).expect("dial");
    let quick = TestPlugin::start(stream, Spec::new("quick", "10", EventMask::ALL));
    let first = listener.accept_timeout(STEP).expect("the quick plugin");
    assert_eq!(first.name(), "10-quick");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let second = listener.accept_timeout(STEP).expect("the dripping plugin");
    assert_eq!(second.name(), "20-drip");
    let _drip = dripping.join().expect("dripping plugin");
    // The stalled one is closed at its registration timeout.
    match listener.accept_timeout(STEP) {
        Err(Error::DeadlineExceeded {
            method, timeout, ..
        }) => {
            assert_eq!(method, "RegisterPlugin");
            assert_eq!(timeout, Duration::from_millis(1500));
        }
        other => panic!("{other:?}"),
    }
    assert!(closed_by_peer(&mut stalled, STEP));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(quick);
    let _ = std::fs::remove_dir_all(&dir);
}
