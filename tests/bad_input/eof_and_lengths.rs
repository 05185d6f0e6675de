//! Truncation, EOF and declared lengths: a frame cut short, a peer that
//! vanishes, lengths up to `u32::MAX` and messages around the 4 MiB limit.

use super::*;

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
