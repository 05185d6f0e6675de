//! The calling side: [`Client`] sends requests on one logical connection
//! and waits for their replies, which the reader hands over by stream id
//! (or which the caller reads itself when no worker is reading).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use protobuf::Message;

use super::budget::Held;
use super::timed_lock::LockFailed;
use super::write::WriteFailure;
use super::{key, ConnectionState, Owner, PendingSlot};
use crate::locking::lock;
use crate::log_text::Escape;
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::ttrpc::session::{timeout_nano, EncodedRequest, Outgoing, RequestEnvelope};
use crate::ttrpc::{Code, KeyValue, Response};
use crate::{Error, Result};

/// Makes calls on one logical connection of a
/// [`Connection`](super::Connection). Cheap to clone, safe to use from many
/// threads at once.
#[derive(Clone)]
pub struct Client {
    shared: Arc<ConnectionState>,
    _owner: Arc<Owner>,
    conn_id: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("conn", &self.conn_id)
            .finish()
    }
}

impl Client {
    pub(super) fn new(shared: Arc<ConnectionState>, owner: Arc<Owner>, conn_id: u32) -> Self {
        Client {
            shared,
            _owner: owner,
            conn_id,
        }
    }

    /// Calls `service`/`method` with an encoded argument and returns the
    /// encoded result. With a timeout, the call ends by then: the timeout
    /// counts from this call and covers waiting for the connection's
    /// writer, writing the request and waiting for the reply; the time left
    /// is sent to the server as `timeout_nano`. When it passes the call
    /// fails with [`Error::DeadlineExceeded`] naming the peer and the
    /// timeout (a late reply is dropped); the connection stays up unless
    /// the request was cut short mid-frame, which breaks the frame stream
    /// and closes it. A non-OK status becomes [`Error::Status`].
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        timeout: Option<Duration>,
        metadata: Vec<KeyValue>,
    ) -> Result<Vec<u8>> {
        let limit = timeout.and_then(|t| Instant::now().checked_add(t).map(|d| (d, t)));
        self.call_within(service, method, payload, limit, metadata)
    }

    /// [`Client::call_raw`] for a call that is one step of a larger
    /// operation given `timeout` in all and ending at `deadline`: the call
    /// ends by `deadline` (the time left is sent as `timeout_nano`), and
    /// its [`Error::DeadlineExceeded`] reports `timeout`, the limit the
    /// operation was given, rather than the time that was left of it.
    pub fn call_raw_until(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        deadline: Instant,
        timeout: Duration,
        metadata: Vec<KeyValue>,
    ) -> Result<Vec<u8>> {
        self.call_within(
            service,
            method,
            payload,
            Some((deadline, timeout)),
            metadata,
        )
    }

    fn call_within(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        limit: Option<(Instant, Duration)>,
        metadata: Vec<KeyValue>,
    ) -> Result<Vec<u8>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stream_id = self.send_within(service, method, &payload, limit, metadata, tx)?;
        self.await_call(service, method, limit, stream_id, rx)
    }

    /// [`Client::call_raw_until`] in two steps: sends the request and
    /// returns once it is written, leaving the caller free to prepare its
    /// next request while the peer works on this one; the reply is then
    /// awaited with [`PendingCall::wait`]. The payload is written as it
    /// is, never copied into a whole envelope first, and is free for reuse
    /// once this returns.
    pub(crate) fn send_raw_until<'c>(
        &self,
        service: &'c str,
        method: &'c str,
        payload: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<PendingCall<'c>> {
        let limit = Some((deadline, timeout));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stream_id = self.send_within(service, method, payload, limit, Vec::new(), tx)?;
        Ok(PendingCall {
            client: self.clone(),
            service,
            method,
            limit,
            stream_id,
            rx,
        })
    }

    /// Sends a request whose reply goes to `tx`; returns its stream id.
    fn send_within(
        &self,
        service: &str,
        method: &str,
        payload: &[u8],
        limit: Option<(Instant, Duration)>,
        metadata: Vec<KeyValue>,
        tx: PendingSlot,
    ) -> Result<u32> {
        let shared = &self.shared;
        let deadline = limit.map(|(d, _)| d);
        let exceeded = || deadline_exceeded(shared, service, method, limit);
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(exceeded()),
            },
            None => None,
        };
        let envelope =
            RequestEnvelope::new(service, method, payload, timeout_nano(left), &metadata);
        let len = envelope.encoded_len();
        if len > MAX_MESSAGE_LEN {
            // The id is used up even so, as with Go's client.
            if let Ok(mut w) = shared.writer.lock_until(deadline) {
                let _ = w.outbound.next_call_id(self.conn_id);
            }
            return Err(Error::MessageTooLarge {
                len: len as u64,
                limit: MAX_MESSAGE_LEN as u64,
            });
        }
        let encoded = envelope.encode_around();
        match shared.send_request(self.conn_id, &encoded, tx, deadline) {
            Ok(stream_id) => Ok(stream_id),
            Err(SendFailed::Deadline) => Err(exceeded()),
            Err(SendFailed::Error(e)) => Err(e),
        }
    }

    /// Waits for the reply of the call on `stream_id`, by the call's
    /// deadline, and returns its payload; a non-OK status becomes
    /// [`Error::Status`].
    fn await_call(
        &self,
        service: &str,
        method: &str,
        limit: Option<(Instant, Duration)>,
        stream_id: u32,
        rx: Receiver<Delivered>,
    ) -> Result<Vec<u8>> {
        let shared = &self.shared;
        let (outcome, _held) = match shared.await_reply(&rx, limit.map(|(d, _)| d)) {
            Some(r) => r,
            None => {
                lock(&shared.pending).remove(&key(self.conn_id, stream_id));
                // The reply may have raced the timeout into the slot.
                match rx.try_recv() {
                    Ok(r) => r,
                    Err(_) => return Err(deadline_exceeded(shared, service, method, limit)),
                }
            }
        };
        let resp = outcome?;
        let code = resp.status.as_ref().map(|s| s.code).unwrap_or(0);
        if code != 0 {
            let message = resp
                .status
                .as_ref()
                .map(|s| s.message.clone())
                .unwrap_or_default();
            return Err(Error::Status {
                service: service.to_string(),
                method: method.to_string(),
                code: Code::from_i32(code),
                message,
            });
        }
        Ok(resp.payload)
    }

    /// Typed call: encodes `req`, decodes the result as `Resp`. A reply
    /// that could hold more than [`crate::ttrpc::DEFAULT_MAX_DECODED_BYTES`]
    /// once decoded is refused with [`Error::DecodedTooLarge`] before it is
    /// decoded.
    pub fn call<Req: Message, Resp: Message>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp> {
        let payload = req.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: Req::NAME,
            source: e,
        })?;
        let out = self.call_raw(service, method, payload, timeout, Vec::new())?;
        crate::ttrpc::decode_reply::<Resp>(&out)
    }

    /// True once the underlying connection has started closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl ConnectionState {
    /// Hands a reply read from the socket to the caller waiting for it,
    /// counted in the pending-bytes budget until the caller is done with it
    /// (or, over the budget, an error in its place).
    pub(super) fn deliver(&self, conn_id: u32, stream_id: u32, resp: Result<Response>) {
        let slot = lock(&self.pending).remove(&key(conn_id, stream_id));
        match slot {
            Some(tx) => {
                let _ = tx.send(self.hold_reply(resp));
            }
            None => log::debug!(
                "{}: dropping reply for stream {stream_id} on logical connection {conn_id}: no caller waits for it (timed out or unknown)",
                Escape(&self.options.name)
            ),
        }
    }

    /// Waits for a caller's reply until `deadline`; `None` when it passed.
    ///
    /// Usually a worker reads the reply and hands it over. When nobody is
    /// reading (every worker is busy, for example a single worker making
    /// this very call from a handler), the caller reads the socket itself
    /// for a while, delivering whatever arrives; requests it reads stay
    /// queued for the workers.
    fn await_reply(
        &self,
        rx: &Receiver<Delivered>,
        deadline: Option<Instant>,
    ) -> Option<Delivered> {
        const SLICE: Duration = Duration::from_millis(10);
        loop {
            match rx.try_recv() {
                Ok(r) => return Some(r),
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Some((Err(Error::ConnectionClosed(self.reason_string())), None))
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    left
                }
                None => SLICE,
            };
            let slice = left.min(SLICE);
            let mut read = false;
            let turn = match self.closed.load(Ordering::Acquire) {
                true => None,
                false => self.try_take_turn(),
            };
            if let Some(turn) = turn {
                let mut rs = lock(&self.read);
                // Read only while no request waits for a worker: a caller
                // that kept the read side would starve the workers of the
                // requests it read (and the peer may answer this call only
                // after those).
                if !rs.has_queued() {
                    read = true;
                    let res = rs.fill_within(self, Some(slice));
                    drop(rs);
                    if let Err(e) = res {
                        self.close_on(&e);
                    }
                } else {
                    drop(rs);
                }
                drop(turn);
            }
            if !read {
                match rx.recv_timeout(slice) {
                    Ok(r) => return Some(r),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Some((Err(Error::ConnectionClosed(self.reason_string())), None))
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
        }
    }

    /// Allocates the next stream id, registers the caller and writes the
    /// request, all under the writer lock, so that ids reach the wire in
    /// increasing order whatever the number of calling threads.
    ///
    /// The caller's `deadline` bounds the wait for the writer and the
    /// write; the write timeout bounds the write too. Missing the deadline
    /// before a byte was written leaves the connection up; a frame cut
    /// short breaks the stream and closes it, as does a peer that took
    /// nothing for the whole write timeout, or the last stream id being
    /// used up (a connection that can make no more calls is closed rather
    /// than kept open and useless; a new one starts the ids afresh).
    fn send_request(
        &self,
        conn_id: u32,
        request: &EncodedRequest<'_>,
        tx: PendingSlot,
        deadline: Option<Instant>,
    ) -> std::result::Result<u32, SendFailed> {
        let mut w = match self.writer.lock_until(deadline) {
            Ok(w) => w,
            Err(LockFailed::TimedOut) => return Err(SendFailed::Deadline),
            Err(LockFailed::Closed) => {
                return Err(SendFailed::Error(Error::ConnectionClosed(
                    self.reason_string(),
                )))
            }
        };
        let allocated = {
            let mut pending = lock(&self.pending);
            if self.closed.load(Ordering::Acquire) {
                return Err(SendFailed::Error(Error::ConnectionClosed(
                    self.reason_string(),
                )));
            }
            w.outbound.next_call_id(conn_id).inspect(|&id| {
                pending.insert(key(conn_id, id), tx);
            })
        };
        let stream_id = match allocated {
            Ok(id) => id,
            Err(e) => {
                drop(w);
                log::warn!(
                    "{}: {e}; closing the connection",
                    Escape(&self.options.name)
                );
                self.close(e.to_string());
                return Err(SendFailed::Error(e));
            }
        };
        let by_write_timeout = Instant::now() + self.options.write_timeout;
        let (end, by_caller) = match deadline {
            Some(d) if d <= by_write_timeout => (d, true),
            _ => (by_write_timeout, false),
        };
        let res = w.write_message(&Outgoing::request(conn_id, stream_id, request.parts()), end);
        drop(w);
        let Err(failure) = res else {
            return Ok(stream_id);
        };
        lock(&self.pending).remove(&key(conn_id, stream_id));
        Err(match failure {
            WriteFailure::NothingWritten if by_caller => SendFailed::Deadline,
            WriteFailure::CutShort { written, len } if by_caller => {
                self.close(format!(
                    "{} stopped reading: a request of {len} bytes was cut short after {written} \
                     bytes by its caller's deadline; the frame stream is broken",
                    self.peer()
                ));
                SendFailed::Deadline
            }
            failure => SendFailed::Error(self.write_failed(failure, "a request")),
        })
    }
}

