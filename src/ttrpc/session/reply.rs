//! Encoding the `ttrpc.Response` a served request gets.
//!
//! A success is framed around the handler's payload as it is: only the few
//! bytes before it are encoded, so the payload is never copied into an
//! encoded response first. A failure is encoded whole. A reply that would
//! exceed the message limit is replaced by a RESOURCE_EXHAUSTED status, so
//! the caller hears why instead of waiting for a reply that cannot come.

use protobuf::Message;

use crate::pb::wire::{Tag, VarintBytes, WireType, MAX_VARINT_LEN};
use crate::proto::ttrpc::Response;
use crate::status::{Code, Status};
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::{Error, Result};

/// The bytes of a successful `ttrpc.Response` before its payload: field 1,
/// an empty (OK) `Status`, then field 2's tag and length unless the payload
/// is empty (proto3 leaves an empty `bytes` field out).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OkHead {
    buf: [u8; 3 + MAX_VARINT_LEN],
    len: u8,
}

impl OkHead {
    const STATUS: Tag = Tag::new(1, WireType::Len);
    const PAYLOAD: Tag = Tag::new(2, WireType::Len);

    /// The head of a reply carrying `payload_len` bytes.
    pub(crate) fn new(payload_len: usize) -> OkHead {
        let mut buf = [0u8; 3 + MAX_VARINT_LEN];
        buf[0] = Self::STATUS.key() as u8;
        buf[1] = 0;
        if payload_len == 0 {
            return OkHead { buf, len: 2 };
        }
        buf[2] = Self::PAYLOAD.key() as u8;
        let len = VarintBytes::new(payload_len as u64);
        let end = 3 + len.as_slice().len();
        buf[3..end].copy_from_slice(len.as_slice());
        OkHead {
            buf,
            len: end as u8,
        }
    }

    /// The encoded bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// A response ready to frame: [`Reply::parts`] gives the bytes before the
/// payload and the payload (or the whole encoded status).
#[derive(Debug)]
pub(crate) enum Reply<'a> {
    /// OK, framed around the handler's payload.
    Ok {
        /// The envelope bytes before the payload.
        head: OkHead,
        /// The handler's payload.
        payload: &'a [u8],
    },
    /// A status other than OK, encoded whole.
    Status {
        /// The encoded `ttrpc.Response`.
        encoded: Vec<u8>,
        /// The size of the reply this one replaces because it was over the
        /// limit, if it does.
        replaces: Option<usize>,
    },
}

impl<'a> Reply<'a> {
    /// The response for a handler's `result`, or for a RESOURCE_EXHAUSTED
    /// status when that response would be over [`MAX_MESSAGE_LEN`].
    pub(crate) fn new(result: &'a std::result::Result<Vec<u8>, Status>) -> Result<Reply<'a>> {
        let reply = match result {
            Ok(payload) => Reply::Ok {
                head: OkHead::new(payload.len()),
                payload,
            },
            Err(status) => Reply::Status {
                encoded: encode_status(status)?,
                replaces: None,
            },
        };
        let len = reply.len();
        if len <= MAX_MESSAGE_LEN {
            return Ok(reply);
        }
        let status = Status::new(
            Code::ResourceExhausted,
            format!("reply of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit"),
        );
        Ok(Reply::Status {
            encoded: encode_status(&status)?,
            replaces: Some(len),
        })
    }

    /// The bytes before the payload, and the payload (for a status: no
    /// head, and the whole response).
    pub(crate) fn parts(&self) -> (&[u8], &[u8]) {
        match self {
            Reply::Ok { head, payload } => (head.as_slice(), payload),
            Reply::Status { encoded, .. } => (&[], encoded),
        }
    }

    /// Encoded length of the response.
    pub(crate) fn len(&self) -> usize {
        let (head, body) = self.parts();
        head.len() + body.len()
    }
}

fn encode_status(status: &Status) -> Result<Vec<u8>> {
    Response {
        status: protobuf::MessageField::some(status.to_proto()),
        ..Default::default()
    }
    .write_to_bytes()
    .map_err(|e| Error::Protobuf {
        what: "encoding",
        message: "ttrpc.Response",
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(reply: &Reply<'_>) -> Vec<u8> {
        let (head, body) = reply.parts();
        [head, body].concat()
    }

    #[test]
    fn a_success_encodes_as_the_generated_response() {
        for len in [
            0usize,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            MAX_MESSAGE_LEN - 7,
        ] {
            let payload = vec![7u8; len];
            let generated = Response {
                status: protobuf::MessageField::some(Status::new(Code::Ok, "").to_proto()),
                payload: payload.clone(),
                ..Default::default()
            }
            .write_to_bytes()
            .unwrap();
            let result = Ok(payload);
            let reply = Reply::new(&result).unwrap();
            assert!(matches!(reply, Reply::Ok { .. }), "payload of {len} bytes");
            assert_eq!(joined(&reply), generated, "payload of {len} bytes");
            assert_eq!(reply.len(), generated.len());
        }
    }

    #[test]
    fn a_failure_encodes_its_status() {
        let result = Err(Status::new(Code::NotFound, "no such pod"));
        let reply = Reply::new(&result).unwrap();
        let decoded = Response::parse_from_bytes(&joined(&reply)).unwrap();
        assert_eq!(decoded.status.code, Code::NotFound.as_i32());
        assert_eq!(decoded.status.message, "no such pod");
        assert!(decoded.payload.is_empty());
        assert!(matches!(reply, Reply::Status { replaces: None, .. }));
    }

    #[test]
    fn a_reply_over_the_limit_becomes_resource_exhausted() {
        // 4 MiB - 6 bytes of payload need 7 bytes of head: one too many.
        let result = Ok(vec![0u8; MAX_MESSAGE_LEN - 6]);
        let reply = Reply::new(&result).unwrap();
        let Reply::Status {
            replaces: Some(len),
            ..
        } = &reply
        else {
            panic!("{reply:?}")
        };
        assert_eq!(*len, MAX_MESSAGE_LEN + 1);
        let decoded = Response::parse_from_bytes(&joined(&reply)).unwrap();
        assert_eq!(decoded.status.code, Code::ResourceExhausted.as_i32());
        assert_eq!(
            decoded.status.message,
            "reply of 4194305 bytes exceeds the 4194304-byte limit"
        );
        // A status message over the limit too.
        let result = Err(Status::new(Code::Internal, "x".repeat(MAX_MESSAGE_LEN)));
        let reply = Reply::new(&result).unwrap();
        assert!(matches!(
            reply,
            Reply::Status {
                replaces: Some(_),
                ..
            }
        ));
        assert!(reply.len() < 100);
    }
}
