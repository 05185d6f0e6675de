//! `nri::mux::Trunk`: logical connections as byte streams over one socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nri::mux::{Trunk, MAX_QUEUED_PIECES};

fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Reads whole trunk frames from a raw socket: (conn id, payload length).
fn read_frames(s: &mut UnixStream, want_bytes: usize) -> Vec<(u32, usize)> {
    let mut got = 0;
    let mut frames = Vec::new();
    while got < want_bytes {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).unwrap();
        let id = u32::from_be_bytes(h[0..4].try_into().unwrap());
        let len = u32::from_be_bytes(h[4..8].try_into().unwrap()) as usize;
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).unwrap();
        got += len;
        frames.push((id, len));
    }
    frames
}

fn read_exactly(c: &mut impl Read, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    c.read_exact(&mut v).unwrap();
    v
}

#[test]
fn both_logical_connections_carry_interleaved_traffic_both_ways() {
    let (a, b) = UnixStream::pair().unwrap();
    let ta = Trunk::new(a).unwrap();
    let tb = Trunk::new(b).unwrap();
    let mut threads = Vec::new();
    for id in [1u32, 2] {
        let mut wa = ta.open(id).unwrap();
        let mut rb = tb.open(id).unwrap();
        // A -> B on `id`, 200 messages of varying sizes, checked in order.
        threads.push(std::thread::spawn(move || {
            for i in 0..200usize {
                let msg = vec![(i % 251) as u8 ^ id as u8; 1 + (i * 97) % 9000];
                wa.write_all(&msg).unwrap();
                let back = read_exactly(&mut wa, msg.len());
                assert_eq!(back, msg, "echo on logical connection {id}, message {i}");
            }
        }));
        threads.push(std::thread::spawn(move || {
            for i in 0..200usize {
                let len = 1 + (i * 97) % 9000;
                let msg = read_exactly(&mut rb, len);
                assert!(msg.iter().all(|&x| x == (i % 251) as u8 ^ id as u8));
                rb.write_all(&msg).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_message_split_into_odd_frames_is_reassembled_and_unopened_ids_are_dropped() {
    let (a, mut raw) = UnixStream::pair().unwrap();
    let t = Trunk::new(a).unwrap();
    let mut c1 = t.open(1).unwrap();
    let msg: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut off = 0;
    for (k, size) in [1usize, 3, 7, 4096, 5000, 2, 9000]
        .iter()
        .cycle()
        .enumerate()
    {
        if off >= msg.len() {
            break;
        }
        let end = (off + size).min(msg.len());
        raw.write_all(&frame(1, &msg[off..end])).unwrap();
        // Noise for connections nobody opened, and an empty frame.
        raw.write_all(&frame(7, b"not for you")).unwrap();
        raw.write_all(&frame(0, b"reserved")).unwrap();
        if k % 2 == 0 {
            raw.write_all(&frame(1, b"")).unwrap();
        }
        off = end;
    }
    assert_eq!(read_exactly(&mut c1, msg.len()), msg);
}

#[test]
fn writes_obey_the_go_reader_constraints() {
    let (a, mut raw) = UnixStream::pair().unwrap();
    let t = Trunk::new(a).unwrap();
    let mut c2 = t.open(2).unwrap();
    let sizes: Vec<usize> = (4080..=4110)
        .chain([1, 4096, 4097, 65536, 1 << 20, (4 << 20) + 10])
        .collect();
    // Read concurrently: large writes do not fit in the socket buffer.
    let expect = sizes.clone();
    let reader = std::thread::spawn(move || {
        expect
            .iter()
            .map(|&len| (len, read_frames(&mut raw, len)))
            .collect::<Vec<_>>()
    });
    for &len in &sizes {
        c2.write_all(&vec![9u8; len]).unwrap();
    }
    for (len, frames) in reader.join().unwrap() {
        assert!(
            frames.iter().all(|&(id, n)| id == 2 && n > 0),
            "{len}: {frames:?}"
        );
        assert!(frames.len() <= 2, "{len}: {frames:?}");
        assert!(frames[0].1 <= 4096, "{len}: first frame {frames:?}");
        if len > 4096 {
            assert_eq!(frames, vec![(2, 4096), (2, len - 4096)]);
        } else {
            assert_eq!(frames, vec![(2, len)]);
        }
    }
    let err = c2.write(&vec![0u8; (4 << 20) + 11]).unwrap_err();
    assert!(err.to_string().contains("4194315"), "{err}");
}

#[test]
fn trunk_close_reaches_every_logical_connection() {
    let (a, raw) = UnixStream::pair().unwrap();
    let t = Trunk::new(a).unwrap();
    let mut c1 = t.open(1).unwrap();
    let mut c2 = t.open(2).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        (c1.read(&mut buf).unwrap(), c2.read(&mut buf).unwrap())
    });
    std::thread::sleep(Duration::from_millis(50));
    drop(raw);
    let t0 = Instant::now();
    assert_eq!(reader.join().unwrap(), (0, 0), "both read EOF");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(t.is_closed());
    assert!(
        t.close_reason().contains("peer closed"),
        "{}",
        t.close_reason()
    );
    assert!(t.open(3).is_err(), "no opening on a closed trunk");
}

#[test]
fn an_unread_connection_overflowing_its_queue_closes_the_trunk() {
    let (a, mut raw) = UnixStream::pair().unwrap();
    let t = Trunk::new(a).unwrap();
    let _never_read = t.open(1).unwrap();
    for _ in 0..MAX_QUEUED_PIECES + 10 {
        if raw.write_all(&frame(1, b"x")).is_err() {
            break;
        }
    }
    let t0 = Instant::now();
    while !t.is_closed() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(t.is_closed());
    assert!(
        t.close_reason().contains("logical connection 1"),
        "{}",
        t.close_reason()
    );
}

#[test]
fn ids_are_checked_when_opening() {
    let (a, _raw) = UnixStream::pair().unwrap();
    let t = Trunk::new(a).unwrap();
    assert!(t.open(0).unwrap_err().to_string().contains("reserved"));
    let _c = t.open(1).unwrap();
    assert!(t.open(1).unwrap_err().to_string().contains("already open"));
}

#[test]
fn an_oversized_frame_from_the_peer_closes_the_trunk_with_the_reason() {
    let (a, mut raw) = UnixStream::pair().unwrap();
    let t = Trunk::new(a).unwrap();
    let mut c1 = t.open(1).unwrap();
    let mut h = Vec::new();
    h.extend_from_slice(&1u32.to_be_bytes());
    h.extend_from_slice(&u32::MAX.to_be_bytes());
    raw.write_all(&h).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(c1.read(&mut buf).unwrap(), 0);
    assert!(t.close_reason().contains("exceeds"), "{}", t.close_reason());
}
