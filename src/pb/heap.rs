//! How much heap memory a message value holds.
//!
//! [`heap_bytes`] walks a generated message through the protobuf crate's
//! reflection and adds up what its fields keep on the heap: the bytes of
//! every string and `bytes` value, the slots of every repeated field, the
//! tables of every map, the box of every set message field, and the
//! message's unknown fields (which the decoder keeps, so a peer can make a
//! message as large as it likes with fields nobody reads). Each allocation
//! is rounded up the way glibc's `malloc` rounds it (16-byte steps, 8 bytes
//! of header, 32 bytes at least), so the sum is what the allocator gives
//! out, not only what the values use.
//!
//! Reflection sees lengths, not capacities, so the sum is an upper bound
//! only for a value without spare capacity in its strings and vectors.
//! A value from a peer need not be one: a repeated field grows by
//! doubling, and a packed repeated field reserves a slot per byte of its
//! encoding (ten times the slots it fills, with overlong varints). `Clone`
//! makes every string and vector exactly as long as its contents (and
//! copies a map's table as it is: a map filled by decoding holds no more
//! buckets than its entries need), so a caller that keeps a peer's value
//! for long keeps a clone of it and counts that (see [`compact`]).
//!
//! The struct of the message itself is not counted: it lives where its
//! owner keeps it (a slot of a `Vec`, a `Box`, a local).

use std::mem::size_of;

use protobuf::reflect::{ReflectFieldRef, ReflectValueRef, RuntimeType};
use protobuf::{MessageDyn, UnknownValueRef};

/// Heap bytes one allocation of `n` bytes takes: glibc adds an 8-byte
/// header, rounds to 16 bytes and gives out at least 32. Nothing for 0
/// (an empty `String`, `Vec` or map allocates nothing).
pub(crate) const fn alloc(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let chunk = n.saturating_add(8 + 15) & !15;
    if chunk < 32 {
        32
    } else {
        chunk
    }
}

/// Buckets a `HashMap` of `n` entries has at most when filled one insert at
/// a time (a power of two, at least 4, at most 7/8 full), rounded up
/// generously: twice the fewest that hold `n`.
fn map_buckets(n: usize) -> usize {
    let needed = n.saturating_mul(8) / 7 + 1;
    needed
        .max(4)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
}

/// The table of a map with `n` entries of `entry` bytes: the slots, one
/// control byte per bucket and one group of trailing control bytes.
fn map_table(n: usize, entry: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let buckets = map_buckets(n);
    alloc(
        buckets
            .saturating_mul(entry.saturating_add(1))
            .saturating_add(16),
    )
}

/// Bytes one value of `t` takes inline, in a struct or a vector's slot;
/// `sample` gives the size of a message type.
fn slot(t: &RuntimeType, sample: Option<&ReflectValueRef<'_>>) -> usize {
    match t {
        RuntimeType::I32 | RuntimeType::U32 | RuntimeType::F32 => 4,
        RuntimeType::I64 | RuntimeType::U64 | RuntimeType::F64 => 8,
        RuntimeType::Bool => 1,
        RuntimeType::String => size_of::<String>(),
        RuntimeType::VecU8 => size_of::<Vec<u8>>(),
        // `EnumOrUnknown` holds the number as an `i32`.
        RuntimeType::Enum(_) => size_of::<i32>(),
        RuntimeType::Message(_) => match sample {
            Some(ReflectValueRef::Message(m)) => std::mem::size_of_val::<dyn MessageDyn>(&**m),
            _ => 0,
        },
    }
}

/// What a value keeps on the heap besides its slot.
fn value_heap(v: &ReflectValueRef<'_>) -> usize {
    match v {
        ReflectValueRef::String(s) => alloc(s.len()),
        ReflectValueRef::Bytes(b) => alloc(b.len()),
        ReflectValueRef::Message(m) => heap_bytes(&**m),
        _ => 0,
    }
}

