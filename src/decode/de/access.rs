//! The serde access types of [`Slot`](super::Slot): mapping entries,
//! struct fields (matched to keys as Go matches them) and enum variants (a
//! list's elements go through serde's own `SeqDeserializer`).

use std::collections::VecDeque;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Ctx, Hist, Slot};
use crate::decode::format::{parse_go_int, parse_go_uint};
use crate::decode::node::{Entry, Node};
use crate::decode::Error;

/// What a key of a mapping stands for.
enum Key<'a> {
    /// A field of a struct: the struct's name and the field's, as the
    /// struct names them.
    Field(&'static str, &'static str),
    /// A map's key, or one that names no field of a struct: serde ignores
    /// it there (or refuses it, with `deny_unknown_fields`).
    Other(&'a str),
}

/// The entries of a mapping, each a key with its position and the slot of
/// its value. Decoded into a map, every entry comes in order (a map visitor
/// keeps the last value of a key, as Go does); decoded into a struct, the
/// keys are matched to the struct's fields (see [`MapAccess::fields`]).
pub(crate) struct MapAccess<'a> {
    ctx: &'a Ctx,
    entries: VecDeque<(Key<'a>, u32, Slot<'a>)>,
    value: Option<(Key<'a>, Slot<'a>)>,
}

impl<'a> MapAccess<'a> {
    /// The entries of a mapping decoded into a map.
    pub fn new(ctx: &'a Ctx, entries: Vec<(&'a Entry, Slot<'a>)>) -> MapAccess<'a> {
        let entries = entries
            .into_iter()
            .map(|(entry, slot)| (Key::Other(&entry.key), entry.pos, slot))
            .collect();
        MapAccess {
            ctx,
            entries,
            value: None,
        }
    }

    /// The fields of struct `name`: the mapping's keys matched to the
    /// struct's fields as `encoding/json` matches them (the exact name,
    /// else the first field whose name equals the key under Unicode case
    /// folding), each field with every value that named it, in document
    /// order.
    pub fn fields(
        ctx: &'a Ctx,
        name: &'static str,
        names: &'static [&'static str],
        entries: impl Iterator<Item = &'a Entry>,
        convert: bool,
    ) -> MapAccess<'a> {
        let mut fields: Vec<(Key<'a>, u32, Vec<&'a Node>)> = Vec::new();
        for entry in entries {
            let key: &'a str = &entry.key;
            let field = names
                .iter()
                .find(|n| **n == key)
                .or_else(|| names.iter().find(|n| fold_eq(key, n)));
            match field {
                Some(&field) => {
                    let slot = fields
                        .iter_mut()
                        .find(|(k, _, _)| matches!(k, Key::Field(_, f) if *f == field));
                    match slot {
                        Some((_, _, values)) => values.push(&entry.value),
                        None => {
                            fields.push((Key::Field(name, field), entry.pos, vec![&entry.value]))
                        }
                    }
                }
                None => fields.push((Key::Other(key), entry.pos, vec![&entry.value])),
            }
        }
        let entries = fields
            .into_iter()
            .map(|(k, pos, values)| (k, pos, Hist::from_vec(values)))
            // `null` leaves a field as it is: not decoding it does that.
            .filter(|(k, _, hist)| matches!(k, Key::Other(_)) || !hist.all_null())
            .map(|(k, pos, hist)| (k, pos, Slot { ctx, hist, convert }))
            .collect();
        MapAccess {
            ctx,
            entries,
            value: None,
        }
    }
}

