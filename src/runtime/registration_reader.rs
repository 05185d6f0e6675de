//! The frames a plugin sends before it is registered, read without I/O and
//! without reading a byte past the message at hand.
//!
//! Until a plugin has registered, the runtime reads its socket itself, on
//! the one thread that watches every unregistered connection, instead of
//! starting a connection with worker threads for it (see
//! `registration.rs`). Once the plugin's `RegisterPlugin` request is in,
//! the socket is handed to a [`Connection`](crate::ttrpc::Connection),
//! which must find the stream exactly where a trunk frame starts. So this
//! reader tells how many bytes it may take next ([`FrameReader::want`]),
//! never more than what completes the current trunk header or ttrpc
//! message, and decodes what it is given: trunk frames (logical connection
//! id and length, big-endian), and on the runtime service's logical
//! connection the ttrpc frames they carry (the 10-byte header, then the
//! data). Frames for other logical connections are skipped, as a
//! connection drops them.
//!
//! A message longer than `limit` is skipped, not buffered; what is held
//! per connection is at most `limit` bytes.

use crate::mux::codec::MuxDecoder;
use crate::mux::RUNTIME_SERVICE_CONN;
use crate::ttrpc::codec::{Decoded, FrameDecoder, TYPE_REQUEST};
use crate::{Error, Result};

/// Most bytes skipped in one go (frames for other logical connections).
const SKIP_CHUNK: usize = 64 * 1024;

/// What a complete ttrpc frame on the runtime service's logical connection
/// turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// A request: its stream id and envelope bytes.
    Request { stream_id: u32, data: Vec<u8> },
    /// A request over the limit, skipped: its stream id and length.
    Oversized { stream_id: u32, len: u32 },
}

impl Message {
    /// The message a decoded frame makes (a frame that is not a request is
    /// dropped).
    fn of(decoded: Decoded) -> Option<Message> {
        let (header, message) = match decoded {
            Decoded::Frame { header, data } => (
                header,
                Message::Request {
                    stream_id: header.stream_id,
                    data,
                },
            ),
            Decoded::Oversized { header, .. } => (
                header,
                Message::Oversized {
                    stream_id: header.stream_id,
                    len: header.length,
                },
            ),
        };
        (header.message_type == TYPE_REQUEST).then_some(message)
    }
}

/// Decodes the frames of an unregistered plugin; see the module docs: the
/// trunk's and ttrpc's own decoders, fed no more than completes a part.
#[derive(Debug)]
pub(crate) struct FrameReader {
    trunk: MuxDecoder,
    ttrpc: FrameDecoder,
}

