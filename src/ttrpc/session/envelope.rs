//! The `ttrpc.Request` envelope, both ways: decoded around a payload that
//! stays in the frame's buffer, and encoded from borrowed parts.

use std::ops::Range;
use std::time::Duration;

use crate::pb::wire::{
    len_field_size, put_len_field, put_len_prefix, put_tag, put_varint, varint_len, Reader, Tag,
    WireError, WireType,
};
use crate::proto::ttrpc::KeyValue;

/// The most memory a request's metadata may hold once decoded (its entries,
/// their strings and the spare room of the vector): 1 MiB. Go's ttrpc sets
/// no limit of its own, but a 4 MiB frame of empty entries would decode to
/// a quarter of a gigabyte.
pub(crate) const MAX_METADATA_BYTES: usize = 1 << 20;

/// Why a request envelope was not decoded.
#[derive(Debug)]
pub(crate) enum EnvelopeError {
    /// The bytes break the wire format.
    Wire(WireError),
    /// The metadata would hold more than [`MAX_METADATA_BYTES`].
    Metadata {
        /// Entries decoded before the limit was reached.
        entries: usize,
    },
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::Wire(e) => e.fmt(f),
            EnvelopeError::Metadata { entries } => write!(
                f,
                "the request's metadata holds more than {MAX_METADATA_BYTES} bytes in memory (limit reached after {entries} entries)"
            ),
        }
    }
}

impl From<WireError> for EnvelopeError {
    fn from(e: WireError) -> Self {
        EnvelopeError::Wire(e)
    }
}

/// A ttrpc request envelope whose payload is left in the frame's buffer.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// Fully qualified service name.
    pub(crate) service: String,
    /// Method name.
    pub(crate) method: String,
    /// The whole frame; the payload is `data[payload]`.
    pub(crate) data: Vec<u8>,
    /// Where the payload lies in `data`.
    pub(crate) payload: Range<usize>,
    /// The caller's timeout in nanoseconds (0 or less: none).
    pub(crate) timeout_nano: i64,
    /// The request's metadata, in wire order.
    pub(crate) metadata: Vec<KeyValue>,
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
    /// are skipped; of a repeated scalar field the last one counts. The
    /// metadata may hold at most [`MAX_METADATA_BYTES`] in memory.
    pub(crate) fn decode(data: Vec<u8>) -> Result<Envelope, EnvelopeError> {
        let (mut service, mut method) = (String::new(), String::new());
        let (mut timeout_nano, mut metadata) = (0i64, Vec::new());
        let mut held = 0usize;
        let mut payload = 0..0;
        let mut r = Reader::new(&data);
        while let Some(tag) = r.read_tag()? {
            match tag {
                Self::SERVICE => r.read_str(tag)?.clone_into(&mut service),
                Self::METHOD => r.read_str(tag)?.clone_into(&mut method),
                Self::PAYLOAD => payload = r.read_len_range(tag)?,
                Self::TIMEOUT_NANO => timeout_nano = r.read_varint(tag)? as i64,
                Self::METADATA => {
                    let kv = key_value(r.read_len(tag)?)?;
                    // Its slot (three times: the vector doubles, and both
                    // blocks exist while it grows) and its strings.
                    held += 3 * std::mem::size_of::<KeyValue>()
                        + crate::pb::cost::alloc(kv.key.len()) as usize
                        + crate::pb::cost::alloc(kv.value.len()) as usize;
                    if held > MAX_METADATA_BYTES {
                        return Err(EnvelopeError::Metadata {
                            entries: metadata.len(),
                        });
                    }
                    metadata.push(kv);
                }
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

    /// The caller's timeout: `timeout_nano` when above zero (Go's server
    /// reads zero or less as no deadline).
    pub(crate) fn timeout(&self) -> Option<Duration> {
        (self.timeout_nano > 0).then(|| Duration::from_nanos(self.timeout_nano as u64))
    }
}

/// The `timeout_nano` of a request whose caller waits `timeout` (0 for no
/// deadline; saturating at `i64::MAX`, some 292 years).
pub(crate) fn timeout_nano(timeout: Option<Duration>) -> i64 {
    timeout.map_or(0, |t| t.as_nanos().min(i64::MAX as u128) as i64)
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

/// A `ttrpc.Request` to encode, borrowing its parts.
pub(crate) struct RequestEnvelope<'a> {
    service: &'a str,
    method: &'a str,
    payload: &'a [u8],
    /// The caller's timeout in nanoseconds (0: none).
    timeout_nano: i64,
    metadata: &'a [KeyValue],
}

impl<'a> RequestEnvelope<'a> {
    /// A request for `service`/`method` with these parts.
    pub(crate) fn new(
        service: &'a str,
        method: &'a str,
        payload: &'a [u8],
        timeout_nano: i64,
        metadata: &'a [KeyValue],
    ) -> Self {
        RequestEnvelope {
            service,
            method,
            payload,
            timeout_nano,
            metadata,
        }
    }

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
    pub(crate) fn encoded_len(&self) -> usize {
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

    /// Encodes the request around its payload, without copying the
    /// payload: the fields before it and after it, as the generated code
    /// orders them (by number, proto3 defaults left out).
    pub(crate) fn encode_around(&self) -> EncodedRequest<'a> {
        let mut around = Vec::with_capacity(self.encoded_len() - self.payload.len());
        Self::put_bytes(&mut around, Self::SERVICE, self.service.as_bytes());
        Self::put_bytes(&mut around, Self::METHOD, self.method.as_bytes());
        if !self.payload.is_empty() {
            put_len_prefix(&mut around, Self::PAYLOAD, self.payload.len());
        }
        let split = around.len();
        if self.timeout_nano != 0 {
            put_tag(&mut around, Tag::new(Self::TIMEOUT_NANO, WireType::Varint));
            put_varint(&mut around, self.timeout_nano as u64);
        }
        for kv in self.metadata {
            put_len_prefix(&mut around, Self::METADATA, Self::key_value_len(kv));
            Self::put_bytes(&mut around, Self::KEY, kv.key.as_bytes());
            Self::put_bytes(&mut around, Self::VALUE, kv.value.as_bytes());
        }
        EncodedRequest {
            around,
            split,
            payload: self.payload,
        }
    }
}

/// An encoded `ttrpc.Request` in three parts, its payload borrowed: what
/// precedes the payload, the payload, and what follows it.
#[derive(Debug)]
pub(crate) struct EncodedRequest<'a> {
    around: Vec<u8>,
    split: usize,
    payload: &'a [u8],
}

impl EncodedRequest<'_> {
    /// The three parts, in wire order.
    pub(crate) fn parts(&self) -> [&[u8]; 3] {
        let (head, tail) = self.around.split_at(self.split);
        [head, self.payload, tail]
    }
}