/// A reply as the reader hands it over, with its share of the budget.
type Delivered = (Result<Response>, Option<Held>);

/// Why a request was not sent.
enum SendFailed {
    /// The caller's deadline passed; the connection stays up unless a
    /// frame was cut short.
    Deadline,
    /// Anything else.
    Error(Error),
}

/// The error of a call that ran out of time: it names the call, the peer
/// and the limit the caller gave.
fn deadline_exceeded(
    shared: &ConnectionState,
    service: &str,
    method: &str,
    limit: Option<(Instant, Duration)>,
) -> Error {
    Error::DeadlineExceeded {
        service: service.to_string(),
        method: method.to_string(),
        peer: shared.peer(),
        timeout: limit.map(|(_, t)| t).unwrap_or_default(),
    }
}

/// A request that was written and whose reply is still to come (see
/// [`Client::send_raw_until`]). Wait for it: one that is dropped instead
/// leaves its caller registered until the reply arrives (and is dropped)
/// or the connection closes.
pub(crate) struct PendingCall<'c> {
    client: Client,
    service: &'c str,
    method: &'c str,
    limit: Option<(Instant, Duration)>,
    stream_id: u32,
    rx: Receiver<Delivered>,
}

impl PendingCall<'_> {
    /// Waits for the reply, by the call's deadline, and returns its
    /// payload; a non-OK status becomes [`Error::Status`].
    pub(crate) fn wait(self) -> Result<Vec<u8>> {
        self.client.await_call(
            self.service,
            self.method,
            self.limit,
            self.stream_id,
            self.rx,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::ttrpc::codec::{encode_frame, FrameHeader, HEADER_LEN, TYPE_RESPONSE};
    use crate::ttrpc::{ConnectionBuilder, Framing};

    /// Reads one request on `peer` and answers it with an OK reply.
    fn answer_one(peer: &mut UnixStream) -> u32 {
        let mut head = [0u8; HEADER_LEN];
        peer.read_exact(&mut head).unwrap();
        let header = FrameHeader::parse(&head);
        let mut data = vec![0u8; header.length as usize];
        peer.read_exact(&mut data).unwrap();
        let reply = Response::new().write_to_bytes().unwrap();
        let mut frame = Vec::new();
        encode_frame(&mut frame, header.stream_id, TYPE_RESPONSE, 0, &reply).unwrap();
        peer.write_all(&frame).unwrap();
        header.stream_id
    }

    #[test]
    fn a_call_after_the_last_stream_id_fails_and_closes_the_connection() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let conn = ConnectionBuilder::new(ours, Framing::Raw)
            .open(0)
            .start()
            .unwrap();
        conn.shared
            .writer
            .lock_until(None)
            .unwrap()
            .outbound
            .start_calls_at(0, u32::MAX);
        let client = conn.client(0).unwrap();
        let answering = std::thread::spawn(move || (answer_one(&mut peer), peer));
        let timeout = Some(Duration::from_secs(5));
        client
            .call_raw("s", "m", Vec::new(), timeout, Vec::new())
            .unwrap();
        let (id, _peer) = answering.join().unwrap();
        assert_eq!(id, u32::MAX, "the last id is used");
        let err = client
            .call_raw("s", "m", Vec::new(), timeout, Vec::new())
            .unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err:?}");
        assert!(
            conn.is_closed(),
            "a connection that can make no more calls closes"
        );
        let reason = conn.close_reason().unwrap();
        assert!(
            reason.contains("logical connection 0 has used every odd stream id up to 4294967295"),
            "{reason}"
        );
        // Later calls fail at once, saying why.
        let err = client
            .call_raw("s", "m", Vec::new(), timeout, Vec::new())
            .unwrap_err();
        assert!(
            matches!(&err, Error::ConnectionClosed(r) if r == &reason),
            "{err:?}"
        );
    }
}
