//! The calling side: [`Client`] sends requests on one logical connection
//! and waits for their replies, which the reader hands over by stream id
//! (or which the caller reads itself when no worker is reading).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use protobuf::Message;

use super::{key, Owner, PendingSlot, Shared};
use crate::locking::lock;
use crate::pb::wire::{
    len_field_size, put_len_field, put_len_prefix, put_tag, put_varint, varint_len, Tag, WireType,
};
use crate::ttrpc::codec::{MAX_MESSAGE_LEN, TYPE_REQUEST};
use crate::ttrpc::{Code, KeyValue, Response};
use crate::{Error, Result};

/// Makes calls on one logical connection of a
/// [`Connection`](super::Connection). Cheap to clone, safe to use from many
/// threads at once.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
    chan: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("conn", &self.chan).finish()
    }
}

impl Client {
    pub(super) fn new(shared: Arc<Shared>, owner: Arc<Owner>, chan: u32) -> Self {
        Client {
            shared,
            _owner: owner,
            chan,
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
        let timeout_nano = timeout
            .map(|t| t.as_nanos().min(i64::MAX as u128) as i64)
            .unwrap_or(0);
        let envelope = RequestEnvelope {
            service,
            method,
            payload: &payload,
            timeout_nano,
            metadata: &metadata,
        };
        let len = envelope.encoded_len();
        if len > MAX_MESSAGE_LEN {
            // The id is consumed even so, as with Go's client.
            let mut next = lock(&shared.next_stream);
            let n = next.entry(self.chan).or_insert(1);
            *n = n.wrapping_add(2);
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
            .send_request(self.chan, &bytes, tx, timeout)
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
                lock(&shared.pending).remove(&key(self.chan, stream_id));
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

/// A `ttrpc.Request` to encode, borrowing its parts.
struct RequestEnvelope<'a> {
    service: &'a str,
    method: &'a str,
    payload: &'a [u8],
    timeout_nano: i64,
    metadata: &'a [KeyValue],
}

impl RequestEnvelope<'_> {
    /// Field numbers of `ttrpc.Request` and `ttrpc.KeyValue`.
    const SERVICE: u32 = 1;
    const METHOD: u32 = 2;
    const PAYLOAD: u32 = 3;
    const TIMEOUT_NANO: u32 = 4;
    const METADATA: u32 = 5;
    const KEY: u32 = 1;
    const VALUE: u32 = 2;

    /// Size of a proto3 `string`/`bytes` field: nothing when empty.
    fn bytes_len(field: u32, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            len_field_size(field, len)
        }
    }

    fn key_value_len(kv: &KeyValue) -> usize {
        Self::bytes_len(Self::KEY, kv.key.len()) + Self::bytes_len(Self::VALUE, kv.value.len())
    }

    /// Size of the encoded request.
    fn encoded_len(&self) -> usize {
        let timeout = match self.timeout_nano {
            0 => 0,
            t => 1 + varint_len(t as u64),
        };
        Self::bytes_len(Self::SERVICE, self.service.len())
            + Self::bytes_len(Self::METHOD, self.method.len())
            + Self::bytes_len(Self::PAYLOAD, self.payload.len())
            + timeout
            + self
                .metadata
                .iter()
                .map(|kv| len_field_size(Self::METADATA, Self::key_value_len(kv)))
                .sum::<usize>()
    }

    fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
        if !bytes.is_empty() {
            put_len_field(out, field, bytes);
        }
    }

    /// Appends the request as the generated code encodes it: fields in
    /// number order, proto3 defaults left out.
    fn encode(&self, out: &mut Vec<u8>) {
        Self::put_bytes(out, Self::SERVICE, self.service.as_bytes());
        Self::put_bytes(out, Self::METHOD, self.method.as_bytes());
        Self::put_bytes(out, Self::PAYLOAD, self.payload);
        if self.timeout_nano != 0 {
            put_tag(out, Tag::new(Self::TIMEOUT_NANO, WireType::Varint));
            put_varint(out, self.timeout_nano as u64);
        }
        for kv in self.metadata {
            put_len_prefix(out, Self::METADATA, Self::key_value_len(kv));
            Self::put_bytes(out, Self::KEY, kv.key.as_bytes());
            Self::put_bytes(out, Self::VALUE, kv.value.as_bytes());
        }
    }
}

impl Shared {
    pub(super) fn deliver(&self, chan: u32, stream_id: u32, resp: Result<Response>) {
        match lock(&self.pending).remove(&key(chan, stream_id)) {
            Some(tx) => {
                let _ = tx.send(resp);
            }
            None => log::debug!(
                "{}: dropping reply for stream {stream_id} on connection {chan}: no caller waits for it (timed out or unknown)",
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
        chan: u32,
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
            let mut next = lock(&self.next_stream);
            let n = next.entry(chan).or_insert(1);
            let id = *n;
            *n = n.wrapping_add(2);
            pending.insert(key(chan, id), tx);
            id
        };
        if let Some(t) = timeout {
            w.set_write_timeout(Some(t.max(Duration::from_millis(1))));
        }
        let res = self.write_locked(&mut w, chan, stream_id, TYPE_REQUEST, &[], bytes);
        if timeout.is_some() {
            w.set_write_timeout(None);
        }
        if let Err(e) = res {
            drop(w);
            lock(&self.pending).remove(&key(chan, stream_id));
            return Err(self.fail_write(e));
        }
        Ok(stream_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttrpc::Request;

    #[test]
    fn a_request_encodes_as_the_generated_code_does() {
        let kv = |k: &str, v: &str| {
            let mut kv = KeyValue::new();
            kv.key = k.into();
            kv.value = v.into();
            kv
        };
        let cases = [
            ("", "", 0usize, 0i64, vec![]),
            ("svc", "M", 1, 1, vec![kv("k", "v")]),
            (
                "nri.pkg.api.v1alpha1.Plugin",
                "CreateContainer",
                300,
                2_000_000_000,
                vec![],
            ),
            (
                "s",
                "m",
                20_000,
                i64::MAX,
                vec![kv("", ""), kv("a", ""), kv("", "b")],
            ),
            ("s", "", 0, -1, vec![kv(&"x".repeat(200), "y")]),
        ];
        for (service, method, len, timeout_nano, metadata) in cases {
            let payload = vec![0x5a; len];
            let generated = Request {
                service: service.into(),
                method: method.into(),
                payload: payload.clone(),
                timeout_nano,
                metadata: metadata.clone(),
                ..Default::default()
            }
            .write_to_bytes()
            .unwrap();
            let envelope = RequestEnvelope {
                service,
                method,
                payload: &payload,
                timeout_nano,
                metadata: &metadata,
            };
            let mut ours = Vec::new();
            envelope.encode(&mut ours);
            assert_eq!(ours, generated, "{service}/{method} {len} {timeout_nano}");
            assert_eq!(envelope.encoded_len(), generated.len());
        }
    }
}