#[cfg(test)]
mod tests {
    use protobuf::Message;

    use super::*;
    use crate::pb::wire::WireErrorKind;
    use crate::proto::ttrpc::Request;

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
            (Ok(_), Err(EnvelopeError::Wire(e)))
                if matches!(e.kind, WireErrorKind::GroupMismatch { .. }) => {}
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
    fn timeouts_go_to_nanoseconds_and_back() {
        assert_eq!(timeout_nano(None), 0);
        assert_eq!(
            timeout_nano(Some(Duration::from_millis(1500))),
            1_500_000_000
        );
        assert_eq!(timeout_nano(Some(Duration::MAX)), i64::MAX);
        let with = |timeout_nano| {
            let mut r = request(b"");
            r.timeout_nano = timeout_nano;
            Envelope::decode(r.write_to_bytes().unwrap())
                .unwrap()
                .timeout()
        };
        assert_eq!(with(2_000), Some(Duration::from_micros(2)));
        assert_eq!(with(0), None);
        assert_eq!(with(-5), None);
    }

    #[test]
    fn a_group_must_be_closed_by_its_own_end_tag() {
        // Field 11 opened, field 12 closed: Go refuses it, so do we.
        let Some(EnvelopeError::Wire(e)) = Envelope::decode(vec![0x5b, 0x64]).err() else {
            panic!("a wire error expected")
        };
        assert_eq!(e.kind, WireErrorKind::GroupMismatch { end: 12, open: 11 });
        let ok = Envelope::decode(vec![0x5b, 0x60, 0x01, 0x5c, 0x12, 0x01, b'M']).unwrap();
        assert_eq!(ok.method, "M");
    }

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
            let envelope = RequestEnvelope::new(service, method, &payload, timeout_nano, &metadata);
            let ours = envelope.encode_around().parts().concat();
            assert_eq!(ours, generated, "{service}/{method} {len} {timeout_nano}");
            assert_eq!(envelope.encoded_len(), generated.len());
        }
    }
}
