//! Slow and broken peers: a runtime trickling bytes, one that stops
//! reading, and more requests than workers.

use super::*;

/// Copies `from` to `to` one byte per write, pausing between bytes so that
/// the reader on the other side gets them one at a time. Returns the
/// number of bytes copied.
fn trickle(mut from: UnixStream, mut to: UnixStream) -> usize {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for b in &buf[..n] {
            if to.write_all(std::slice::from_ref(b)).is_err() {
                let _ = from.shutdown(std::net::Shutdown::Both);
                return total;
            }
            total += 1;
            thread::sleep(Duration::from_micros(50));
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    total
}

#[test]
fn everything_delivered_one_byte_at_a_time_works() {
    let _s = serial();
    let h = Harness::new();
    // runtime <-> [proxy] <-> stub, both directions one byte per write.
    let (rt_end, proxy_rt) = UnixStream::pair().expect("socketpair");
    let (proxy_stub, stub_end) = UnixStream::pair().expect("socketpair");
    h.sockets.send(stub_end).expect("dialer queue");
    let down = {
        let (a, b) = (
            proxy_rt.try_clone().expect("clone"),
            proxy_stub.try_clone().expect("clone"),
        );
        spawn_timed(move || trickle(a, b))
    };
    let up = spawn_timed(move || trickle(proxy_stub, proxy_rt));
    let stub = h.stub.clone();
    let started = spawn_timed(move || stub.start());
    let rt = Runtime::builder()
        .request_timeout(Duration::from_secs(4))
        .build();
    rt.set_state(vec![pod("p0")], vec![ctr("c0")]);
    let handle = rt.accept_stream(rt_end).expect("registration byte by byte");
    recv_within(&started, STEP, "start")
        .0
        .expect("start byte by byte");
    let reply = handle
        .create_container(&pod("p"), &ctr("trickled"))
        .expect("CreateContainer byte by byte");
    assert!(reply
        .adjust
        .env
        .iter()
        .any(|kv| kv.key == "CREATED" && kv.value == "trickled"));
    handle
        .start_container(&pod("p"), &ctr("trickled"))
        .expect("StateChange byte by byte");
    assert_eq!(
        *h.plugin.synced.lock().unwrap(),
        vec![vec!["p0".to_string()]]
    );
    let stub = h.stub.clone();
    recv_within(&spawn_timed(move || stub.stop()), STOP_BOUND, "stop");
    let (to_stub, _) = recv_within(&down, STEP, "runtime-to-stub proxy");
    drop(handle);
    let (to_rt, _) = recv_within(&up, STEP, "stub-to-runtime proxy");
    assert!(
        to_stub > 200 && to_rt > 100,
        "bytes trickled: {to_stub} to the stub, {to_rt} to the runtime"
    );
    h.assert_closed_cleanly(1, "after the byte-by-byte session");
}

#[test]
fn stop_finishes_while_a_huge_reply_is_blocked_on_a_peer_that_does_not_read() {
    let _s = serial();
    let h = Harness::new();
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    // A reply just under the 4 MiB limit: far more than the socket buffer.
    h.plugin.big_reply.store((4 << 20) - 4096, Ordering::SeqCst);
    rt.create("huge");
    h.plugin.expect_entered("create");
    // The runtime never reads again; let the writer block.
    thread::sleep(Duration::from_millis(300));
    let stub = h.stub.clone();
    let stopped = spawn_timed(move || stub.stop());
    let ((), took) = recv_within(&stopped, STOP_BOUND, "stop with a blocked writer");
    assert!(took < STOP_BOUND, "stop took {took:?}");
    let (res, _) = recv_within(&run, STEP, "run");
    assert!(res.is_ok(), "run after stop: {res:?}");
    h.assert_closed_cleanly(1, "stopped with a blocked writer");
    h.plugin.big_reply.store(0, Ordering::SeqCst);
    drop(rt);
    h.restart_against_runtime(&["p1"]);
}

#[test]
fn more_requests_than_workers_are_each_answered_or_refused_with_resource_exhausted() {
    let _s = serial();
    const REQUESTS: usize = 300;
    let h = Harness::with(|b| b.workers(2).max_queued_requests(4));
    let mut rt = h.scripted();
    let stub = h.stub.clone();
    let run = spawn_timed(move || stub.run());
    rt.handshake();
    h.plugin.block_create.store(true, Ordering::SeqCst);
    // All requests in one burst from another thread, while this one reads.
    let mut burst = Vec::new();
    let mut ids = Vec::new();
    for i in 0..REQUESTS {
        let id = rt.next_id;
        rt.next_id += 2;
        ids.push(id);
        let req = CreateContainerRequest {
            pod: Some(pod("p")).into(),
            container: Some(ctr(&format!("c{i}"))).into(),
            ..Default::default()
        };
        let env = request_envelope(
            PLUGIN_SERVICE,
            "CreateContainer",
            &req.write_to_bytes().expect("encode"),
            0,
        );
        burst.extend(common::mux_frame(
            PLUGIN_SERVICE_CONN,
            &ttrpc_frame(id, TYPE_REQUEST, 0, &env),
        ));
    }
    let mut writer = rt.peer.stream.try_clone().expect("clone");
    let wrote = spawn_timed(move || writer.write_all(&burst));
    // Let the handlers pile up, then release them.
    thread::sleep(Duration::from_millis(200));
    h.plugin.gate.open();
    recv_within(&wrote, STEP, "burst")
        .0
        .expect("the burst is written");
    let replies = rt.peer.expect_replies(REQUESTS, "burst replies");
    assert_eq!(
        replies.keys().copied().collect::<Vec<_>>(),
        ids,
        "exactly one reply per request"
    );
    let ok = replies.values().filter(|r| r.code == Code::Ok).count();
    let refused = replies
        .values()
        .filter(|r| r.code == Code::ResourceExhausted)
        .count();
    assert_eq!(ok + refused, REQUESTS, "only OK or RESOURCE_EXHAUSTED");
    assert!(ok >= 2 && refused > 0, "ok {ok}, refused {refused}");
    // The connection is still usable afterwards.
    h.plugin.block_create.store(false, Ordering::SeqCst);
    let id = rt.create("after-burst");
    let r: CreateContainerResponse = rt.reply(id, "after the burst");
    assert_eq!(r.adjust.env[0].value, "after-burst");
    h.stub.stop();
    assert!(recv_within(&run, STEP, "run").0.is_ok());
    h.assert_closed_cleanly(1, "after the burst");
}
