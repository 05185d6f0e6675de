//! The write side: one lock around the socket's writer and the session's
//! sending state, so that a message is framed and written whole and call
//! ids reach the wire in order; and a deadline for every message written.
//!
//! # Deadlines without a system call per write
//!
//! The socket's send timeout (`SO_SNDTIMEO`) is set once, to the
//! connection's write timeout, when the writer is made. A write that must
//! end sooner (a call with less time left) shortens it first, and only
//! when the difference matters ([`SLACK`]); the longer timeout is put back
//! lazily, when a later write blocks long enough to meet the shorter one
//! with time still left. A write that never blocks, which is every write
//! to a peer that reads, costs no system call beyond the `write` itself.

use std::io::{ErrorKind, IoSlice, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::timed_lock::LockFailed;
use super::ConnectionState;
use crate::log_text::Escape;
use crate::status::Status;
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::ttrpc::session::{Outbound, Outgoing, Reply};
use crate::{Error, Result};

/// Above this, the frame buffer is given back after a write instead of
/// being kept for the next one.
const MAX_KEPT_BUFFER: usize = 256 * 1024;

/// From this many bytes of data on, a message is written from where it
/// lies rather than copied into the frame buffer first.
const GATHER_FROM: usize = 64 * 1024;

/// How far past its deadline a write may end: a send timeout longer than
/// the time left by less than this is left as it is, saving a system call.
const SLACK: Duration = Duration::from_millis(20);

/// The shortest send timeout set (a zero one would mean "none").
const MIN_SEND_TIMEOUT: Duration = Duration::from_millis(1);

/// Why a message did not go out whole.
#[derive(Debug)]
pub(super) enum WriteFailure {
    /// Nothing of it was written by its deadline: the frame stream is
    /// intact.
    NothingWritten,
    /// Only a part of it was written by its deadline: the frame stream is
    /// broken.
    CutShort {
        /// Bytes written.
        written: usize,
        /// Bytes of the whole message on the wire.
        len: usize,
    },
    /// The message could not be framed (nothing written), or the socket
    /// failed.
    Failed(Error),
}

/// The socket's write half, the buffer a message is framed in, and the
/// sending state of the protocol.
pub(super) struct Writer {
    stream: UnixStream,
    buf: Vec<u8>,
    pub(super) outbound: Outbound,
    /// The socket's send timeout now.
    send_timeout: Duration,
}

impl Writer {
    /// A writer on `stream`, whose send timeout it sets to `write_timeout`.
    pub(super) fn new(
        stream: UnixStream,
        outbound: Outbound,
        write_timeout: Duration,
    ) -> Result<Self> {
        let send_timeout = write_timeout.max(MIN_SEND_TIMEOUT);
        stream
            .set_write_timeout(Some(send_timeout))
            .map_err(|e| Error::io("cannot set the connection's send timeout", e))?;
        Ok(Writer {
            stream,
            buf: Vec::new(),
            outbound,
            send_timeout,
        })
    }

    /// Sets the socket's send timeout to `t`; a failure leaves the old
    /// one, which the write loop then meets early and retries past.
    fn set_send_timeout(&mut self, t: Duration) {
        let t = t.max(MIN_SEND_TIMEOUT);
        if self.stream.set_write_timeout(Some(t)).is_ok() {
            self.send_timeout = t;
        }
    }

    /// Shortens the send timeout when it would let a write run more than
    /// [`SLACK`] past `left`.
    fn bound_by(&mut self, left: Duration) {
        if self.send_timeout > left + SLACK {
            self.set_send_timeout(left);
        }
    }

    /// Frames one ttrpc message and writes it whole by `end`. A large
    /// message is written from where its data lies, gathered by the
    /// system call, with only its framing (and on a trunk its first frame)
    /// copied into the frame buffer.
    pub(super) fn write_message(
        &mut self,
        message: &Outgoing<'_>,
        end: Instant,
    ) -> std::result::Result<(), WriteFailure> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let res = match self.outbound.frame_leading(&mut buf, message) {
            Ok(taken) if message.len() - taken < GATHER_FROM => {
                for part in message.data_from(taken) {
                    buf.extend_from_slice(part);
                }
                self.write_parts([&buf, &[], &[], &[]], end)
            }
            Ok(taken) => {
                let [head, body, tail] = message.data_from(taken);
                self.write_parts([&buf, head, body, tail], end)
            }
            Err(e) => Err(WriteFailure::Failed(e)),
        };
        if buf.capacity() <= MAX_KEPT_BUFFER {
            self.buf = buf;
        }
        res
    }

    /// Writes `parts` one after the other, whole, by `end`.
    fn write_parts(
        &mut self,
        parts: [&[u8]; 4],
        end: Instant,
    ) -> std::result::Result<(), WriteFailure> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.bound_by(end.saturating_duration_since(Instant::now()));
        let mut written = 0;
        while written < len {
            let mut skip = written;
            let mut slices = [IoSlice::new(&[]); 4];
            let mut n = 0;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[n] = IoSlice::new(&part[skip..]);
                skip = 0;
                n += 1;
            }
            let res = match n {
                1 => self.stream.write(&slices[0]),
                _ => self.stream.write_vectored(&slices[..n]),
            };
            match res {
                Ok(0) => {
                    return Err(WriteFailure::Failed(Error::io(
                        "writing to the connection failed",
                        ErrorKind::WriteZero.into(),
                    )))
                }
                Ok(n) => {
                    written += n;
                    if written < len {
                        // Partly written: the peer is slow; the rest must
                        // still be done by `end`.
                        let left = end.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(WriteFailure::CutShort { written, len });
                        }
                        self.bound_by(left);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(match written {
                            0 => WriteFailure::NothingWritten,
                            _ => WriteFailure::CutShort { written, len },
                        });
                    }
                    // A send timeout shortened for an earlier write ran out
                    // before this write's deadline: wait for the rest.
                    self.set_send_timeout(left);
                }
                Err(e) => {
                    return Err(WriteFailure::Failed(Error::io(
                        "writing to the connection failed",
                        e,
                    )))
                }
            }
        }
        Ok(())
    }
}

