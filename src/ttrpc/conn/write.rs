//! The write side: one lock around the socket's writer and the session's
//! sending state, so that a message is framed and written whole and call
//! ids reach the wire in order.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::ConnectionState;
use crate::locking::lock;
use crate::status::Status;
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::ttrpc::session::{Outbound, Outgoing, Reply};
use crate::{Error, Result};

/// Above this, the frame buffer is given back after a write instead of
/// being kept for the next one.
const MAX_KEPT_BUFFER: usize = 256 * 1024;

/// The socket's write half, the buffer a message is framed in, and the
/// sending state of the protocol.
pub(super) struct Writer {
    stream: UnixStream,
    buf: Vec<u8>,
    pub(super) outbound: Outbound,
}

impl Writer {
    pub(super) fn new(stream: UnixStream, outbound: Outbound) -> Self {
        Writer {
            stream,
            buf: Vec::new(),
            outbound,
        }
    }

    /// Bounds each write (`None`: no bound); a failure to set it is ignored,
    /// as the write then simply stays unbounded.
    pub(super) fn set_write_timeout(&self, timeout: Option<Duration>) {
        let _ = self.stream.set_write_timeout(timeout);
    }

    /// Frames one ttrpc message and writes it with one `write_all`.
    pub(super) fn write_message(&mut self, message: &Outgoing<'_>) -> Result<()> {
        let Writer {
            stream,
            buf,
            outbound,
        } = self;
        buf.clear();
        outbound.frame(buf, message)?;
        let res = stream.write_all(buf);
        if buf.capacity() > MAX_KEPT_BUFFER {
            *buf = Vec::new();
        }
        res.map_err(|e| Error::io("writing to the connection failed", e))
    }
}

impl ConnectionState {
    /// A failed write leaves the stream in an unknown state: close.
    pub(super) fn fail_write(&self, e: Error) -> Error {
        if matches!(e, Error::Io { .. }) {
            self.close(e.to_string());
        }
        e
    }

    /// Writes a handler's result as a `ttrpc.Response` (see
    /// [`Reply`] for what is encoded, and when a reply too large to send
    /// becomes a RESOURCE_EXHAUSTED status).
    pub(super) fn write_response(
        &self,
        conn_id: u32,
        stream_id: u32,
        result: std::result::Result<Vec<u8>, Status>,
    ) -> Result<()> {
        let reply = Reply::new(&result)?;
        if let Reply::Status {
            replaces: Some(len),
            ..
        } = reply
        {
            log::error!(
                "{}: reply of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit (stream {stream_id})",
                self.options.name
            );
        }
        let mut w = lock(&self.writer);
        let res = w.write_message(&Outgoing::response(conn_id, stream_id, &reply));
        drop(w);
        res.map_err(|e| self.fail_write(e))
    }
}