/// An upper bound of the heap bytes `m` holds, allocator rounding included,
/// for a value whose strings and vectors have no spare capacity (see the
/// module docs: keep a clone of a value from a peer, [`compact`]).
pub(crate) fn heap_bytes(m: &dyn MessageDyn) -> usize {
    let mut total = 0usize;
    for field in m.descriptor_dyn().fields() {
        let add = match field.get_reflect(m) {
            ReflectFieldRef::Optional(opt) => match opt.value() {
                // A set message field is boxed.
                Some(ReflectValueRef::Message(inner)) => {
                    alloc(std::mem::size_of_val::<dyn MessageDyn>(&*inner))
                        .saturating_add(heap_bytes(&*inner))
                }
                Some(v) => value_heap(&v),
                None => 0,
            },
            ReflectFieldRef::Repeated(r) => {
                let n = r.len();
                if n == 0 {
                    0
                } else {
                    let first = r.get(0);
                    let each = slot(&r.element_type(), Some(&first));
                    let items: usize = r.into_iter().map(|v| value_heap(&v)).sum();
                    alloc(n.saturating_mul(each)).saturating_add(items)
                }
            }
            ReflectFieldRef::Map(map) => {
                let (kt, vt) = (map.key_type(), map.value_type());
                let mut entry = 0;
                let mut items = 0usize;
                for (k, v) in &map {
                    if entry == 0 {
                        entry = slot(&kt, Some(&k)) + slot(&vt, Some(&v));
                    }
                    items = items.saturating_add(value_heap(&k) + value_heap(&v));
                }
                map_table(map.len(), entry).saturating_add(items)
            }
        };
        total = total.saturating_add(add);
    }
    total.saturating_add(unknown_heap(m))
}

/// The unknown fields of `m`: a boxed map from field number to four
/// vectors of values. Counted as if every value had a map entry and a
/// vector of its own, which bounds any grouping of them.
fn unknown_heap(m: &dyn MessageDyn) -> usize {
    let unknown = m.special_fields_dyn().unknown_fields();
    let mut values = 0usize;
    let mut bytes = 0usize;
    for (_, v) in unknown.iter() {
        values += 1;
        bytes = bytes.saturating_add(match v {
            UnknownValueRef::Fixed32(_) => alloc(4),
            UnknownValueRef::Fixed64(_) | UnknownValueRef::Varint(_) => alloc(8),
            UnknownValueRef::LengthDelimited(b) => {
                alloc(size_of::<Vec<u8>>()).saturating_add(alloc(b.len()))
            }
        });
    }
    if values == 0 {
        return 0;
    }
    /// A map entry: the field number and its four vectors of values.
    const ENTRY: usize = size_of::<u32>() + 4 * size_of::<Vec<u8>>() + 4;
    alloc(size_of::<std::collections::HashMap<u32, [Vec<u8>; 4]>>())
        .saturating_add(map_table(values, ENTRY))
        .saturating_add(bytes)
}

