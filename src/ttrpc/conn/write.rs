//! The write side: one lock around the socket's writer, ttrpc frames (cut
//! for Go readers on a trunk) written whole, and encoding the responses the
//! server sends.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use protobuf::Message;

use super::{Framing, Shared};
use crate::locking::lock;
use crate::mux::codec::{push_header, GO_READ_BUFFER, MUX_HEADER_LEN};
use crate::pb::wire::{Tag, VarintBytes, WireType, MAX_VARINT_LEN};
use crate::ttrpc::codec::{FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_RESPONSE};
use crate::ttrpc::{Code, Response, Status};
use crate::{Error, Result};

/// The socket's write half and the buffer a frame is assembled in.
pub(super) struct Writer {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn new(stream: UnixStream) -> Self {
        Writer {
            stream,
            buf: Vec::new(),
        }
    }

    /// Bounds each write (`None`: no bound); a failure to set it is ignored,
    /// as the write then simply stays unbounded.
    pub(super) fn set_write_timeout(&self, timeout: Option<Duration>) {
        let _ = self.stream.set_write_timeout(timeout);
    }
}

impl Shared {
    fn write_message(
        &self,
        chan: u32,
        stream_id: u32,
        message_type: u8,
        head: &[u8],
        body: &[u8],
    ) -> Result<()> {
        let mut w = lock(&self.writer);
        let res = self.write_locked(&mut w, chan, stream_id, message_type, head, body);
        drop(w);
        res.map_err(|e| self.fail_write(e))
    }

    /// A failed write leaves the stream in an unknown state: close.
    pub(super) fn fail_write(&self, e: Error) -> Error {
        if matches!(e, Error::Io { .. }) {
            self.close(e.to_string());
        }
        e
    }

    /// Frames one ttrpc message, `head` then `body` (split for Go readers
    /// on a trunk), and writes it with one `write_all`; the caller holds
    /// the writer lock.
    pub(super) fn write_locked(
        &self,
        w: &mut Writer,
        chan: u32,
        stream_id: u32,
        message_type: u8,
        head: &[u8],
        body: &[u8],
    ) -> Result<()> {
        let len = head.len() + body.len();
        let header = FrameHeader::for_len(stream_id, message_type, 0, len)?.to_bytes();
        let Writer { stream, buf } = w;
        buf.clear();
        match self.framing {
            Framing::Raw => {
                buf.reserve(HEADER_LEN + len);
                buf.extend_from_slice(&header);
                buf.extend_from_slice(head);
                buf.extend_from_slice(body);
            }
            Framing::Mux => {
                // As mux::codec::encode_message, without first copying the
                // ttrpc frame into a buffer of its own.
                let total = HEADER_LEN + len;
                let first = total.min(GO_READ_BUFFER);
                let cut = first - HEADER_LEN;
                let (head1, head2) = head.split_at(cut.min(head.len()));
                let (body1, body2) = body.split_at(cut - head1.len());
                buf.reserve(total + 2 * MUX_HEADER_LEN);
                push_header(buf, chan, first);
                buf.extend_from_slice(&header);
                buf.extend_from_slice(head1);
                buf.extend_from_slice(body1);
                if total > first {
                    push_header(buf, chan, total - first);
                    buf.extend_from_slice(head2);
                    buf.extend_from_slice(body2);
                }
            }
        }
        let res = stream.write_all(buf);
        if buf.capacity() > 256 * 1024 {
            *buf = Vec::new();
        }
        res.map_err(|e| Error::io("writing to the connection failed", e))
    }

    /// Writes a handler's result as a `ttrpc.Response`. A success is framed
    /// around the payload as it is: only the few bytes before it are
    /// encoded here, so the payload is not copied into an encoded response
    /// first.
    pub(super) fn write_response(
        &self,
        chan: u32,
        stream_id: u32,
        result: std::result::Result<Vec<u8>, Status>,
    ) -> Result<()> {
        let mut head = OkHead::default();
        let encoded;
        let (head, body) = match &result {
            Ok(payload) => (head.encode(payload.len()), &payload[..]),
            Err(st) => {
                let resp = Response {
                    status: protobuf::MessageField::some(st.to_proto()),
                    ..Default::default()
                };
                encoded = resp.write_to_bytes().map_err(|e| Error::Protobuf {
                    what: "encoding",
                    message: "ttrpc.Response",
                    source: e,
                })?;
                (&[][..], &encoded[..])
            }
        };
        let len = head.len() + body.len();
        if len > MAX_MESSAGE_LEN {
            // Tell the caller instead of breaking the connection.
            let st = Status::new(
                Code::ResourceExhausted,
                format!("reply of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit"),
            );
            log::error!("{}: {} (stream {stream_id})", self.options.name, st.message);
            return self.write_response(chan, stream_id, Err(st));
        }
        self.write_message(chan, stream_id, TYPE_RESPONSE, head, body)
    }
}

/// The bytes of a successful `ttrpc.Response` before its payload: field 1,
/// an empty (OK) `Status`, then field 2's tag and length unless the payload
/// is empty (proto3 leaves an empty `bytes` field out). The payload follows.
#[derive(Default)]
struct OkHead {
    buf: [u8; 3 + MAX_VARINT_LEN],
}

impl OkHead {
    const STATUS: Tag = Tag::new(1, WireType::Len);
    const PAYLOAD: Tag = Tag::new(2, WireType::Len);

    fn encode(&mut self, payload_len: usize) -> &[u8] {
        self.buf[0] = Self::STATUS.key() as u8;
        self.buf[1] = 0;
        if payload_len == 0 {
            return &self.buf[..2];
        }
        self.buf[2] = Self::PAYLOAD.key() as u8;
        let len = VarintBytes::new(payload_len as u64);
        let end = 3 + len.as_slice().len();
        self.buf[3..end].copy_from_slice(len.as_slice());
        &self.buf[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_head_and_payload_encode_as_the_generated_response() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, MAX_MESSAGE_LEN] {
            let payload = vec![7u8; len];
            let generated = Response {
                status: protobuf::MessageField::some(Status::new(Code::Ok, "").to_proto()),
                payload: payload.clone(),
                ..Default::default()
            }
            .write_to_bytes()
            .unwrap();
            let mut head = OkHead::default();
            let mut ours = head.encode(len).to_vec();
            ours.extend_from_slice(&payload);
            assert_eq!(ours, generated, "payload of {len} bytes");
        }
    }
}
