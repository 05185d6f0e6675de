//! The protobuf wire format by hand: varints, tags, length-delimited fields
//! and skipping any field, groups included.
//!
//! Encoding appends to a `Vec<u8>` or fills a fixed array ([`VarintBytes`]),
//! so framing a few bytes around a payload needs no allocation. Decoding
//! goes through a [`Reader`] over a byte slice that checks every bound
//! before it moves: a varint may not run past the end or past its width, a
//! length may not run past the end of the buffer, a group must be closed by
//! its own end tag (as Go's decoder requires) within [`MAX_GROUP_DEPTH`]
//! levels. A failure is a [`WireError`] naming the byte offset of the field
//! and the rule it breaks; nothing panics, whatever the input.
//!
//! Widths follow the protobuf decoders (Go's and the protobuf crate's):
//! tags and lengths are 32-bit varints (at most 5 bytes, the fifth at most
//! `0x0f`), scalar values 64-bit varints (at most 10 bytes, the tenth at
//! most `0x01`).

use std::fmt;
use std::ops::Range;

/// Longest encoding of a 64-bit varint.
pub(crate) const MAX_VARINT_LEN: usize = 10;
/// Longest encoding of a 32-bit varint (tags and lengths).
pub(crate) const MAX_VARINT32_LEN: usize = 5;
/// How deeply groups may nest inside the field being skipped (the protobuf
/// decoders' recursion limit).
pub(crate) const MAX_GROUP_DEPTH: usize = 100;

/// The type of a field's value on the wire (the low three bits of a tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireType {
    /// 0: a varint.
    Varint = 0,
    /// 1: eight bytes.
    Fixed64 = 1,
    /// 2: a length, then that many bytes (strings, bytes, messages, packed).
    Len = 2,
    /// 3: start of a (deprecated) group.
    StartGroup = 3,
    /// 4: end of a group.
    EndGroup = 4,
    /// 5: four bytes.
    Fixed32 = 5,
}

impl WireType {
    fn from_bits(bits: u32) -> Option<WireType> {
        Some(match bits {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return None,
        })
    }
}

/// A field's key: its number and the wire type of its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    /// Field number (1 and up).
    pub(crate) field: u32,
    /// How the value is encoded.
    pub(crate) wire: WireType,
}

impl Tag {
    /// The tag of field `field` with values of type `wire`.
    pub(crate) const fn new(field: u32, wire: WireType) -> Tag {
        Tag { field, wire }
    }

    /// The tag as the varint value written on the wire.
    pub(crate) const fn key(self) -> u32 {
        self.field << 3 | self.wire as u32
    }
}

// --- encoding ---------------------------------------------------------------

/// Number of bytes the varint encoding of `v` takes (1 to 10).
pub(crate) const fn varint_len(v: u64) -> usize {
    // One byte per started group of seven significant bits; zero takes one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// The varint encoding of one value, held in a fixed array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VarintBytes {
    bytes: [u8; MAX_VARINT_LEN],
    len: u8,
}

impl VarintBytes {
    /// Encodes `v`.
    pub(crate) fn new(mut v: u64) -> VarintBytes {
        let mut bytes = [0u8; MAX_VARINT_LEN];
        let mut len = 0;
        while v >= 0x80 {
            bytes[len] = v as u8 | 0x80;
            v >>= 7;
            len += 1;
        }
        bytes[len] = v as u8;
        VarintBytes {
            bytes,
            len: len as u8 + 1,
        }
    }

    /// The encoded bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Appends the varint encoding of `v`.
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(VarintBytes::new(v).as_slice());
}

/// Appends a tag.
pub(crate) fn put_tag(out: &mut Vec<u8>, tag: Tag) {
    put_varint(out, u64::from(tag.key()));
}

/// Appends the key and length of a length-delimited field whose `len`
/// bytes the caller appends next.
pub(crate) fn put_len_prefix(out: &mut Vec<u8>, field: u32, len: usize) {
    put_tag(out, Tag::new(field, WireType::Len));
    put_varint(out, len as u64);
}

