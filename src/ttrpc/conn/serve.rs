//! The serving side: the ttrpc request envelope (decoded around a payload
//! that stays in the frame's buffer) and running the handler a request
//! names, with its deadline guard, panic catching and post-reply actions.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::read::Work;
use super::Shared;
use crate::pb::wire::{Reader, Tag, WireError, WireType};
use crate::ttrpc::server::{Handler, Method, RequestContext};
use crate::ttrpc::{Code, KeyValue, Status};

/// A ttrpc request envelope whose payload is left in the frame's buffer.
pub(super) struct Envelope {
    service: String,
    method: String,
    /// The whole frame; the payload is `data[payload]`.
    data: Vec<u8>,
    payload: std::ops::Range<usize>,
    timeout_nano: i64,
    metadata: Vec<KeyValue>,
}

impl Envelope {
    const SERVICE: Tag = Tag::new(1, WireType::Len);
    const METHOD: Tag = Tag::new(2, WireType::Len);
    const PAYLOAD: Tag = Tag::new(3, WireType::Len);
    const TIMEOUT_NANO: Tag = Tag::new(4, WireType::Varint);
    const METADATA: Tag = Tag::new(5, WireType::Len);

    /// Decodes a `ttrpc.Request` as strictly as Go's decoder (a group must
    /// end with its own end tag), except that the payload is not copied out
    /// of the frame. Unknown fields, and known ones with another wire type,
    /// are skipped; of a repeated scalar field the last one counts.
    pub(super) fn decode(data: Vec<u8>) -> Result<Envelope, WireError> {
        let (mut service, mut method) = (String::new(), String::new());
        let (mut timeout_nano, mut metadata) = (0i64, Vec::new());
        let mut payload = 0..0;
        let mut r = Reader::new(&data);
        while let Some(tag) = r.read_tag()? {
            match tag {
                Self::SERVICE => r.read_str(tag)?.clone_into(&mut service),
                Self::METHOD => r.read_str(tag)?.clone_into(&mut method),
                Self::PAYLOAD => payload = r.read_len_range(tag)?,
                Self::TIMEOUT_NANO => timeout_nano = r.read_varint(tag)? as i64,
                Self::METADATA => metadata.push(key_value(r.read_len(tag)?)?),
                _ => r.skip(tag)?,
            }
        }
        Ok(Envelope {
            service,
            method,
            data,
            payload,
            timeout_nano,
            metadata,
        })
    }
}

/// Decodes a `ttrpc.KeyValue` (metadata entry): two strings.
fn key_value(bytes: &[u8]) -> Result<KeyValue, WireError> {
    const KEY: Tag = Tag::new(1, WireType::Len);
    const VALUE: Tag = Tag::new(2, WireType::Len);
    let mut kv = KeyValue::new();
    let mut r = Reader::new(bytes);
    while let Some(tag) = r.read_tag()? {
        match tag {
            KEY => r.read_str(tag)?.clone_into(&mut kv.key),
            VALUE => r.read_str(tag)?.clone_into(&mut kv.value),
            _ => r.skip(tag)?,
        }
    }
    Ok(kv)
}

impl Shared {
    pub(super) fn process(self: &Arc<Self>, work: Work) {
        match work {
            Work::Reject {
                chan,
                stream_id,
                status,
            } => {
                log::debug!(
                    "{}: refusing stream {stream_id}: {status}",
                    self.options.name
                );
                let _ = self.write_response(chan, stream_id, Err(status));
            }
            Work::Request {
                chan,
                stream_id,
                req,
                received,
            } => self.serve(chan, stream_id, req, received),
        }
    }

