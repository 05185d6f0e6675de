//! Fuzzes the sans-IO ttrpc frame decoder (`nri::ttrpc::codec`).
//!
//! Input layout: byte 0 picks the chunk sizes the stream is fed in (see
//! `common::chunks`), byte 1 picks a second, small data limit so that the
//! oversized-frame path is reached with small inputs; the rest is the byte
//! stream. Checked, for both the default 4 MiB limit and the small one:
//!
//! - no frame carries more data than the limit, and its data length is the
//!   declared one; oversized frames really declared more than the limit;
//! - `decode` returning `None` means it consumed all its input;
//! - chunking does not matter: the frames equal those of a plain
//!   reference parser over the whole stream, and `at_boundary` agrees with
//!   where that parser stopped;
//! - `encode_frame` of a decoded frame reproduces its header and data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::ttrpc::codec::{
    encode_frame, Decoded, FrameDecoder, FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN,
};

#[path = "common.rs"]
mod common;

/// What the decoder must produce for `stream`: every complete frame, in
/// order, and whether the stream ends exactly between two frames.
fn reference(stream: &[u8], limit: usize) -> (Vec<Decoded>, bool) {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        if rest.len() < HEADER_LEN {
            return (out, rest.is_empty());
        }
        let mut hb = [0u8; HEADER_LEN];
        hb.copy_from_slice(&rest[..HEADER_LEN]);
        let header = FrameHeader::parse(&hb);
        let len = header.length as usize;
        if rest.len() - HEADER_LEN < len {
            return (out, false);
        }
        out.push(if len > limit {
            Decoded::Oversized { header, limit }
        } else {
            Decoded::Frame {
                header,
                data: rest[HEADER_LEN..HEADER_LEN + len].to_vec(),
            }
        });
        rest = &rest[HEADER_LEN + len..];
    }
}

fn check(ctl: u8, stream: &[u8], limit: usize) {
    let mut dec = if limit == MAX_MESSAGE_LEN {
        FrameDecoder::new()
    } else {
        FrameDecoder::with_limit(limit)
    };
    let mut got = Vec::new();
    for chunk in common::chunks(ctl, stream) {
        let mut input = chunk;
        loop {
            match dec.decode(&mut input) {
                Some(d) => got.push(d),
                None => {
                    assert!(input.is_empty(), "decode returned None with input left");
                    break;
                }
            }
        }
    }
    for d in &got {
        match d {
            Decoded::Frame { header, data } => {
                assert!(
                    data.len() <= limit,
                    "frame data {} > limit {limit}",
                    data.len()
                );
                assert!(data.len() <= MAX_MESSAGE_LEN);
                assert_eq!(data.len(), header.length as usize);
                let mut wire = Vec::new();
                encode_frame(
                    &mut wire,
                    header.stream_id,
                    header.message_type,
                    header.flags,
                    data,
                )
                .expect("a decoded frame is within the limit, so it encodes");
                let mut hb = [0u8; HEADER_LEN];
                hb.copy_from_slice(&wire[..HEADER_LEN]);
                assert_eq!(FrameHeader::parse(&hb), *header);
                assert_eq!(hb, header.to_bytes());
                assert_eq!(&wire[HEADER_LEN..], &data[..]);
            }
            Decoded::Oversized { header, limit: l } => {
                assert_eq!(*l, limit);
                assert!(header.length as usize > limit);
            }
        }
    }
    let (want, boundary) = reference(stream, limit);
    assert_eq!(
        got, want,
        "chunked decoding differs from the reference parse"
    );
    assert_eq!(dec.at_boundary(), boundary);
}

fuzz_target!(|data: &[u8]| {
    let [ctl, small, stream @ ..] = data else {
        return;
    };
    check(*ctl, stream, MAX_MESSAGE_LEN);
    check(*ctl, stream, usize::from(*small));
});