/// Appends a whole length-delimited field: key, length, `bytes`.
pub(crate) fn put_len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_len_prefix(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

/// Encoded size of a length-delimited field of `len` bytes (key, length and
/// the bytes).
pub(crate) const fn len_field_size(field: u32, len: usize) -> usize {
    varint_len((field << 3 | WireType::Len as u32) as u64) + varint_len(len as u64) + len
}

// --- decoding ---------------------------------------------------------------

/// Bytes that break the wire format: where and which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireError {
    /// Offset of the tag of the field being read (0 for a bare value).
    pub(crate) at: usize,
    /// The rule broken.
    pub(crate) kind: WireErrorKind,
}

/// The rules a [`Reader`] enforces; the text of each names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WireErrorKind {
    /// A tag that is truncated or wider than 32 bits.
    BadTag,
    /// A tag with field number 0.
    FieldZero,
    /// A tag whose wire type is 6 or 7, or an end-group tag outside a group.
    BadWireType { field: u32, wire: u32 },
    /// A varint value that is truncated or wider than 64 bits.
    BadVarint { field: u32 },
    /// A length that is truncated or wider than 32 bits.
    BadLength { field: u32 },
    /// A length past the end of the buffer.
    Overrun { field: u32, len: u64, left: usize },
    /// A fixed-width value past the end of the buffer.
    TruncatedFixed { field: u32 },
    /// A string field that is not UTF-8.
    NotUtf8 { field: u32 },
    /// A group without its end tag.
    GroupNotClosed { field: u32 },
    /// An end-group tag of another field inside a group.
    GroupMismatch { end: u32, open: u32 },
    /// Groups nested more than [`MAX_GROUP_DEPTH`] deep.
    GroupTooDeep,
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WireErrorKind::*;
        match self {
            BadTag => write!(f, "truncated or invalid tag"),
            FieldZero => write!(f, "invalid field number 0"),
            BadWireType { field, wire } => {
                write!(f, "unsupported wire type {wire} in field {field}")
            }
            BadVarint { field } => write!(f, "truncated varint in field {field}"),
            BadLength { field } => write!(f, "truncated or invalid length of field {field}"),
            Overrun { field, len, left } => write!(
                f,
                "field {field} declares {len} bytes but only {left} remain"
            ),
            TruncatedFixed { field } => write!(f, "truncated fixed field {field}"),
            NotUtf8 { field } => write!(f, "string field {field} is not valid UTF-8"),
            GroupNotClosed { field } => write!(f, "group {field} is not closed"),
            GroupMismatch { end, open } => write!(f, "end of group {end} inside group {open}"),
            GroupTooDeep => write!(f, "groups nested deeper than {MAX_GROUP_DEPTH}"),
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.kind, self.at)
    }
}

impl std::error::Error for WireError {}

