//! Sans-IO ttrpc frame codec.
//!
//! A ttrpc frame is a 10-byte header (data length u32 BE, stream id u32 BE,
//! message type u8, flags u8) followed by the data. [`FrameDecoder`] turns
//! arbitrary chunks of a byte stream into frames without doing any IO, and
//! checks every declared length against its limit before it allocates: an
//! oversized frame is skipped byte by byte and reported as
//! [`Decoded::Oversized`], so the connection survives it, as with Go's ttrpc.
//! [`encode_frame`] writes one frame into a buffer.

use byteorder::{BigEndian, ByteOrder};

use crate::{Error, Result};

/// Length of the ttrpc frame header.
pub const HEADER_LEN: usize = 10;
/// Largest data length ttrpc accepts (4 MiB), the same as Go's ttrpc.
pub const MAX_MESSAGE_LEN: usize = 4 << 20;

/// Message type of a request frame.
pub const TYPE_REQUEST: u8 = 1;
/// Message type of a response frame.
pub const TYPE_RESPONSE: u8 = 2;
/// Message type of a streaming data frame (not used by NRI).
pub const TYPE_DATA: u8 = 3;

/// Flag: the sender closed its side of the stream.
pub const FLAG_REMOTE_CLOSED: u8 = 0x1;
/// Flag: the sender keeps its side open (streaming request).
pub const FLAG_REMOTE_OPEN: u8 = 0x2;
/// Flag: a data frame without data.
pub const FLAG_NO_DATA: u8 = 0x4;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Length of the data that follows the header.
    pub length: u32,
    /// Stream the frame belongs to.
    pub stream_id: u32,
    /// Message type (1 request, 2 response, 3 data; others are possible on the wire).
    pub message_type: u8,
    /// Flags byte.
    pub flags: u8,
}

impl FrameHeader {
    /// Parses a header from exactly [`HEADER_LEN`] bytes.
    pub fn parse(b: &[u8; HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            length: BigEndian::read_u32(&b[0..4]),
            stream_id: BigEndian::read_u32(&b[4..8]),
            message_type: b[8],
            flags: b[9],
        }
    }

    /// Serializes the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        BigEndian::write_u32(&mut b[0..4], self.length);
        BigEndian::write_u32(&mut b[4..8], self.stream_id);
        b[8] = self.message_type;
        b[9] = self.flags;
        b
    }

    /// The header of a frame carrying `len` bytes of data; fails with
    /// [`Error::MessageTooLarge`] when `len` exceeds [`MAX_MESSAGE_LEN`].
    pub(crate) fn for_len(
        stream_id: u32,
        message_type: u8,
        flags: u8,
        len: usize,
    ) -> Result<FrameHeader> {
        if len > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLarge {
                len: len as u64,
                limit: MAX_MESSAGE_LEN as u64,
            });
        }
        Ok(FrameHeader {
            length: len as u32,
            stream_id,
            message_type,
            flags,
        })
    }
}

/// What the decoder produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A complete frame.
    Frame {
        /// Its header.
        header: FrameHeader,
        /// Its data (`header.length` bytes).
        data: Vec<u8>,
    },
    /// A frame whose declared length exceeded the limit; its data was
    /// skipped without being stored. The stream it names should fail with
    /// RESOURCE_EXHAUSTED while the connection goes on.
    Oversized {
        /// Its header.
        header: FrameHeader,
        /// The limit it exceeded.
        limit: usize,
    },
}

#[derive(Debug)]
enum State {
    Header { buf: [u8; HEADER_LEN], have: usize },
    Data { header: FrameHeader, data: Vec<u8> },
    Skip { header: FrameHeader, left: u64 },
}

