//! The runtime side closes the connection at each step of a plugin's life.

use super::*;

#[test]
fn runtime_closing_before_the_register_reply_fails_start_promptly() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    rt.expect_call("RegisterPlugin");
    rt.vanish();
    let (res, took) = recv_within(&started, STEP, "start");
    assert_closed_error(&res, "start");
    assert!(
        took < PROMPT,
        "start took {took:?} (registration timeout 5 s)"
    );
    h.assert_closed_cleanly(1, "closed before the register reply");
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn runtime_closing_during_configure_fails_start_once_the_handler_returns() {
    let _s = serial();
    let h = Harness::new();
    h.plugin.block_configure.store(true, Ordering::SeqCst);
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    rt.register();
    rt.send("Configure", &configure_req());
    h.plugin.expect_entered("configure");
    rt.vanish();
    thread::sleep(Duration::from_millis(100));
    let opened = Instant::now();
    h.plugin.block_configure.store(false, Ordering::SeqCst);
    h.plugin.gate.open();
    let (res, _) = recv_within(&started, STEP, "start");
    assert!(
        matches!(res, Err(Error::ConnectionClosed(_))),
        "start fails with the closed connection: {res:?}"
    );
    assert!(
        opened.elapsed() < PROMPT,
        "start returned {:?} after the handler",
        opened.elapsed()
    );
    h.assert_closed_cleanly(1, "closed during Configure");
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn start_fails_promptly_when_the_connection_closes_while_configure_still_runs() {
    let _s = serial();
    let h = Harness::new();
    h.plugin.block_configure.store(true, Ordering::SeqCst);
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    rt.register();
    rt.send("Configure", &configure_req());
    h.plugin.expect_entered("configure");
    let closed = Instant::now();
    rt.vanish();
    let outcome = started.recv_timeout(Duration::from_secs(3));
    h.plugin.gate.open();
    let (res, _) = outcome.expect("start returns without waiting for the Configure handler");
    assert!(matches!(res, Err(Error::ConnectionClosed(_))), "{res:?}");
    assert!(
        closed.elapsed() < PROMPT,
        "start took {:?} after the close",
        closed.elapsed()
    );
    h.assert_closed_cleanly(1, "closed during a stuck Configure");
}

#[test]
fn runtime_closing_between_synchronize_chunks_ends_run_and_drops_the_partial_state() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.register();
    rt.configure();
    let r = rt.synchronize(&["stale-1", "stale-2"], true);
    assert!(r.more, "an intermediate chunk is answered with more=true");
    assert!(r.update.is_empty());
    let closed = Instant::now();
    rt.vanish();
    let (res, _) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    assert!(closed.elapsed() < PROMPT, "run took {:?}", closed.elapsed());
    h.assert_closed_cleanly(1, "closed between Synchronize chunks");
    assert!(
        h.plugin.synced.lock().unwrap().is_empty(),
        "the handler never saw half a state"
    );
    h.restart_against_runtime(&["fresh"]);
    assert_eq!(
        *h.plugin.synced.lock().unwrap(),
        vec![vec!["fresh".to_string()]],
        "the next connection's Synchronize holds only its own state"
    );
}

#[test]
fn runtime_closing_while_a_handler_runs_ends_run_when_the_handler_returns() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    h.plugin.block_create.store(true, Ordering::SeqCst);
    rt.create("c1");
    h.plugin.expect_entered("create");
    rt.vanish();
    thread::sleep(Duration::from_millis(100));
    let opened = Instant::now();
    h.plugin.block_create.store(false, Ordering::SeqCst);
    h.plugin.gate.open();
    let (res, _) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    assert!(opened.elapsed() < PROMPT, "run took {:?}", opened.elapsed());
    h.assert_closed_cleanly(1, "closed while a handler ran");
    assert_eq!(
        h.plugin.after_reply_ran.load(Ordering::SeqCst),
        0,
        "no after_reply action runs for a reply that was never written"
    );
    h.restart_against_runtime(&["p1"]);
    assert_eq!(h.plugin.after_reply_ran.load(Ordering::SeqCst), 1);
}

#[test]
fn stop_during_registration_makes_start_fail_promptly() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    // The runtime reads RegisterPlugin and never answers.
    rt.expect_call("RegisterPlugin");
    let stub = h.stub.clone();
    let ((), stop_took) = recv_within(&spawn_timed(move || stub.stop()), STEP, "stop");
    let (res, took) = recv_within(&started, STEP, "start");
    assert!(res.is_err(), "start fails when stopped: {res:?}");
    assert!(
        took < PROMPT + Duration::from_millis(100),
        "start took {took:?}"
    );
    assert!(stop_took < PROMPT, "stop took {stop_took:?}");
    assert!(
        rt.peer.wait_eof(STEP),
        "the runtime sees the connection close"
    );
    h.assert_closed_cleanly(1, "stopped during registration");
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn run_returns_when_the_runtime_drops_the_plugin_while_a_handler_is_stuck() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    h.plugin.block_create.store(true, Ordering::SeqCst);
    rt.create("stuck");
    h.plugin.expect_entered("create");
    rt.vanish();
    // Same bound as stop(): 5 s for a stuck handler, plus slack.
    let outcome = run.recv_timeout(STOP_BOUND);
    h.plugin.gate.open();
    let (res, _) = outcome.expect("run returns although a handler is stuck");
    assert_closed_error(&res, "run");
    assert_eq!(h.closes(), 1);
}

#[test]
fn runtime_closing_during_update_containers_fails_the_call_and_run_promptly() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    let stub = h.stub.clone();
    let update =
        spawn_timed(move || stub.update_containers(vec![ContainerUpdate::for_container("c1")]));
    rt.expect_call("UpdateContainers");
    let closed = Instant::now();
    rt.vanish();
    let (res, took) = recv_within(&update, STEP, "update_containers");
    assert!(
        matches!(res, Err(Error::NotConnected)),
        "update_containers fails with the lost connection: {res:?}"
    );
    assert!(
        took < Duration::from_secs(2) && closed.elapsed() < PROMPT,
        "update_containers waited {took:?} (request timeout 2 s)"
    );
    let (res, _) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    h.assert_closed_cleanly(1, "closed during update_containers");
    // Not connected now: a clear error, at once.
    let t0 = Instant::now();
    let res = h.stub.update_containers(Vec::new());
    assert!(matches!(res, Err(Error::NotConnected)), "{res:?}");
    assert!(t0.elapsed() < Duration::from_millis(100));
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn runtime_closing_after_start_ends_run_with_the_reason() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    // Idle connection, then the runtime goes away (process exit).
    thread::sleep(Duration::from_millis(50));
    drop(rt);
    let (res, took) = recv_within(&run, STEP, "run");
    assert_closed_error(&res, "run");
    assert!(took < STEP);
    h.assert_closed_cleanly(1, "closed while idle");
    h.restart_against_runtime(&["p1"]);
}
