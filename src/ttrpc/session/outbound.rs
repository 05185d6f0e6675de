//! What this side sends: the ids of its calls and the framing of every
//! message.

use std::collections::HashMap;

use super::reply::Reply;
use super::stream_ids::CallIds;
use super::Framing;
use crate::mux::codec::{
    encode_message_parts, push_header, GO_READ_BUFFER as MUX_SPLIT, MAX_FRAME_LEN,
};
use crate::ttrpc::codec::{FrameHeader, HEADER_LEN, TYPE_REQUEST, TYPE_RESPONSE};
use crate::Result;

/// The sending half of a socket's protocol state. The connection keeps it
/// under the lock that writes, so that call ids are handed out in the
/// order the requests reach the wire.
#[derive(Debug)]
pub(crate) struct Outbound {
    framing: Framing,
    /// The call ids of each logical connection that has made a call.
    calls: HashMap<u32, CallIds>,
}

impl Outbound {
    /// The sending state of a socket framed as `framing`.
    pub(crate) fn new(framing: Framing) -> Outbound {
        Outbound {
            framing,
            calls: HashMap::new(),
        }
    }

    /// The stream id of the next call on logical connection `conn_id`.
    pub(crate) fn next_call_id(&mut self, conn_id: u32) -> Result<u32> {
        self.calls.entry(conn_id).or_default().next(conn_id)
    }

    /// Makes `next` the id of the next call on `conn_id` (for tests that
    /// reach the end of the ids).
    #[cfg(test)]
    pub(crate) fn start_calls_at(&mut self, conn_id: u32, next: u32) {
        self.calls.insert(conn_id, CallIds::starting_at(next));
    }

    /// Appends `message` to `out` as it goes on the socket: a 10-byte
    /// ttrpc header and the data, carried on a trunk in frames a Go reader
    /// takes (see [`crate::mux`]). Fails with
    /// [`crate::Error::MessageTooLarge`] over the message limit, writing
    /// nothing.
    #[cfg(test)]
    pub(crate) fn frame(&self, out: &mut Vec<u8>, message: &Outgoing<'_>) -> Result<()> {
        let taken = self.frame_leading(out, message)?;
        for part in message.data_from(taken) {
            out.extend_from_slice(part);
        }
        Ok(())
    }

    /// Frames `message` leaving its bulk where it is: appends to `out` the
    /// framing and the data that must sit between frame headers (on a
    /// trunk, the first frame whole and the second frame's header), and
    /// returns how many bytes of the message's data `out` took. What goes
    /// on the socket is `out` followed by
    /// [`Outgoing::data_from`] that many bytes, the same bytes
    /// [`Outbound::frame`] would write.
    pub(crate) fn frame_leading(&self, out: &mut Vec<u8>, message: &Outgoing<'_>) -> Result<usize> {
        let len = message.len();
        let header =
            FrameHeader::for_len(message.stream_id, message.message_type, 0, len)?.to_bytes();
        match self.framing {
            Framing::Raw => {
                out.extend_from_slice(&header);
                Ok(0)
            }
            Framing::Mux if HEADER_LEN + len > MAX_FRAME_LEN as usize => {
                Err(crate::Error::MessageTooLarge {
                    len: (HEADER_LEN + len) as u64,
                    limit: MAX_FRAME_LEN as u64,
                })
            }
            Framing::Mux => {
                // A message is one trunk frame up to its first
                // `MUX_SPLIT` bytes: those go in `out` whole.
                let taken = (HEADER_LEN + len).min(MUX_SPLIT) - HEADER_LEN;
                let mut room = taken;
                let [head, body, tail] = message.data_from(0).map(|part| {
                    let n = part.len().min(room);
                    room -= n;
                    &part[..n]
                });
                encode_message_parts(out, message.conn_id, &[&header, head, body, tail])?;
                if taken < len {
                    push_header(out, message.conn_id, HEADER_LEN + len - MUX_SPLIT);
                }
                Ok(taken)
            }
        }
    }
}

