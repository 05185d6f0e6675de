//! The serving side: the ttrpc request envelope (decoded around a payload
//! that stays in the frame's buffer) and running the handler a request
//! names, with its deadline guard, panic catching and post-reply actions.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::read::Work;
use super::Shared;
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
    /// Decodes a `ttrpc.Request` field by field as the generated code does
    /// (and as strictly as [`crate::pb::decode`]), except that the payload
    /// is not copied out of the frame.
    pub(super) fn decode(data: Vec<u8>) -> protobuf::Result<Envelope> {
        let (mut service, mut method) = (String::new(), String::new());
        let (mut timeout_nano, mut metadata) = (0i64, Vec::new());
        let mut payload = 0..0;
        {
            let mut is = protobuf::CodedInputStream::from_bytes(&data);
            let outer = is.push_limit(data.len() as u64)?;
            let mut unknown = protobuf::UnknownFields::new();
            while let Some(tag) = is.read_raw_tag_or_eof()? {
                match tag {
                    10 => service = is.read_string()?,
                    18 => method = is.read_string()?,
                    26 => {
                        let len = is.read_raw_varint32()?;
                        let start = is.pos() as usize;
                        is.skip_raw_bytes(len)?;
                        payload = start..start + len as usize;
                    }
                    32 => timeout_nano = is.read_int64()?,
                    42 => metadata.push(is.read_message::<KeyValue>()?),
                    tag => protobuf::rt::read_unknown_or_skip_group(tag, &mut is, &mut unknown)?,
                }
            }
            is.pop_limit(outer);
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

    fn same(bytes: &[u8]) {
        let theirs = crate::pb::decode::<Request>(bytes);
        let ours = Envelope::decode(bytes.to_vec());
        match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                assert_eq!(t.service, o.service);
                assert_eq!(t.method, o.method);
                assert_eq!(t.payload, &o.data[o.payload.clone()]);
                assert_eq!(t.timeout_nano, o.timeout_nano);
                assert_eq!(t.metadata, o.metadata);
            }
            (Err(_), Err(_)) => {}
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
    }
}
