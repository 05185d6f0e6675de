//! What the peer sends: bytes in, one [`Incoming`] per complete frame out.
//!
//! [`Inbound`] holds the receiving state of a socket: the trunk decoder
//! (with [`Framing::Mux`]) and, for each logical connection opened, a
//! frame decoder and the check of request stream ids. [`Inbound::feed`]
//! takes the bytes one read delivered and [`Feed::next`] hands out what
//! they complete, one at a time, without allocating anything but the
//! frames' own data (and that from a recycled buffer when one is offered).
//! [`InboundConn::classify`] is the one place that decides what a decoded
//! frame means.

use std::collections::HashMap;
use std::fmt;

use super::envelope::{Envelope, EnvelopeError};
use super::stream_ids::RequestIds;
use super::Framing;
use crate::mux::codec::MuxDecoder;
use crate::proto::ttrpc::Response;
use crate::status::{Code, Status};
use crate::ttrpc::codec::{Decoded, FrameDecoder, FrameHeader, TYPE_REQUEST, TYPE_RESPONSE};
use crate::{Error, Result};

/// What one received frame means.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A request to serve.
    Request {
        /// Logical connection it came on.
        conn_id: u32,
        /// Its stream id (the reply goes there).
        stream_id: u32,
        /// The decoded envelope, payload still in the frame.
        envelope: Envelope,
    },
    /// A request to answer with `status` without serving it.
    Refuse {
        /// Logical connection it came on.
        conn_id: u32,
        /// Its stream id.
        stream_id: u32,
        /// The status to answer with.
        status: Status,
    },
    /// The reply to a call this side made.
    Reply {
        /// Logical connection it came on.
        conn_id: u32,
        /// The stream id of the call.
        stream_id: u32,
        /// The decoded response, or why it could not be had.
        reply: Result<Response>,
    },
    /// Bytes dropped; the reason is for the log.
    Ignored(Ignored),
}

/// Received bytes that carry nothing to act on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// Trunk payload for a logical connection that was not opened (the Go
    /// multiplexer drops such bytes too).
    Unopened {
        /// The logical connection named.
        conn_id: u32,
        /// Bytes dropped.
        len: usize,
    },
    /// A frame of a message type this side does not handle (streaming
    /// data, or a type from a later protocol version).
    UnsupportedType {
        /// Logical connection it came on.
        conn_id: u32,
        /// Its header.
        header: FrameHeader,
    },
    /// An oversized frame of a message type this side does not handle.
    Oversized {
        /// Logical connection it came on.
        conn_id: u32,
        /// Its header.
        header: FrameHeader,
        /// The limit it exceeded.
        limit: usize,
    },
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::Unopened { conn_id, len } => write!(
                f,
                "dropping {len} bytes for unopened logical connection {conn_id}"
            ),
            Ignored::UnsupportedType { conn_id, header } => write!(
                f,
                "ignoring ttrpc frame of unsupported message type {} on stream {} of logical connection {conn_id} ({} bytes)",
                header.message_type, header.stream_id, header.length
            ),
            Ignored::Oversized {
                conn_id,
                header,
                limit,
            } => write!(
                f,
                "dropped message of {} bytes on stream {} of logical connection {conn_id}, over the {limit}-byte limit (message type {})",
                header.length, header.stream_id, header.message_type
            ),
        }
    }
}

/// The receiving state of one logical connection.
#[derive(Debug)]
struct InboundConn {
    decoder: FrameDecoder,
    requests: RequestIds,
}

