//! A decoded document without a type of its own: what a Go plugin gets by
//! decoding into an `interface{}`, for callers without a struct.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::format::json_float;

/// A decoded value of any shape: what a Go plugin gets by decoding into an
/// `interface{}`.
///
/// Decode one with [`from_yaml`](super::from_yaml) or
/// [`from_json`](super::from_json), or use it as the type of a field that
/// takes anything. Mappings are sorted by key (as JSON objects reach Go's
/// decoder from `sigs.k8s.io/yaml`); of two equal keys the later wins.
///
/// One difference from Go: Go makes every number a `float64`, which loses
/// integers above 2^53; a [`Number`] keeps an integer exact.
///
/// ```
/// use nri::decode::{from_yaml, Value};
///
/// let v: Value = from_yaml("rules:\n- {name: gpu, count: 0x10}\nverbose: yes\n")?;
/// assert_eq!(v.get("verbose").and_then(Value::as_bool), Some(true));
/// let rule = &v.get("rules").and_then(Value::as_seq).unwrap()[0];
/// assert_eq!(rule.get("count").and_then(Value::as_i64), Some(16));
/// assert_eq!(rule.get("name").and_then(Value::as_str), Some("gpu"));
/// # Ok::<(), nri::decode::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`, `~`, or nothing.
    #[default]
    Null,
    /// A boolean (YAML 1.1 also spells them `yes`, `off`...).
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    Seq(Vec<Value>),
    /// A mapping, sorted by key.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as an `i64`, if this is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The number as an `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }
}

/// A number of a [`Value`]: an integer kept exact, or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(N);

#[derive(Debug, Clone, Copy, PartialEq)]
enum N {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Number {
    /// The number as an `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            N::Int(i) => Some(i),
            N::Uint(u) => i64::try_from(u).ok(),
            N::Float(_) => None,
        }
    }

    /// The number as a `u64`, if it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            N::Int(i) => u64::try_from(i).ok(),
            N::Uint(u) => Some(u),
            N::Float(_) => None,
        }
    }

    /// The number as an `f64` (rounded, for an integer above 2^53).
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> f64 {
        match self.0 {
            N::Int(i) => i as f64,
            N::Uint(u) => u as f64,
            N::Float(f) => f,
        }
    }

    /// Whether it is an integer (`3`, not `3.5`; YAML's `3.0` is a float).
    pub fn is_integer(&self) -> bool {
        !matches!(self.0, N::Float(_))
    }
}

/// The number as Go's `json.Marshal` writes it (`1e+21`, `0.5`, `42`).
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            N::Int(i) => write!(f, "{i}"),
            N::Uint(u) => write!(f, "{u}"),
            N::Float(x) if x.is_finite() => f.write_str(&json_float(x)),
            N::Float(x) => write!(f, "{x}"),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(N::Int(i))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        Number(N::Uint(u))
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        Number(N::Float(f))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            entries.insert(k, v);
        }
        Ok(Value::Map(entries))
    }
}
