//! Frame headers and request envelopes that break the rules, bad replies
//! to our own calls, and more requests than workers and queue can hold.

use super::*;

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
