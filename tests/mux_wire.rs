//! Multiplexed ttrpc (`Framing::Mux`) on the wire.
//!
//! Two of our Connections over one socket pair in NRI's shape (the plugin
//! serves logical connection 1 and calls on 2, the runtime the reverse),
//! and one Connection driven by hand with raw bytes: reassembly of messages
//! split across frames, frames for connections nobody opened, trunk close,
//! and the shape of every frame we write (the Go reader's limits:
//! docs/PROTOCOL.md#mux-go-reader, #mux-safe-writer).

mod common;

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nri::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use nri::ttrpc::codec::{HEADER_LEN, MAX_MESSAGE_LEN, TYPE_REQUEST};
use nri::ttrpc::{
    Client, Code, Connection, ConnectionBuilder, ConnectionOptions, Framing, Request, Services,
    Status,
};
use nri::Error;
use protobuf::Message;

const CALL: Option<Duration> = Some(Duration::from_secs(10));

/// A gate blocking handlers until the test opens it (or 5 s pass).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) -> bool {
        let (m, cv) = &*self.0;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = cv
            .wait_timeout_while(g, STEP, |open| !*open)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

/// Echo plus `Block`, which reports that it started and waits at the gate.
fn blocking_services(gate: Gate, entered: crossbeam_channel::Sender<()>) -> Arc<Services> {
    let mut s = Services::new();
    s.add_method(SVC, "Echo", Box::new(|_ctx, p| Ok(p.to_vec())));
    s.add_method(
        SVC,
        "Block",
        Box::new(move |_ctx, p| {
            let _ = entered.send(());
            if gate.wait() {
                Ok(p.to_vec())
            } else {
                Err(Status::new(Code::DeadlineExceeded, "gate never opened"))
            }
        }),
    );
    Arc::new(s)
}

struct Pair {
    /// The plugin side: serves logical connection 1, calls on 2.
    plugin: Connection,
    /// The runtime side: serves logical connection 2, calls on 1.
    runtime: Connection,
    plugin_closed: CloseProbe,
    runtime_closed: CloseProbe,
}

fn nri_pair(plugin_services: Arc<Services>, runtime_services: Arc<Services>) -> Pair {
    let (p, r) = UnixStream::pair().expect("socketpair");
    let plugin_closed = CloseProbe::new();
    let runtime_closed = CloseProbe::new();
    let plugin = ConnectionBuilder::new(p, Framing::Mux)
        .options(opts("plugin"))
        .serve(PLUGIN_SERVICE_CONN, plugin_services)
        .open(RUNTIME_SERVICE_CONN)
        .on_close(plugin_closed.callback())
        .start()
        .expect("start plugin side");
    let runtime = ConnectionBuilder::new(r, Framing::Mux)
        .options(opts("runtime"))
        .serve(RUNTIME_SERVICE_CONN, runtime_services)
        .open(PLUGIN_SERVICE_CONN)
        .on_close(runtime_closed.callback())
        .start()
        .expect("start runtime side");
    Pair {
        plugin,
        runtime,
        plugin_closed,
        runtime_closed,
    }
}

fn echo(client: &Client, payload: Vec<u8>) -> nri::Result<Vec<u8>> {
    client.call_raw(SVC, "Echo", payload, CALL, Vec::new())
}

// ---------------------------------------------------------------------------
// Two Connections, NRI shape
// ---------------------------------------------------------------------------

#[test]
fn each_side_serves_one_connection_and_calls_on_the_other() {
    let pair = nri_pair(test_services(), test_services());
    let to_runtime = pair
        .plugin
        .client(RUNTIME_SERVICE_CONN)
        .expect("plugin client on conn 2");
    let to_plugin = pair
        .runtime
        .client(PLUGIN_SERVICE_CONN)
        .expect("runtime client on conn 1");
    assert_eq!(
        echo(&to_runtime, b"to runtime".to_vec()).expect("plugin→runtime"),
        b"to runtime"
    );
    assert_eq!(
        echo(&to_plugin, b"to plugin".to_vec()).expect("runtime→plugin"),
        b"to plugin"
    );
    // Errors travel per logical connection too.
    match to_plugin.call_raw(SVC, "Fail", b"x".to_vec(), CALL, Vec::new()) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::PermissionDenied);
            assert_eq!(message, "denied: x");
        }
        other => panic!("expected PERMISSION_DENIED, got {other:?}"),
    }
    // A connection that was neither served nor opened cannot be called on.
    assert!(matches!(pair.plugin.client(7), Err(Error::Config(_))));
    pair.plugin.close();
    assert!(pair.runtime.wait_timeout(STEP));
}

