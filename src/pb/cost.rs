//! What a message costs in memory once decoded, computed from its wire
//! bytes before decoding it.
//!
//! A few bytes on the wire can stand for a large value in memory: an empty
//! element of a repeated message field takes two bytes on the wire and a
//! whole element struct (plus the spare capacity of its `Vec`) once
//! decoded, so 4 MiB of empty mounts decode to hundreds of megabytes. A
//! [`CostModel`] knows, for one message type of the NRI API and every type
//! it holds, how the generated Rust types lay each field out (inline, in a
//! `Box`, in a `Vec` or a `HashMap`, with heap bytes for strings): from a
//! table `build.rs` derives from `proto/nri.proto`, with the sizes of the
//! structs taken from the generated types themselves (no protobuf
//! reflection at run time, which would add its descriptor code to every
//! plugin binary). [`CostModel::cost`]
//! walks the wire bytes once, without allocating, and returns an upper
//! bound of the heap bytes the decoded message holds, allocator overhead
//! included. [`CostModel::max_per_wire_byte`] bounds the same for any
//! message of a given wire size, so small messages need no walk.
//!
//! The bound assumes what the protobuf crate's generated decoder does: one
//! allocation per non-empty string or bytes value and per nested message
//! (`MessageField` boxes), `Vec`s and `HashMap`s that grow by doubling from
//! their smallest capacity (so at most twice the slots they use, or their
//! first allocation, and three times while the old block is copied to the
//! new one), and unknown fields kept in a per-message map. The bound covers
//! the peak while decoding, not only what the decoded message keeps.

use std::any::TypeId;
use std::sync::OnceLock;

use super::wire::{Reader, Tag, WireError, WireErrorKind, WireType};

/// The table `build.rs` writes from `proto/nri.proto`: for every message,
/// how each field is stored once decoded.
mod table {
    use super::{Elem, Field, MessageTable};
    include!(concat!(env!("OUT_DIR"), "/cost_table.rs"));
}

/// Heap bytes one allocation of `n` bytes takes, allocator overhead
/// included (glibc: 8 bytes of header, 16-byte steps, 32 bytes at least).
pub(crate) const fn alloc(n: usize) -> u64 {
    if n == 0 {
        0
    } else {
        let n = (n + 8 + 15) & !15;
        (if n < 32 { 32 } else { n }) as u64
    }
}

/// Size of a `String`, `Vec<u8>` or `Vec<T>` value.
const VEC: usize = std::mem::size_of::<Vec<u8>>();

/// What an unknown field can cost: its value in a `Vec` of the message's
/// unknown-field map (twice the slot, for growth), and its share of the map
/// and of that `Vec`'s first allocation.
const UNKNOWN: u64 = 2 * VEC as u64 + 512;

/// How many levels of nested messages the decoder accepts (the protobuf
/// crate's recursion limit); deeper input fails to decode.
pub(crate) const MAX_DEPTH: u32 = 100;

/// One value as a decoded field holds it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Elem {
    /// A scalar or enum of this many bytes, stored inline.
    Scalar(usize),
    /// A `String` or `Vec<u8>`: the value's bytes on the heap.
    Bytes,
    /// A message (index in the table): its struct, and what it holds.
    Message(usize),
}

/// How a field is stored.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field {
    /// One value, inline (a message: boxed in a `MessageField`).
    Singular(Elem),
    /// A `Vec` of values.
    Repeated(Elem),
    /// A `HashMap`; `key` and `value` are the fields 1 and 2 of each entry
    /// on the wire.
    Map { key: Elem, value: Elem },
}

/// One message of the table.
pub(crate) struct MessageTable {
    /// The generated type's id.
    pub(crate) type_id: fn() -> TypeId,
    /// `size_of` the generated struct.
    pub(crate) size: usize,
    /// Fields by number, sorted.
    pub(crate) fields: &'static [(u32, Field)],
}

/// Bytes one value of `e` takes in place (a vector slot, a map entry).
fn size_of(e: Elem) -> usize {
    match e {
        Elem::Scalar(n) => n,
        Elem::Bytes => VEC,
        Elem::Message(m) => table::MESSAGES[m].size,
    }
}

