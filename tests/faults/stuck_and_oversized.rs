//! A handler that never returns, a launched plugin losing its runtime,
//! oversized messages in every direction and updates blocked on a runtime
//! that stopped reading.

use super::*;

#[test]
fn never_returning_handler_without_guard_runtime_times_out_and_stop_is_bounded() {
    let _s = serial();
    let h = Harness::new();
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let timeout = Duration::from_millis(300);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let handle = rt.accept_stream(rt_end).expect("accept");
    recv_within(&started, STEP, "start").0.expect("start");
    h.plugin.block_create.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let err = handle
        .create_container(&pod("p"), &ctr("stuck"))
        .expect_err("the runtime's call times out");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
    assert!(t0.elapsed() < timeout + PROMPT, "{:?}", t0.elapsed());
    // Like the reference runtime, it drops the plugin and closes.
    assert!(!handle.is_connected());
    assert!(handle.wait_closed(STEP));
    assert!(
        handle
            .drop_reason()
            .is_some_and(|r| r.contains("CreateContainer")),
        "{:?}",
        handle.drop_reason()
    );
    // The stub: stop() gives up on the stuck worker within its bound and
    // runs the on-close callback once; the stuck thread is left behind
    // until the handler returns.
    let stub = h.stub.clone();
    let ((), took) = recv_within(&spawn_timed(move || stub.stop()), STOP_BOUND + STEP, "stop");
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert_eq!(h.closes(), 1);
    assert!(!h.stub.is_connected());
    assert_eq!(
        library_threads_settle_to(h.baseline + 1, STEP),
        h.baseline + 1,
        "only the stuck worker is left"
    );
    // The stub starts again while the old handler is still stuck.
    h.plugin.block_create.store(false, Ordering::SeqCst);
    let closes = h.closes();
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let rt = Runtime::new();
    let handle = rt.accept_stream(rt_end).expect("accept again");
    recv_within(&started, STEP, "start again")
        .0
        .expect("start again");
    handle
        .create_container(&pod("p"), &ctr("fresh"))
        .expect("served while the old handler is stuck");
    // The stuck handler returns at last: its result goes nowhere.
    h.plugin.gate.open();
    h.stub.stop();
    drop(handle);
    let left = library_threads_settle_to(h.baseline, STEP);
    assert_eq!(
        left, h.baseline,
        "the stuck worker exits once its handler returns"
    );
    assert_eq!(h.closes(), closes + 1);
}

#[test]
fn never_returning_handler_with_guard_runtime_gets_an_empty_reply_and_stop_is_bounded() {
    let _s = serial();
    let h = Harness::with(|b| b.deadline_guard(DeadlineGuard::default()));
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    // The guard answers 250 ms before this deadline.
    let timeout = Duration::from_secs(1);
    let rt = Runtime::builder().request_timeout(timeout).build();
    let handle = rt.accept_stream(rt_end).expect("accept");
    recv_within(&started, STEP, "start").0.expect("start");
    h.plugin.block_create.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let reply = handle
        .create_container(&pod("p"), &ctr("stuck"))
        .expect("the guard answers before the deadline");
    assert!(t0.elapsed() < timeout, "{:?}", t0.elapsed());
    assert!(
        reply.adjust.env.is_empty(),
        "the guard's reply changes nothing"
    );
    assert!(handle.is_connected(), "the runtime keeps the plugin");
    // Other requests are still served by the other workers.
    h.plugin.block_create.store(false, Ordering::SeqCst);
    let reply = handle
        .create_container(&pod("p"), &ctr("next"))
        .expect("served next to the stuck handler");
    assert_eq!(reply.adjust.env[0].value, "next");
    let stub = h.stub.clone();
    let ((), took) = recv_within(&spawn_timed(move || stub.stop()), STOP_BOUND + STEP, "stop");
    assert!(took <= STOP_BOUND, "stop took {took:?}");
    assert!(handle.wait_closed(STEP), "the runtime sees the stop");
    assert_eq!(h.closes(), 1);
    h.plugin.gate.open();
    drop(handle);
    assert_eq!(library_threads_settle_to(h.baseline, STEP), h.baseline);
    assert_eq!(h.closes(), 1, "on-close did not run a second time");
}

// ---------------------------------------------------------------------------
// A launched plugin losing its runtime
// ---------------------------------------------------------------------------