#[test]
fn interleaved_concurrent_traffic_in_both_directions() {
    let pair = nri_pair(test_services(), test_services());
    let mut handles = Vec::new();
    for (side, client) in [
        (
            "plugin",
            pair.plugin.client(RUNTIME_SERVICE_CONN).expect("client"),
        ),
        (
            "runtime",
            pair.runtime.client(PLUGIN_SERVICE_CONN).expect("client"),
        ),
    ] {
        for t in 0..4u64 {
            let client = client.clone();
            handles.push(thread::spawn(move || {
                for i in 0..120u64 {
                    // Mix one-frame and two-frame messages.
                    let len = match i % 4 {
                        0 => 0,
                        1 => (i * 37 % 4000) as usize,
                        2 => 4090 + (i % 20) as usize,
                        _ => 5000 + (t * 977 + i * 131) as usize % 20_000,
                    };
                    let p = pattern(len, t << 32 | i);
                    let got = echo(&client, p.clone())
                        .unwrap_or_else(|e| panic!("{side} thread {t} call {i}: {e}"));
                    assert!(got == p, "{side} thread {t} call {i}: wrong reply");
                }
            }));
        }
    }
    for h in handles {
        h.join().expect("caller panicked");
    }
    assert!(!pair.plugin.is_closed() && !pair.runtime.is_closed());
    pair.runtime.close();
    assert!(pair.plugin.wait_timeout(STEP));
}

#[test]
fn peer_call_is_served_while_our_own_call_on_the_other_connection_is_pending() {
    // docs/PROTOCOL.md#lifecycle-register: Configure (conn 1) arrives
    // before the reply to RegisterPlugin (conn 2).
    let registered = Arc::new(AtomicBool::new(false));
    let mut plugin_services = Services::new();
    {
        let registered = registered.clone();
        plugin_services.add_method(
            SVC,
            "Configure",
            Box::new(move |_ctx, _p| {
                if registered.load(Ordering::SeqCst) {
                    return Err(Status::new(
                        Code::FailedPrecondition,
                        "register already returned",
                    ));
                }
                Ok(b"configured".to_vec())
            }),
        );
    }
    let runtime_client: Arc<OnceLock<Client>> = Arc::new(OnceLock::new());
    let mut runtime_services = Services::new();
    {
        let runtime_client = runtime_client.clone();
        runtime_services.add_method(
            SVC,
            "RegisterPlugin",
            Box::new(move |_ctx, _p| {
                let client = runtime_client
                    .get()
                    .ok_or_else(|| Status::new(Code::Internal, "no client"))?;
                let reply = client
                    .call_raw(SVC, "Configure", Vec::new(), CALL, Vec::new())
                    .map_err(Status::from)?;
                let mut out = b"registered after ".to_vec();
                out.extend(reply);
                Ok(out)
            }),
        );
    }
    let pair = nri_pair(Arc::new(plugin_services), Arc::new(runtime_services));
    runtime_client
        .set(pair.runtime.client(PLUGIN_SERVICE_CONN).expect("client"))
        .expect("set once");
    let to_runtime = pair.plugin.client(RUNTIME_SERVICE_CONN).expect("client");
    let got = to_runtime
        .call_raw(SVC, "RegisterPlugin", Vec::new(), CALL, Vec::new())
        .expect("RegisterPlugin");
    registered.store(true, Ordering::SeqCst);
    assert_eq!(got, b"registered after configured");
    pair.plugin.close();
}