/// The memory cost model of one message type of the NRI API.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CostModel {
    root: usize,
    /// An upper bound of heap bytes per wire byte, for any input.
    per_wire_byte: u64,
}

/// The cost model of `M`, or `None` for a message type outside the NRI
/// API (which the table does not know).
pub(crate) fn model_of<M: 'static>() -> Option<CostModel> {
    let id = TypeId::of::<M>();
    let root = table::MESSAGES.iter().position(|m| (m.type_id)() == id)?;
    Some(CostModel {
        root,
        per_wire_byte: max_per_wire_byte(),
    })
}

/// An upper bound of heap bytes per wire byte for any message of the NRI
/// API (see [`CostModel::max_per_wire_byte`]).
pub(crate) fn max_per_wire_byte() -> u64 {
    static PER_WIRE_BYTE: OnceLock<u64> = OnceLock::new();
    *PER_WIRE_BYTE.get_or_init(worst_per_wire_byte)
}

impl CostModel {
    /// An upper bound of the heap bytes any message of this type holds per
    /// byte of its encoding: `len * max_per_wire_byte()` bounds
    /// [`CostModel::cost`] for every input of `len` bytes.
    pub(crate) fn max_per_wire_byte(&self) -> u64 {
        self.per_wire_byte
    }

    /// An upper bound of the heap bytes `bytes` hold once decoded as the
    /// model's message (the top-level struct itself not included). Fails on
    /// input the decoder refuses as well (broken framing, nesting deeper
    /// than the decoder accepts).
    pub(crate) fn cost(&self, bytes: &[u8]) -> Result<u64, WireError> {
        self.message(self.root, bytes, 0)
    }

    fn message(&self, m: usize, bytes: &[u8], depth: u32) -> Result<u64, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError {
                at: 0,
                kind: WireErrorKind::GroupTooDeep,
            });
        }
        let msg = &table::MESSAGES[m];
        let mut total = 0u64;
        // Repeated fields and maps already given their first allocation.
        let mut started: u64 = 0;
        let mut r = Reader::new(bytes);
        while let Some(tag) = r.read_tag_quick()? {
            let field = field_index(msg.fields, tag.field).map(|i| (i, msg.fields[i].1));
            total += match field {
                Some((_, Field::Singular(e))) if fits(e, tag) => {
                    let boxed = match e {
                        Elem::Message(m) => alloc(table::MESSAGES[m].size),
                        _ => 0,
                    };
                    boxed + self.inline(e, tag, &mut r, depth)?
                }
                Some((i, Field::Repeated(elem))) if fits(elem, tag) || packed(elem, tag) => {
                    let slot = size_of(elem);
                    let (values, heap) = if packed(elem, tag) {
                        // At most one value per byte.
                        (r.read_len(tag)?.len() as u64, 0)
                    } else {
                        (1, self.inline(elem, tag, &mut r, depth)?)
                    };
                    let first = first_time(&mut started, i);
                    // A Vec holds at most twice the slots it uses, or its
                    // first allocation of 4; while it grows, the old and
                    // the new block exist together: three times.
                    heap + values * 3 * slot as u64 + if first { alloc(4 * slot) } else { 0 }
                }
                Some((i, Field::Map { key, value })) if tag.wire == WireType::Len => {
                    let entry = size_of(key) + size_of(value);
                    let mut er = Reader::new(r.read_len_quick(tag)?);
                    let mut heap = 0;
                    while let Some(t) = er.read_tag_quick()? {
                        heap += match t.field {
                            1 if fits(key, t) => self.inline(key, t, &mut er, depth + 1)?,
                            2 if fits(value, t) => self.inline(value, t, &mut er, depth + 1)?,
                            _ => {
                                er.skip(t)?;
                                0
                            }
                        };
                    }
                    let first = first_time(&mut started, i);
                    heap + map_entry(entry) + if first { map_first(entry) } else { 0 }
                }
                _ => {
                    let at = r.position();
                    r.skip(tag)?;
                    UNKNOWN + alloc(r.position() - at)
                }
            };
        }
        Ok(total)
    }

    /// Reads one value of kind `e` and returns the heap it holds besides
    /// the place it is stored in (a message: what its fields hold).
    fn inline(&self, e: Elem, tag: Tag, r: &mut Reader<'_>, depth: u32) -> Result<u64, WireError> {
        match e {
            Elem::Scalar(_) => {
                r.skip(tag)?;
                Ok(0)
            }
            Elem::Bytes => Ok(alloc(r.read_len_quick(tag)?.len())),
            Elem::Message(m) => self.message(m, r.read_len_quick(tag)?, depth + 1),
        }
    }
}