/// Incremental, allocation-bounded ttrpc frame decoder.
///
/// ```
/// use nri::ttrpc::codec::{encode_frame, Decoded, FrameDecoder, TYPE_REQUEST};
/// let mut wire = Vec::new();
/// encode_frame(&mut wire, 1, TYPE_REQUEST, 0, b"hello").unwrap();
/// let mut dec = FrameDecoder::new();
/// let mut input = &wire[..3]; // arbitrary chunking
/// assert!(dec.decode(&mut input).is_none());
/// let mut input = &wire[3..];
/// match dec.decode(&mut input) {
///     Some(Decoded::Frame { header, data }) => {
///         assert_eq!(header.stream_id, 1);
///         assert_eq!(data, b"hello");
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    state: State,
    limit: usize,
    spare: Option<Vec<u8>>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the standard 4 MiB limit.
    pub fn new() -> Self {
        Self::with_limit(MAX_MESSAGE_LEN)
    }

    /// A decoder with a custom data-length limit.
    pub fn with_limit(limit: usize) -> Self {
        FrameDecoder {
            state: State::Header {
                buf: [0; HEADER_LEN],
                have: 0,
            },
            limit,
            spare: None,
        }
    }

    /// Offers a used buffer for the next frame's data, saving an
    /// allocation; its contents are discarded.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let better = match &self.spare {
            Some(s) => s.capacity() < buf.capacity(),
            None => true,
        };
        if better {
            self.spare = Some(buf);
        }
    }

    /// True when a recycled buffer is waiting to be used.
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// True when the decoder sits exactly between two frames.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// Consumes bytes from `input` (advancing it) until one frame is
    /// complete, and returns it; returns `None` once `input` is exhausted
    /// without completing a frame. Call again with the rest of `input`.
    pub fn decode(&mut self, input: &mut &[u8]) -> Option<Decoded> {
        loop {
            match &mut self.state {
                State::Header { buf, have } => {
                    if input.is_empty() {
                        return None;
                    }
                    let n = (HEADER_LEN - *have).min(input.len());
                    buf[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    *input = &input[n..];
                    if *have < HEADER_LEN {
                        return None;
                    }
                    let header = FrameHeader::parse(buf);
                    let len = header.length as usize;
                    if len > self.limit {
                        self.state = State::Skip {
                            header,
                            left: header.length as u64,
                        };
                    } else if len == 0 {
                        self.reset();
                        return Some(Decoded::Frame {
                            header,
                            data: Vec::new(),
                        });
                    } else {
                        let data = match self.spare.take() {
                            Some(mut b) => {
                                b.clear();
                                b.reserve(len);
                                b
                            }
                            None => Vec::with_capacity(len),
                        };
                        self.state = State::Data { header, data };
                    }
                }
                State::Data { header, data } => {
                    let want = header.length as usize - data.len();
                    let n = want.min(input.len());
                    data.extend_from_slice(&input[..n]);
                    *input = &input[n..];
                    if data.len() < header.length as usize {
                        return None;
                    }
                    let header = *header;
                    let data = std::mem::take(data);
                    self.reset();
                    return Some(Decoded::Frame { header, data });
                }
                State::Skip { header, left } => {
                    let n = (*left).min(input.len() as u64) as usize;
                    *left -= n as u64;
                    *input = &input[n..];
                    if *left > 0 {
                        return None;
                    }
                    let header = *header;
                    self.reset();
                    return Some(Decoded::Oversized {
                        header,
                        limit: self.limit,
                    });
                }
            }
        }
    }

    /// Inside a frame's data: the buffer its bytes go to (to be appended
    /// to, by at most [`FrameDecoder::need`] bytes), so that a reader can
    /// put them there itself; [`FrameDecoder::take_complete`] then hands
    /// the frame out once it is whole.
    pub(crate) fn data_buffer(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.state {
            State::Data { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The frame whose data a reader completed through
    /// [`FrameDecoder::data_buffer`]; `None` while bytes are missing.
    pub(crate) fn take_complete(&mut self) -> Option<Decoded> {
        match &mut self.state {
            State::Data { header, data } if data.len() >= header.length as usize => {
                let header = *header;
                let data = std::mem::take(data);
                self.reset();
                Some(Decoded::Frame { header, data })
            }
            _ => None,
        }
    }

    /// Bytes that complete the current header, data or skipped data: a
    /// reader that must not take a byte past the frame asks for this many.
    pub(crate) fn need(&self) -> usize {
        match &self.state {
            State::Header { have, .. } => HEADER_LEN - have,
            State::Data { header, data } => header.length as usize - data.len(),
            State::Skip { left, .. } => *left as usize,
        }
    }

    fn reset(&mut self) {
        self.state = State::Header {
            buf: [0; HEADER_LEN],
            have: 0,
        };
    }
}

/// Appends one frame (header and data) to `out`.
///
/// Fails with [`Error::MessageTooLarge`] when `data` exceeds
/// [`MAX_MESSAGE_LEN`]; nothing is written then.
pub fn encode_frame(
    out: &mut Vec<u8>,
    stream_id: u32,
    message_type: u8,
    flags: u8,
    data: &[u8],
) -> Result<()> {
    let header = FrameHeader::for_len(stream_id, message_type, flags, data.len())?;
    out.reserve(HEADER_LEN + data.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_carries_nothing_into_the_next_frame() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, 1, TYPE_REQUEST, 0, &[1u8; 300]).unwrap();
        encode_frame(&mut wire, 3, TYPE_REQUEST, 0, &[2u8; 20]).unwrap();
        encode_frame(&mut wire, 5, TYPE_REQUEST, 0, &[3u8; 5000]).unwrap();
        let mut d = FrameDecoder::new();
        let mut input = &wire[..];
        let mut seen = Vec::new();
        while let Some(Decoded::Frame { header, data }) = d.decode(&mut input) {
            seen.push((
                header.stream_id,
                data.len(),
                data.iter().all(|&b| b == data[0]),
            ));
            assert!(!d.has_spare());
            d.recycle(data);
            assert!(d.has_spare());
        }
        assert_eq!(seen, vec![(1, 300, true), (3, 20, true), (5, 5000, true)]);
    }

    fn frame(id: u32, ty: u8, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame(&mut v, id, ty, 0, data).unwrap();
        v
    }

    #[test]
    fn decodes_frames_fed_one_byte_at_a_time() {
        let mut wire = frame(1, TYPE_REQUEST, b"abc");
        wire.extend(frame(3, TYPE_RESPONSE, b""));
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &wire {
            let mut input = std::slice::from_ref(b);
            while let Some(d) = dec.decode(&mut input) {
                got.push(d);
            }
        }
        assert_eq!(got.len(), 2);
        assert!(
            matches!(&got[0], Decoded::Frame { header, data } if header.stream_id == 1 && data == b"abc")
        );
        assert!(
            matches!(&got[1], Decoded::Frame { header, data } if header.stream_id == 3 && data.is_empty())
        );
        assert!(dec.at_boundary());
    }

    #[test]
    fn truncated_header_yields_nothing_and_waits() {
        let wire = frame(1, TYPE_REQUEST, b"abc");
        let mut dec = FrameDecoder::new();
        let mut input = &wire[..7];
        assert_eq!(dec.decode(&mut input), None);
        assert!(input.is_empty());
        assert!(!dec.at_boundary());
    }

    #[test]
    fn max_declared_length_is_skipped_without_allocation() {
        let header = FrameHeader {
            length: u32::MAX,
            stream_id: 5,
            message_type: TYPE_REQUEST,
            flags: 0,
        };
        let mut dec = FrameDecoder::new();
        let hb = header.to_bytes();
        let mut input = &hb[..];
        assert_eq!(dec.decode(&mut input), None);
        // Skipping state holds no buffer; feed a few chunks.
        let chunk = vec![0u8; 1 << 16];
        for _ in 0..4 {
            let mut input = &chunk[..];
            assert_eq!(dec.decode(&mut input), None);
            assert!(input.is_empty());
        }
        assert!(
            matches!(dec.state, State::Skip { left, .. } if left == u32::MAX as u64 - 4 * (1 << 16))
        );
    }

    #[test]
    fn length_just_over_limit_is_reported_oversized_and_stream_continues() {
        let big = vec![7u8; MAX_MESSAGE_LEN + 1];
        let mut wire = FrameHeader {
            length: big.len() as u32,
            stream_id: 9,
            message_type: TYPE_REQUEST,
            flags: 0,
        }
        .to_bytes()
        .to_vec();
        wire.extend_from_slice(&big);
        wire.extend(frame(11, TYPE_REQUEST, b"next"));
        let mut dec = FrameDecoder::new();
        let mut input = &wire[..];
        match dec.decode(&mut input) {
            Some(Decoded::Oversized { header, limit }) => {
                assert_eq!(header.stream_id, 9);
                assert_eq!(limit, MAX_MESSAGE_LEN);
            }
            other => panic!("expected oversized, got {other:?}"),
        }
        match dec.decode(&mut input) {
            Some(Decoded::Frame { header, data }) => {
                assert_eq!(header.stream_id, 11);
                assert_eq!(data, b"next");
            }
            other => panic!("expected frame, got {other:?}"),
        }
    }

    #[test]
    fn encode_refuses_data_over_limit() {
        let mut out = Vec::new();
        let err =
            encode_frame(&mut out, 1, TYPE_REQUEST, 0, &vec![0; MAX_MESSAGE_LEN + 1]).unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { len, limit } if len == MAX_MESSAGE_LEN as u64 + 1 && limit == MAX_MESSAGE_LEN as u64)
        );
        assert!(out.is_empty());
        assert!(err.to_string().contains("4194304"));
    }

    #[test]
    fn header_round_trips() {
        let h = FrameHeader {
            length: 0x01020304,
            stream_id: 0x0a0b0c0d,
            message_type: 3,
            flags: FLAG_NO_DATA | FLAG_REMOTE_CLOSED,
        };
        assert_eq!(FrameHeader::parse(&h.to_bytes()), h);
        assert_eq!(&h.to_bytes()[..4], &[1, 2, 3, 4]);
    }
}
