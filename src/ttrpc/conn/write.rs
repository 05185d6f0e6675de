//! The write side: one lock around the socket's writer, ttrpc frames (cut
//! for Go readers on a trunk) written whole, and encoding the responses the
//! server sends.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use protobuf::Message;

use super::{lock, Framing, Shared};
use crate::mux::codec::{push_header, GO_READ_BUFFER};
use crate::ttrpc::codec::{encode_frame, FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_RESPONSE};
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
        data: &[u8],
    ) -> Result<()> {
        let mut w = lock(&self.writer);
        let res = self.write_locked(&mut w, chan, stream_id, message_type, data);
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

    /// Frames one ttrpc message (split for Go readers on a trunk) and
    /// writes it with one `write_all`; the caller holds the writer lock.
    pub(super) fn write_locked(
        &self,
        w: &mut Writer,
        chan: u32,
        stream_id: u32,
        message_type: u8,
        data: &[u8],
    ) -> Result<()> {
        let Writer { stream, buf } = w;
        buf.clear();
        match self.framing {
            Framing::Raw => encode_frame(buf, stream_id, message_type, 0, data)?,
            Framing::Mux => {
                // As mux::codec::encode_message, without first copying the
                // ttrpc frame into a buffer of its own.
                let header = FrameHeader::for_data(stream_id, message_type, 0, data)?.to_bytes();
                let total = HEADER_LEN + data.len();
                let first = total.min(GO_READ_BUFFER);
                push_header(buf, chan, first);
                buf.extend_from_slice(&header);
                buf.extend_from_slice(&data[..first - HEADER_LEN]);
                if total > first {
                    push_header(buf, chan, total - first);
                    buf.extend_from_slice(&data[first - HEADER_LEN..]);
                }
            }
        }
        let res = stream.write_all(buf);
        if buf.capacity() > 256 * 1024 {
            *buf = Vec::new();
        }
        res.map_err(|e| Error::io("writing to the connection failed", e))
    }

    pub(super) fn write_response(
        &self,
        chan: u32,
        stream_id: u32,
        result: std::result::Result<Vec<u8>, Status>,
    ) -> Result<()> {
        let resp = match result {
            Ok(payload) => Response {
                status: protobuf::MessageField::some(Status::new(Code::Ok, "").to_proto()),
                payload,
                ..Default::default()
            },
            Err(st) => Response {
                status: protobuf::MessageField::some(st.to_proto()),
                ..Default::default()
            },
        };
        let bytes = resp.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: "ttrpc.Response",
            source: e,
        })?;
        if bytes.len() > MAX_MESSAGE_LEN {
            // Tell the caller instead of breaking the connection.
            let st = Status::new(
                Code::ResourceExhausted,
                format!(
                    "reply of {} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit",
                    bytes.len()
                ),
            );
            log::error!("{}: {} (stream {stream_id})", self.options.name, st.message);
            return self.write_response(chan, stream_id, Err(st));
        }
        self.write_message(chan, stream_id, TYPE_RESPONSE, &bytes)
    }
}
