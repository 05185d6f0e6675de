//! Sans-IO codec for NRI's trunk framing.
//!
//! A trunk frame is an 8-byte header (logical connection id u32 BE, payload
//! length u32 BE) followed by that many payload bytes. A logical connection
//! is a byte stream, so the decoder does not reassemble frames: it hands out
//! each piece of payload, tagged with its connection id, as soon as it has
//! it, borrowing from the input (no copy, no buffering beyond the header).
//! [`encode_message`] shapes one complete ttrpc message into at most two
//! frames the way Go's reader needs them (see the module docs of
//! [`crate::mux`]).

use byteorder::{BigEndian, ByteOrder};

use crate::{Error, Result};

/// Length of the trunk frame header.
pub const MUX_HEADER_LEN: usize = 8;
/// Largest payload the decoder accepts in one frame by default: the largest
/// ttrpc message (4 MiB of data plus its 10-byte header).
pub const MAX_FRAME_LEN: u32 = (4 << 20) + 10;
/// The largest first frame a Go reader can take at a message boundary (its
/// `bufio.Reader` size).
pub const GO_READ_BUFFER: usize = 4096;

/// Incremental trunk decoder.
///
/// ```
/// use nri::mux::codec::{encode_message, MuxDecoder};
/// let mut wire = Vec::new();
/// encode_message(&mut wire, 2, b"payload").unwrap();
/// let mut dec = MuxDecoder::new();
/// let mut input = &wire[..];
/// assert_eq!(dec.decode(&mut input).unwrap(), Some((2, &b"payload"[..])));
/// assert_eq!(dec.decode(&mut input).unwrap(), None);
/// ```
#[derive(Debug)]
pub struct MuxDecoder {
    header: [u8; MUX_HEADER_LEN],
    have: usize,
    conn_id: u32,
    left: u32,
    limit: u32,
}

impl Default for MuxDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl MuxDecoder {
    /// A decoder with the default frame limit ([`MAX_FRAME_LEN`]).
    pub fn new() -> Self {
        Self::with_limit(MAX_FRAME_LEN)
    }

    /// A decoder with a custom frame-length limit.
    pub fn with_limit(limit: u32) -> Self {
        MuxDecoder {
            header: [0; MUX_HEADER_LEN],
            have: 0,
            conn_id: 0,
            left: 0,
            limit,
        }
    }

    /// True when the decoder sits between two frames.
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.left == 0
    }

    /// Bytes that complete the current header; 0 inside a payload.
    pub(crate) fn header_need(&self) -> usize {
        if self.left > 0 {
            0
        } else {
            MUX_HEADER_LEN - self.have
        }
    }

    /// Inside a frame's payload: its logical connection and the bytes left.
    pub(crate) fn payload(&self) -> Option<(u32, u32)> {
        (self.left > 0).then_some((self.conn_id, self.left))
    }

    /// Counts `n` bytes of the current payload (at most what is left) as
    /// taken by a reader that put them in place itself.
    pub(crate) fn consumed(&mut self, n: usize) {
        self.left -= (n as u32).min(self.left);
    }

    /// Consumes bytes from `input` and returns the next piece of payload with
    /// its connection id, or `None` when `input` is used up. Empty frames
    /// produce nothing. A frame declaring more than the limit is a fatal
    /// protocol error: the trunk cannot be trusted after it.
    pub fn decode<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<(u32, &'a [u8])>> {
        loop {
            if self.left > 0 {
                if input.is_empty() {
                    return Ok(None);
                }
                let n = (self.left as usize).min(input.len());
                let (piece, rest) = input.split_at(n);
                *input = rest;
                self.left -= n as u32;
                return Ok(Some((self.conn_id, piece)));
            }
            if input.is_empty() {
                return Ok(None);
            }
            let n = (MUX_HEADER_LEN - self.have).min(input.len());
            self.header[self.have..self.have + n].copy_from_slice(&input[..n]);
            self.have += n;
            *input = &input[n..];
            if self.have < MUX_HEADER_LEN {
                return Ok(None);
            }
            self.have = 0;
            let conn_id = BigEndian::read_u32(&self.header[0..4]);
            let len = BigEndian::read_u32(&self.header[4..8]);
            if len > self.limit {
                return Err(Error::MuxFrameTooLarge {
                    conn_id,
                    len,
                    limit: self.limit,
                });
            }
            self.conn_id = conn_id;
            self.left = len;
        }
    }
}

/// Appends one trunk frame carrying `payload` for `conn_id` to `out`.
/// Empty payloads are not written (Go readers choke on empty frames).
pub fn encode_frame(out: &mut Vec<u8>, conn_id: u32, payload: &[u8]) {
    if payload.is_empty() {
        return;
    }
    push_header(out, conn_id, payload.len());
    out.extend_from_slice(payload);
}

/// Appends the header of a trunk frame of `len` payload bytes for
/// `conn_id` to `out`.
pub(crate) fn push_header(out: &mut Vec<u8>, conn_id: u32, len: usize) {
    let mut h = [0u8; MUX_HEADER_LEN];
    BigEndian::write_u32(&mut h[0..4], conn_id);
    BigEndian::write_u32(&mut h[4..8], len as u32);
    out.extend_from_slice(&h);
}

