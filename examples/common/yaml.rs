//! Plugin configuration as a loose YAML tree, for the examples' `Configure`
//! handlers (`logFile`, `verbose`, `events`, ...).
//!
//! The text is read by [`goyaml`](super::goyaml), as a Go plugin reads it
//! with `sigs.k8s.io/yaml`; scalars are kept as the text a Go string field
//! would receive (`yes` is `"true"`, `0x10` is `"16"`), mappings in document
//! order with a later duplicate key replacing an earlier one.

use std::fmt;

use super::goyaml::{self, key_string, Go};
use super::yaml11::format_g32;

/// A parsed YAML node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An empty value, `~` or `null`.
    Null,
    /// A scalar, as text.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping, in document order.
    Map(Vec<(String, Value)>),
}

/// A YAML syntax error, or a value of the wrong shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based line number, 0 when the error is about a value's type.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Error {}

fn type_error(message: String) -> Error {
    Error { line: 0, message }
}

/// Parses the first YAML document of `text`.
pub fn parse(text: &str) -> Result<Value, Error> {
    let go = goyaml::decode(text).map_err(|e| {
        let at = e.0.strip_prefix("line ").and_then(|r| r.split_once(": "));
        match at.and_then(|(n, m)| Some((n.parse().ok()?, m))) {
            Some((line, message)) => Error {
                line,
                message: message.to_string(),
            },
            None => type_error(e.0),
        }
    })?;
    value_of(&go)
}

fn value_of(go: &Go) -> Result<Value, Error> {
    Ok(match go {
        Go::Nil => Value::Null,
        Go::Bool(b) => Value::Str(b.to_string()),
        Go::Int(i) => Value::Str(i.to_string()),
        Go::Uint(u) => Value::Str(u.to_string()),
        Go::Float(f) => Value::Str(format_g32(*f)),
        Go::Str(s) => Value::Str(s.clone()),
        Go::Seq(items) => Value::Seq(items.iter().map(value_of).collect::<Result<_, _>>()?),
        Go::Map(entries) => {
            let mut map: Vec<(String, Value)> = Vec::new();
            for (k, v) in entries {
                let k = key_string(k).map_err(|e| type_error(e.0))?;
                let v = value_of(v)?;
                match map.iter_mut().find(|(old, _)| *old == k) {
                    Some(slot) => slot.1 = v,
                    None => map.push((k, v)),
                }
            }
            Value::Map(map)
        }
    })
}

impl Value {
    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The items of a sequence; `Null` is an empty sequence.
    pub fn to_seq(&self, what: &str) -> Result<&[Value], Error> {
        match self {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            other => Err(type_error(format!(
                "{what}: expected a list, got {}",
                other.kind()
            ))),
        }
    }

    /// The entries of a mapping; `Null` is an empty mapping.
    pub fn to_map(&self, what: &str) -> Result<&[(String, Value)], Error> {
        match self {
            Value::Map(entries) => Ok(entries),
            Value::Null => Ok(&[]),
            other => Err(type_error(format!(
                "{what}: expected a mapping, got {}",
                other.kind()
            ))),
        }
    }

    /// A scalar as a string.
    pub fn to_string_value(&self, what: &str) -> Result<String, Error> {
        match self {
            Value::Str(s) => Ok(s.clone()),
            other => Err(type_error(format!(
                "{what}: expected a string, got {}",
                other.kind()
            ))),
        }
    }

    /// A list of strings; a single scalar is read as a one-item list, and
    /// `Null` as an empty one.
    pub fn to_string_list(&self, what: &str) -> Result<Vec<String>, Error> {
        match self {
            Value::Str(s) => Ok(vec![s.clone()]),
            _ => self
                .to_seq(what)?
                .iter()
                .enumerate()
                .map(|(i, v)| v.to_string_value(&format!("{what}[{i}]")))
                .collect(),
        }
    }

    /// A boolean (`true`/`false`, `yes`/`no`, `on`/`off`, any case).
    pub fn to_bool(&self, what: &str) -> Result<bool, Error> {
        let s = self.as_str().unwrap_or_default().to_ascii_lowercase();
        match s.as_str() {
            "true" | "yes" | "on" | "y" => Ok(true),
            "false" | "no" | "off" | "n" => Ok(false),
            _ => Err(type_error(format!(
                "{what}: expected true or false, got {}",
                match self {
                    Value::Str(s) => format!("{s:?}"),
                    other => other.kind().to_string(),
                }
            ))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Str(_) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}
