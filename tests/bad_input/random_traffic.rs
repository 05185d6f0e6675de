//! Random input against a live connection: hostile but well-framed
//! traffic, and unstructured random bytes.

use super::*;

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
