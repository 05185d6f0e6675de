//! Random messages of any type of the NRI API, through protobuf
//! reflection: a random subset of fields set to random values (empty,
//! short, long and non-ASCII strings, enum numbers the enum does not know),
//! nested to a few levels.

use protobuf::reflect::{ReflectValueBox, RuntimeFieldType, RuntimeType};
use protobuf::MessageDyn;

use super::XorShift as Rng;

fn random_string(rng: &mut Rng) -> String {
    const ALPHABET: &[char] = &['a', 'b', 'z', '0', '/', '-', 'é', '√', '🦀'];
    let len = match rng.below(10) {
        0..=2 => 0,
        3..=7 => rng.below(12),
        8 => rng.below(200),
        _ => rng.below(2000),
    };
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
        .collect()
}

fn random_value(rng: &mut Rng, t: &RuntimeType, depth: u32) -> ReflectValueBox {
    match t {
        RuntimeType::I32 => ReflectValueBox::I32(match rng.below(4) {
            0 => 0,
            1 => -(rng.below(1 << 31) as i32),
            _ => rng.next() as i32,
        }),
        RuntimeType::I64 => {
            ReflectValueBox::I64(if rng.chance(30) { 0 } else { rng.next() as i64 })
        }
        RuntimeType::U32 => {
            ReflectValueBox::U32(if rng.chance(30) { 0 } else { rng.next() as u32 })
        }
        RuntimeType::U64 => ReflectValueBox::U64(if rng.chance(30) { 0 } else { rng.next() }),
        RuntimeType::F32 => ReflectValueBox::F32(rng.below(100) as f32),
        RuntimeType::F64 => ReflectValueBox::F64(rng.below(100) as f64),
        RuntimeType::Bool => ReflectValueBox::Bool(rng.chance(50)),
        RuntimeType::String => ReflectValueBox::String(random_string(rng)),
        RuntimeType::VecU8 => ReflectValueBox::Bytes(random_string(rng).into_bytes()),
        RuntimeType::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.value()).collect();
            // Now and then a number the enum does not know.
            let v = if rng.chance(10) {
                rng.next() as i32
            } else {
                values[rng.below(values.len() as u64) as usize]
            };
            ReflectValueBox::Enum(e.clone(), v)
        }
        RuntimeType::Message(d) => {
            let mut m = d.new_instance();
            fill(rng, &mut *m, depth + 1);
            ReflectValueBox::Message(m)
        }
    }
}

/// Sets a random subset of the fields of `m`, with random values.
fn fill(rng: &mut Rng, m: &mut dyn MessageDyn, depth: u32) {
    let d = m.descriptor_dyn();
    let set = if depth > 4 { 20 } else { 60 };
    for f in d.fields() {
        if !rng.chance(set) {
            continue;
        }
        match f.runtime_field_type() {
            RuntimeFieldType::Singular(t) => {
                let v = random_value(rng, &t, depth);
                f.set_singular_field(m, v);
            }
            RuntimeFieldType::Repeated(t) => {
                let n = rng.below(if depth > 3 { 3 } else { 6 });
                for _ in 0..n {
                    let v = random_value(rng, &t, depth);
                    f.mut_repeated(m).push(v);
                }
            }
            RuntimeFieldType::Map(k, v) => {
                let n = rng.below(6);
                for _ in 0..n {
                    let key = random_value(rng, &k, depth);
                    let value = random_value(rng, &v, depth);
                    f.mut_map(m).insert(key, value);
                }
            }
        }
    }
}

/// A message of type `M` with a random subset of its fields set, nested
/// messages included.
pub fn random<M: protobuf::MessageFull>(rng: &mut Rng) -> M {
    let mut m = M::new();
    fill(rng, &mut m, 0);
    m
}
