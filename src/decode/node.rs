//! The document as `encoding/json` sees it: the tree the decoder walks.
//!
//! From YAML, this is what `sigs.k8s.io/yaml` hands `encoding/json`: map
//! keys turned into strings, keys sorted, numbers as Go writes them. From
//! JSON text, the document as written, duplicate keys kept.
//!
//! Every node and every mapping key has a position, its rank in the
//! document's order: Go's decoder reports the first error it meets, which
//! is the one with the lowest position.

use std::cell::Cell;
use std::rc::Rc;

use super::format::{format_g32, format_g64_special, json_float};
use super::yaml::{go_syntax, Go};

/// A value of the document.
#[derive(Debug)]
pub(crate) struct Node {
    /// Rank in document order.
    pub pos: u32,
    pub kind: NodeKind,
    /// Set when the decoder took this YAML number or boolean as a string:
    /// `sigs.k8s.io/yaml` converts it to text before `json.Marshal`, so an
    /// infinity or NaN taken so does not fail the document.
    pub as_string: Cell<bool>,
}

#[derive(Debug)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Num(Num),
    Str(Rc<str>),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry.
#[derive(Debug)]
pub(crate) struct Entry {
    pub key: Rc<str>,
    /// Rank of the key in document order (its value comes next).
    pub pos: u32,
    pub value: Node,
}

/// A number.
#[derive(Debug, Clone)]
pub(crate) enum Num {
    /// A YAML integer.
    Int(i64),
    /// A YAML integer above `i64::MAX`.
    Uint(u64),
    /// A YAML float (possibly infinite or NaN).
    Float(f64),
    /// A JSON number, as written.
    Text(Box<str>),
}

impl Num {
    /// The JSON text `encoding/json` parses (`None` for an infinity or NaN,
    /// which JSON cannot hold).
    pub fn json_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(match self {
            Num::Int(i) => i.to_string().into(),
            Num::Uint(u) => u.to_string().into(),
            Num::Float(f) if f.is_finite() => json_float(*f).into(),
            Num::Float(_) => return None,
            Num::Text(t) => std::borrow::Cow::Borrowed(t),
        })
    }

    /// The text `sigs.k8s.io/yaml` gives a YAML number decoded into a
    /// string (`None` for a JSON number, which never becomes one).
    pub fn yaml_string(&self) -> Option<String> {
        match self {
            Num::Int(i) => Some(i.to_string()),
            Num::Uint(u) => Some(u.to_string()),
            Num::Float(f) => Some(format_g32(*f)),
            Num::Text(_) => None,
        }
    }
}

impl Node {
    pub fn new(pos: u32, kind: NodeKind) -> Node {
        Node {
            pos,
            kind,
            as_string: Cell::new(false),
        }
    }

    /// How Go's decoder names this kind of JSON value in a type error.
    pub fn go_kind(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "bool",
            NodeKind::Num(_) => "number",
            NodeKind::Str(_) => "string",
            NodeKind::Seq(_) => "array",
            NodeKind::Map(_) => "object",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The first infinity or NaN that was not taken as a string: Go's
    /// `json.Marshal` fails on it, `json: unsupported value: NaN`.
    pub fn unsupported_value(&self) -> Option<&'static str> {
        match &self.kind {
            NodeKind::Num(Num::Float(f)) if !f.is_finite() && !self.as_string.get() => {
                Some(format_g64_special(*f))
            }
            NodeKind::Seq(items) => items.iter().find_map(Node::unsupported_value),
            NodeKind::Map(entries) => entries.iter().find_map(|e| e.value.unsupported_value()),
            _ => None,
        }
    }
}

/// Numbers positions in document order.
#[derive(Default)]
pub(crate) struct Counter(u32);

impl Counter {
    pub fn next(&mut self) -> u32 {
        let pos = self.0;
        self.0 = self.0.saturating_add(1);
        pos
    }
}

/// The tree `sigs.k8s.io/yaml` marshals to JSON from a yaml.v2 value, or its
/// conversion error (a key JSON cannot have).
pub(crate) fn from_go(go: Go) -> Result<Node, String> {
    let mut counter = Counter::default();
    convert(go, &mut counter)
}