impl FrameReader {
    /// A reader buffering messages of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> FrameReader {
        FrameReader {
            trunk: MuxDecoder::new(),
            ttrpc: FrameDecoder::with_limit(limit),
        }
    }

    /// True between two trunk frames and two ttrpc messages: where a
    /// connection can take the stream over.
    pub(crate) fn at_boundary(&self) -> bool {
        self.trunk.at_boundary() && self.ttrpc.at_boundary()
    }

    /// How many bytes to read next: at least 1, and none past the end of
    /// the current trunk header, ttrpc header or message.
    pub(crate) fn want(&self) -> usize {
        match self.trunk.payload() {
            None => self.trunk.header_need(),
            Some((conn_id, left)) if conn_id == RUNTIME_SERVICE_CONN => {
                (left as usize).min(self.ttrpc.need()).max(1)
            }
            Some((_, left)) => (left as usize).clamp(1, SKIP_CHUNK),
        }
    }

    /// Takes `bytes` (at most [`FrameReader::want`] of them) and returns
    /// the message they complete, if any. A trunk frame over the trunk's
    /// limit is an error: the stream cannot be followed after it.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<Option<Message>> {
        let mut out = None;
        while let Some((conn_id, mut piece)) = self.trunk.decode(&mut bytes)? {
            if conn_id != RUNTIME_SERVICE_CONN {
                continue;
            }
            while let Some(decoded) = self.ttrpc.decode(&mut piece) {
                let Some(message) = Message::of(decoded) else {
                    continue;
                };
                if out.is_some() || !piece.is_empty() || !bytes.is_empty() {
                    return Err(Error::Protocol(
                        "more bytes were fed than the reader asked for".into(),
                    ));
                }
                out = Some(message);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::codec::{encode_message, MAX_FRAME_LEN};
    use crate::mux::PLUGIN_SERVICE_CONN;
    use crate::ttrpc::codec::{encode_frame, TYPE_RESPONSE};

    fn request(stream_id: u32, data: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_frame(&mut frame, stream_id, TYPE_REQUEST, 0, data).unwrap();
        frame
    }

    fn on(conn_id: u32, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_message(&mut out, conn_id, message).unwrap();
        out
    }

    /// Feeds `wire` the way a socket read would, never more than asked;
    /// returns the messages and how many bytes were taken.
    fn read_all(r: &mut FrameReader, wire: &[u8], step: usize) -> (Vec<Message>, usize) {
        let (mut at, mut out) = (0, Vec::new());
        while at < wire.len() {
            let n = r.want().min(step).min(wire.len() - at);
            if let Some(m) = r.feed(&wire[at..at + n]).unwrap() {
                out.push(m);
                at += n;
                return (out, at);
            }
            at += n;
        }
        (out, at)
    }

    #[test]
    fn a_request_is_read_to_its_last_byte_and_not_one_more() {
        let mut wire = on(RUNTIME_SERVICE_CONN, &request(1, b"register"));
        let first = wire.len();
        wire.extend(on(RUNTIME_SERVICE_CONN, &request(3, b"next")));
        for step in [1, 3, 7, 1000] {
            let mut r = FrameReader::new(64);
            let (got, taken) = read_all(&mut r, &wire, step);
            assert_eq!(
                got,
                vec![Message::Request {
                    stream_id: 1,
                    data: b"register".to_vec()
                }]
            );
            assert_eq!(taken, first, "step {step}");
            assert!(r.at_boundary());
        }
    }

    #[test]
    fn other_connections_and_replies_are_skipped() {
        let mut wire = on(PLUGIN_SERVICE_CONN, &request(1, b"not ours"));
        let mut reply = Vec::new();
        encode_frame(&mut reply, 1, TYPE_RESPONSE, 0, b"a reply").unwrap();
        wire.extend(on(RUNTIME_SERVICE_CONN, &reply));
        wire.extend(on(RUNTIME_SERVICE_CONN, &request(5, b"ours")));
        let mut r = FrameReader::new(64);
        let (got, taken) = read_all(&mut r, &wire, 1 << 20);
        assert_eq!(
            got,
            vec![Message::Request {
                stream_id: 5,
                data: b"ours".to_vec()
            }]
        );
        assert_eq!(taken, wire.len());
    }

    #[test]
    fn a_request_over_the_limit_is_skipped_not_held() {
        let big = vec![7u8; 10_000];
        let wire = on(RUNTIME_SERVICE_CONN, &request(7, &big));
        let mut r = FrameReader::new(100);
        let (got, taken) = read_all(&mut r, &wire, 4096);
        assert_eq!(
            got,
            vec![Message::Oversized {
                stream_id: 7,
                len: 10_000
            }]
        );
        assert_eq!(taken, wire.len());
        assert!(r.at_boundary());
    }

    #[test]
    fn a_trunk_frame_over_its_limit_is_an_error_and_a_shared_frame_is_seen() {
        let mut r = FrameReader::new(64);
        let mut header = RUNTIME_SERVICE_CONN.to_be_bytes().to_vec();
        header.extend((MAX_FRAME_LEN + 1).to_be_bytes());
        assert!(matches!(
            r.feed(&header),
            Err(Error::MuxFrameTooLarge { .. })
        ));
        // One trunk frame holding two requests: the first one ends inside
        // the frame, where a connection could not take over.
        let mut two = request(1, b"a");
        two.extend(request(3, b"b"));
        let wire = on(RUNTIME_SERVICE_CONN, &two);
        let mut r = FrameReader::new(64);
        let (got, _) = read_all(&mut r, &wire, 1 << 20);
        assert_eq!(got.len(), 1);
        assert!(!r.at_boundary());
    }
}