    fn serve(self: &Arc<Self>, chan: u32, stream_id: u32, req: Envelope, received: Instant) {
        let Envelope {
            service,
            method,
            data,
            payload,
            timeout_nano,
            metadata,
        } = req;
        let timeout = (timeout_nano > 0).then(|| Duration::from_nanos(timeout_nano as u64));
        let handler = match self.services.get(&chan) {
            Some(s) => s.lookup(&service, &method),
            None => Err(Status::new(
                Code::Unimplemented,
                format!("unknown service {service:?}"),
            )),
        };
        let Method { name, handler } = match handler {
            Ok(m) => m,
            Err(st) => {
                let _ = self.write_response(chan, stream_id, Err(st));
                return;
            }
        };
        let replied = self.watch_deadline(chan, stream_id, received, timeout, name);
        let ctx = RequestContext {
            service,
            method,
            stream_id,
            received,
            timeout,
            metadata,
            after_reply: Default::default(),
        };
        let mut spare = None;
        let call = || match handler {
            Handler::Borrowed(h) => {
                let r = h(&ctx, &data[payload]);
                spare = Some(data);
                r
            }
            Handler::Owned(h) => {
                let mut data = data;
                data.truncate(payload.end);
                data.drain(..payload.start);
                h(&ctx, data)
            }
        };
        let result = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(r) => r,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                log::error!(
                    "{}: handler for {}/{} panicked: {what}",
                    self.options.name,
                    ctx.service,
                    ctx.method
                );
                Err(Status::new(
                    Code::Internal,
                    format!(
                        "handler for {}/{} panicked: {what}",
                        ctx.service, ctx.method
                    ),
                ))
            }
        };
        if let Some(buf) = spare {
            self.recycle(buf);
        }
        if let Some(flag) = replied {
            if flag.swap(true, Ordering::AcqRel) {
                log::warn!(
                    "{}: {}/{} finished after its deadline guard had answered; its result is discarded",
                    self.options.name,
                    ctx.service,
                    ctx.method
                );
                return;
            }
        }
        if self.write_response(chan, stream_id, result).is_ok() {
            for f in ctx.take_after_reply() {
                if catch_unwind(AssertUnwindSafe(f)).is_err() {
                    log::error!("{}: a post-reply action panicked", self.options.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use protobuf::Message;

    use super::*;
    use crate::pb::wire::WireErrorKind;
    use crate::ttrpc::Request;

    fn request(payload: &[u8]) -> Request {
        let mut r = Request::new();
        r.service = "nri.pkg.api.v1alpha1.Plugin".into();
        r.method = "CreateContainer".into();
        r.payload = payload.to_vec();
        r.timeout_nano = 2_000_000_000;
        let mut kv = KeyValue::new();
        kv.key = "k".into();
        kv.value = "v".into();
        r.metadata.push(kv);
        r
    }

    /// Our envelope decoder and the generated `Request` agree on `bytes`,
    /// except where the protobuf crate is laxer than Go's decoder: it takes
    /// a group closed by another field's end tag, which we refuse as Go does.
    fn same(bytes: &[u8]) {
        let theirs = crate::pb::decode::<Request>(bytes);
        let ours = Envelope::decode(bytes.to_vec());
        match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                assert_eq!(t.service, o.service);
                assert_eq!(t.method, o.method);
                assert_eq!(t.payload, &o.data[o.payload.clone()]);
                assert_eq!(t.timeout_nano, o.timeout_nano);
                let pairs = |m: &[KeyValue]| {
                    m.iter()
                        .map(|kv| (kv.key.clone(), kv.value.clone()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(pairs(&t.metadata), pairs(&o.metadata));
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) if matches!(e.kind, WireErrorKind::GroupMismatch { .. }) => {}
            (t, o) => panic!(
                "{bytes:?}: protobuf {} but the envelope decoder {}",
                if t.is_ok() { "accepts" } else { "refuses" },
                if o.is_ok() { "accepts" } else { "refuses" }
            ),
        }
    }

    #[test]
    fn the_envelope_decodes_like_the_generated_request() {
        let full = request(b"payload bytes").write_to_bytes().unwrap();
        same(&full);
        same(&request(b"").write_to_bytes().unwrap());
        same(&[]);
        // Unknown fields, a repeated payload (the last one wins), a group.
        let mut extra = full.clone();
        extra.extend_from_slice(&[0x48, 0x07, 0x1a, 0x02, b'h', b'i', 0x5b, 0x60, 0x5c]);
        same(&extra);
        // Every truncation of a valid envelope, and a few corruptions.
        for n in 0..full.len() {
            same(&full[..n]);
        }
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0xff;
            same(&bad);
        }
        // A payload length past the end of the frame.
        same(&[0x1a, 0x10, 1, 2]);
        // Metadata with an unknown field, and one that is not UTF-8.
        same(&[0x2a, 0x06, 0x0a, 0x01, b'k', 0x18, 0x01, 0x12, 0x00][..7]);
        same(&[0x2a, 0x05, 0x0a, 0x01, b'k', 0x18, 0x01]);
        same(&[0x2a, 0x03, 0x0a, 0x01, 0xff]);
    }

    #[test]
    fn a_group_must_be_closed_by_its_own_end_tag() {
        // Field 11 opened, field 12 closed: Go refuses it, so do we.
        let e = Envelope::decode(vec![0x5b, 0x64]).err().unwrap();
        assert_eq!(e.kind, WireErrorKind::GroupMismatch { end: 12, open: 11 });
        let ok = Envelope::decode(vec![0x5b, 0x60, 0x01, 0x5c, 0x12, 0x01, b'M']).unwrap();
        assert_eq!(ok.method, "M");
    }
}