/// Reads varints, tags and fields from a byte slice, strictly.
///
/// The usual loop: `while let Some(tag) = r.read_tag()? { match tag { ...
/// => r.read_len(tag)?, _ => r.skip(tag)? } }`.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the tag of the field being read starts, for errors.
    field_at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            field_at: 0,
        }
    }

    /// How many bytes have been read.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// True once every byte has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn err(&self, kind: WireErrorKind) -> WireError {
        WireError {
            at: self.field_at,
            kind,
        }
    }

    /// A varint of at most `max_len` bytes whose last possible byte is at
    /// most `last_max`; `None` (and the position unchanged) when truncated
    /// or too wide.
    #[inline]
    fn varint_within(&mut self, max_len: usize, last_max: u8) -> Option<u64> {
        let rest = &self.buf[self.pos..];
        // The common case: one byte.
        if let Some(&b) = rest.first() {
            if b < 0x80 {
                self.pos += 1;
                return Some(u64::from(b));
            }
        }
        let mut v = 0u64;
        for i in 0..max_len {
            let b = *rest.get(i)?;
            if i == max_len - 1 {
                if b > last_max {
                    return None;
                }
                self.pos += i + 1;
                return Some(v | u64::from(b) << (7 * i));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.pos += i + 1;
                return Some(v);
            }
        }
        None
    }

    /// A 64-bit varint (a scalar value); `None` when truncated or too wide.
    pub(crate) fn varint(&mut self) -> Option<u64> {
        self.varint_within(MAX_VARINT_LEN, 0x01)
    }

    /// A 32-bit varint (a tag or a length); `None` when truncated or too
    /// wide.
    pub(crate) fn varint32(&mut self) -> Option<u32> {
        self.varint_within(MAX_VARINT32_LEN, 0x0f).map(|v| v as u32)
    }

    /// [`Reader::read_tag`] with the one-byte case inlined, for hot loops.
    #[inline(always)]
    pub(crate) fn read_tag_quick(&mut self) -> Result<Option<Tag>, WireError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.field_at = self.pos;
                self.pos += 1;
                self.tag_of(u32::from(b)).map(Some)
            }
            _ => self.read_tag(),
        }
    }

    /// [`Reader::read_len`] with a one-byte length inlined, for hot loops.
    #[inline(always)]
    pub(crate) fn read_len_quick(&mut self, tag: Tag) -> Result<&'a [u8], WireError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 && usize::from(b) < self.buf.len() - self.pos => {
                let start = self.pos + 1;
                self.pos = start + usize::from(b);
                Ok(&self.buf[start..self.pos])
            }
            _ => self.read_len(tag),
        }
    }

    /// The next tag, or `None` at the end of the buffer.
    pub(crate) fn read_tag(&mut self) -> Result<Option<Tag>, WireError> {
        if self.at_end() {
            return Ok(None);
        }
        self.field_at = self.pos;
        let key = self
            .varint32()
            .ok_or_else(|| self.err(WireErrorKind::BadTag))?;
        self.tag_of(key).map(Some)
    }

    fn tag_of(&self, key: u32) -> Result<Tag, WireError> {
        let field = key >> 3;
        if field == 0 {
            return Err(self.err(WireErrorKind::FieldZero));
        }
        match WireType::from_bits(key & 7) {
            Some(wire) => Ok(Tag { field, wire }),
            None => Err(self.err(WireErrorKind::BadWireType {
                field,
                wire: key & 7,
            })),
        }
    }

    /// The value of a varint field.
    pub(crate) fn read_varint(&mut self, tag: Tag) -> Result<u64, WireError> {
        self.varint()
            .ok_or_else(|| self.err(WireErrorKind::BadVarint { field: tag.field }))
    }

    /// Where the value of a length-delimited field lies in the buffer.
    pub(crate) fn read_len_range(&mut self, tag: Tag) -> Result<Range<usize>, WireError> {
        let len = self
            .varint32()
            .ok_or_else(|| self.err(WireErrorKind::BadLength { field: tag.field }))?;
        let left = self.buf.len() - self.pos;
        if len as usize > left {
            return Err(self.err(WireErrorKind::Overrun {
                field: tag.field,
                len: u64::from(len),
                left,
            }));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(start..self.pos)
    }

    /// The value of a length-delimited field.
    pub(crate) fn read_len(&mut self, tag: Tag) -> Result<&'a [u8], WireError> {
        let range = self.read_len_range(tag)?;
        Ok(&self.buf[range])
    }

    /// The value of a string field (UTF-8, as the decoders require).
    pub(crate) fn read_str(&mut self, tag: Tag) -> Result<&'a str, WireError> {
        let bytes = self.read_len_quick(tag)?;
        std::str::from_utf8(bytes)
            .map_err(|_| self.err(WireErrorKind::NotUtf8 { field: tag.field }))
    }

    fn skip_fixed(&mut self, n: usize, field: u32) -> Result<(), WireError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(WireErrorKind::TruncatedFixed { field }));
        }
        self.pos += n;
        Ok(())
    }

    /// Skips the value of the field `tag` was just read for: a scalar, a
    /// length-delimited value, or a whole group (nested groups included, up
    /// to its own end tag). An end-group tag here has no group to close.
    pub(crate) fn skip(&mut self, tag: Tag) -> Result<(), WireError> {
        match tag.wire {
            WireType::Varint => self.read_varint(tag).map(drop),
            WireType::Fixed64 => self.skip_fixed(8, tag.field),
            WireType::Fixed32 => self.skip_fixed(4, tag.field),
            WireType::Len => self.read_len_range(tag).map(drop),
            WireType::StartGroup => self.skip_group(tag.field),
            WireType::EndGroup => Err(self.err(WireErrorKind::BadWireType {
                field: tag.field,
                wire: WireType::EndGroup as u32,
            })),
        }
    }

    /// Skips the body of group `field` (its start tag read) and its end tag.
    /// Errors keep pointing at the group's start tag.
    fn skip_group(&mut self, field: u32) -> Result<(), WireError> {
        // The numbers of the open groups, innermost last; bounded by
        // MAX_GROUP_DEPTH, so a fixed array would do as well.
        let mut open = Vec::new();
        open.push(field);
        while let Some(&inner) = open.last() {
            if self.at_end() {
                return Err(self.err(WireErrorKind::GroupNotClosed { field: inner }));
            }
            let key = self
                .varint32()
                .ok_or_else(|| self.err(WireErrorKind::BadTag))?;
            let tag = self.tag_of(key)?;
            match tag.wire {
                WireType::StartGroup => {
                    if open.len() >= MAX_GROUP_DEPTH {
                        return Err(self.err(WireErrorKind::GroupTooDeep));
                    }
                    open.push(tag.field);
                }
                WireType::EndGroup if tag.field == inner => {
                    open.pop();
                }
                WireType::EndGroup => {
                    return Err(self.err(WireErrorKind::GroupMismatch {
                        end: tag.field,
                        open: inner,
                    }))
                }
                _ => self.skip(tag)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    /// Every input of up to 3 bytes (and a few longer ones), read with the
    /// quick and the plain tag and length readers: the same result, at the
    /// same position, with the same error.
    #[test]
    fn quick_readers_read_like_the_plain_ones() {
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        for a in 0..=255u8 {
            inputs.push(vec![a]);
            for b in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
                inputs.push(vec![a, b]);
                inputs.push(vec![a, b, 0x01]);
            }
        }
        inputs.push(vec![0x0a, 0x05, 1, 2, 3, 4, 5, 0x10]);
        inputs.push(vec![0x82, 0x01, 0x00]);
        let tag = Tag::new(1, WireType::Len);
        for input in &inputs {
            let (mut quick, mut plain) = (Reader::new(input), Reader::new(input));
            assert_eq!(quick.read_tag_quick(), plain.read_tag(), "{input:?}");
            assert_eq!(quick.position(), plain.position(), "{input:?}");
            let (mut quick, mut plain) = (Reader::new(input), Reader::new(input));
            assert_eq!(quick.read_len_quick(tag), plain.read_len(tag), "{input:?}");
            assert_eq!(quick.position(), plain.position(), "{input:?}");
        }
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut values = vec![0u64, 1, 127, 128, 255, 300, 16_383, 16_384, u64::MAX];
        values.extend((0..64).map(|s| 1u64 << s));
        values.extend((1..64).map(|s| (1u64 << s) - 1));
        for v in values {
            let bytes = encoded(v);
            assert_eq!(bytes.len(), varint_len(v), "{v}");
            assert_eq!(bytes, VarintBytes::new(v).as_slice(), "{v}");
            let mut r = Reader::new(&bytes);
            assert_eq!(r.varint(), Some(v), "{v}");
            assert!(r.at_end());
            // The protobuf crate agrees on the encoding.
            let mut theirs = Vec::new();
            let mut os = protobuf::CodedOutputStream::vec(&mut theirs);
            os.write_raw_varint64(v).unwrap();
            os.flush().unwrap();
            drop(os);
            assert_eq!(bytes, theirs, "{v}");
        }
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), MAX_VARINT_LEN);
    }

    #[test]
    fn varint_widths_follow_the_decoders() {
        // 64-bit: ten bytes, the tenth at most 1.
        let max = encoded(u64::MAX);
        assert_eq!(Reader::new(&max).varint(), Some(u64::MAX));
        let mut over = max.clone();
        over[9] = 0x02;
        assert_eq!(Reader::new(&over).varint(), None);
        let eleven = [0xff; 11];
        assert_eq!(Reader::new(&eleven).varint(), None);
        // 32-bit: five bytes, the fifth at most 0x0f.
        let max32 = encoded(u64::from(u32::MAX));
        assert_eq!(Reader::new(&max32).varint32(), Some(u32::MAX));
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x10]).varint32(),
            None
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).varint32(),
            None
        );
        // A non-minimal but in-range encoding is accepted, as the decoders do.
        assert_eq!(Reader::new(&[0x81, 0x00]).varint32(), Some(1));
        // Truncation leaves the position where it was.
        let mut r = Reader::new(&[0x80, 0x80]);
        assert_eq!(r.varint(), None);
        assert_eq!(r.pos, 0);
        assert_eq!(Reader::new(&[]).varint(), None);
    }

    #[test]
    fn fields_encode_as_the_protobuf_crate_does() {
        use crate::proto::ttrpc::KeyValue;
        use protobuf::Message;
        let kv = KeyValue {
            key: "k".repeat(200),
            value: "v".into(),
            ..Default::default()
        };
        let mut ours = Vec::new();
        put_len_field(&mut ours, 1, kv.key.as_bytes());
        put_len_prefix(&mut ours, 2, 1);
        ours.push(b'v');
        assert_eq!(ours, kv.write_to_bytes().unwrap());
        assert_eq!(
            len_field_size(1, kv.key.len()) + len_field_size(2, 1),
            ours.len()
        );
        let mut tag = Vec::new();
        put_tag(&mut tag, Tag::new(16, WireType::Varint));
        assert_eq!(tag, [0x80, 0x01]);
        assert_eq!(Tag::new(1, WireType::Len).key(), 0x0a);
    }

    #[test]
    fn a_reader_walks_fields_and_skips_what_it_does_not_know() {
        let mut buf = Vec::new();
        put_len_field(&mut buf, 1, b"name");
        put_tag(&mut buf, Tag::new(2, WireType::Varint));
        put_varint(&mut buf, 300);
        put_tag(&mut buf, Tag::new(3, WireType::Fixed64));
        buf.extend_from_slice(&[1; 8]);
        put_tag(&mut buf, Tag::new(4, WireType::Fixed32));
        buf.extend_from_slice(&[2; 4]);
        // Group 5 holding group 6 and a varint.
        buf.extend_from_slice(&[5 << 3 | 3, 6 << 3 | 3, 6 << 3 | 4, 7 << 3, 9, 5 << 3 | 4]);
        put_len_field(&mut buf, 8, b"tail");
        let mut r = Reader::new(&buf);
        let mut seen = Vec::new();
        while let Some(tag) = r.read_tag().unwrap() {
            match (tag.field, tag.wire) {
                (1, WireType::Len) => assert_eq!(r.read_str(tag).unwrap(), "name"),
                (2, WireType::Varint) => assert_eq!(r.read_varint(tag).unwrap(), 300),
                (8, WireType::Len) => assert_eq!(r.read_len(tag).unwrap(), b"tail"),
                _ => r.skip(tag).unwrap(),
            }
            seen.push(tag.field);
        }
        assert_eq!(seen, [1, 2, 3, 4, 5, 8]);
        assert!(r.at_end());
    }

    fn first_error(bytes: &[u8]) -> WireError {
        let mut r = Reader::new(bytes);
        loop {
            match r.read_tag() {
                Ok(Some(tag)) => {
                    if let Err(e) = r.skip(tag) {
                        return e;
                    }
                }
                Ok(None) => panic!("{bytes:?} was accepted"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn malformed_input_is_an_error_naming_the_rule_and_the_offset() {
        use WireErrorKind::*;
        let cases: &[(&[u8], WireErrorKind, usize)] = &[
            (
                &[0x0a, 0x05, 1, 2],
                Overrun {
                    field: 1,
                    len: 5,
                    left: 2,
                },
                0,
            ),
            (&[0x0a], BadLength { field: 1 }, 0),
            (&[0x80], BadTag, 0),
            (&[0xe9, 0x8b, 0x8f, 0xd2, 0x8a, 0x00], BadTag, 0),
            (&[0x81, 0x80, 0x80, 0x80, 0x10], BadTag, 0),
            (
                &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x1f],
                BadLength { field: 1 },
                0,
            ),
            (&[0x00, 0x00], FieldZero, 0),
            (&[0x24], BadWireType { field: 4, wire: 4 }, 0),
            (&[0x26], BadWireType { field: 4, wire: 6 }, 0),
            (&[0x27], BadWireType { field: 4, wire: 7 }, 0),
            (&[0x21, 1, 2], TruncatedFixed { field: 4 }, 0),
            (&[0x08, 1, 0x25, 1, 2, 3], TruncatedFixed { field: 4 }, 2),
            (
                &[
                    0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ],
                BadVarint { field: 3 },
                0,
            ),
            (&[0x18, 0x80], BadVarint { field: 3 }, 0),
            (&[0x23], GroupNotClosed { field: 4 }, 0),
            (&[0x23, 0x2b, 0x2c], GroupNotClosed { field: 4 }, 0),
            (&[0x23, 0x2c], GroupMismatch { end: 5, open: 4 }, 0),
            (
                &[0x23, 0x0a, 0x03, 1],
                Overrun {
                    field: 1,
                    len: 3,
                    left: 1,
                },
                0,
            ),
            (&[0x23, 0x00], FieldZero, 0),
            (&[0x23, 0x80], BadTag, 0),
        ];
        for (bytes, kind, at) in cases {
            let e = first_error(bytes);
            assert_eq!(&e.kind, kind, "{bytes:?}");
            assert_eq!(e.at, *at, "{bytes:?}");
            assert!(!e.to_string().is_empty());
        }
        let e = first_error(&[0x0a, 0x05, 1, 2]);
        assert_eq!(
            e.to_string(),
            "field 1 declares 5 bytes but only 2 remain (at byte 0)"
        );
    }

    #[test]
    fn group_nesting_is_bounded() {
        let ok: Vec<u8> = std::iter::repeat(0x23)
            .take(MAX_GROUP_DEPTH)
            .chain(std::iter::repeat(0x24).take(MAX_GROUP_DEPTH))
            .collect();
        let mut r = Reader::new(&ok);
        let tag = r.read_tag().unwrap().unwrap();
        r.skip(tag).unwrap();
        assert!(r.at_end());
        let deep: Vec<u8> = std::iter::repeat(0x23).take(MAX_GROUP_DEPTH + 1).collect();
        assert_eq!(first_error(&deep).kind, WireErrorKind::GroupTooDeep);
        // A deep stack of unclosed groups costs no more than the bound.
        let huge = vec![0x23; 1 << 20];
        assert_eq!(first_error(&huge).kind, WireErrorKind::GroupTooDeep);
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut r = Reader::new(&[0x0a, 0x02, 0xc3, 0x28]);
        let tag = r.read_tag().unwrap().unwrap();
        assert_eq!(
            r.read_str(tag).unwrap_err().kind,
            WireErrorKind::NotUtf8 { field: 1 }
        );
    }

    /// Whatever the bytes, the reader ends with a value or an error, never
    /// a panic, and its verdict on structure matches the protobuf crate's
    /// wherever that crate is as strict (it accepts a group closed by
    /// another field's end tag; Go's decoder and this reader do not).
    #[test]
    fn arbitrary_bytes_never_panic_and_agree_with_the_protobuf_crate() {
        use crate::proto::ttrpc::KeyValue;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut r = Reader::new(&bytes);
            let ours = loop {
                match r.read_tag() {
                    Ok(Some(tag)) => {
                        if let Err(e) = r.skip(tag) {
                            break Err(e);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            // KeyValue's fields 1 and 2 are strings; other fields are
            // skipped as unknown, like ours. Its verdict counts only for
            // input that does not use fields 1 and 2 as length-delimited.
            let uses_known = {
                let mut r = Reader::new(&bytes);
                let mut uses = false;
                while let Ok(Some(tag)) = r.read_tag() {
                    uses |= matches!(tag.field, 1 | 2) && tag.wire == WireType::Len;
                    if r.skip(tag).is_err() {
                        break;
                    }
                }
                uses
            };
            if uses_known {
                continue;
            }
            let theirs = crate::pb::decode::<KeyValue>(&bytes);
            match (&ours, &theirs) {
                (Ok(()), Ok(_)) | (Err(_), Err(_)) => {}
                (Ok(()), Err(e)) => panic!("{bytes:x?}: we accept, the protobuf crate says {e}"),
                (Err(e), Ok(_)) => assert!(
                    matches!(e.kind, WireErrorKind::GroupMismatch { .. }),
                    "{bytes:x?}: we refuse ({e}), the protobuf crate accepts"
                ),
            }
        }
    }
}