#[test]
fn launched_plugin_losing_its_runtime_ends_supervised_run_and_cannot_reconnect() {
    let _s = serial();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let fd = plugin_end.into_raw_fd();
    // Serialized with every other test of this file, which are the only
    // readers of the environment here.
    std::env::set_var(nri::api::PLUGIN_SOCKET_ENV_VAR, fd.to_string());
    let baseline = library_threads_settle_to(0, STEP);
    let closes = Arc::new(AtomicUsize::new(0));
    let c = closes.clone();
    let stub = Stub::builder(FaultPlugin::new())
        .plugin_name("launched")
        .plugin_index("20")
        .on_close(move || {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("build");
    let s = stub.clone();
    let sup = spawn_timed(move || {
        s.run_supervised(nri::stub::Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_attempts: Some(3),
        })
    });
    let handle = Runtime::new().accept_stream(rt_end).expect("accept");
    handle
        .create_container(&pod("p"), &ctr("c"))
        .expect("served");
    handle.close();
    let (res, _) = recv_within(&sup, STEP, "run_supervised");
    std::env::remove_var(nri::api::PLUGIN_SOCKET_ENV_VAR);
    assert!(
        res.is_ok(),
        "a launched plugin's supervised run ends: {res:?}"
    );
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(library_threads_settle_to(baseline, STEP), baseline);
    // Its inherited socket is gone: start() says so instead of dialing.
    std::env::set_var(nri::api::PLUGIN_SOCKET_ENV_VAR, fd.to_string());
    let res = stub.start();
    std::env::remove_var(nri::api::PLUGIN_SOCKET_ENV_VAR);
    match res {
        Err(Error::Config(m)) => assert!(m.contains("cannot reconnect"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Oversized messages, in every direction, through the real runtime side
// ---------------------------------------------------------------------------

#[test]
fn oversized_messages_fail_only_their_own_request_in_every_direction() {
    let _s = serial();
    let h = Harness::new();
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let rt = Runtime::new();
    let handle = rt.accept_stream(rt_end).expect("accept");
    recv_within(&started, STEP, "start").0.expect("start");

    // Plugin -> runtime reply over 4 MiB: the plugin sends RESOURCE_EXHAUSTED
    // instead; the runtime fails that CreateContainer and keeps the plugin.
    h.plugin.big_reply.store((4 << 20) + 1, Ordering::SeqCst);
    let err = handle
        .create_container(&pod("p"), &ctr("too-big-reply"))
        .expect_err("an oversized reply cannot be sent");
    assert!(
        matches!(
            &err,
            Error::Status {
                code: Code::ResourceExhausted,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(handle.is_connected(), "the runtime keeps the plugin");
    h.plugin.big_reply.store(0, Ordering::SeqCst);

    // Runtime -> plugin request over 4 MiB: refused before sending, by the
    // runtime's own client; nothing reaches the plugin; the plugin stays.
    let mut huge = ctr("too-big-request");
    huge.annotations
        .insert("big".into(), "y".repeat((4 << 20) + 1));
    let err = handle
        .create_container(&pod("p"), &huge)
        .expect_err("an oversized request cannot be sent");
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
    assert!(handle.is_connected());

    // Plugin -> runtime call over 4 MiB (update_containers): refused locally.
    let t0 = Instant::now();
    let err = h
        .stub
        .update_containers(vec![ContainerUpdate::for_container(
            "z".repeat((4 << 20) + 1),
        )])
        .expect_err("an oversized update cannot be sent");
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
    assert!(t0.elapsed() < PROMPT);
    assert!(h.stub.is_connected());

    // Everything still works in both directions.
    let reply = handle
        .create_container(&pod("p"), &ctr("normal"))
        .expect("next request served");
    assert_eq!(reply.adjust.env[0].value, "normal");
    let failed = h
        .stub
        .update_containers(vec![ContainerUpdate::for_container("c1")])
        .expect("next update served");
    assert!(failed.is_empty());
    assert_eq!(handle.unsolicited_updates().len(), 1);
    h.stub.stop();
    assert!(handle.wait_closed(STEP));
    drop(handle);
    h.assert_closed_cleanly(1, "after oversized messages");
}

// ---------------------------------------------------------------------------
// update_containers to a runtime that stopped reading
// ---------------------------------------------------------------------------

type UpdateResult = nri::Result<Vec<ContainerUpdate>>;
type Timed<T> = (T, Duration);

/// A stub whose update_containers is writing 3 MiB to a runtime that never
/// reads: the write blocks once the socket buffer is full.
fn blocked_update(h: &Harness) -> (Scripted, Receiver<Timed<UpdateResult>>) {
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let _run = spawn_timed(move || stub.run());
    rt.handshake();
    let stub = h.stub.clone();
    let update = spawn_timed(move || {
        stub.update_containers_with_timeout(
            vec![ContainerUpdate::for_container("u".repeat(3 << 20))],
            Duration::from_millis(500),
        )
    });
    (rt, update)
}

#[test]
fn stop_releases_an_update_blocked_on_a_runtime_that_stopped_reading() {
    let _s = serial();
    let h = Harness::new();
    let (rt, update) = blocked_update(&h);
    thread::sleep(Duration::from_millis(300));
    let stub = h.stub.clone();
    let ((), took) = recv_within(&spawn_timed(move || stub.stop()), STEP, "stop");
    assert!(took < STOP_BOUND, "stop took {took:?}");
    let (res, _) = recv_within(&update, STEP, "update_containers after stop");
    assert!(res.is_err(), "{res:?}");
    h.assert_closed_cleanly(1, "stopped during a blocked update");
    drop(rt);
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn update_containers_times_out_when_the_runtime_stops_reading() {
    let _s = serial();
    let h = Harness::new();
    let (rt, update) = blocked_update(&h);
    let outcome = update.recv_timeout(Duration::from_millis(500) + PROMPT);
    h.stub.stop();
    drop(rt);
    let (res, took) = outcome.expect("update_containers returns within its timeout");
    assert!(
        matches!(res, Err(Error::DeadlineExceeded { .. })),
        "{res:?}"
    );
    assert!(took < Duration::from_millis(500) + PROMPT);
}