#[test]
fn trunk_close_reaches_both_logical_connections_and_wakes_waiting_callers() {
    let gate = Gate::default();
    let (entered_tx, entered_rx) = crossbeam_channel::unbounded();
    let pair = nri_pair(
        blocking_services(gate.clone(), entered_tx.clone()),
        blocking_services(gate.clone(), entered_tx),
    );
    let call = |client: Client| {
        thread::spawn(move || {
            let r = client.call_raw(SVC, "Block", b"b".to_vec(), CALL, Vec::new());
            (r, Instant::now())
        })
    };
    // The plugin waits on conn 2, the runtime on conn 1.
    let plugin_call = call(pair.plugin.client(RUNTIME_SERVICE_CONN).expect("client"));
    let runtime_call = call(pair.runtime.client(PLUGIN_SERVICE_CONN).expect("client"));
    for _ in 0..2 {
        entered_rx
            .recv_timeout(STEP)
            .expect("both Block handlers must start");
    }
    let closed_at = Instant::now();
    pair.plugin.close();
    let (plugin_r, plugin_t) = bounded(STEP, "plugin caller", move || {
        plugin_call.join().expect("join")
    });
    let (runtime_r, runtime_t) = bounded(STEP, "runtime caller", move || {
        runtime_call.join().expect("join")
    });
    assert!(
        matches!(plugin_r, Err(Error::ConnectionClosed(_))),
        "plugin caller got {plugin_r:?}"
    );
    assert!(
        matches!(runtime_r, Err(Error::ConnectionClosed(_))),
        "runtime caller got {runtime_r:?}"
    );
    assert!(plugin_t.duration_since(closed_at) < Duration::from_secs(1));
    assert!(runtime_t.duration_since(closed_at) < Duration::from_secs(1));
    assert!(
        pair.runtime.is_closed(),
        "the peer must see the trunk close"
    );
    // New calls fail at once on both sides and on both logical connections.
    for client in [
        pair.plugin.client(RUNTIME_SERVICE_CONN).expect("client"),
        pair.plugin.client(PLUGIN_SERVICE_CONN).expect("client"),
        pair.runtime.client(PLUGIN_SERVICE_CONN).expect("client"),
        pair.runtime.client(RUNTIME_SERVICE_CONN).expect("client"),
    ] {
        assert!(matches!(
            echo(&client, b"late".to_vec()),
            Err(Error::ConnectionClosed(_))
        ));
    }
    gate.open();
    assert!(pair.plugin.wait_timeout(STEP));
    assert!(pair.runtime.wait_timeout(STEP));
    let reason = pair.runtime_closed.wait(STEP).expect("runtime on-close");
    assert!(reason.contains("closed"), "runtime reason {reason:?}");
    assert_eq!(
        pair.plugin_closed.wait(STEP).as_deref(),
        Some("closed locally")
    );
    pair.plugin.close();
    pair.runtime.close();
    thread::sleep(Duration::from_millis(50));
    assert_eq!(pair.plugin_closed.count(), 1);
    assert_eq!(pair.runtime_closed.count(), 1);
}

#[test]
fn on_close_runs_exactly_once_when_close_races_with_peer_eof() {
    for round in 0..5 {
        let (conn, peer, probe) = serving_with_peer(Framing::Mux, opts("race"));
        let closers: Vec<_> = (0..4)
            .map(|_| {
                let c = conn.clone();
                thread::spawn(move || c.close())
            })
            .collect();
        drop(peer);
        for c in closers {
            c.join().expect("closer panicked");
        }
        assert!(
            conn.wait_timeout(STEP),
            "round {round}: connection did not finish"
        );
        assert!(probe.wait(STEP).is_some());
        thread::sleep(Duration::from_millis(20));
        assert_eq!(
            probe.count(),
            1,
            "round {round}: on-close ran more than once"
        );
    }
}