/// A copy of `m` without spare capacity, and an upper bound of the heap
/// bytes it holds: for values from a peer that are kept for long.
pub(crate) fn compact<M: MessageDyn + Clone>(m: &M) -> (M, usize) {
    let copy = m.clone();
    let bytes = heap_bytes(&copy);
    (copy, bytes)
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use protobuf::Message;

    use super::*;
    use crate::proto::nri::{
        ContainerUpdate, HugepageLimit, LinuxContainerUpdate, LinuxDeviceCgroup, LinuxResources,
        OptionalInt64, OptionalString, User,
    };

    /// Counts the bytes this thread holds on the heap, as `malloc` rounds
    /// them ([`alloc`]), so that a measured value can be compared with the
    /// bound.
    struct Counting;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = HELD.try_with(|h| h.set(h.get() + super::alloc(layout.size()) as isize));
            System.alloc(layout)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let _ = HELD.try_with(|h| h.set(h.get() - super::alloc(layout.size()) as isize));
            System.dealloc(ptr, layout)
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            let _ = HELD.try_with(|h| {
                h.set(h.get() - super::alloc(layout.size()) as isize + super::alloc(new) as isize)
            });
            System.realloc(ptr, layout, new)
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn held() -> isize {
        HELD.with(Cell::get)
    }

    /// Heap the value made by `make` holds, measured.
    fn measured<T>(make: impl FnOnce() -> T) -> (T, usize) {
        let before = held();
        let v = make();
        let after = held();
        (v, (after - before).max(0) as usize)
    }

    fn full_update(id: &str) -> ContainerUpdate {
        let mut res = LinuxResources::new();
        res.memory.mut_or_insert_default().limit = protobuf::MessageField::some(OptionalInt64 {
            value: 1 << 30,
            ..Default::default()
        });
        res.cpu.mut_or_insert_default().cpus = "0-3".into();
        res.hugepage_limits = (0..5)
            .map(|i| HugepageLimit {
                page_size: format!("{i}MB"),
                limit: i,
                ..Default::default()
            })
            .collect();
        res.blockio_class = protobuf::MessageField::some(OptionalString {
            value: "gold".into(),
            ..Default::default()
        });
        res.unified = (0..20)
            .map(|i| (format!("key-{i}"), format!("value-{i}")))
            .collect();
        res.devices = (0..7)
            .map(|i| LinuxDeviceCgroup {
                allow: true,
                type_: "c".into(),
                access: format!("rw{i}"),
                ..Default::default()
            })
            .collect();
        ContainerUpdate {
            container_id: id.into(),
            linux: protobuf::MessageField::some(LinuxContainerUpdate {
                resources: protobuf::MessageField::some(res),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_bound_covers_what_a_decoded_and_compacted_update_holds() {
        let wire = full_update("ctr-1").write_to_bytes().unwrap();
        let decoded: ContainerUpdate = crate::pb::decode(&wire).unwrap();
        let ((copy, bound), _) = measured(|| compact(&decoded));
        let (again, used) = measured(|| copy.clone());
        assert_eq!(again, decoded);
        assert!(bound >= used, "bound {bound} < measured {used}");
        assert!(bound <= used * 3 + 512, "bound {bound} far above {used}");
    }

    #[test]
    fn spare_capacity_a_peer_can_cause_is_left_out_of_the_compact_copy() {
        // 1000 supplementary groups, each an overlong 5-byte varint: the
        // decoder reserves a slot per byte of the packed field.
        let mut packed = Vec::new();
        for _ in 0..1000 {
            packed.extend([0x81, 0x80, 0x80, 0x80, 0x00]);
        }
        let mut wire = vec![0x1a, 0x88, 0x27]; // field 3, 5000 bytes
        wire.extend(packed);
        let (decoded, used) = measured(|| crate::pb::decode::<User>(&wire).unwrap());
        assert_eq!(decoded.additional_gids, vec![1; 1000]);
        assert!(used >= 20_000, "the decoder holds {used} bytes");
        let ((copy, bound), held_by_copy) = measured(|| compact(&decoded));
        assert!(
            held_by_copy <= 4_100,
            "the compact copy holds {held_by_copy}"
        );
        assert!(
            bound >= held_by_copy,
            "bound {bound} < measured {held_by_copy}"
        );
        assert!(bound < 8_000, "bound {bound}");
        drop(copy);
    }

    #[test]
    fn unknown_fields_are_counted() {
        // Field 99 (unknown to ContainerUpdate), 1000 times 1 KiB.
        let mut wire = Vec::new();
        for _ in 0..1000 {
            wire.extend([0x9a, 0x06, 0x80, 0x08]);
            wire.extend(vec![7u8; 1024]);
        }
        let decoded: ContainerUpdate = crate::pb::decode(&wire).unwrap();
        let ((_copy, bound), used) = measured(|| compact(&decoded));
        assert!(used > 1000 * 1024);
        assert!(bound >= used, "bound {bound} < measured {used}");
    }

    #[test]
    fn an_empty_message_holds_nothing_and_allocation_rounding_is_glibc_s() {
        assert_eq!(heap_bytes(&ContainerUpdate::new()), 0);
        assert_eq!(alloc(0), 0);
        assert_eq!(alloc(1), 32);
        assert_eq!(alloc(24), 32);
        assert_eq!(alloc(25), 48);
        assert_eq!(alloc(1 << 20), (1 << 20) + 16);
    }
}