/// Appends one complete ttrpc message (`message`: its 10-byte header and
/// data) to `out` as trunk frames a Go reader accepts: one frame when the
/// message is at most 4096 bytes, else its first 4096 bytes then the rest.
/// No frame ever holds bytes of two messages, and no frame is empty.
pub fn encode_message(out: &mut Vec<u8>, conn_id: u32, message: &[u8]) -> Result<()> {
    encode_message_parts(out, conn_id, &[message])
}

/// Like [`encode_message`], for a message given as consecutive parts (for
/// example its header, an envelope head and a payload), which are copied
/// into the frames without being joined first.
pub(crate) fn encode_message_parts(out: &mut Vec<u8>, conn_id: u32, parts: &[&[u8]]) -> Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > MAX_FRAME_LEN as usize {
        return Err(Error::MessageTooLarge {
            len: total as u64,
            limit: MAX_FRAME_LEN as u64,
        });
    }
    if total == 0 {
        return Ok(());
    }
    out.reserve(total + 2 * MUX_HEADER_LEN);
    // The frame boundary falls `first` bytes into the message.
    let first = total.min(GO_READ_BUFFER);
    push_header(out, conn_id, first);
    let mut left = first;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if left == 0 {
            push_header(out, conn_id, total - first);
            left = usize::MAX;
        }
        if part.len() <= left {
            out.extend_from_slice(part);
            left -= part.len();
        } else {
            let (a, b) = part.split_at(left);
            out.extend_from_slice(a);
            push_header(out, conn_id, total - first);
            out.extend_from_slice(b);
            left = usize::MAX;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits encoded trunk bytes back into (conn, payload) frames.
    fn frames(mut wire: &[u8]) -> Vec<(u32, usize)> {
        let mut v = Vec::new();
        while !wire.is_empty() {
            let id = BigEndian::read_u32(&wire[0..4]);
            let len = BigEndian::read_u32(&wire[4..8]) as usize;
            v.push((id, len));
            wire = &wire[8 + len..];
        }
        v
    }

    #[test]
    fn messages_up_to_4096_bytes_are_one_frame() {
        for len in [1usize, 10, 4095, 4096] {
            let mut out = Vec::new();
            encode_message(&mut out, 1, &vec![1; len]).unwrap();
            assert_eq!(frames(&out), vec![(1, len)], "len {len}");
        }
    }

    #[test]
    fn larger_messages_are_4096_then_the_rest() {
        for len in [4097usize, 8192, 1 << 20, (4 << 20) + 10] {
            let mut out = Vec::new();
            encode_message(&mut out, 2, &vec![1; len]).unwrap();
            assert_eq!(frames(&out), vec![(2, 4096), (2, len - 4096)], "len {len}");
        }
    }

    #[test]
    fn parts_are_framed_as_the_joined_message() {
        let message: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
        for total in [1usize, 10, 4095, 4096, 4097, 5000, 9000] {
            let m = &message[..total];
            let mut joined = Vec::new();
            encode_message(&mut joined, 3, m).unwrap();
            // Every way to cut the message into three parts (some empty).
            for a in [0, 1, 9, 10, total / 2, 4095, 4096, total] {
                for b in [a, a + 1, 4096, 4097, total] {
                    if a > total || b > total || b < a {
                        continue;
                    }
                    let mut parts = Vec::new();
                    encode_message_parts(&mut parts, 3, &[&m[..a], &m[a..b], &m[b..]]).unwrap();
                    assert_eq!(parts, joined, "total {total}, cuts {a} {b}");
                }
            }
        }
        let mut out = Vec::new();
        assert!(encode_message_parts(&mut out, 1, &[&[], &[]]).is_ok());
        assert!(out.is_empty());
    }

    #[test]
    fn empty_payload_writes_no_frame() {
        let mut out = Vec::new();
        encode_message(&mut out, 1, b"").unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn frame_over_limit_is_a_fatal_error_naming_it() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&1u32.to_be_bytes());
        wire.extend_from_slice(&(MAX_FRAME_LEN + 1).to_be_bytes());
        let mut dec = MuxDecoder::new();
        let mut input = &wire[..];
        let err = dec.decode(&mut input).unwrap_err();
        assert!(
            matches!(err, Error::MuxFrameTooLarge { conn_id: 1, len, limit } if len == MAX_FRAME_LEN + 1 && limit == MAX_FRAME_LEN)
        );
        assert!(err.to_string().contains("4194315"));
    }

    #[test]
    fn payload_is_streamed_across_chunk_boundaries() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, 1, b"hello world");
        encode_frame(&mut wire, 2, b"xy");
        let mut dec = MuxDecoder::new();
        let mut got: Vec<(u32, Vec<u8>)> = Vec::new();
        for chunk in wire.chunks(3) {
            let mut input = chunk;
            while let Some((id, piece)) = dec.decode(&mut input).unwrap() {
                match got.last_mut() {
                    Some((last, buf)) if *last == id => buf.extend_from_slice(piece),
                    _ => got.push((id, piece.to_vec())),
                }
            }
        }
        assert_eq!(got, vec![(1, b"hello world".to_vec()), (2, b"xy".to_vec())]);
        assert!(dec.at_boundary());
    }

    #[test]
    fn empty_frames_are_skipped() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        encode_frame(&mut wire, 1, b"a");
        let mut dec = MuxDecoder::new();
        let mut input = &wire[..];
        assert_eq!(dec.decode(&mut input).unwrap(), Some((1, &b"a"[..])));
    }
}