/// Where field `number` is in `fields` (sorted by number). Most messages
/// number their fields from 1 without gaps, so the field is usually at
/// `number - 1`; otherwise a binary search finds it.
fn field_index(fields: &[(u32, Field)], number: u32) -> Option<usize> {
    let guess = (number as usize).wrapping_sub(1);
    match fields.get(guess) {
        Some(&(n, _)) if n == number => Some(guess),
        _ => fields.binary_search_by_key(&number, |(n, _)| *n).ok(),
    }
}

/// Share of a `HashMap`'s table one entry of `entry` bytes takes: the
/// table holds at most twice the entries, at 7/8 load, with one control
/// byte per bucket, and while it grows the old table exists too (three
/// times in all).
fn map_entry(entry: usize) -> u64 {
    ((entry as u64 + 1) * 24).div_ceil(7)
}

/// A `HashMap`'s first table: 4 buckets and 16 trailing control bytes.
fn map_first(entry: usize) -> u64 {
    alloc(4 * (entry + 1) + 16)
}

/// True the first time `i` is marked in `started` (fields past the 64th
/// count as first every time: still an upper bound).
fn first_time(started: &mut u64, i: usize) -> bool {
    if i >= 64 {
        return true;
    }
    let bit = 1u64 << i;
    let first = *started & bit == 0;
    *started |= bit;
    first
}

/// True when a value of kind `e` may arrive with the wire type of `tag`
/// (a field with another wire type is kept as an unknown field).
fn fits(e: Elem, tag: Tag) -> bool {
    match e {
        Elem::Scalar(4) => matches!(tag.wire, WireType::Varint | WireType::Fixed32),
        Elem::Scalar(8) => matches!(tag.wire, WireType::Varint | WireType::Fixed64),
        Elem::Scalar(_) => tag.wire == WireType::Varint,
        Elem::Bytes | Elem::Message(_) => tag.wire == WireType::Len,
    }
}

/// True for a packed run of scalars.
fn packed(e: Elem, tag: Tag) -> bool {
    matches!(e, Elem::Scalar(_)) && tag.wire == WireType::Len
}

/// An upper bound of heap bytes per wire byte over every field of every
/// message type of a model: the most one occurrence of a field can cost
/// over the fewest bytes it can take on the wire bounds the cost of every
/// byte, since the bytes nested in a message pay for their own fields.
fn worst_per_wire_byte() -> u64 {
    // An unknown field takes 2 bytes at least; a string's bytes cost an
    // allocation of 32 for one byte, tag and length included (3 bytes).
    let mut worst = UNKNOWN.div_ceil(2).max(alloc(1).div_ceil(3));
    for m in table::MESSAGES {
        for &(_, f) in m.fields {
            // The shortest occurrence of a field takes 2 bytes: its tag and
            // a one-byte value or length.
            let occurrence = match f {
                Field::Singular(Elem::Message(n)) => alloc(table::MESSAGES[n].size),
                Field::Singular(_) => 0,
                Field::Repeated(e) => alloc(4 * size_of(e)) + 3 * size_of(e) as u64,
                Field::Map { key, value } => {
                    let entry = size_of(key) + size_of(value);
                    map_first(entry) + map_entry(entry)
                }
            };
            worst = worst.max(occurrence.div_ceil(2));
        }
    }
    worst
}