#[test]
fn call_made_from_after_reply_completes_with_a_single_worker() {
    // docs/PROTOCOL.md#lifecycle-updates: updates are sent after the
    // event's reply is written, which is what RequestContext::after_reply
    // is for.
    let plugin_client: Arc<OnceLock<Client>> = Arc::new(OnceLock::new());
    let (result_tx, result_rx) = crossbeam_channel::bounded(1);
    let mut plugin_services = Services::new();
    {
        let plugin_client = plugin_client.clone();
        plugin_services.add_method(
            SVC,
            "Event",
            Box::new(move |ctx, _p| {
                let client = plugin_client.get().cloned();
                let tx = result_tx.clone();
                ctx.after_reply(move || {
                    let r = match client {
                        Some(c) => c.call_raw(
                            SVC,
                            "Echo",
                            b"update".to_vec(),
                            Some(Duration::from_secs(1)),
                            Vec::new(),
                        ),
                        None => Err(Error::NotConnected),
                    };
                    let _ = tx.send(r);
                });
                Ok(Vec::new())
            }),
        );
    }
    let (p, r) = UnixStream::pair().expect("socketpair");
    let plugin = ConnectionBuilder::new(p, Framing::Mux)
        .options(ConnectionOptions {
            workers: 1,
            ..opts("plugin-1w")
        })
        .serve(PLUGIN_SERVICE_CONN, Arc::new(plugin_services))
        .open(RUNTIME_SERVICE_CONN)
        .start()
        .expect("plugin side");
    plugin_client
        .set(plugin.client(RUNTIME_SERVICE_CONN).expect("client"))
        .expect("set once");
    let runtime = ConnectionBuilder::new(r, Framing::Mux)
        .options(opts("runtime"))
        .serve(RUNTIME_SERVICE_CONN, test_services())
        .open(PLUGIN_SERVICE_CONN)
        .start()
        .expect("runtime side");
    let to_plugin = runtime.client(PLUGIN_SERVICE_CONN).expect("client");
    to_plugin
        .call_raw(SVC, "Event", Vec::new(), CALL, Vec::new())
        .expect("event call");
    let r = result_rx.recv_timeout(STEP).expect("after_reply ran");
    assert_eq!(
        r.expect("the call from after_reply must complete"),
        b"update"
    );
    plugin.close();
    runtime.close();
}

#[test]
fn dropping_every_handle_closes_the_connection() {
    let (conn, mut peer, probe) = serving_with_peer(Framing::Mux, opts("dropped"));
    drop(conn);
    assert!(
        peer.wait_eof(Duration::from_secs(1)),
        "the peer should see the trunk close"
    );
    assert!(probe.wait(STEP).is_some());
}