impl<'a> de::MapAccess<'static> for MapAccess<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'static>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, pos, slot)) = self.entries.pop_front() else {
            return Ok(None);
        };
        let text = match key {
            Key::Field(_, f) => f,
            Key::Other(k) => k,
        };
        self.value = Some((key, slot));
        seed.deserialize(MapKey {
            ctx: self.ctx,
            key: text,
            pos,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'static>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some((Key::Field(strukt, field), slot)) => {
                let previous = self.ctx.enter(strukt, field);
                let result = seed.deserialize(slot);
                self.ctx.leave(previous);
                result
            }
            Some((Key::Other(_), slot)) => seed.deserialize(slot),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Whether a key names a field for Go's `encoding/json`: equal under
/// Unicode simple case folding (`ſ` is an `s`, the Kelvin sign a `k`).
pub(crate) fn fold_eq(key: &str, name: &str) -> bool {
    fn fold(c: char) -> char {
        match c {
            'ſ' => 's',
            '\u{212A}' => 'k',
            '\u{2126}' => 'ω',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            c => {
                let mut lower = c.to_lowercase();
                match (lower.next(), lower.next()) {
                    (Some(l), None) => l,
                    _ => c,
                }
            }
        }
    }
    key.chars().map(fold).eq(name.chars().map(fold))
}

/// A mapping key: a string, or an integer for a map with integer keys
/// (parsed as Go parses them).
struct MapKey<'a> {
    ctx: &'a Ctx,
    key: &'a str,
    pos: u32,
}

impl MapKey<'_> {
    fn int<V: Visitor<'static>>(self, bits: u32, ty: &str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i64(self.number(parse_go_int(self.key, bits), ty))
    }

    fn uint<V: Visitor<'static>>(self, bits: u32, ty: &str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(self.number(parse_go_uint(self.key, bits), ty))
    }

    /// The key parsed as a number of Go type `ty`; when it is none, a type
    /// error is recorded and the number is zero.
    fn number<N: Default>(&self, parsed: Option<N>, ty: &str) -> N {
        parsed.unwrap_or_else(|| {
            self.ctx
                .type_error(self.pos, &format!("number {}", self.key), ty);
            N::default()
        })
    }
}

impl de::Deserializer<'static> for MapKey<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.key)
    }

    visit_through! {
        deserialize_i8 => int(8, "int8"),
        deserialize_i16 => int(16, "int16"),
        deserialize_i32 => int(32, "int32"),
        deserialize_i64 => int(64, "int64"),
        deserialize_u8 => uint(8, "uint8"),
        deserialize_u16 => uint(16, "uint16"),
        deserialize_u32 => uint(32, "uint32"),
        deserialize_u64 => uint(64, "uint64"),
    }

    fn deserialize_option<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    transparent_newtype_struct!();

    fn deserialize_enum<V: Visitor<'static>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(EnumAccess::unit(self.key.to_string()))
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'static>>
        bool i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

/// An enum's variant: its name, and for a variant with data, the value.
pub(crate) struct EnumAccess<'a> {
    variant: String,
    value: Option<Slot<'a>>,
}

impl<'a> EnumAccess<'a> {
    pub fn unit(variant: String) -> EnumAccess<'a> {
        EnumAccess {
            variant,
            value: None,
        }
    }

    pub fn with_value(variant: String, value: Slot<'a>) -> EnumAccess<'a> {
        EnumAccess {
            variant,
            value: Some(value),
        }
    }
}

impl<'a> de::EnumAccess<'static> for EnumAccess<'a> {
    type Error = Error;
    type Variant = VariantAccess<'a>;

    fn variant_seed<V: DeserializeSeed<'static>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess<'a>), Error> {
        let name: de::value::StringDeserializer<Error> = self.variant.into_deserializer();
        let variant = seed.deserialize(name)?;
        Ok((variant, VariantAccess { value: self.value }))
    }
}

/// The data of an enum variant.
pub(crate) struct VariantAccess<'a> {
    value: Option<Slot<'a>>,
}

impl<'a> VariantAccess<'a> {
    fn value(self) -> Result<Slot<'a>, Error> {
        self.value
            .ok_or_else(|| de::Error::custom("this enum variant needs a value: `{variant: value}`"))
    }
}

impl<'a> de::VariantAccess<'static> for VariantAccess<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'static>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.value()?)
    }

    fn tuple_variant<V: Visitor<'static>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(self.value()?, len, visitor)
    }

    fn struct_variant<V: Visitor<'static>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self.value()?, "", fields, visitor)
    }
}
