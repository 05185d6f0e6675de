//! The sans-IO decoders (ttrpc frames and mux frames) fed random bytes in
//! random chunks, with the allocation counter bounding what they allocate.

use super::*;

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