#[test]
fn logical_connection_0_cannot_be_served_or_opened() {
    for open in [true, false] {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let builder = ConnectionBuilder::new(a, Framing::Mux);
        let builder = if open {
            builder.open(0)
        } else {
            builder.serve(0, test_services())
        };
        match builder.start() {
            Err(Error::Config(m)) => assert!(m.contains("reserved"), "{m}"),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// One Connection, driven by hand
// ---------------------------------------------------------------------------

#[test]
fn one_message_split_across_many_odd_sized_frames_is_answered() {
    let (conn, mut peer, _probe) = serving_with_peer(Framing::Mux, opts("split"));
    let sizes = [1usize, 3, 7, 4096, 5000, 2, 11, 8191, 1];
    for (round, id) in [1u32, 3].into_iter().enumerate() {
        let payload = pattern(30_000 + round, round as u64);
        let msg = request_frame(id, "Echo", &payload);
        let mut frames = Vec::new();
        let mut off = 0;
        for n in sizes.iter().cycle() {
            if off == msg.len() {
                break;
            }
            let n = (*n).min(msg.len() - off);
            frames.push(mux_frame(1, &msg[off..off + n]));
            off += n;
        }
        assert!(frames.len() > 8);
        if round == 0 {
            // One write per frame.
            for f in &frames {
                peer.send_bytes(f);
            }
        } else {
            // Everything in one write.
            peer.send_bytes(&frames.concat());
        }
        let (sid, reply) = peer.expect_reply("echo of a split message");
        assert_eq!(sid, id);
        assert_eq!(reply.code, Code::Ok);
        assert!(reply.payload == payload, "round {round}: wrong echo");
    }
    // Every split point of the 10-byte header.
    for k in 1..HEADER_LEN {
        let id = 5 + 2 * k as u32;
        let msg = request_frame(id, "Echo", b"hdr");
        peer.send_bytes(&mux_frame(1, &msg[..k]));
        thread::sleep(Duration::from_millis(1));
        peer.send_bytes(&mux_frame(1, &msg[k..]));
        let (sid, reply) = peer.expect_reply("echo after a header split");
        assert_eq!((sid, reply.payload.as_slice()), (id, &b"hdr"[..]));
    }
    peer.assert_go_shape();
    assert!(!conn.is_closed());
}

#[test]
fn frames_for_unopened_connection_ids_are_dropped_and_the_trunk_keeps_working() {
    let (conn, mut peer, probe) = serving_with_peer(Framing::Mux, opts("unopened"));
    // Complete, valid requests on logical connection ids nobody opened.
    peer.send_bytes(&mux_frame(7, &request_frame(1, "Echo", b"on 7")));
    peer.send_bytes(&mux_frame(0, &request_frame(1, "Echo", b"on 0")));
    // A request on conn 1, its frames interleaved with junk for 7 and 0 and
    // an empty frame.
    let msg = request_frame(1, "Echo", b"on 1");
    let mut wire = Vec::new();
    wire.extend(mux_frame(1, &msg[..5]));
    wire.extend(mux_frame(7, &[0xff; 100]));
    wire.extend(mux_frame(0, &[1, 2, 3]));
    wire.extend(mux_frame(1, &[]));
    wire.extend(mux_frame(1, &msg[5..]));
    wire.extend(mux_frame(u32::MAX, &request_frame(3, "Echo", b"on max")));
    peer.send_bytes(&wire);
    peer.send_request(3, "Echo", b"again on 1");
    // Two workers may answer in either order.
    let replies = peer.expect_replies(2, "replies to streams 1 and 3");
    assert_eq!(replies.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
    for (id, body) in [(1, &b"on 1"[..]), (3, &b"again on 1"[..])] {
        let r = &replies[&id];
        assert_eq!((r.code, r.payload.as_slice()), (Code::Ok, body));
    }
    peer.expect_silence(Duration::from_millis(300), "after the conn 1 replies");
    assert!(peer.frames.iter().all(|(c, _)| *c == 1));
    assert!(!conn.is_closed());
    assert_eq!(probe.count(), 0);
    peer.assert_go_shape();
}

#[test]
fn request_on_a_call_only_connection_is_answered_unimplemented() {
    // Connection 2 is opened for our calls; nothing is served there.
    let (_conn, mut peer, _probe) = serving_with_peer(Framing::Mux, opts("call-only"));
    peer.send_message_on(2, &request_frame(1, "Echo", b"wrong way"));
    let m = peer.expect_msg("reply on conn 2");
    assert_eq!((m.conn, m.header.stream_id), (2, 1));
    assert_eq!(decode_reply(&m.data).code, Code::Unimplemented);
    peer.send_request(1, "Echo", b"right way");
    let (sid, r) = peer.expect_reply("echo on conn 1");
    assert_eq!((sid, r.payload.as_slice()), (1, &b"right way"[..]));
    peer.assert_go_shape();
}

#[test]
fn peer_dropping_the_trunk_fails_our_waiting_call_promptly() {
    let (conn, mut peer, probe) = serving_with_peer(Framing::Mux, opts("vanish"));
    let client = conn.client(RUNTIME_SERVICE_CONN).expect("client");
    let waiter = thread::spawn(move || {
        let r = client.call_raw(SVC, "Echo", b"anyone?".to_vec(), CALL, Vec::new());
        (r, Instant::now())
    });
    let m = peer.expect_msg("our request");
    assert_eq!((m.conn, m.header.message_type), (2, TYPE_REQUEST));
    let dropped_at = Instant::now();
    drop(peer);
    let (r, t) = bounded(STEP, "waiting caller", move || waiter.join().expect("join"));
    assert!(matches!(r, Err(Error::ConnectionClosed(_))), "got {r:?}");
    assert!(t.duration_since(dropped_at) < Duration::from_secs(1));
    assert!(probe.wait(STEP).is_some());
    assert!(conn.wait_timeout(STEP));
    assert_eq!(probe.count(), 1);
}

#[test]
fn concurrent_callers_put_strictly_increasing_stream_ids_on_the_wire() {
    for framing in [Framing::Mux, Framing::Raw] {
        let (conn, mut peer, _probe) = serving_with_peer(framing, opts("ids"));
        let callers: Vec<_> = (0..8u64)
            .map(|t| {
                let client = conn.client(RUNTIME_SERVICE_CONN).expect("client");
                thread::spawn(move || {
                    for i in 0..50u64 {
                        // Anything but INVALID_ARGUMENT is fine here.
                        let _ =
                            client.call_raw(SVC, "Echo", pattern(16, t * 50 + i), CALL, Vec::new());
                    }
                })
            })
            .collect();
        let mut ids = Vec::new();
        for _ in 0..400 {
            let m = peer.expect_msg("our request");
            assert_eq!(m.header.message_type, TYPE_REQUEST);
            ids.push(m.header.stream_id);
            peer.send_message_on(
                m.conn,
                &ttrpc_frame(
                    m.header.stream_id,
                    nri::ttrpc::codec::TYPE_RESPONSE,
                    0,
                    &response_envelope(0, "", b""),
                ),
            );
        }
        for c in callers {
            bounded(STEP, "caller", move || c.join().expect("caller panicked"));
        }
        let out_of_order: Vec<(u32, u32)> = ids
            .windows(2)
            .filter(|w| w[1] <= w[0])
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(
            out_of_order.is_empty(),
            "{framing:?}: {} stream ids arrived after a higher one, e.g. {:?}",
            out_of_order.len(),
            &out_of_order[..out_of_order.len().min(5)]
        );
        assert!(ids.iter().all(|id| id % 2 == 1));
    }
}

#[test]
fn deadline_guard_reply_is_the_only_reply_on_the_wire() {
    let options = ConnectionOptions {
        deadline_guard: Some(nri::ttrpc::DeadlineGuard {
            margin: Duration::from_millis(100),
            reply: nri::ttrpc::GuardReply::Empty,
        }),
        ..opts("guard-wire")
    };
    let (conn, mut peer, _probe) = serving_with_peer(Framing::Mux, options);
    let sent = Instant::now();
    // Deadline in 400 ms, guard at 300 ms, handler done at 700 ms.
    let env = request_envelope(SVC, "Sleep", &700u64.to_be_bytes(), 400_000_000);
    peer.send_message(&ttrpc_frame(1, TYPE_REQUEST, 0, &env));
    let (sid, r) = peer.expect_reply("guard reply");
    let took = sent.elapsed();
    assert_eq!((sid, r.code), (1, Code::Ok));
    assert!(
        r.payload.is_empty(),
        "the guard answers with an empty payload"
    );
    assert!(
        took < Duration::from_millis(400),
        "guard too late: {took:?}"
    );
    assert!(
        took >= Duration::from_millis(250),
        "guard too early: {took:?}"
    );
    peer.expect_silence(
        Duration::from_millis(600),
        "the handler's late result must be dropped",
    );
    peer.send_request(3, "Echo", b"next");
    let (sid, r) = peer.expect_reply("echo after the guard");
    assert_eq!((sid, r.payload.as_slice()), (3, &b"next"[..]));
    assert!(!conn.is_closed());
    peer.assert_go_shape();
}

// ---------------------------------------------------------------------------
// Frame shapes we write (Go reader constraints)
// ---------------------------------------------------------------------------

fn assert_totals_covered(peer: &RawPeer, conn_sizes: &[usize], what: &str) {
    for t in 4080..=4110usize {
        assert!(
            peer.messages.iter().any(|(total, _)| *total == t),
            "{what}: no message of exactly {t} bytes was checked"
        );
    }
    for &t in conn_sizes {
        assert!(
            peer.messages.iter().any(|(total, _)| *total == t),
            "{what}: no message of exactly {t} bytes was checked"
        );
    }
    for (total, frames) in &peer.messages {
        let expect = if *total <= GO_READ_BUFFER { 1 } else { 2 };
        assert_eq!(
            *frames, expect,
            "{what}: message of {total} bytes in {frames} frames"
        );
    }
}

#[test]
fn reply_frames_meet_go_reader_constraints_for_every_size() {
    let options = ConnectionOptions {
        max_queued_requests: 256,
        ..opts("reply-shape")
    };
    let (conn, mut peer, _probe) = serving_with_peer(Framing::Mux, options);
    // An OK reply of n payload bytes is a message of 10 + 2 + (n > 0: 1 +
    // varint(n) + n) bytes.
    let total_for = |n: usize| {
        HEADER_LEN
            + 2
            + if n == 0 {
                0
            } else {
                1 + varint_len(n as u64) + n
            }
    };
    let big = [64 << 10, 1 << 20, MAX_MESSAGE_LEN - 7];
    let sizes: Vec<usize> = (0..=5000).chain(big).collect();
    let mut id = 1u32;
    // Pipeline in batches to keep the run short.
    for batch in sizes.chunks(100) {
        for &n in batch {
            peer.send_request(id, "Gen", &(n as u32).to_be_bytes());
            id += 2;
        }
        for _ in batch {
            let m = peer.expect_msg("Gen reply");
            let r = decode_reply(&m.data);
            assert_eq!(r.code, Code::Ok, "{}", r.message);
            assert_eq!(HEADER_LEN + m.data.len(), total_for(r.payload.len()));
        }
    }
    peer.assert_go_shape();
    let big_totals: Vec<usize> = big.iter().map(|&n| total_for(n)).collect();
    assert_eq!(
        big_totals[2],
        MAX_MESSAGE_LEN + HEADER_LEN,
        "the largest reply is a full 4 MiB message"
    );
    assert_totals_covered(&peer, &big_totals, "replies");
    assert_eq!(peer.messages.len(), sizes.len());
    assert!(!conn.is_closed());
}

#[test]
fn request_frames_meet_go_reader_constraints_for_every_size() {
    let (conn, mut peer, _probe) = serving_with_peer(Framing::Mux, opts("request-shape"));
    let client = conn.client(RUNTIME_SERVICE_CONN).expect("client");
    let max = max_request_payload(SVC, "Echo", 10_000_000_000);
    let big = [64usize << 10, 1 << 20, max];
    let sizes: Vec<usize> = (0..=5000).chain(big).collect();
    let n_calls = sizes.len();
    let caller = thread::spawn(move || {
        for n in sizes {
            let p = vec![0x5a; n];
            let got = client
                .call_raw(SVC, "Echo", p, CALL, Vec::new())
                .unwrap_or_else(|e| panic!("call with {n} bytes: {e}"));
            assert_eq!(got, (n as u32).to_be_bytes(), "reply for {n} bytes");
        }
    });
    for _ in 0..n_calls {
        let m = peer.expect_msg("our request");
        assert_eq!((m.conn, m.header.message_type), (2, TYPE_REQUEST));
        let req = Request::parse_from_bytes(&m.data).expect("our request envelope decodes");
        assert_eq!((req.service.as_str(), req.method.as_str()), (SVC, "Echo"));
        let n = req.payload.len() as u32;
        peer.send_message_on(
            2,
            &ttrpc_frame(
                m.header.stream_id,
                nri::ttrpc::codec::TYPE_RESPONSE,
                0,
                &response_envelope(0, "", &n.to_be_bytes()),
            ),
        );
    }
    bounded(STEP, "caller", move || {
        caller.join().expect("caller panicked")
    });
    peer.assert_go_shape();
    let big_totals: Vec<usize> = big
        .iter()
        .map(|&n| HEADER_LEN + envelope_len(SVC, "Echo", n, 10_000_000_000))
        .collect();
    assert_eq!(big_totals[2], MAX_MESSAGE_LEN + HEADER_LEN);
    assert_totals_covered(&peer, &big_totals, "requests");
    assert!(!conn.is_closed());
}

#[test]
fn concurrent_writers_never_mix_two_messages_in_one_frame() {
    // Replies written by 4 workers at once and requests from 4 caller
    // threads share the trunk; each message must still be whole frames.
    let options = ConnectionOptions {
        workers: 4,
        max_queued_requests: 512,
        ..opts("mixed-writers")
    };
    let (conn, mut peer, _probe) = serving_with_peer(Framing::Mux, options);
    let callers: Vec<_> = (0..4u64)
        .map(|t| {
            let client = conn.client(RUNTIME_SERVICE_CONN).expect("client");
            thread::spawn(move || {
                for i in 0..40u64 {
                    let n = 3000 + ((t * 1231 + i * 457) % 7000) as usize;
                    let got = client
                        .call_raw(SVC, "Echo", pattern(n, t * 100 + i), CALL, Vec::new())
                        .unwrap_or_else(|e| panic!("caller {t} call {i}: {e}"));
                    assert_eq!(got, (n as u32).to_be_bytes());
                }
            })
        })
        .collect();
    let n_replies = 200usize;
    let requests_out: Vec<Vec<u8>> = (0..n_replies)
        .map(|i| {
            let n = 3000 + (i * 613) % 7000;
            mux_frame(
                1,
                &request_frame(1 + 2 * i as u32, "Gen", &(n as u32).to_be_bytes()),
            )
        })
        .collect();
    // One writer thread owns the write side (so that our requests and our
    // replies never interleave inside a frame) while this thread reads.
    let (reply_tx, reply_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let mut writer = peer.stream.try_clone().expect("clone");
    let w = thread::spawn(move || -> std::io::Result<()> {
        use std::io::Write;
        for req in requests_out {
            while let Ok(reply) = reply_rx.try_recv() {
                writer.write_all(&reply)?;
            }
            writer.write_all(&req)?;
        }
        for reply in reply_rx.iter() {
            writer.write_all(&reply)?;
        }
        Ok(())
    });
    let (mut replies, mut requests) = (0, 0);
    while replies < n_replies || requests < 160 {
        let m = peer.expect_msg("reply or request");
        match m.conn {
            1 => {
                let r = decode_reply(&m.data);
                assert_eq!(r.code, Code::Ok, "{}", r.message);
                replies += 1;
            }
            2 => {
                let req = Request::parse_from_bytes(&m.data).expect("request decodes");
                let frame = ttrpc_frame(
                    m.header.stream_id,
                    nri::ttrpc::codec::TYPE_RESPONSE,
                    0,
                    &response_envelope(0, "", &(req.payload.len() as u32).to_be_bytes()),
                );
                reply_tx.send(mux_frame(2, &frame)).expect("writer alive");
                requests += 1;
            }
            c => panic!("message on unexpected connection {c}"),
        }
    }
    drop(reply_tx);
    w.join().expect("writer panicked").expect("write");
    for c in callers {
        bounded(STEP, "caller", move || c.join().expect("caller panicked"));
    }
    peer.assert_go_shape();
    assert!(peer
        .messages
        .iter()
        .all(|(t, f)| *f == if *t > GO_READ_BUFFER { 2 } else { 1 }));
}

/// A handler registered with `Services::add_method_owned` gets exactly the
/// request's payload by value, small or large (a large one arrives in
/// several reads, the rest of it read straight into the frame's buffer).
#[test]
fn an_owned_handler_gets_exactly_the_payload() {
    let mut s = Services::new();
    s.add_method_owned(
        SVC,
        "Owned",
        Box::new(|_ctx, payload: Vec<u8>| {
            let sum: u64 = payload.iter().map(|&b| u64::from(b)).sum();
            Ok(format!("{} {sum} {:?}", payload.len(), payload.first()).into_bytes())
        }),
    );
    let pair = nri_pair(Arc::new(s), test_services());
    let to_plugin = pair
        .runtime
        .client(PLUGIN_SERVICE_CONN)
        .expect("runtime client on conn 1");
    for len in [0usize, 1, 3000, 70_000, 1_000_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sum: u64 = payload.iter().map(|&b| u64::from(b)).sum();
        let got = to_plugin
            .call_raw(SVC, "Owned", payload.clone(), CALL, Vec::new())
            .expect("owned call");
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("{len} {sum} {:?}", payload.first()),
            "payload of {len} bytes"
        );
    }
}