impl InboundConn {
    /// What a decoded frame means: the message type, the request stream id
    /// rules and oversized frames are decided here. An error is fatal: a
    /// request after the peer used the last stream id (no later request
    /// can be valid, so the connection is of no more use).
    fn classify(&mut self, conn_id: u32, decoded: Decoded) -> Result<Incoming> {
        Ok(match decoded {
            Decoded::Frame { header, data } => {
                let stream_id = header.stream_id;
                match header.message_type {
                    TYPE_REQUEST => match self.requests.accept(stream_id) {
                        Err(_) if self.requests.used_up() => {
                            return Err(Error::Protocol(format!(
                                "the peer sent a request (stream {stream_id}) on logical \
                                 connection {conn_id} after using the last stream id ({}); ttrpc \
                                 stream ids must increase, so the connection can serve no more \
                                 requests",
                                u32::MAX
                            )))
                        }
                        Err(status) => {
                            self.decoder.recycle(data);
                            Incoming::Refuse {
                                conn_id,
                                stream_id,
                                status,
                            }
                        }
                        Ok(()) => match Envelope::decode(data) {
                            Ok(envelope) => Incoming::Request {
                                conn_id,
                                stream_id,
                                envelope,
                            },
                            Err(e @ EnvelopeError::Metadata { .. }) => Incoming::Refuse {
                                conn_id,
                                stream_id,
                                status: Status::new(Code::ResourceExhausted, e.to_string()),
                            },
                            Err(e) => Incoming::Refuse {
                                conn_id,
                                stream_id,
                                status: Status::new(
                                    Code::InvalidArgument,
                                    format!("cannot decode ttrpc request envelope: {e}"),
                                ),
                            },
                        },
                    },
                    TYPE_RESPONSE => {
                        let reply =
                            crate::pb::decode::<Response>(&data).map_err(|e| Error::Protobuf {
                                what: "decoding",
                                message: "ttrpc.Response",
                                source: e,
                            });
                        self.decoder.recycle(data);
                        Incoming::Reply {
                            conn_id,
                            stream_id,
                            reply,
                        }
                    }
                    _ => {
                        self.decoder.recycle(data);
                        Incoming::Ignored(Ignored::UnsupportedType { conn_id, header })
                    }
                }
            }
            Decoded::Oversized { header, limit } => {
                let stream_id = header.stream_id;
                match header.message_type {
                    TYPE_REQUEST => {
                        self.requests.note(stream_id);
                        Incoming::Refuse {
                            conn_id,
                            stream_id,
                            status: Status::new(
                                Code::ResourceExhausted,
                                format!(
                                    "message of {} bytes on stream {stream_id} exceeds the {limit}-byte limit",
                                    header.length
                                ),
                            ),
                        }
                    }
                    TYPE_RESPONSE => Incoming::Reply {
                        conn_id,
                        stream_id,
                        reply: Err(Error::MessageTooLarge {
                            len: u64::from(header.length),
                            limit: limit as u64,
                        }),
                    },
                    _ => Incoming::Ignored(Ignored::Oversized {
                        conn_id,
                        header,
                        limit,
                    }),
                }
            }
        })
    }
}

/// The receiving half of a socket's protocol state.
#[derive(Debug)]
pub(crate) struct Inbound {
    framing: Framing,
    trunk: MuxDecoder,
    conns: HashMap<u32, InboundConn>,
}

impl Inbound {
    /// The receiving state of a socket framed as `framing`, with the
    /// logical connections `open` (ids as [`Framing::conn_id`] gives them).
    pub(crate) fn new(framing: Framing, open: &[u32]) -> Inbound {
        let conns = open
            .iter()
            .map(|&id| {
                (
                    id,
                    InboundConn {
                        decoder: FrameDecoder::new(),
                        requests: RequestIds::default(),
                    },
                )
            })
            .collect();
        Inbound {
            framing,
            trunk: MuxDecoder::new(),
            conns,
        }
    }

    /// Starts on the bytes of one read; [`Feed::next`] yields what they
    /// complete.
    pub(crate) fn feed<'s, 'a>(&'s mut self, bytes: &'a [u8]) -> Feed<'s, 'a> {
        Feed {
            inbound: self,
            input: bytes,
            conn_id: 0,
            piece: &[],
        }
    }
}

/// Bytes on the socket that can only be data of the frame being received
/// on one logical connection: see [`Inbound::direct`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Direct {
    conn_id: u32,
    /// How many, from the next byte on.
    pub(crate) len: usize,
}

impl Inbound {
    /// When the next `min` or more bytes on the socket can only be data of
    /// the frame being received (inside a trunk frame's payload, or on a
    /// plain socket, with that much of the frame's data still to come):
    /// how many, for a reader to append them to
    /// [`Inbound::direct_buffer`] itself, saving a copy through its read
    /// buffer, and report them with [`Inbound::direct_appended`].
    pub(crate) fn direct(&mut self, min: usize) -> Option<Direct> {
        let (conn_id, trunk_left) = match self.framing {
            Framing::Raw => (0, usize::MAX),
            Framing::Mux => {
                let (id, left) = self.trunk.payload()?;
                (id, left as usize)
            }
        };
        let conn = self.conns.get_mut(&conn_id)?;
        conn.decoder.data_buffer()?;
        let len = conn.decoder.need().min(trunk_left);
        (len >= min).then_some(Direct { conn_id, len })
    }