fn convert(go: Go, counter: &mut Counter) -> Result<Node, String> {
    let pos = counter.next();
    let kind = match go {
        Go::Nil => NodeKind::Null,
        Go::Bool(b) => NodeKind::Bool(b),
        Go::Int(i) => NodeKind::Num(Num::Int(i)),
        Go::Uint(u) => NodeKind::Num(Num::Uint(u)),
        Go::Float(f) => NodeKind::Num(Num::Float(f)),
        Go::Str(s) => NodeKind::Str(s),
        Go::Seq(items) => NodeKind::Seq(
            items
                .into_iter()
                .map(|item| convert(item, counter))
                .collect::<Result<_, _>>()?,
        ),
        Go::Map(entries) => {
            // Keys become strings; of two keys with the same text the later
            // wins (Go keeps whichever its map iteration visits last).
            let mut object: Vec<(Rc<str>, Go)> = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let k = key_string(&k, &v)?;
                match object.iter_mut().find(|(old, _)| *old == k) {
                    Some(slot) => slot.1 = v,
                    None => object.push((k, v)),
                }
            }
            object.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Vec::with_capacity(object.len());
            for (key, value) in object {
                let pos = counter.next();
                let value = convert(value, counter)?;
                out.push(Entry { key, pos, value });
            }
            NodeKind::Map(out)
        }
    };
    Ok(Node::new(pos, kind))
}

/// The text `sigs.k8s.io/yaml` gives a map key.
fn key_string(key: &Go, value: &Go) -> Result<Rc<str>, String> {
    Ok(match key {
        Go::Str(s) => Rc::clone(s),
        Go::Int(i) => i.to_string().into(),
        Go::Bool(b) => b.to_string().into(),
        Go::Float(f) => match format_g32(*f).as_str() {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            "NaN" => ".nan".into(),
            s => s.into(),
        },
        Go::Nil => {
            return Err(format!(
                "Unsupported map key of type: %!s(<nil>), key: <nil>, value: {}",
                go_plus_syntax(value)
            ))
        }
        Go::Uint(u) => {
            return Err(format!(
                "Unsupported map key of type: uint64, key: 0x{u:x}, value: {}",
                go_plus_syntax(value)
            ))
        }
        Go::Seq(_) | Go::Map(_) => {
            return Err(format!("invalid map key: {}", go_syntax(key)));
        }
    })
}

/// Go's `%+#v` of a value, as the conversion error shows it.
fn go_plus_syntax(v: &Go) -> String {
    match v {
        Go::Nil => "<nil>".into(),
        other => go_syntax(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Go {
        Go::Str(text.into())
    }

    #[test]
    fn keys_become_sorted_strings_and_positions_follow_document_order() {
        let go = Go::Map(vec![
            (s("b"), Go::Int(1)),
            (Go::Int(10), Go::Seq(vec![Go::Bool(true)])),
            (Go::Float(0.5), Go::Nil),
            (s("10"), Go::Int(2)),
        ]);
        let node = from_go(go).unwrap();
        let NodeKind::Map(entries) = &node.kind else {
            panic!("{node:?}")
        };
        let keys: Vec<&str> = entries.iter().map(|e| &*e.key).collect();
        assert_eq!(keys, ["0.5", "10", "b"]);
        // The later of "10" and 10 wins.
        assert!(matches!(entries[1].value.kind, NodeKind::Num(Num::Int(2))));
        let positions: Vec<(u32, u32)> = entries.iter().map(|e| (e.pos, e.value.pos)).collect();
        assert_eq!(positions, [(1, 2), (3, 4), (5, 6)]);
    }

    #[test]
    fn null_and_huge_keys_fail_as_in_go() {
        let err = from_go(Go::Map(vec![(Go::Nil, Go::Int(1))])).unwrap_err();
        assert_eq!(
            err,
            "Unsupported map key of type: %!s(<nil>), key: <nil>, value: 1"
        );
        let err = from_go(Go::Map(vec![(Go::Uint(u64::MAX), Go::Int(1))])).unwrap_err();
        assert_eq!(
            err,
            "Unsupported map key of type: uint64, key: 0xffffffffffffffff, value: 1"
        );
    }

    #[test]
    fn an_unconverted_nan_is_found() {
        let node = from_go(Go::Seq(vec![Go::Int(1), Go::Float(f64::NAN)])).unwrap();
        assert_eq!(node.unsupported_value(), Some("NaN"));
        if let NodeKind::Seq(items) = &node.kind {
            items[1].as_string.set(true);
        }
        assert_eq!(node.unsupported_value(), None);
    }
}