impl ConnectionState {
    /// The error for a message that did not go out whole, closing the
    /// connection when the frame stream can no longer be trusted: the peer
    /// stopped reading for the whole write timeout (`what` names the
    /// message), a frame was cut short, or the socket failed.
    pub(super) fn write_failed(&self, failure: WriteFailure, what: &str) -> Error {
        let t = self.options.write_timeout;
        let reason = match failure {
            WriteFailure::NothingWritten => format!(
                "{} stopped reading: writing {what} made no progress for {t:?}",
                self.peer()
            ),
            WriteFailure::CutShort { written, len } => format!(
                "{} stopped reading: writing {what} of {len} bytes was cut short after {written} \
                 bytes by the {t:?} write timeout; the frame stream is broken",
                self.peer()
            ),
            WriteFailure::Failed(e @ Error::Io { .. }) => {
                self.close(e.to_string());
                return e;
            }
            WriteFailure::Failed(e) => return e,
        };
        self.close(reason.clone());
        Error::ConnectionClosed(reason)
    }

    /// Writes a handler's result as a `ttrpc.Response` (see [`Reply`] for
    /// what is encoded, and when a reply too large to send becomes a
    /// RESOURCE_EXHAUSTED status). The reply waits at most twice the write
    /// timeout for the writer (the write ahead of it is bounded by one, and
    /// closes the connection when it runs out: so a peer that stopped
    /// reading is named for that, not for a queue behind it), then gets the
    /// write timeout to be written; a peer that does not take it by then is
    /// cut off.
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
                Escape(&self.options.name)
            );
        }
        let t = self.options.write_timeout;
        let mut w = match self.writer.lock_until(Some(Instant::now() + 2 * t)) {
            Ok(w) => w,
            Err(LockFailed::Closed) => return Err(Error::ConnectionClosed(self.reason_string())),
            Err(LockFailed::TimedOut) => {
                let reason = format!(
                    "{} reads too slowly: a reply waited {:?} for the writer, held by writes \
                     the peer takes too slowly",
                    self.peer(),
                    2 * t
                );
                self.close(reason.clone());
                return Err(Error::ConnectionClosed(reason));
            }
        };
        let res = w.write_message(
            &Outgoing::response(conn_id, stream_id, &reply),
            Instant::now() + t,
        );
        drop(w);
        res.map_err(|f| self.write_failed(f, "a reply"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttrpc::session::Framing;
    use std::io::Read;

    fn writer(t: Duration) -> (Writer, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Writer::new(a, Outbound::new(Framing::Raw), t).unwrap(), b)
    }

    #[test]
    fn a_write_to_a_reading_peer_leaves_the_send_timeout_alone() {
        let (mut w, mut peer) = writer(Duration::from_secs(2));
        let body = vec![1u8; 1000];
        let end = Instant::now() + Duration::from_secs(2);
        w.write_message(&Outgoing::request(0, 1, [&[], &body, &[]]), end)
            .unwrap();
        assert_eq!(w.send_timeout, Duration::from_secs(2));
        let mut got = vec![0u8; 1010];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got[10..], &body[..]);
    }

    #[test]
    fn a_large_message_is_written_in_place_as_the_frame_buffer_would_hold_it() {
        let (a, mut peer) = UnixStream::pair().unwrap();
        let outbound = Outbound::new(Framing::Mux);
        let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 241) as u8).collect();
        let message =
            Outgoing::request(2, 5, [&data[..100], &data[100..900_000], &data[900_000..]]);
        let mut want = Vec::new();
        outbound.frame(&mut want, &message).unwrap();
        let mut w = Writer::new(a, outbound, Duration::from_secs(5)).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            got
        });
        w.write_message(&message, Instant::now() + Duration::from_secs(5))
            .unwrap();
        drop(w);
        assert!(reader.join().unwrap() == want);
    }

    #[test]
    fn a_peer_that_reads_nothing_fails_the_write_at_its_deadline_with_nothing_written() {
        let (mut w, _peer) = writer(Duration::from_secs(2));
        // Fill the socket buffer first, then a write that cannot start.
        let big = vec![0u8; 4 << 20];
        let first = w.write_message(
            &Outgoing::request(0, 1, [&[], &big, &[]]),
            Instant::now() + Duration::from_millis(100),
        );
        assert!(
            matches!(first, Err(WriteFailure::CutShort { written, len }) if written > 0 && len == big.len() + 10),
            "{first:?}"
        );
        let started = Instant::now();
        let r = w.write_message(
            &Outgoing::request(0, 3, [&[], b"x", &[]]),
            started + Duration::from_millis(150),
        );
        let took = started.elapsed();
        assert!(matches!(r, Err(WriteFailure::NothingWritten)), "{r:?}");
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(
            took < Duration::from_millis(150) + SLACK + Duration::from_secs(1),
            "{took:?}"
        );
        // The shortened timeout is kept until a write needs a longer one.
        assert!(w.send_timeout < Duration::from_secs(2));
    }

    #[test]
    fn a_shortened_send_timeout_does_not_cut_a_later_longer_write_short() {
        let (mut w, mut peer) = writer(Duration::from_secs(5));
        w.set_send_timeout(Duration::from_millis(20));
        // 4 MiB needs the peer to read; it starts only after 200 ms, well
        // past the 20 ms send timeout, yet well within the write's deadline.
        let big = vec![7u8; 4 << 20];
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            let mut got = vec![0u8; (4 << 20) + 10];
            peer.read_exact(&mut got).unwrap();
            got
        });
        w.write_message(
            &Outgoing::request(0, 1, [&[], &big, &[]]),
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        let got = reader.join().unwrap();
        assert!(got[10..].iter().all(|&b| b == 7));
    }
}
