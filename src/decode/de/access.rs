//! The serde access types of [`Slot`](super::Slot): list elements, mapping
//! entries, struct fields (matched to keys as Go matches them) and enum
//! variants.

use std::collections::VecDeque;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Ctx, Hist, Slot};
use crate::decode::format::{parse_go_int, parse_go_uint};
use crate::decode::node::{Entry, Node};
use crate::decode::Error;

/// The elements of a list.
pub(crate) struct SeqAccess<'a> {
    elements: std::vec::IntoIter<Slot<'a>>,
}

impl<'a> SeqAccess<'a> {
    pub fn new(elements: Vec<Slot<'a>>) -> SeqAccess<'a> {
        SeqAccess {
            elements: elements.into_iter(),
        }
    }
}

impl<'a> de::SeqAccess<'static> for SeqAccess<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'static>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.elements
            .next()
            .map(|slot| seed.deserialize(slot))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

/// The entries of a mapping decoded into a map: every entry in order (a
/// map visitor keeps the last value of a key, as Go does).
pub(crate) struct MapAccess<'a> {
    ctx: &'a Ctx,
    entries: VecDeque<(&'a Entry, Slot<'a>)>,
    value: Option<Slot<'a>>,
}

impl<'a> MapAccess<'a> {
    pub fn new(ctx: &'a Ctx, entries: Vec<(&'a Entry, Slot<'a>)>) -> MapAccess<'a> {
        MapAccess {
            ctx,
            entries: entries.into(),
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
        let Some((entry, value)) = self.entries.pop_front() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(MapKey {
            ctx: self.ctx,
            key: &entry.key,
            pos: entry.pos,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'static>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(slot) => seed.deserialize(slot),
            None => Err(de::Error::custom(
                "a map value was asked for before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// What a key of a mapping stands for in a struct.
enum Key<'a> {
    /// A field of the struct, named as the struct names it.
    Field(&'static str),
    /// No field: serde ignores it (or refuses it, with
    /// `deny_unknown_fields`).
    Other(&'a str),
}

/// The fields of a struct: the mapping's keys matched to the struct's
/// fields as `encoding/json` matches them (the exact name, else the first
/// field whose name equals the key under Unicode case folding), each field
/// with every value that named it, in document order.
pub(crate) struct StructAccess<'a> {
    ctx: &'a Ctx,
    name: &'static str,
    fields: VecDeque<(Key<'a>, u32, Hist<'a>)>,
    value: Option<(Key<'a>, Hist<'a>)>,
    convert: bool,
}

impl<'a> StructAccess<'a> {
    pub fn new(
        ctx: &'a Ctx,
        name: &'static str,
        names: &'static [&'static str],
        entries: impl Iterator<Item = &'a Entry>,
        convert: bool,
    ) -> StructAccess<'a> {
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
                        .find(|(k, _, _)| matches!(k, Key::Field(f) if *f == field));
                    match slot {
                        Some((_, _, values)) => values.push(&entry.value),
                        None => fields.push((Key::Field(field), entry.pos, vec![&entry.value])),
                    }
                }
                None => fields.push((Key::Other(key), entry.pos, vec![&entry.value])),
            }
        }
        let fields = fields
            .into_iter()
            .map(|(k, pos, values)| (k, pos, Hist::from_vec(values)))
            // `null` leaves a field as it is: not decoding it does that.
            .filter(|(k, _, hist)| matches!(k, Key::Other(_)) || !hist.all_null())
            .collect();
        StructAccess {
            ctx,
            name,
            fields,
            value: None,
            convert,
        }
    }
}

impl<'a> de::MapAccess<'static> for StructAccess<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'static>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, pos, hist)) = self.fields.pop_front() else {
            return Ok(None);
        };
        let text = match key {
            Key::Field(f) => f,
            Key::Other(k) => k,
        };
        self.value = Some((key, hist));
        seed.deserialize(MapKey {
            ctx: self.ctx,
            key: text,
            pos,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'static>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, hist)) = self.value.take() else {
            return Err(de::Error::custom(
                "a field value was asked for before its key",
            ));
        };
        let slot = Slot {
            ctx: self.ctx,
            hist,
            convert: self.convert,
        };
        match key {
            Key::Field(field) => {
                let previous = self.ctx.enter(self.name, field);
                let result = seed.deserialize(slot);
                self.ctx.leave(previous);
                result
            }
            Key::Other(_) => seed.deserialize(slot),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
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
        match parse_go_int(self.key, bits) {
            Some(i) => visitor.visit_i64(i),
            None => {
                self.ctx
                    .type_error(self.pos, &format!("number {}", self.key), ty);
                visitor.visit_i64(0)
            }
        }
    }

    fn uint<V: Visitor<'static>>(self, bits: u32, ty: &str, visitor: V) -> Result<V::Value, Error> {
        match parse_go_uint(self.key, bits) {
            Some(u) => visitor.visit_u64(u),
            None => {
                self.ctx
                    .type_error(self.pos, &format!("number {}", self.key), ty);
                visitor.visit_u64(0)
            }
        }
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
        visitor.visit_enum(EnumAccess::unit(self.ctx, self.key.to_string()))
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'static>>
        bool i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

/// An enum's variant: its name, and for a variant with data, the value.
pub(crate) struct EnumAccess<'a> {
    ctx: &'a Ctx,
    variant: String,
    value: Option<Slot<'a>>,
}

impl<'a> EnumAccess<'a> {
    pub fn unit(ctx: &'a Ctx, variant: String) -> EnumAccess<'a> {
        EnumAccess {
            ctx,
            variant,
            value: None,
        }
    }

    pub fn with_value(ctx: &'a Ctx, variant: String, value: Slot<'a>) -> EnumAccess<'a> {
        EnumAccess {
            ctx,
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
        let _ = self.ctx;
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
