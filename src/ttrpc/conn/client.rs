//! The calling side: [`Client`] sends requests on one logical connection
//! and waits for their replies, which the reader hands over by stream id
//! (or which the caller reads itself when no worker is reading).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use protobuf::Message;

use super::{key, ConnectionState, Owner, PendingSlot};
use crate::locking::lock;
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::ttrpc::session::{timeout_nano, Outgoing, RequestEnvelope};
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
    /// encoded result. With a timeout, the remaining time is sent to the
    /// server as `timeout_nano` and the call fails with
    /// [`Error::DeadlineExceeded`] when no reply came in time (a late reply
    /// is dropped). A non-OK status becomes [`Error::Status`].
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        timeout: Option<Duration>,
        metadata: Vec<KeyValue>,
    ) -> Result<Vec<u8>> {
        let shared = &self.shared;
        let envelope =
            RequestEnvelope::new(service, method, &payload, timeout_nano(timeout), &metadata);
        let len = envelope.encoded_len();
        if len > MAX_MESSAGE_LEN {
            // The id is used up even so, as with Go's client.
            let _ = lock(&shared.writer).outbound.next_call_id(self.conn_id);
            return Err(Error::MessageTooLarge {
                len: len as u64,
                limit: MAX_MESSAGE_LEN as u64,
            });
        }
        let mut bytes = Vec::with_capacity(len);
        envelope.encode(&mut bytes);
        drop(payload);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stream_id = shared
            .send_request(self.conn_id, &bytes, tx, timeout)
            .map_err(|e| match (e, timeout) {
                (Error::Io { source, .. }, Some(t))
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    Error::DeadlineExceeded {
                        service: service.to_string(),
                        method: method.to_string(),
                        timeout: t,
                    }
                }
                (e, _) => e,
            })?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let outcome = match shared.await_reply(&rx, deadline) {
            Some(r) => r,
            None => {
                lock(&shared.pending).remove(&key(self.conn_id, stream_id));
                // The reply may have raced the timeout into the slot.
                match rx.try_recv() {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Error::DeadlineExceeded {
                            service: service.to_string(),
                            method: method.to_string(),
                            timeout: timeout.unwrap_or_default(),
                        })
                    }
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

    /// Typed call: encodes `req`, decodes the result as `Resp`.
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
        crate::pb::decode::<Resp>(&out).map_err(|e| Error::Protobuf {
            what: "decoding",
            message: Resp::NAME,
            source: e,
        })
    }

    /// True once the underlying connection has started closing.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl ConnectionState {
    pub(super) fn deliver(&self, conn_id: u32, stream_id: u32, resp: Result<Response>) {
        match lock(&self.pending).remove(&key(conn_id, stream_id)) {
            Some(tx) => {
                let _ = tx.send(resp);
            }
            None => log::debug!(
                "{}: dropping reply for stream {stream_id} on logical connection {conn_id}: no caller waits for it (timed out or unknown)",
                self.options.name
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
        rx: &Receiver<Result<Response>>,
        deadline: Option<Instant>,
    ) -> Option<Result<Response>> {
        const SLICE: Duration = Duration::from_millis(10);
        loop {
            match rx.try_recv() {
                Ok(r) => return Some(r),
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Some(Err(Error::ConnectionClosed(self.reason_string())))
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
                        return Some(Err(Error::ConnectionClosed(self.reason_string())))
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
        }
    }

    /// Allocates the next stream id, registers the caller and writes the
    /// request, all under the writer lock, so that ids reach the wire in
    /// increasing order whatever the number of calling threads.
    /// With a timeout, the write itself is bounded by it too: a peer that
    /// stops reading cannot hold the caller past its deadline (the
    /// connection is closed then, since a frame was cut short).
    fn send_request(
        &self,
        conn_id: u32,
        bytes: &[u8],
        tx: PendingSlot,
        timeout: Option<Duration>,
    ) -> Result<u32> {
        let mut w = lock(&self.writer);
        let stream_id = {
            let mut pending = lock(&self.pending);
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::ConnectionClosed(self.reason_string()));
            }
            let id = w.outbound.next_call_id(conn_id)?;
            pending.insert(key(conn_id, id), tx);
            id
        };
        if let Some(t) = timeout {
            w.set_write_timeout(Some(t.max(Duration::from_millis(1))));
        }
        let res = w.write_message(&Outgoing::request(conn_id, stream_id, bytes));
        if timeout.is_some() {
            w.set_write_timeout(None);
        }
        if let Err(e) = res {
            drop(w);
            lock(&self.pending).remove(&key(conn_id, stream_id));
            return Err(self.fail_write(e));
        }
        Ok(stream_id)
    }
}