/// One ttrpc message to send: where it goes, and its data in three parts
/// (the bytes before a payload, the payload, and the bytes after it),
/// framed without being joined first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outgoing<'a> {
    conn_id: u32,
    stream_id: u32,
    message_type: u8,
    head: &'a [u8],
    body: &'a [u8],
    tail: &'a [u8],
}

impl<'a> Outgoing<'a> {
    /// A request on a new stream: an encoded `ttrpc.Request` in the parts
    /// [`EncodedRequest::parts`](super::EncodedRequest::parts) gives.
    pub(crate) fn request(conn_id: u32, stream_id: u32, [head, body, tail]: [&'a [u8]; 3]) -> Self {
        Outgoing {
            conn_id,
            stream_id,
            message_type: TYPE_REQUEST,
            head,
            body,
            tail,
        }
    }

    /// Bytes of data (the three parts together).
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }

    /// The data from byte `offset` on, as parts.
    pub(crate) fn data_from(&self, mut offset: usize) -> [&'a [u8]; 3] {
        [self.head, self.body, self.tail].map(|part| {
            let skip = offset.min(part.len());
            offset -= skip;
            &part[skip..]
        })
    }

    /// The reply on the stream of a request.
    pub(crate) fn response(conn_id: u32, stream_id: u32, reply: &'a Reply<'_>) -> Self {
        let (head, body) = reply.parts();
        Outgoing {
            conn_id,
            stream_id,
            message_type: TYPE_RESPONSE,
            head,
            body,
            tail: &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::codec::MuxDecoder;
    use crate::ttrpc::codec::{Decoded, FrameDecoder, MAX_MESSAGE_LEN};
    use crate::Error;

    /// The trunk frames in `wire`: (logical connection, payload length).
    fn trunk_frames(wire: &[u8]) -> Vec<(u32, usize)> {
        let mut dec = MuxDecoder::new();
        let mut input = wire;
        let mut frames = Vec::new();
        while let Some((id, piece)) = dec.decode(&mut input).unwrap() {
            frames.push((id, piece.len()));
        }
        frames
    }

    #[test]
    fn on_a_trunk_a_message_is_one_frame_up_to_4096_bytes_else_two() {
        let out = Outbound::new(Framing::Mux);
        for (len, want) in [
            (0usize, vec![(2, 10)]),
            (4086, vec![(2, 4096)]),
            (4087, vec![(2, 4096), (2, 1)]),
            (100_000, vec![(2, 4096), (2, 100_010 - 4096)]),
        ] {
            let body = vec![0x33u8; len];
            let mut wire = Vec::new();
            out.frame(&mut wire, &Outgoing::request(2, 7, [&[], &body, &[]]))
                .unwrap();
            assert_eq!(trunk_frames(&wire), want, "len {len}");
            assert_eq!(wire.len(), 10 + len + 8 * want.len());
        }
    }

    #[test]
    fn a_framed_message_decodes_to_its_parts() {
        for framing in [Framing::Raw, Framing::Mux] {
            let out = Outbound::new(framing);
            let mut wire = Vec::new();
            let body = vec![9u8; 5000];
            let result = Ok(body.clone());
            let reply = Reply::new(&result).unwrap();
            out.frame(&mut wire, &Outgoing::response(1, 3, &reply))
                .unwrap();
            let head = reply.parts().0;
            assert_eq!(head.len(), 5);
            let ttrpc = match framing {
                Framing::Raw => wire.clone(),
                Framing::Mux => {
                    let mut dec = MuxDecoder::new();
                    let mut input = &wire[..];
                    let mut joined = Vec::new();
                    while let Some((id, piece)) = dec.decode(&mut input).unwrap() {
                        assert_eq!(id, 1);
                        joined.extend_from_slice(piece);
                    }
                    joined
                }
            };
            let mut dec = FrameDecoder::new();
            let mut input = &ttrpc[..];
            match dec.decode(&mut input) {
                Some(Decoded::Frame { header, data }) => {
                    assert_eq!(header.stream_id, 3);
                    assert_eq!(header.message_type, TYPE_RESPONSE);
                    assert_eq!(&data[..5], head);
                    assert_eq!(&data[5..], &body[..]);
                }
                other => panic!("{other:?}"),
            }
            assert!(input.is_empty());
        }
    }

    #[test]
    fn a_message_in_parts_goes_out_as_the_parts_joined() {
        // Split points on either side of the trunk's 4096-byte frame
        // boundary, and in each of the three parts.
        let data: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
        for framing in [Framing::Raw, Framing::Mux] {
            let out = Outbound::new(framing);
            for (a, b) in [
                (0, 0),
                (0, 9000),
                (30, 8990),
                (4086, 4087),
                (4000, 5000),
                (4090, 9000),
            ] {
                let parts = [&data[..a], &data[a..b], &data[b..]];
                let (mut joined, mut split) = (Vec::new(), Vec::new());
                out.frame(&mut joined, &Outgoing::request(1, 5, [&[], &data, &[]]))
                    .unwrap();
                out.frame(&mut split, &Outgoing::request(1, 5, parts))
                    .unwrap();
                assert_eq!(split, joined, "{framing:?} split at {a} and {b}");
            }
        }
    }

    #[test]
    fn framing_only_the_lead_and_writing_the_rest_in_place_sends_the_same_bytes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        for framing in [Framing::Raw, Framing::Mux] {
            let out = Outbound::new(framing);
            for len in [0, 1, 4085, 4086, 4087, 5000, 300_000] {
                let d = &data[..len];
                // The message framed whole, independently of the parts.
                let header = FrameHeader::for_len(9, TYPE_REQUEST, 0, len)
                    .unwrap()
                    .to_bytes();
                let mut want = Vec::new();
                match framing {
                    Framing::Raw => want.extend([&header[..], d].concat()),
                    Framing::Mux => encode_message_parts(&mut want, 3, &[&header, d]).unwrap(),
                }
                for (a, b) in [(0, 0), (0, len), (len / 3, 2 * len / 3), (len, len)] {
                    let message = Outgoing::request(3, 9, [&d[..a], &d[a..b], &d[b..]]);
                    let mut lead = Vec::new();
                    let taken = out.frame_leading(&mut lead, &message).unwrap();
                    assert!(lead.len() <= 4096 + 2 * 8, "{}", lead.len());
                    let sent = [&lead[..]]
                        .into_iter()
                        .chain(message.data_from(taken))
                        .collect::<Vec<_>>()
                        .concat();
                    assert_eq!(sent, want, "{framing:?}, {len} bytes split at {a} and {b}");
                    let mut framed = Vec::new();
                    out.frame(&mut framed, &message).unwrap();
                    assert_eq!(framed, want);
                }
            }
            let big = vec![0u8; MAX_MESSAGE_LEN + 1];
            let mut lead = Vec::new();
            let err = out
                .frame_leading(&mut lead, &Outgoing::request(1, 1, [&[], &big, &[]]))
                .unwrap_err();
            assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
            assert!(lead.is_empty());
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_and_nothing_is_written() {
        let out = Outbound::new(Framing::Mux);
        let mut wire = Vec::new();
        let body = vec![0u8; MAX_MESSAGE_LEN + 1];
        let err = out
            .frame(&mut wire, &Outgoing::request(1, 1, [&[], &body, &[]]))
            .unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { len, .. } if len == MAX_MESSAGE_LEN as u64 + 1)
        );
        assert!(wire.is_empty());
    }

    #[test]
    fn call_ids_are_counted_per_logical_connection() {
        let mut out = Outbound::new(Framing::Mux);
        assert_eq!(out.next_call_id(1).unwrap(), 1);
        assert_eq!(out.next_call_id(1).unwrap(), 3);
        assert_eq!(out.next_call_id(2).unwrap(), 1);
        assert_eq!(out.next_call_id(1).unwrap(), 5);
    }
}
