//! Bad bytes from a peer: a raw peer writes malformed, oversized, truncated
//! or hostile input to our serving Connection (plain and multiplexed), and
//! each test asserts the specific outcome and that the connection neither
//! panics nor hangs. The sans-IO decoders are fed random garbage in random
//! chunk sizes, with a per-thread allocation counter proving that declared
//! lengths never drive allocation beyond the limits.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nri::mux::codec::{MuxDecoder, MAX_FRAME_LEN};
use nri::ttrpc::codec::{
    Decoded, FrameDecoder, FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_DATA, TYPE_REQUEST,
    TYPE_RESPONSE,
};
use nri::ttrpc::{Code, ConnectionOptions, Framing};
use nri::Error;

const CALL: Option<Duration> = Some(Duration::from_secs(10));
const FRAMINGS: [Framing; 2] = [Framing::Raw, Framing::Mux];

// ---------------------------------------------------------------------------
// Per-thread allocation counter
// ---------------------------------------------------------------------------

struct CountingAlloc;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn note(bytes: usize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get().saturating_add(bytes)));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` and returns how many bytes this thread allocated meanwhile.
fn allocated_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(|c| c.get());
    let out = f();
    let after = ALLOCATED.with(|c| c.get());
    (out, after - before)
}

// ---------------------------------------------------------------------------
// Panic recorder for connection threads
// ---------------------------------------------------------------------------

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records panics on threads whose name starts with "fuzz" (our Connection
/// names its threads `<options.name>-<n>`), keeping the default hook.
fn record_fuzz_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread::current().name().unwrap_or("").to_string();
            if name.starts_with("fuzz") {
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{name}: {info}"));
            }
            default(info);
        }));
    });
}

fn fuzz_panics() -> Vec<String> {
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Asserts the connection closed by itself within the bound, ran its
/// on-close callback exactly once, and returns the reason.
fn assert_closed_once(conn: &nri::ttrpc::Connection, probe: &CloseProbe, what: &str) -> String {
    let reason = probe
        .wait(STEP)
        .unwrap_or_else(|| panic!("{what}: the connection did not close within {STEP:?}"));
    assert!(conn.wait_timeout(STEP), "{what}: workers did not finish");
    assert!(conn.is_closed(), "{what}");
    assert_eq!(
        conn.close_reason().as_deref(),
        Some(reason.as_str()),
        "{what}"
    );
    thread::sleep(Duration::from_millis(20));
    assert_eq!(probe.count(), 1, "{what}: on-close must run exactly once");
    reason
}

fn assert_clean_eof(conn: &nri::ttrpc::Connection, probe: &CloseProbe, what: &str) {
    let reason = assert_closed_once(conn, probe, what);
    assert!(reason.contains("peer closed"), "{what}: reason {reason:?}");
}

fn expect_code(peer: &mut RawPeer, id: u32, code: Code, what: &str) -> String {
    let (sid, r) = peer.expect_reply(what);
    assert_eq!(sid, id, "{what}: reply on the wrong stream");
    assert_eq!(r.code, code, "{what}: message {:?}", r.message);
    if code != Code::Ok {
        assert!(
            r.payload.is_empty(),
            "{what}: error replies carry no payload"
        );
    }
    r.message
}

fn expect_echo(peer: &mut RawPeer, id: u32, body: &[u8], what: &str) {
    let (sid, r) = peer.expect_reply(what);
    assert_eq!((sid, r.code), (id, Code::Ok), "{what}: {}", r.message);
    assert_eq!(r.payload, body, "{what}");
}

// ---------------------------------------------------------------------------
// Truncation and EOF
// ---------------------------------------------------------------------------

#[test]
fn truncated_header_then_close_closes_cleanly() {
    for framing in FRAMINGS {
        let (conn, mut peer, probe) = serving_with_peer(framing, opts("trunc"));
        let frame = request_frame(1, "Echo", b"x");
        peer.send_message(&frame[..6]);
        thread::sleep(Duration::from_millis(20));
        assert!(
            !conn.is_closed(),
            "{framing:?}: half a header is no reason to close yet"
        );
        peer.stream.shutdown(Shutdown::Write).expect("shutdown");
        assert_clean_eof(&conn, &probe, &format!("{framing:?} truncated header"));
        assert!(
            peer.wait_eof(STEP),
            "{framing:?}: our side must close the socket"
        );
    }
}

#[test]
fn eof_in_the_middle_of_a_frame_closes_cleanly() {
    let msg = request_frame(1, "Echo", &[7; 100]);
    // (label, framing, bytes to send before EOF)
    let cases: Vec<(&str, Framing, Vec<u8>)> = vec![
        (
            "raw: header and half the data",
            Framing::Raw,
            msg[..60].to_vec(),
        ),
        (
            "mux: half a mux header",
            Framing::Mux,
            mux_frame(1, &msg)[..5].to_vec(),
        ),
        (
            "mux: mux header and half its payload",
            Framing::Mux,
            mux_frame(1, &msg)[..60].to_vec(),
        ),
        (
            "mux: whole mux frame, half a ttrpc message",
            Framing::Mux,
            mux_frame(1, &msg[..60]),
        ),
    ];
    for (what, framing, bytes) in cases {
        let (conn, mut peer, probe) = serving_with_peer(framing, opts("mid-eof"));
        peer.send_bytes(&bytes);
        peer.stream.shutdown(Shutdown::Write).expect("shutdown");
        assert_clean_eof(&conn, &probe, what);
    }
}

#[test]
fn peer_vanishing_while_a_call_waits_fails_the_call_promptly() {
    for framing in FRAMINGS {
        let (conn, mut peer, probe) = serving_with_peer(framing, opts("vanish"));
        let client = conn.client(2).expect("client");
        let waiter = thread::spawn(move || {
            let r = client.call_raw(SVC, "Echo", b"hello?".to_vec(), CALL, Vec::new());
            (r, Instant::now(), client)
        });
        let m = peer.expect_msg("our request");
        assert_eq!(m.header.message_type, TYPE_REQUEST);
        let gone = Instant::now();
        drop(peer);
        let (r, t, client) = bounded(STEP, "waiting caller", move || waiter.join().expect("join"));
        assert!(
            matches!(r, Err(Error::ConnectionClosed(_))),
            "{framing:?}: got {r:?}"
        );
        assert!(
            t.duration_since(gone) < Duration::from_secs(1),
            "{framing:?}: too slow"
        );
        assert_clean_eof(&conn, &probe, &format!("{framing:?} vanish"));
        assert!(client.is_closed());
        assert!(matches!(
            client.call_raw(SVC, "Echo", Vec::new(), CALL, Vec::new()),
            Err(Error::ConnectionClosed(_))
        ));
    }
}

// ---------------------------------------------------------------------------
// Lengths
// ---------------------------------------------------------------------------

#[test]
fn declared_length_u32_max_is_skipped_and_eof_still_closes() {
    for framing in FRAMINGS {
        let (conn, mut peer, probe) = serving_with_peer(framing, opts("huge"));
        let mut bytes = FrameHeader {
            length: u32::MAX,
            stream_id: 1,
            message_type: TYPE_REQUEST,
            flags: 0,
        }
        .to_bytes()
        .to_vec();
        bytes.extend(pattern(16 << 10, 1));
        peer.send_message(&bytes);
        peer.expect_silence(Duration::from_millis(200), "while skipping");
        assert!(
            !conn.is_closed(),
            "{framing:?}: skipping must not close the connection"
        );
        if framing == Framing::Mux {
            // The trunk still works: our call on conn 2 is answered.
            let client = conn.client(2).expect("client");
            let caller = thread::spawn(move || {
                client.call_raw(SVC, "Echo", b"c".to_vec(), CALL, Vec::new())
            });
            let m = peer.expect_msg("our request on conn 2");
            assert_eq!(m.conn, 2);
            peer.send_message_on(
                2,
                &ttrpc_frame(
                    m.header.stream_id,
                    TYPE_RESPONSE,
                    0,
                    &response_envelope(0, "", b"answered"),
                ),
            );
            let r = bounded(STEP, "call on conn 2", move || caller.join().expect("join"));
            assert_eq!(r.expect("call during skip"), b"answered");
        }
        peer.stream.shutdown(Shutdown::Write).expect("shutdown");
        assert_clean_eof(&conn, &probe, &format!("{framing:?} u32::MAX length"));
    }
}

#[test]
fn message_just_over_4_mib_fails_its_stream_and_the_next_request_is_served() {
    for framing in FRAMINGS {
        let (conn, mut peer, probe) = serving_with_peer(framing, opts("over"));
        let len = MAX_MESSAGE_LEN + 1;
        let mut big = FrameHeader {
            length: len as u32,
            stream_id: 1,
            message_type: TYPE_REQUEST,
            flags: 0,
        }
        .to_bytes()
        .to_vec();
        big.extend(vec![0x42; len]);
        peer.send_message(&big);
        peer.send_request(3, "Echo", b"next");
        // Two workers may answer in either order.
        let replies = peer.expect_replies(2, "oversized request and the next one");
        let over = &replies[&1];
        assert_eq!(
            over.code,
            Code::ResourceExhausted,
            "{framing:?}: {}",
            over.message
        );
        assert!(over.payload.is_empty());
        assert!(
            over.message.contains(&len.to_string())
                && over.message.contains(&MAX_MESSAGE_LEN.to_string()),
            "{framing:?}: message {:?} should name the size and the limit",
            over.message
        );
        let next = &replies[&3];
        assert_eq!(
            (next.code, next.payload.as_slice()),
            (Code::Ok, &b"next"[..])
        );
        // The oversized id counts as used.
        peer.send_request(1, "Echo", b"reuse");
        expect_code(&mut peer, 1, Code::InvalidArgument, "reused oversized id");
        assert!(!conn.is_closed());
        assert_eq!(probe.count(), 0);
        if framing == Framing::Mux {
            peer.assert_go_shape();
        }
    }
}

#[test]
fn request_of_exactly_4_mib_in_one_mux_frame_of_the_limit_is_served() {
    let (conn, mut peer, _probe) = serving_with_peer(Framing::Mux, opts("limit"));
    let n = max_request_payload(SVC, "Gen", 0);
    let mut payload = vec![0u8; n];
    payload[..4].copy_from_slice(&3u32.to_be_bytes());
    let frame = request_frame(1, "Gen", &payload);
    assert_eq!(
        frame.len(),
        MAX_FRAME_LEN as usize,
        "one ttrpc message of the largest size"
    );
    peer.send_bytes(&mux_frame(1, &frame));
    let (sid, r) = peer.expect_reply("largest request");
    assert_eq!(
        (sid, r.code, r.payload.len()),
        (1, Code::Ok, 3),
        "{}",
        r.message
    );
    assert!(!conn.is_closed());
    peer.assert_go_shape();
}

#[test]
fn mux_frame_over_the_limit_closes_with_mux_frame_too_large() {
    for (conn_id, len) in [
        (1u32, MAX_FRAME_LEN + 1),
        (7, u32::MAX),
        (0, MAX_FRAME_LEN + 1),
    ] {
        let (conn, mut peer, probe) = serving_with_peer(Framing::Mux, opts("mux-limit"));
        // A call waits on conn 2 when the bad frame arrives.
        let client = conn.client(2).expect("client");
        let waiter =
            thread::spawn(move || client.call_raw(SVC, "Echo", b"w".to_vec(), CALL, Vec::new()));
        let _ = peer.expect_msg("our request");
        let mut h = conn_id.to_be_bytes().to_vec();
        h.extend_from_slice(&len.to_be_bytes());
        peer.send_bytes(&h);
        let expected = Error::MuxFrameTooLarge {
            conn_id,
            len,
            limit: MAX_FRAME_LEN,
        }
        .to_string();
        let reason = assert_closed_once(&conn, &probe, "oversized mux frame");
        assert_eq!(reason, expected);
        match bounded(STEP, "waiting caller", move || waiter.join().expect("join")) {
            Err(Error::ConnectionClosed(r)) => assert_eq!(r, expected),
            other => panic!("waiting caller got {other:?}"),
        }
        assert!(peer.wait_eof(STEP), "our side must close the trunk");
    }
}

// ---------------------------------------------------------------------------
// Headers and envelopes
// ---------------------------------------------------------------------------

#[test]
fn unknown_message_types_are_ignored_and_the_connection_works() {
    for framing in FRAMINGS {
        let (conn, mut peer, _probe) = serving_with_peer(framing, opts("types"));
        let envelope = request_envelope(SVC, "Echo", b"ignored", 0);
        for (i, ty) in [0u8, TYPE_DATA, 4, 9, 255].into_iter().enumerate() {
            peer.send_message(&ttrpc_frame(1 + 2 * i as u32, ty, 0, &envelope));
        }
        peer.send_request(21, "Echo", b"seen");
        expect_echo(&mut peer, 21, b"seen", "request after unknown types");
        peer.expect_silence(Duration::from_millis(150), "no reply to unknown types");
        assert!(!conn.is_closed());
    }
}

#[test]
fn even_stream_id_is_invalid_argument_on_that_id() {
    for framing in FRAMINGS {
        let (_conn, mut peer, _probe) = serving_with_peer(framing, opts("even"));
        for id in [2u32, 0, 1 << 31] {
            peer.send_request(id, "Echo", b"even");
            let msg = expect_code(&mut peer, id, Code::InvalidArgument, "even id");
            assert!(msg.contains("odd"), "{framing:?}: message {msg:?}");
        }
        // An even id does not advance the last id: 1 is still fine.
        peer.send_request(1, "Echo", b"odd");
        expect_echo(&mut peer, 1, b"odd", "odd after even");
    }
}

#[test]
fn reused_or_decreasing_stream_id_is_invalid_argument() {
    for framing in FRAMINGS {
        let (_conn, mut peer, _probe) = serving_with_peer(framing, opts("reuse"));
        peer.send_request(5, "Echo", b"five");
        expect_echo(&mut peer, 5, b"five", "first use of 5");
        for id in [5u32, 3, 1] {
            peer.send_request(id, "Echo", b"again");
            let msg = expect_code(&mut peer, id, Code::InvalidArgument, "non-increasing id");
            assert!(msg.contains("increase"), "{framing:?}: message {msg:?}");
        }
        peer.send_request(7, "Echo", b"seven");
        expect_echo(&mut peer, 7, b"seven", "increasing again");
    }
}

#[test]
fn gaps_in_odd_stream_ids_are_accepted() {
    for framing in FRAMINGS {
        let (_conn, mut peer, _probe) = serving_with_peer(framing, opts("gaps"));
        for id in [1u32, 3, 7, 101, 0x7fff_ffff, u32::MAX] {
            peer.send_request(id, "Echo", &id.to_be_bytes());
            expect_echo(&mut peer, id, &id.to_be_bytes(), "gap");
        }
    }
}

#[test]
fn undecodable_request_envelope_is_invalid_argument() {
    for framing in FRAMINGS {
        let (conn, mut peer, _probe) = serving_with_peer(framing, opts("envelope"));
        let garbage: [&[u8]; 4] = [
            &[0x0a, 0x10, b'a', b'b'],       // service declares 16 bytes, has 2
            &[0xff, 0xff, 0xff, 0xff, 0xff], // bad tag
            &[0x0a, 0x02, 0xff, 0xfe],       // service is not UTF-8
            &[0x20, 0x80, 0x80],             // timeout_nano: truncated varint
        ];
        for (i, g) in garbage.iter().enumerate() {
            let id = 1 + 2 * i as u32;
            peer.send_message(&ttrpc_frame(id, TYPE_REQUEST, 0, g));
            let msg = expect_code(&mut peer, id, Code::InvalidArgument, "garbage envelope");
            assert!(msg.contains("envelope"), "{framing:?}: message {msg:?}");
        }
        peer.send_request(99, "Echo", b"fine");
        expect_echo(&mut peer, 99, b"fine", "valid request after garbage");
        assert!(!conn.is_closed());
    }
}

#[test]
fn undecodable_typed_payload_is_internal() {
    for framing in FRAMINGS {
        let (_conn, mut peer, _probe) = serving_with_peer(framing, opts("typed"));
        peer.send_request(1, "Register", &[0xff, 0xff, 0xff]);
        let msg = expect_code(&mut peer, 1, Code::Internal, "garbage typed payload");
        assert!(
            msg.contains("RegisterPluginRequest"),
            "{framing:?}: message {msg:?}"
        );
        // A valid typed payload on the same connection works.
        let ok = nri::api::RegisterPluginRequest {
            plugin_name: "p".into(),
            plugin_idx: "01".into(),
            ..Default::default()
        };
        peer.send_request(
            3,
            "Register",
            &protobuf::Message::write_to_bytes(&ok).expect("encode"),
        );
        expect_code(&mut peer, 3, Code::Ok, "valid typed payload");
        // Unknown methods: UNIMPLEMENTED, not INTERNAL.
        peer.send_message(&ttrpc_frame(
            5,
            TYPE_REQUEST,
            0,
            &request_envelope("no.Such", "Thing", b"", 0),
        ));
        expect_code(&mut peer, 5, Code::Unimplemented, "unknown service");
    }
}

#[test]
fn panicking_handler_is_internal_and_the_next_request_is_served() {
    for framing in FRAMINGS {
        // One worker: the same thread must survive every panic.
        let options = ConnectionOptions {
            workers: 1,
            ..opts("panicky")
        };
        let (conn, mut peer, probe) = serving_with_peer(framing, options);
        for round in 0..3u32 {
            let id = 1 + 4 * round;
            peer.send_request(id, "Panic", b"");
            let msg = expect_code(&mut peer, id, Code::Internal, "panicking handler");
            assert!(
                msg.contains("panicked") && msg.contains("handler exploded on purpose"),
                "{framing:?}: message {msg:?}"
            );
            peer.send_request(id + 2, "Echo", b"alive");
            expect_echo(&mut peer, id + 2, b"alive", "after a panic");
        }
        assert!(!conn.is_closed());
        assert_eq!(probe.count(), 0);
    }
}

// ---------------------------------------------------------------------------
// Replies to our calls
// ---------------------------------------------------------------------------

#[test]
fn bad_replies_to_our_calls_fail_only_those_calls() {
    for framing in FRAMINGS {
        let (conn, mut peer, _probe) = serving_with_peer(framing, opts("bad-replies"));
        let client = conn.client(2).expect("client");
        let call = |payload: &'static [u8]| {
            let client = client.clone();
            thread::spawn(move || client.call_raw(SVC, "Echo", payload.to_vec(), CALL, Vec::new()))
        };
        let reply_conn = if framing == Framing::Mux { 2 } else { 0 };

        // 1. A Response that does not decode.
        let c = call(b"1");
        let m = peer.expect_msg("request 1");
        peer.send_message_on(
            reply_conn,
            &ttrpc_frame(m.header.stream_id, TYPE_RESPONSE, 0, &[0xff; 4]),
        );
        let r = bounded(STEP, "call 1", move || c.join().expect("join"));
        assert!(
            matches!(r, Err(Error::Protobuf { .. })),
            "{framing:?}: got {r:?}"
        );

        // 2. A Response over the limit (data actually sent).
        let c = call(b"2");
        let m = peer.expect_msg("request 2");
        let mut big = FrameHeader {
            length: (MAX_MESSAGE_LEN + 1) as u32,
            stream_id: m.header.stream_id,
            message_type: TYPE_RESPONSE,
            flags: 0,
        }
        .to_bytes()
        .to_vec();
        big.extend(vec![0u8; MAX_MESSAGE_LEN + 1]);
        peer.send_message_on(reply_conn, &big);
        let r = bounded(STEP, "call 2", move || c.join().expect("join"));
        match r {
            Err(Error::MessageTooLarge { len, limit }) => {
                assert_eq!(
                    (len, limit),
                    (MAX_MESSAGE_LEN as u64 + 1, MAX_MESSAGE_LEN as u64)
                );
            }
            other => panic!("{framing:?}: expected MessageTooLarge, got {other:?}"),
        }

        // 3. A stray Response for a stream nobody waits for, then a good one.
        peer.send_message_on(
            reply_conn,
            &ttrpc_frame(999, TYPE_RESPONSE, 0, &response_envelope(0, "", b"stray")),
        );
        let c = call(b"3");
        let m = peer.expect_msg("request 3");
        peer.send_message_on(
            reply_conn,
            &ttrpc_frame(
                m.header.stream_id,
                TYPE_RESPONSE,
                0,
                &response_envelope(0, "", b"three"),
            ),
        );
        let r = bounded(STEP, "call 3", move || c.join().expect("join"));
        assert_eq!(r.expect("call 3"), b"three");

        // 4. A status without a payload is an error with its code.
        let c = call(b"4");
        let m = peer.expect_msg("request 4");
        peer.send_message_on(
            reply_conn,
            &ttrpc_frame(
                m.header.stream_id,
                TYPE_RESPONSE,
                0,
                &response_envelope(14, "try later", b""),
            ),
        );
        match bounded(STEP, "call 4", move || c.join().expect("join")) {
            Err(Error::Status { code, message, .. }) => {
                assert_eq!((code, message.as_str()), (Code::Unavailable, "try later"));
            }
            other => panic!("{framing:?}: expected UNAVAILABLE, got {other:?}"),
        }
        assert!(!conn.is_closed());
    }
}

#[test]
fn call_timeout_holds_when_the_peer_stops_reading() {
    for framing in FRAMINGS {
        // The peer never reads: a 2 MiB request cannot be written out.
        let (conn, peer, _probe) = serving_with_peer(framing, opts("stalled"));
        let client = conn.client(2).expect("client");
        let big = vec![0u8; 2 << 20];
        let started = Instant::now();
        let (tx, rx) = crossbeam_channel::bounded(1);
        thread::spawn(move || {
            let r = client.call_raw(
                SVC,
                "Echo",
                big,
                Some(Duration::from_millis(300)),
                Vec::new(),
            );
            let _ = tx.send((r, started.elapsed()));
        });
        let outcome = rx.recv_timeout(Duration::from_secs(3));
        drop(peer); // unblocks a stuck writer either way
        conn.close();
        let (r, took) = outcome.unwrap_or_else(|_| {
            panic!("{framing:?}: call with a 300 ms timeout still blocked after 3 s")
        });
        assert!(
            matches!(r, Err(Error::DeadlineExceeded { .. })),
            "{framing:?}: got {:?}",
            r.map(|v| v.len())
        );
        assert!(took < Duration::from_secs(1), "{framing:?}: took {took:?}");
    }
}

// ---------------------------------------------------------------------------
// Overload
// ---------------------------------------------------------------------------

#[test]
fn more_requests_than_workers_and_queue_each_get_exactly_one_reply() {
    for framing in FRAMINGS {
        let options = ConnectionOptions {
            workers: 1,
            max_queued_requests: 4,
            ..opts("overload")
        };
        let (conn, mut peer, _probe) = serving_with_peer(framing, options);
        let before = COUNTED_CALLS.load(Ordering::SeqCst);
        let ids: Vec<u32> = (0..20).map(|i| 1 + 2 * i).collect();
        let mut wire = Vec::new();
        for &id in &ids {
            let f = request_frame(id, "Counted", &id.to_be_bytes());
            match framing {
                Framing::Raw => wire.extend(f),
                _ => wire.extend(mux_frame(1, &f)),
            }
        }
        peer.send_bytes(&wire); // all 20 pipelined in one write
        let mut seen: BTreeMap<u32, Code> = BTreeMap::new();
        for _ in &ids {
            let (sid, r) = peer.expect_reply("overload reply");
            assert!(
                seen.insert(sid, r.code).is_none(),
                "{framing:?}: two replies for stream {sid}"
            );
            match r.code {
                Code::Ok => assert_eq!(r.payload, sid.to_be_bytes()),
                Code::ResourceExhausted => {
                    assert!(
                        r.message.contains("limit 4"),
                        "{framing:?}: message {:?}",
                        r.message
                    )
                }
                c => panic!(
                    "{framing:?}: unexpected code {c:?} for stream {sid}: {}",
                    r.message
                ),
            }
        }
        peer.expect_silence(Duration::from_millis(200), "no extra replies");
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), ids);
        let ok = seen.values().filter(|c| **c == Code::Ok).count();
        assert!(
            ok >= 1,
            "{framing:?}: at least the queued requests are served"
        );
        assert!(
            ok < ids.len(),
            "{framing:?}: 20 requests cannot all fit 1 worker + 4 queued"
        );
        assert_eq!(
            COUNTED_CALLS.load(Ordering::SeqCst) - before,
            ok,
            "handler ran once per OK"
        );
        // Still serving afterwards.
        peer.send_request(101, "Echo", b"after");
        expect_echo(&mut peer, 101, b"after", "after overload");
        assert!(!conn.is_closed());
    }
}

// ---------------------------------------------------------------------------
// Random input against a live connection
// ---------------------------------------------------------------------------

/// Well-framed but hostile ttrpc traffic: random types, flags, unique ids
/// (mostly odd and increasing, some even), envelopes that are valid, random,
/// or name unknown methods. Returns the bytes and the ids of request frames.
fn hostile_stream(rng: &mut XorShift, frames: usize) -> (Vec<u8>, BTreeSet<u32>) {
    let mut out = Vec::new();
    let mut requests = BTreeSet::new();
    let mut next = 1u32;
    for _ in 0..frames {
        next += 2 * rng.range(1, 3) as u32;
        let even = rng.range(0, 9) == 0;
        let id = if even { next + 1 } else { next };
        let ty = match rng.range(0, 9) {
            0..=5 => TYPE_REQUEST,
            6 => TYPE_RESPONSE,
            7 => TYPE_DATA,
            _ => rng.next() as u8,
        };
        let data = match rng.range(0, 4) {
            0 => request_envelope(SVC, "Echo", &rng.bytes_in(0, 64), 0),
            1 => request_envelope(SVC, "Fail", &rng.bytes(3), rng.next() as i64),
            2 => request_envelope("no.Such", "Method", b"", 0),
            _ => rng.bytes_in(0, 200),
        };
        if ty == TYPE_REQUEST {
            requests.insert(id);
        }
        out.extend(ttrpc_frame(id, ty, rng.next() as u8, &data));
    }
    (out, requests)
}

#[test]
fn hostile_well_framed_traffic_gets_exactly_one_reply_per_request() {
    record_fuzz_panics();
    for (seed, framing) in [(1u64, Framing::Raw), (2, Framing::Mux), (3, Framing::Mux)] {
        let options = ConnectionOptions {
            max_queued_requests: 1024,
            ..opts("fuzz-hostile")
        };
        let (conn, mut peer, _probe) = serving_with_peer(framing, options);
        let mut rng = XorShift::new(seed);
        let (stream, mut requests) = hostile_stream(&mut rng, 300);
        let last = 10_000_001u32;
        let mut stream = stream;
        stream.extend(request_frame(last, "Echo", b"last"));
        requests.insert(last);
        let wire = match framing {
            Framing::Raw => stream,
            _ => {
                // Random frame sizes on conn 1, junk frames for 0, 7 and 2.
                let mut w = Vec::new();
                let mut off = 0;
                while off < stream.len() {
                    let n = rng.range(1, 5000).min(stream.len() - off);
                    w.extend(mux_frame(1, &stream[off..off + n]));
                    off += n;
                    if rng.range(0, 3) == 0 {
                        let junk = rng.bytes_in(0, 300);
                        w.extend(mux_frame([0, 7, 0xdead_beef][rng.range(0, 2)], &junk));
                    }
                }
                w
            }
        };
        // Write from a thread while this one reads the replies.
        let mut writer = peer.stream.try_clone().expect("clone");
        let w = thread::spawn(move || std::io::Write::write_all(&mut writer, &wire));
        let mut replies: BTreeMap<u32, usize> = BTreeMap::new();
        while !replies.contains_key(&last) || replies.len() < requests.len() {
            match peer.recv(STEP) {
                Ok(m) => {
                    assert_eq!(m.header.message_type, TYPE_RESPONSE, "seed {seed}");
                    assert_eq!(
                        m.conn,
                        if framing == Framing::Raw { 0 } else { 1 },
                        "seed {seed}"
                    );
                    let _ = decode_reply(&m.data);
                    *replies.entry(m.header.stream_id).or_default() += 1;
                }
                Err(e) => panic!(
                    "seed {seed} {framing:?}: {e:?} after {} of {} replies",
                    replies.len(),
                    requests.len()
                ),
            }
        }
        w.join().expect("writer").expect("write");
        peer.expect_silence(Duration::from_millis(100), "no extra replies");
        assert_eq!(
            replies.keys().copied().collect::<BTreeSet<_>>(),
            requests,
            "seed {seed}"
        );
        assert!(
            replies.values().all(|n| *n == 1),
            "seed {seed}: duplicate replies"
        );
        assert!(
            !conn.is_closed(),
            "seed {seed}: closed: {:?}",
            conn.close_reason()
        );
        if framing == Framing::Mux {
            peer.assert_go_shape();
        }
    }
    assert!(
        fuzz_panics().is_empty(),
        "connection threads panicked: {:?}",
        fuzz_panics()
    );
}

#[test]
fn unstructured_random_bytes_never_panic_and_eof_closes() {
    record_fuzz_panics();
    for (seed, framing) in [
        (11u64, Framing::Raw),
        (12, Framing::Mux),
        (13, Framing::Raw),
        (14, Framing::Mux),
    ] {
        let (conn, mut peer, probe) = serving_with_peer(framing, opts("fuzz-random"));
        let mut rng = XorShift::new(seed);
        let mut sent = 0;
        while sent < (128 << 10) && !conn.is_closed() {
            let chunk = rng.bytes_in(1, 4000);
            if std::io::Write::write_all(&mut peer.stream, &chunk).is_err() {
                break; // our side closed (e.g. an oversized mux frame)
            }
            sent += chunk.len();
        }
        let _ = peer.stream.shutdown(Shutdown::Write);
        // Drain whatever replies came, until our side closes.
        assert!(
            peer.wait_eof(STEP) || conn.is_closed(),
            "seed {seed}: no close"
        );
        assert_closed_once(&conn, &probe, &format!("seed {seed} {framing:?}"));
    }
    assert!(
        fuzz_panics().is_empty(),
        "connection threads panicked: {:?}",
        fuzz_panics()
    );
}

// ---------------------------------------------------------------------------
// Sans-IO decoders
// ---------------------------------------------------------------------------

#[test]
fn frame_decoder_skips_u32_max_length_without_allocating() {
    let mut dec = FrameDecoder::new();
    let header = FrameHeader {
        length: u32::MAX,
        stream_id: 9,
        message_type: TYPE_REQUEST,
        flags: 0,
    }
    .to_bytes();
    let chunk = vec![0u8; 64 << 10];
    let (_, bytes) = allocated_during(|| {
        let mut input = &header[..];
        assert!(dec.decode(&mut input).is_none());
        for _ in 0..32 {
            let mut input = &chunk[..];
            assert!(dec.decode(&mut input).is_none());
            assert!(input.is_empty(), "the skipped data must be consumed");
        }
    });
    assert_eq!(
        bytes, 0,
        "skipping an oversized frame allocated {bytes} bytes"
    );
    assert!(!dec.at_boundary());
}

#[test]
fn frame_decoder_survives_random_bytes_in_random_chunks() {
    let limit = 4096;
    let mut rng = XorShift::new(0x5eed);
    let garbage = rng.bytes(1 << 20);
    let mut dec = FrameDecoder::with_limit(limit);
    let (mut frames, mut oversized, mut accounted) = (0usize, 0usize, 0usize);
    let mut worst = 0;
    let mut off = 0;
    while off < garbage.len() {
        let n = rng.range(1, 700).min(garbage.len() - off);
        let mut input = &garbage[off..off + n];
        off += n;
        let ((), bytes) = allocated_during(|| {
            while let Some(d) = dec.decode(&mut input) {
                match d {
                    Decoded::Frame { header, data } => {
                        assert!(header.length as usize <= limit);
                        assert_eq!(data.len(), header.length as usize);
                        accounted += HEADER_LEN + data.len();
                        frames += 1;
                    }
                    Decoded::Oversized { header, limit: l } => {
                        assert_eq!(l, limit);
                        assert!(header.length as usize > limit);
                        accounted += HEADER_LEN + header.length as usize;
                        oversized += 1;
                    }
                }
            }
        });
        assert!(input.is_empty(), "decode must consume its whole input");
        worst = worst.max(bytes);
    }
    assert!(accounted <= garbage.len());
    assert!(
        worst <= limit + 256,
        "one decode call allocated {worst} bytes; the limit is {limit}"
    );
    // Random 32-bit lengths are nearly always over 4 KiB.
    assert!(
        frames + oversized <= 1,
        "frames {frames}, oversized {oversized}"
    );
}

#[test]
fn frame_decoder_round_trips_random_frames_in_random_chunks() {
    let mut rng = XorShift::new(77);
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..500u32 {
        let len = match rng.range(0, 3) {
            0 => 0,
            1 => rng.range(1, 20),
            _ => rng.range(4000, 9000),
        };
        let data = rng.bytes(len);
        let ty = rng.next() as u8;
        let flags = rng.next() as u8;
        wire.extend(ttrpc_frame(2 * i + 1, ty, flags, &data));
        expected.push((2 * i + 1, ty, flags, data));
    }
    let mut dec = FrameDecoder::new();
    let mut got = Vec::new();
    let mut off = 0;
    while off < wire.len() {
        let n = rng.range(1, 3000).min(wire.len() - off);
        let mut input = &wire[off..off + n];
        off += n;
        while let Some(d) = dec.decode(&mut input) {
            match d {
                Decoded::Frame { header, data } => {
                    got.push((header.stream_id, header.message_type, header.flags, data))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(dec.at_boundary());
    assert_eq!(got, expected);
}

#[test]
fn mux_decoder_survives_random_bytes_in_random_chunks_without_allocating() {
    let limit = 8192u32;
    let mut rng = XorShift::new(0xfeed);
    let garbage = rng.bytes(1 << 20);
    let mut dec = MuxDecoder::with_limit(limit);
    let (mut pieces, mut errors, mut piece_bytes) = (0usize, 0usize, 0usize);
    let mut allocated = 0;
    let mut off = 0;
    while off < garbage.len() {
        let n = rng.range(1, 700).min(garbage.len() - off);
        let mut input = &garbage[off..off + n];
        off += n;
        loop {
            let (r, bytes) = allocated_during(|| dec.decode(&mut input));
            allocated += bytes;
            match r {
                Ok(Some((_, piece))) => {
                    assert!(!piece.is_empty() && piece.len() <= limit as usize);
                    piece_bytes += piece.len();
                    pieces += 1;
                }
                Ok(None) => break,
                Err(Error::MuxFrameTooLarge { len, limit: l, .. }) => {
                    assert_eq!(l, limit);
                    assert!(len > limit);
                    errors += 1;
                    // A connection would close here; start over.
                    dec = MuxDecoder::with_limit(limit);
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert!(input.is_empty());
    }
    assert_eq!(allocated, 0, "the mux decoder must not allocate");
    assert!(piece_bytes <= garbage.len());
    assert!(errors > 0, "random lengths must hit the limit");
    let _ = pieces;
}

#[test]
fn mux_decoder_round_trips_random_frames_in_random_chunks() {
    let mut rng = XorShift::new(99);
    let mut wire = Vec::new();
    let mut expected: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for _ in 0..400 {
        let conn = rng.range(0, 3) as u32;
        let data = rng.bytes_in(0, 6000);
        wire.extend(mux_frame(conn, &data));
        expected.entry(conn).or_default().extend(data);
    }
    let mut dec = MuxDecoder::new();
    let mut got: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut off = 0;
    while off < wire.len() {
        let n = rng.range(1, 5000).min(wire.len() - off);
        let mut input = &wire[off..off + n];
        off += n;
        while let Some((conn, piece)) = dec.decode(&mut input).expect("valid frames") {
            got.entry(conn).or_default().extend_from_slice(piece);
        }
    }
    assert!(dec.at_boundary());
    expected.retain(|_, v| !v.is_empty());
    assert_eq!(got, expected);
}
