//! Fuzzes the sans-IO trunk decoder (`nri::mux::codec::MuxDecoder`).
//!
//! Input layout: byte 0 picks the chunk sizes (see `common::chunks`),
//! byte 1 a second, small frame limit so that the fatal too-large path is
//! reached; the rest is the trunk byte stream. Decoding stops at the first
//! error. Checked, for the default limit and the small one:
//!
//! - every piece is non-empty and no larger than the limit or its chunk;
//! - `Ok(None)` means the chunk was used up;
//! - chunking does not matter: the payload bytes delivered per logical
//!   connection, and the error (connection id, length, limit), equal those
//!   of a plain reference parser over the whole stream;
//! - `at_boundary` agrees with where that parser stopped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::mux::codec::{MuxDecoder, MAX_FRAME_LEN, MUX_HEADER_LEN};
use nri::Error;

#[path = "common.rs"]
mod common;

/// Appends a piece, merging it with the previous one of the same
/// connection (a logical connection is a byte stream: frame borders are
/// not part of what the decoder promises).
fn push(runs: &mut Vec<(u32, Vec<u8>)>, id: u32, piece: &[u8]) {
    match runs.last_mut() {
        Some((last, bytes)) if *last == id => bytes.extend_from_slice(piece),
        _ => runs.push((id, piece.to_vec())),
    }
}

type Outcome = (Vec<(u32, Vec<u8>)>, Option<(u32, u32)>, bool);

/// Payload runs, the first too-large frame (conn id, length) and whether
/// the stream ends between two frames.
fn reference(stream: &[u8], limit: u32) -> Outcome {
    let mut runs = Vec::new();
    let mut rest = stream;
    loop {
        if rest.len() < MUX_HEADER_LEN {
            return (runs, None, rest.is_empty());
        }
        let id = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        rest = &rest[MUX_HEADER_LEN..];
        if len > limit {
            return (runs, Some((id, len)), true);
        }
        let n = (len as usize).min(rest.len());
        if n > 0 {
            push(&mut runs, id, &rest[..n]);
        }
        rest = &rest[n..];
        if n < len as usize {
            return (runs, None, false);
        }
    }
}

fn check(ctl: u8, stream: &[u8], limit: u32) {
    let mut dec = if limit == MAX_FRAME_LEN {
        MuxDecoder::new()
    } else {
        MuxDecoder::with_limit(limit)
    };
    let mut runs = Vec::new();
    let mut error = None;
    'feed: for chunk in common::chunks(ctl, stream) {
        let mut input = chunk;
        loop {
            match dec.decode(&mut input) {
                Ok(Some((id, piece))) => {
                    assert!(!piece.is_empty(), "empty piece for connection {id}");
                    assert!(
                        piece.len() as u64 <= u64::from(limit),
                        "piece over the limit"
                    );
                    assert!(piece.len() <= chunk.len());
                    push(&mut runs, id, piece);
                }
                Ok(None) => {
                    assert!(input.is_empty(), "decode returned None with input left");
                    break;
                }
                Err(Error::MuxFrameTooLarge {
                    conn_id,
                    len,
                    limit: l,
                }) => {
                    assert_eq!(l, limit);
                    assert!(len > limit);
                    error = Some((conn_id, len));
                    break 'feed;
                }
                Err(e) => panic!("unexpected decoder error: {e}"),
            }
        }
    }
    let (want_runs, want_error, boundary) = reference(stream, limit);
    assert_eq!(
        runs, want_runs,
        "chunked decoding differs from the reference parse"
    );
    assert_eq!(error, want_error);
    if error.is_none() {
        assert_eq!(dec.at_boundary(), boundary);
    }
}

fuzz_target!(|data: &[u8]| {
    let [ctl, small, stream @ ..] = data else {
        return;
    };
    check(*ctl, stream, MAX_FRAME_LEN);
    check(*ctl, stream, u32::from(*small));
});