    /// The data buffer of the frame `direct` names.
    pub(crate) fn direct_buffer(&mut self, direct: Direct) -> Option<&mut Vec<u8>> {
        self.conns
            .get_mut(&direct.conn_id)
            .and_then(|c| c.decoder.data_buffer())
    }

    /// Counts `n` bytes a reader appended to [`Inbound::direct_buffer`]
    /// (at most `direct.len`), and gives the frame's meaning once it is
    /// whole.
    pub(crate) fn direct_appended(&mut self, direct: Direct, n: usize) -> Result<Option<Incoming>> {
        if self.framing == Framing::Mux {
            self.trunk.consumed(n);
        }
        let conn_id = direct.conn_id;
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return Ok(None);
        };
        match conn.decoder.take_complete() {
            Some(decoded) => conn.classify(conn_id, decoded).map(Some),
            None => Ok(None),
        }
    }
}

/// The bytes of one read, being decoded.
pub(crate) struct Feed<'s, 'a> {
    inbound: &'s mut Inbound,
    /// Bytes not yet split by logical connection.
    input: &'a [u8],
    /// Bytes of logical connection `conn_id` not yet decoded.
    conn_id: u32,
    piece: &'a [u8],
}

impl Feed<'_, '_> {
    /// The next complete frame's meaning, or `None` once every byte is
    /// used. `spare` is asked for a used buffer when a frame may start, for
    /// the frame decoder to reuse. An error (a trunk frame over its limit)
    /// is fatal: the socket's bytes can no longer be trusted.
    pub(crate) fn next(
        &mut self,
        mut spare: impl FnMut() -> Option<Vec<u8>>,
    ) -> Result<Option<Incoming>> {
        loop {
            if !self.piece.is_empty() {
                let conn_id = self.conn_id;
                let Some(conn) = self.inbound.conns.get_mut(&conn_id) else {
                    let len = self.piece.len();
                    self.piece = &[];
                    return Ok(Some(Incoming::Ignored(Ignored::Unopened { conn_id, len })));
                };
                // Only where a frame may start, and not once more per read.
                if conn.decoder.at_boundary() && !conn.decoder.has_spare() {
                    if let Some(b) = spare() {
                        conn.decoder.recycle(b);
                    }
                }
                if let Some(decoded) = conn.decoder.decode(&mut self.piece) {
                    return conn.classify(conn_id, decoded).map(Some);
                }
                continue;
            }
            match self.inbound.framing {
                Framing::Raw => {
                    if self.input.is_empty() {
                        return Ok(None);
                    }
                    self.conn_id = 0;
                    self.piece = std::mem::take(&mut self.input);
                }
                Framing::Mux => match self.inbound.trunk.decode(&mut self.input)? {
                    Some((conn_id, piece)) => {
                        self.conn_id = conn_id;
                        self.piece = piece;
                    }
                    None => return Ok(None),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use protobuf::Message;

    use super::*;
    use crate::mux::codec::{encode_frame as trunk_frame, MAX_FRAME_LEN};
    use crate::proto::ttrpc::Request;
    use crate::ttrpc::codec::{encode_frame, MAX_MESSAGE_LEN, TYPE_DATA};

    fn request(method: &str, payload: &[u8]) -> Vec<u8> {
        Request {
            service: "svc".into(),
            method: method.into(),
            payload: payload.to_vec(),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap()
    }

    fn frame(stream_id: u32, message_type: u8, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame(&mut v, stream_id, message_type, 0, data).unwrap();
        v
    }

    fn on_trunk(conn_id: u32, message: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        trunk_frame(&mut v, conn_id, message);
        v
    }

    /// Everything `chunks` decode to, fed one chunk per read.
    fn decode_all(inbound: &mut Inbound, chunks: &[&[u8]]) -> Vec<Incoming> {
        let mut out = Vec::new();
        for chunk in chunks {
            let mut feed = inbound.feed(chunk);
            while let Some(i) = feed.next(|| None).unwrap() {
                out.push(i);
            }
        }
        out
    }

    /// The short forms of everything `wire` decodes to in one read.
    fn briefs(inbound: &mut Inbound, wire: &[u8]) -> Vec<String> {
        decode_all(inbound, &[wire]).iter().map(brief).collect()
    }

    /// A short form of an incoming message, for comparing.
    fn brief(i: &Incoming) -> String {
        match i {
            Incoming::Request {
                conn_id,
                stream_id,
                envelope,
            } => format!(
                "request {conn_id}/{stream_id} {} {:?}",
                envelope.method,
                &envelope.data[envelope.payload.clone()]
            ),
            Incoming::Refuse {
                conn_id,
                stream_id,
                status,
            } => format!("refuse {conn_id}/{stream_id} {:?}", status.code),
            Incoming::Reply {
                conn_id,
                stream_id,
                reply,
            } => format!(
                "reply {conn_id}/{stream_id} {}",
                match reply {
                    Ok(r) => format!("{:?}", r.payload),
                    Err(e) => e.to_string(),
                }
            ),
            Incoming::Ignored(i) => format!("ignored {i}"),
        }
    }

    #[test]
    fn requests_and_replies_are_told_apart_on_a_plain_socket() {
        let mut wire = frame(1, TYPE_REQUEST, &request("A", b"x"));
        let reply = Response {
            payload: b"ok".to_vec(),
            ..Default::default()
        };
        wire.extend(frame(1, TYPE_RESPONSE, &reply.write_to_bytes().unwrap()));
        wire.extend(frame(3, TYPE_DATA, b"stream"));
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        // One read, and one byte per read: the same result.
        for chunks in [vec![&wire[..]], wire.chunks(1).collect()] {
            let mut inbound_ = Inbound::new(Framing::Raw, &[0]);
            let got: Vec<String> = decode_all(&mut inbound_, &chunks)
                .iter()
                .map(brief)
                .collect();
            assert_eq!(
                got,
                [
                    "request 0/1 A [120]",
                    "reply 0/1 [111, 107]",
                    "ignored ignoring ttrpc frame of unsupported message type 3 on stream 3 of logical connection 0 (6 bytes)"
                ]
            );
        }
        assert!(decode_all(&mut inbound, &[&[]]).is_empty());
    }

    #[test]
    fn request_ids_must_be_odd_and_increase_per_logical_connection() {
        let mut wire = Vec::new();
        for (conn, id) in [(1, 3), (2, 1), (1, 3), (1, 2), (1, 1), (2, 5), (1, 5)] {
            wire.extend(on_trunk(conn, &frame(id, TYPE_REQUEST, &request("M", b""))));
        }
        let mut inbound = Inbound::new(Framing::Mux, &[1, 2]);
        let got = briefs(&mut inbound, &wire);
        assert_eq!(
            got,
            [
                "request 1/3 M []",
                "request 2/1 M []",
                "refuse 1/3 InvalidArgument",
                "refuse 1/2 InvalidArgument",
                "refuse 1/1 InvalidArgument",
                "request 2/5 M []",
                "request 1/5 M []",
            ]
        );
    }

    #[test]
    fn a_request_whose_envelope_does_not_decode_is_refused_and_its_id_used() {
        let mut wire = frame(1, TYPE_REQUEST, &[0x0a, 0x05, b'a']);
        wire.extend(frame(1, TYPE_REQUEST, &request("M", b"")));
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        let got = decode_all(&mut inbound, &[&wire]);
        match &got[0] {
            Incoming::Refuse { status, .. } => {
                assert_eq!(status.code, Code::InvalidArgument);
                assert!(
                    status.message.contains(
                        "cannot decode ttrpc request envelope: field 1 declares 5 bytes but only 1 remain"
                    ),
                    "{status}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(brief(&got[1]), "refuse 0/1 InvalidArgument");
    }

    #[test]
    fn metadata_that_would_hold_over_its_limit_is_refused() {
        // 200,000 empty metadata entries: 400 kB on the wire, over 1 MiB of
        // KeyValue slots once decoded.
        let mut envelope = request("M", b"");
        for _ in 0..200_000 {
            envelope.extend_from_slice(&[0x2a, 0x00]);
        }
        let mut wire = frame(1, TYPE_REQUEST, &envelope);
        wire.extend(frame(3, TYPE_REQUEST, &request("N", b"")));
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        let got = decode_all(&mut inbound, &[&wire]);
        match &got[0] {
            Incoming::Refuse { status, .. } => {
                assert_eq!(status.code, Code::ResourceExhausted, "{status}");
                assert!(status.message.contains("1048576 bytes"), "{status}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(brief(&got[1]), "request 0/3 N []");
    }

    #[test]
    fn oversized_frames_are_refused_failed_or_dropped_by_message_type() {
        let big = vec![0u8; MAX_MESSAGE_LEN + 1];
        let header = |id, ty| {
            FrameHeader {
                length: big.len() as u32,
                stream_id: id,
                message_type: ty,
                flags: 0,
            }
            .to_bytes()
        };
        let mut wire = Vec::new();
        for (id, ty) in [(5, TYPE_REQUEST), (7, TYPE_RESPONSE), (9, TYPE_DATA)] {
            wire.extend_from_slice(&header(id, ty));
            wire.extend_from_slice(&big);
        }
        // The oversized request's id counts as used.
        wire.extend(frame(5, TYPE_REQUEST, &request("M", b"")));
        wire.extend(frame(11, TYPE_REQUEST, &request("M", b"")));
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        let got = briefs(&mut inbound, &wire);
        assert_eq!(
            got,
            [
                "refuse 0/5 ResourceExhausted",
                "reply 0/7 ttrpc message of 4194305 bytes exceeds the 4194304-byte limit",
                "ignored dropped message of 4194305 bytes on stream 9 of logical connection 0, over the 4194304-byte limit (message type 3)",
                "refuse 0/5 InvalidArgument",
                "request 0/11 M []",
            ]
        );
    }

    #[test]
    fn bytes_for_an_unopened_logical_connection_are_dropped() {
        let mut wire = on_trunk(3, &frame(1, TYPE_REQUEST, &request("M", b"")));
        wire.extend(on_trunk(1, &frame(1, TYPE_REQUEST, &request("N", b""))));
        let mut inbound = Inbound::new(Framing::Mux, &[1]);
        let got = decode_all(&mut inbound, &[&wire]);
        assert!(matches!(
            got[0],
            Incoming::Ignored(Ignored::Unopened { conn_id: 3, .. })
        ));
        assert_eq!(brief(&got[1]), "request 1/1 N []");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_request_after_the_last_stream_id_is_fatal() {
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        let mut wire = frame(u32::MAX - 2, TYPE_REQUEST, &request("A", b""));
        wire.extend(frame(u32::MAX, TYPE_REQUEST, &request("B", b"")));
        assert_eq!(
            briefs(&mut inbound, &wire),
            ["request 0/4294967293 A []", "request 0/4294967295 B []"]
        );
        // What a wrapping client sends next.
        let wire = frame(1, TYPE_REQUEST, &request("C", b""));
        let mut feed = inbound.feed(&wire);
        let err = feed.next(|| None).unwrap_err().to_string();
        assert!(
            err.contains("the peer sent a request (stream 1) on logical connection 0 after using the last stream id (4294967295)"),
            "{err}"
        );
    }

    #[test]
    fn a_trunk_frame_over_its_limit_is_fatal() {
        let mut wire = 1u32.to_be_bytes().to_vec();
        wire.extend_from_slice(&(MAX_FRAME_LEN + 1).to_be_bytes());
        let mut inbound = Inbound::new(Framing::Mux, &[1]);
        let mut feed = inbound.feed(&wire);
        let err = feed.next(|| None).unwrap_err();
        assert!(
            matches!(err, Error::MuxFrameTooLarge { conn_id: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_message_split_across_trunk_frames_and_reads_is_reassembled() {
        let payload = vec![0x42u8; 10_000];
        let message = frame(1, TYPE_REQUEST, &request("Big", &payload));
        let mut wire = Vec::new();
        crate::mux::codec::encode_message(&mut wire, 2, &message).unwrap();
        let mut inbound = Inbound::new(Framing::Mux, &[2]);
        let got = decode_all(&mut inbound, &wire.chunks(777).collect::<Vec<_>>());
        assert_eq!(got.len(), 1);
        match &got[0] {
            Incoming::Request { envelope, .. } => {
                assert_eq!(&envelope.data[envelope.payload.clone()], &payload[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Reads `wire` as a reader does: through a small read buffer, except
    /// that whenever `direct(min)` offers a place, up to `step` bytes of the
    /// frame's data are appended there instead. Returns what was decoded
    /// and how many bytes went the direct way.
    fn read_with_direct(
        inbound: &mut Inbound,
        wire: &[u8],
        min: usize,
        step: usize,
    ) -> (Vec<String>, usize) {
        let (mut at, mut direct_bytes, mut out) = (0, 0, Vec::new());
        while at < wire.len() {
            if let Some(d) = inbound.direct(min) {
                assert!(d.len >= min);
                let n = d.len.min(step).min(wire.len() - at);
                let buf = inbound.direct_buffer(d).expect("a data buffer");
                buf.extend_from_slice(&wire[at..at + n]);
                at += n;
                direct_bytes += n;
                if let Some(i) = inbound.direct_appended(d, n).unwrap() {
                    out.push(brief(&i));
                }
                continue;
            }
            let n = 1000.min(wire.len() - at);
            let mut feed = inbound.feed(&wire[at..at + n]);
            while let Some(i) = feed.next(|| None).unwrap() {
                out.push(brief(&i));
            }
            at += n;
        }
        (out, direct_bytes)
    }

    #[test]
    fn bytes_put_in_place_by_the_reader_decode_like_bytes_fed() {
        let big = vec![0x42u8; 300_000];
        let mut messages = frame(1, TYPE_REQUEST, &request("Big", &big));
        messages.extend(frame(3, TYPE_REQUEST, &request("Small", b"s")));
        messages.extend(frame(5, TYPE_REQUEST, &request("Big2", &big[..70_000])));
        let reply = Response {
            payload: big[..200_000].to_vec(),
            ..Default::default()
        };
        messages.extend(frame(7, TYPE_RESPONSE, &reply.write_to_bytes().unwrap()));
        for framing in [Framing::Raw, Framing::Mux] {
            let wire = match framing {
                Framing::Raw => messages.clone(),
                Framing::Mux => {
                    // Go's shape: each message as its first 4096 bytes,
                    // then the rest.
                    let mut w = Vec::new();
                    let mut rest = &messages[..];
                    while !rest.is_empty() {
                        let len =
                            10 + u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                        crate::mux::codec::encode_message(&mut w, 2, &rest[..len]).unwrap();
                        rest = &rest[len..];
                    }
                    w
                }
            };
            let conn = framing.conn_id(2);
            let want = briefs(&mut Inbound::new(framing, &[conn]), &wire);
            assert_eq!(want.len(), 4, "{want:?}");
            for step in [1, 4096, 65_536, usize::MAX] {
                let mut inbound = Inbound::new(framing, &[conn]);
                let (got, direct) = read_with_direct(&mut inbound, &wire, 4096, step);
                assert_eq!(got, want, "{framing:?}, step {step}");
                assert!(direct > 400_000, "{framing:?}: {direct} bytes direct");
            }
        }
        // Nothing is offered between frames, in a header, or for a short
        // rest of a frame.
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        assert!(inbound.direct(1).is_none());
        let f = frame(1, TYPE_REQUEST, &request("Big", &big));
        let _ = inbound.feed(&f[..5]).next(|| None).unwrap();
        assert!(inbound.direct(1).is_none());
        let _ = inbound.feed(&f[5..f.len() - 100]).next(|| None).unwrap();
        assert_eq!(inbound.direct(1).map(|d| d.len), Some(100));
        assert!(inbound.direct(101).is_none());
    }

    #[test]
    fn a_spare_buffer_is_asked_for_only_where_a_frame_may_start() {
        let mut wire = frame(1, TYPE_REQUEST, &request("A", &[1; 100]));
        wire.extend(frame(3, TYPE_REQUEST, &request("B", &[2; 100])));
        let mut inbound = Inbound::new(Framing::Raw, &[0]);
        let mut asked = 0;
        let mut pool = vec![Vec::with_capacity(4096), Vec::with_capacity(4096)];
        let mut got = Vec::new();
        // Split mid-frame: the second read starts inside the first frame.
        for chunk in [&wire[..50], &wire[50..]] {
            let mut feed = inbound.feed(chunk);
            while let Some(i) = feed
                .next(|| {
                    asked += 1;
                    pool.pop()
                })
                .unwrap()
            {
                got.push(i);
            }
        }
        assert_eq!(got.len(), 2);
        // Once before each frame; not at the start of the second read.
        assert_eq!(asked, 2);
        for i in &got {
            let Incoming::Request { envelope, .. } = i else {
                panic!("{i:?}")
            };
            assert_eq!(envelope.data.capacity(), 4096, "the frame reused a spare");
        }
    }
}
