//! A serde `Deserializer` that fills the caller's type as Go's
//! `encoding/json` fills a Go value, from the document tree of
//! [`node`](super::node).
//!
//! Go decodes every value the document has for a target into that target
//! in turn: several keys can name one struct field (names match
//! case-insensitively), and then the later value is decoded *into* what the
//! earlier one left (a struct keeps the fields it had, a slice its elements,
//! `null` leaves a scalar as it is). serde builds each value once, so each
//! value here is a [`Slot`]: the list of document values Go would decode
//! into that target, in order, folded together by the rule of the kind of
//! target the caller's type asks for (see [`Slot`]'s methods).
//!
//! Go also goes on after a type error and reports the first one in document
//! order; so does this deserializer: a value of the wrong type is recorded
//! with its position and replaced by the zero value of the target, and the
//! error with the lowest position is reported at the end.

/// Deserializer methods that each pass the visitor on to one method of
/// `self`: `deserialize_i8 => int(8, "int8")` is `deserialize_i8(self,
/// visitor)` calling `self.int(8, "int8", visitor)`.
macro_rules! visit_through {
    ($($method:ident => $call:ident($($arg:expr),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
            self.$call($($arg,)* visitor)
        }
    )*};
}

/// `deserialize_newtype_struct` for a deserializer under which a newtype
/// struct is transparent: its one field decodes from the same values.
macro_rules! transparent_newtype_struct {
    () => {
        fn deserialize_newtype_struct<V: Visitor<'static>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }
    };
}

mod access;

use std::cell::{Cell, RefCell};

use serde::de::value::SeqDeserializer;
use serde::de::{self, IntoDeserializer, Visitor};

use super::format::{base64_strict, parse_go_int, parse_go_uint};
use super::node::{Entry, Node, NodeKind, Num};
use super::Error;
use access::{EnumAccess, MapAccess};

/// Decoding state shared by every slot of one document.
pub(crate) struct Ctx {
    /// `sigs.k8s.io/yaml` (YAML numbers and booleans become the text of a
    /// string target) rather than `encoding/json` on JSON text.
    pub yaml: bool,
    /// The struct being filled and the path of field names from the top,
    /// for messages (Go's `errorContext`).
    context: RefCell<(Option<&'static str>, Vec<&'static str>)>,
    /// The type error with the lowest position: (position, message).
    first: RefCell<Option<(u32, String)>>,
    /// Whether a value Go decodes was left out of the result (a later
    /// `null` or shorter list threw it away): see [`Ctx::check_pass`].
    skipped: Cell<bool>,
    /// In the checking pass.
    checking: Cell<bool>,
}

impl Ctx {
    pub fn new(yaml: bool) -> Ctx {
        Ctx {
            yaml,
            context: RefCell::new((None, Vec::new())),
            first: RefCell::new(None),
            skipped: Cell::new(false),
            checking: Cell::new(false),
        }
    }

    /// Whether a second, checking pass is needed, and if so starts it.
    ///
    /// Go decodes every value the document has for a target, even one a
    /// later `null` throws away, and reports its type errors (and converts
    /// its numbers to text, which spares an infinity or NaN the marshal
    /// error). The decoding pass builds the result and leaves such values
    /// out; the checking pass decodes the document again with every value
    /// kept (no `null` resets anything, lists are as long as the longest),
    /// to meet each value with its target type, and its result is dropped.
    pub fn check_pass(&self) -> bool {
        let needed = self.skipped.get() && !self.checking.get();
        if needed {
            self.checking.set(true);
        }
        needed
    }

    /// Notes that a value was left out of the result.
    fn skip(&self) {
        self.skipped.set(true);
    }

    /// The earliest type error, as Go words it.
    pub fn first_error(&self) -> Option<String> {
        self.first.borrow().as_ref().map(|(_, m)| m.clone())
    }

    /// Records a Go `UnmarshalTypeError`: `value` (`string`, `number 1.5`,
    /// `array`...) cannot go into `ty`, at position `pos`.
    fn type_error(&self, pos: u32, value: &str, ty: &str) {
        let (strukt, path) = &*self.context.borrow();
        let message = match strukt {
            Some(s) => format!(
                "json: cannot unmarshal {value} into Go struct field {s}.{} of type {ty}",
                path.join(".")
            ),
            None if !path.is_empty() => format!(
                "json: cannot unmarshal {value} into Go struct field .{} of type {ty}",
                path.join(".")
            ),
            None => format!("json: cannot unmarshal {value} into Go value of type {ty}"),
        };
        self.record(pos, message);
    }

    /// Records an error that is not a type error (Go's base64 errors).
    fn record(&self, pos: u32, message: String) {
        let mut first = self.first.borrow_mut();
        if first.as_ref().map_or(true, |(at, _)| pos < *at) {
            *first = Some((pos, message));
        }
    }

    /// Enters field `field` of struct `strukt`; [`Ctx::leave`] undoes it.
    fn enter(&self, strukt: &'static str, field: &'static str) -> Option<&'static str> {
        let mut context = self.context.borrow_mut();
        context.1.push(field);
        context.0.replace(strukt)
    }

    fn leave(&self, previous: Option<&'static str>) {
        let mut context = self.context.borrow_mut();
        context.1.pop();
        context.0 = previous;
    }
}

/// The document values Go decodes, in turn, into one target.
#[derive(Clone)]
pub(crate) enum Hist<'a> {
    One(&'a Node),
    Many(Vec<&'a Node>),
}

impl<'a> Hist<'a> {
    fn nodes(&self) -> &[&'a Node] {
        match self {
            Hist::One(node) => std::slice::from_ref(node),
            Hist::Many(nodes) => nodes,
        }
    }

    fn from_vec(mut nodes: Vec<&'a Node>) -> Hist<'a> {
        if nodes.len() == 1 {
            Hist::One(nodes.remove(0))
        } else {
            Hist::Many(nodes)
        }
    }

    /// Whether every value is `null` (or there is none).
    pub fn all_null(&self) -> bool {
        self.nodes().iter().all(|n| n.is_null())
    }

    /// The values after the last `null`.
    fn after_last_null(&self) -> &[&'a Node] {
        let nodes = self.nodes();
        match nodes.iter().rposition(|n| n.is_null()) {
            Some(i) => &nodes[i + 1..],
            None => nodes,
        }
    }
}

/// The kind of scalar a target asks for, with Go's name of the type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Bool,
    Int(u32, &'static str),
    Uint(u32, &'static str),
    Float(u32, &'static str),
    Str,
    Char,
    Bytes,
}

impl Want {
    fn go_type(self) -> &'static str {
        match self {
            Want::Bool => "bool",
            Want::Int(_, t) | Want::Uint(_, t) | Want::Float(_, t) => t,
            Want::Str => "string",
            Want::Char => "char",
            Want::Bytes => "[]uint8",
        }
    }
}

/// A decoded scalar.
enum Prim {
    Bool(bool),
    Int(i128),
    Uint(u128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
}

/// One target's values: a serde `Deserializer`.
pub(crate) struct Slot<'a> {
    ctx: &'a Ctx,
    hist: Hist<'a>,
    /// Whether a YAML number or boolean may become a string here: not under
    /// a target Go sees as `interface{}` or as an array, where
    /// `sigs.k8s.io/yaml` has no type to look at.
    convert: bool,
}

impl<'a> Slot<'a> {
    /// The whole document.
    pub fn root(ctx: &'a Ctx, node: &'a Node) -> Slot<'a> {
        Slot {
            ctx,
            hist: Hist::One(node),
            convert: ctx.yaml,
        }
    }

    fn with(&self, hist: Hist<'a>, convert: bool) -> Slot<'a> {
        Slot {
            ctx: self.ctx,
            hist,
            convert,
        }
    }

    /// The values a pointer, slice or map keeps: after the last `null`
    /// (all of them in the checking pass).
    fn kept(&self) -> Vec<&'a Node> {
        let nodes = self.hist.nodes();
        if self.ctx.checking.get() {
            return nodes.iter().copied().filter(|n| !n.is_null()).collect();
        }
        let rest = self.hist.after_last_null();
        if rest.len() < nodes.iter().filter(|n| !n.is_null()).count() {
            self.ctx.skip();
        }
        rest.to_vec()
    }

    /// Decodes one non-null node as the scalar `want`, or records why not.
    fn prim(&self, node: &'a Node, want: Want) -> Option<Prim> {
        let wrong = |value: &str| {
            self.ctx.type_error(node.pos, value, want.go_type());
            None
        };
        match (&node.kind, want) {
            (NodeKind::Bool(b), Want::Bool) => Some(Prim::Bool(*b)),
            (NodeKind::Bool(b), Want::Str | Want::Char) if self.convert => {
                node.as_string.set(true);
                Some(Prim::Str(b.to_string()))
            }
            (NodeKind::Str(s), Want::Str | Want::Char) => Some(Prim::Str(s.to_string())),
            (NodeKind::Str(s), Want::Bytes) => match base64_strict(
                &s.bytes()
                    .filter(|c| !matches!(c, b'\r' | b'\n'))
                    .collect::<Vec<u8>>(),
            ) {
                Ok(bytes) => Some(Prim::Bytes(bytes)),
                Err(at) => {
                    self.ctx
                        .record(node.pos, format!("illegal base64 data at input byte {at}"));
                    None
                }
            },
            (NodeKind::Num(n), Want::Str | Want::Char) if self.convert => {
                let text = n.yaml_string()?;
                node.as_string.set(true);
                Some(Prim::Str(text))
            }
            // An infinity or NaN: Go fails to marshal the document before
            // decoding it; that error is reported at the end.
            (NodeKind::Num(n), Want::Int(..) | Want::Uint(..) | Want::Float(..))
                if n.json_text().is_none() =>
            {
                None
            }
            (NodeKind::Num(n), Want::Int(bits, _)) => {
                let text = n.json_text().unwrap_or_default();
                match parse_go_int(&text, bits) {
                    Some(i) => Some(Prim::Int(i128::from(i))),
                    None if bits == 128 => match text.parse::<i128>() {
                        Ok(i) if parse_go_int(&text, 64).is_some() || is_decimal(&text) => {
                            Some(Prim::Int(i))
                        }
                        _ => wrong(&format!("number {text}")),
                    },
                    None => wrong(&format!("number {text}")),
                }
            }
            (NodeKind::Num(n), Want::Uint(bits, _)) => {
                let text = n.json_text().unwrap_or_default();
                match parse_go_uint(&text, bits) {
                    Some(u) => Some(Prim::Uint(u128::from(u))),
                    None if bits == 128 && is_decimal(&text) && !text.starts_with('-') => {
                        match text.parse::<u128>() {
                            Ok(u) => Some(Prim::Uint(u)),
                            Err(_) => wrong(&format!("number {text}")),
                        }
                    }
                    None => wrong(&format!("number {text}")),
                }
            }
            (NodeKind::Num(n), Want::Float(bits, _)) => {
                let text = n.json_text().unwrap_or_default();
                match parse_go_float(&text, bits) {
                    Some(f) => Some(Prim::Float(f)),
                    None => wrong(&format!("number {text}")),
                }
            }
            (_, _) => wrong(node.go_kind()),
        }
    }

    /// A scalar target: every value is decoded in turn (each wrong one
    /// recorded), `null` leaves what the previous one set; the last good
    /// value is the result, the zero value when there is none.
    fn scalar<V: Visitor<'static>>(self, want: Want, visitor: V) -> Result<V::Value, Error> {
        let mut last = None;
        for node in self.hist.nodes().iter().filter(|n| !n.is_null()) {
            if let Some(p) = self.prim(node, want) {
                last = Some(p);
            }
        }
        match last {
            Some(Prim::Bool(b)) => visitor.visit_bool(b),
            Some(Prim::Int(i)) => match want {
                Want::Int(8, _) => visitor.visit_i8(i8::try_from(i).unwrap_or_default()),
                Want::Int(16, _) => visitor.visit_i16(i16::try_from(i).unwrap_or_default()),
                Want::Int(32, _) => visitor.visit_i32(i32::try_from(i).unwrap_or_default()),
                Want::Int(64, _) => visitor.visit_i64(i64::try_from(i).unwrap_or_default()),
                _ => visitor.visit_i128(i),
            },
            Some(Prim::Uint(u)) => match want {
                Want::Uint(8, _) => visitor.visit_u8(u8::try_from(u).unwrap_or_default()),
                Want::Uint(16, _) => visitor.visit_u16(u16::try_from(u).unwrap_or_default()),
                Want::Uint(32, _) => visitor.visit_u32(u32::try_from(u).unwrap_or_default()),
                Want::Uint(64, _) => visitor.visit_u64(u64::try_from(u).unwrap_or_default()),
                _ => visitor.visit_u128(u),
            },
            #[allow(clippy::cast_possible_truncation)]
            Some(Prim::Float(f)) if want == Want::Float(32, "float32") => {
                visitor.visit_f32(f as f32)
            }
            Some(Prim::Float(f)) => visitor.visit_f64(f),
            Some(Prim::Str(s)) if want == Want::Char => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => visitor.visit_char(c),
                    _ => Err(de::Error::invalid_value(
                        de::Unexpected::Str(&s),
                        &"a single character",
                    )),
                }
            }
            Some(Prim::Str(s)) => visitor.visit_string(s),
            Some(Prim::Bytes(b)) => visitor.visit_byte_buf(b),
            None => zero(want, visitor),
        }
    }

    /// Hands `visitor` one slot for each element's history.
    fn visit_elements<V: Visitor<'static>>(
        self,
        elements: Vec<Hist<'a>>,
        convert: bool,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let slots = elements.into_iter().map(|h| self.with(h, convert));
        visitor.visit_seq(SeqDeserializer::new(slots))
    }

    /// Checks the values of a composite target: `null`s dropped (`keep_null`
    /// keeps them), values of another kind recorded as type errors.
    fn of_kind(
        &self,
        nodes: &[&'a Node],
        is_kind: fn(&NodeKind) -> bool,
        ty: &str,
    ) -> Vec<&'a Node> {
        nodes
            .iter()
            .copied()
            .filter(|n| {
                if n.is_null() {
                    return false;
                }
                if is_kind(&n.kind) {
                    return true;
                }
                self.ctx.type_error(n.pos, n.go_kind(), ty);
                false
            })
            .collect()
    }

    /// A slice: after a `null` or an empty array it starts anew; each array
    /// decodes its elements into the slice's elements, which keep what
    /// earlier arrays put there (Go reuses the slice's backing array).
    fn seq_elements(&self) -> Vec<Hist<'a>> {
        let nodes = self.hist.nodes();
        let arrays = self.of_kind(nodes, is_seq, "slice");
        let items = |n: &&'a Node| match &n.kind {
            NodeKind::Seq(items) => items.as_slice(),
            _ => &[],
        };
        let all: Vec<&[Node]> = arrays.iter().map(items).collect();
        if self.ctx.checking.get() {
            let len = all.iter().map(|a| a.len()).max().unwrap_or(0);
            return (0..len)
                .map(|i| Hist::from_vec(all.iter().filter_map(|a| a.get(i)).collect()))
                .collect();
        }
        // A null resets the slice; so does an empty array (Go makes a new,
        // empty slice for it).
        let restart = nodes
            .iter()
            .rposition(|n| {
                n.is_null() || matches!(&n.kind, NodeKind::Seq(items) if items.is_empty())
            })
            .map(|r| nodes[r].pos);
        let live: Vec<&[Node]> = arrays
            .iter()
            .filter(|n| restart.map_or(true, |r| n.pos > r))
            .map(items)
            .collect();
        let len = live.last().map_or(0, |a| a.len());
        let decoded: usize = all.iter().map(|a| a.len()).sum();
        let kept: usize = live.iter().map(|a| a.len().min(len)).sum();
        if kept < decoded {
            self.ctx.skip();
        }
        (0..len)
            .map(|i| Hist::from_vec(live.iter().filter_map(|a| a.get(i)).collect()))
            .collect()
    }

    /// A Go array (a Rust tuple or array): `len` elements; each JSON array
    /// decodes into the first elements and zeroes the others.
    fn tuple_elements(&self, len: usize) -> Vec<Hist<'a>> {
        let arrays = self.of_kind(self.hist.nodes(), is_seq, "array");
        let arrays: Vec<&[Node]> = arrays
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Seq(items) => Some(items.as_slice()),
                _ => None,
            })
            .collect();
        (0..len)
            .map(|i| {
                // The last array too short to reach element i zeroed it.
                let from = arrays
                    .iter()
                    .rposition(|a| a.len() <= i)
                    .map_or(0, |r| r + 1);
                Hist::Many(arrays[from..].iter().filter_map(|a| a.get(i)).collect())
            })
            .collect()
    }

    /// Every value decoded as Go decodes into an `interface{}`: the last
    /// one replaces the others.
    fn any<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        let Some(node) = self.hist.nodes().last().copied() else {
            return visitor.visit_unit();
        };
        let inner = |hist| self.with(hist, false);
        match &node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Num(Num::Int(i)) => visitor.visit_i64(*i),
            NodeKind::Num(Num::Uint(u)) => visitor.visit_u64(*u),
            NodeKind::Num(Num::Float(f)) => visitor.visit_f64(*f),
            NodeKind::Num(Num::Text(t)) => {
                if let Some(i) = parse_go_int(t, 64) {
                    visitor.visit_i64(i)
                } else if let Some(u) = parse_go_uint(t, 64) {
                    visitor.visit_u64(u)
                } else if let Some(f) = parse_go_float(t, 64) {
                    visitor.visit_f64(f)
                } else {
                    self.ctx
                        .type_error(node.pos, &format!("number {t}"), "float64");
                    visitor.visit_f64(0.0)
                }
            }
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(SeqDeserializer::new(
                items.iter().map(|n| inner(Hist::One(n))),
            )),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess::new(
                self.ctx,
                entries
                    .iter()
                    .map(|e| (e, inner(Hist::One(&e.value))))
                    .collect(),
            )),
        }
    }
}

fn is_seq(kind: &NodeKind) -> bool {
    matches!(kind, NodeKind::Seq(_))
}

fn is_map(kind: &NodeKind) -> bool {
    matches!(kind, NodeKind::Map(_))
}

/// The entries of the mappings among `nodes`, in document order.
fn map_entries<'n, 'a>(nodes: &'n [&'a Node]) -> impl Iterator<Item = &'a Entry> + 'n {
    nodes
        .iter()
        .filter_map(|n: &&'a Node| match &n.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        })
        .flatten()
}

/// Whether `text` is an integer in decimal (an optional `-` and digits).
fn is_decimal(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())
}

/// Go's `strconv.ParseFloat(text, bits)` on a JSON number: out of range is
/// an error.
fn parse_go_float(text: &str, bits: u32) -> Option<f64> {
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    if bits == 32 && (f as f32).is_infinite() {
        return None;
    }
    Some(f)
}

/// The zero value of a scalar target.
fn zero<V: Visitor<'static>>(want: Want, visitor: V) -> Result<V::Value, Error> {
    match want {
        Want::Bool => visitor.visit_bool(false),
        Want::Int(8, _) => visitor.visit_i8(0),
        Want::Int(16, _) => visitor.visit_i16(0),
        Want::Int(32, _) => visitor.visit_i32(0),
        Want::Int(64, _) => visitor.visit_i64(0),
        Want::Int(..) => visitor.visit_i128(0),
        Want::Uint(8, _) => visitor.visit_u8(0),
        Want::Uint(16, _) => visitor.visit_u16(0),
        Want::Uint(32, _) => visitor.visit_u32(0),
        Want::Uint(64, _) => visitor.visit_u64(0),
        Want::Uint(..) => visitor.visit_u128(0),
        Want::Float(32, _) => visitor.visit_f32(0.0),
        Want::Float(..) => visitor.visit_f64(0.0),
        Want::Str => visitor.visit_str(""),
        Want::Char => visitor.visit_char('\0'),
        Want::Bytes => visitor.visit_bytes(&[]),
    }
}

/// A slot is its own deserializer, as serde's `SeqDeserializer` wants of
/// a list's elements.
impl<'a> IntoDeserializer<'static, Error> for Slot<'a> {
    type Deserializer = Slot<'a>;

    fn into_deserializer(self) -> Slot<'a> {
        self
    }
}

impl<'a> de::Deserializer<'static> for Slot<'a> {
    type Error = Error;

    visit_through! {
        deserialize_any => any(),
        deserialize_bool => scalar(Want::Bool),
        deserialize_i8 => scalar(Want::Int(8, "int8")),
        deserialize_i16 => scalar(Want::Int(16, "int16")),
        deserialize_i32 => scalar(Want::Int(32, "int32")),
        deserialize_i64 => scalar(Want::Int(64, "int64")),
        deserialize_i128 => scalar(Want::Int(128, "int128")),
        deserialize_u8 => scalar(Want::Uint(8, "uint8")),
        deserialize_u16 => scalar(Want::Uint(16, "uint16")),
        deserialize_u32 => scalar(Want::Uint(32, "uint32")),
        deserialize_u64 => scalar(Want::Uint(64, "uint64")),
        deserialize_u128 => scalar(Want::Uint(128, "uint128")),
        deserialize_f32 => scalar(Want::Float(32, "float32")),
        deserialize_f64 => scalar(Want::Float(64, "float64")),
        deserialize_char => scalar(Want::Char),
        deserialize_str => scalar(Want::Str),
        deserialize_string => scalar(Want::Str),
        deserialize_identifier => scalar(Want::Str),
        deserialize_byte_buf => deserialize_bytes(),
    }

    fn deserialize_bytes<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        // A list of numbers decodes element by element, as into a Go []byte.
        if matches!(self.hist.nodes().last(), Some(n) if is_seq(&n.kind)) {
            return self.deserialize_seq(visitor);
        }
        self.scalar(Want::Bytes, visitor)
    }

    /// A Go pointer: `null` makes it nil, a value after that fills it.
    fn deserialize_option<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        let kept = self.kept();
        if kept.is_empty() {
            return visitor.visit_none();
        }
        let convert = self.convert;
        visitor.visit_some(self.with(Hist::from_vec(kept), convert))
    }

    /// Go's empty struct: a mapping (its keys ignored) or `null`.
    fn deserialize_unit<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        self.of_kind(self.hist.nodes(), is_map, "struct {}");
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'static>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    transparent_newtype_struct!();

    fn deserialize_seq<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        let (elements, convert) = (self.seq_elements(), self.convert);
        self.visit_elements(elements, convert, visitor)
    }

    fn deserialize_tuple<V: Visitor<'static>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let elements = self.tuple_elements(len);
        self.visit_elements(elements, false, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'static>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    /// A Go map: `null` makes it nil; each mapping adds its entries, a
    /// later key replacing an earlier one.
    fn deserialize_map<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        let kept = self.kept();
        let objects = self.of_kind(&kept, is_map, "map");
        let convert = self.convert;
        let entries = map_entries(&objects)
            .map(|e| (e, self.with(Hist::One(&e.value), convert)))
            .collect();
        visitor.visit_map(MapAccess::new(self.ctx, entries))
    }

    /// A Go struct: `null` leaves it as it is; each mapping sets the fields
    /// its keys name, matched exactly first, then case-insensitively.
    fn deserialize_struct<V: Visitor<'static>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let objects = self.of_kind(self.hist.nodes(), is_map, name);
        let access = MapAccess::fields(self.ctx, name, fields, map_entries(&objects), self.convert);
        visitor.visit_map(access)
    }

    fn deserialize_enum<V: Visitor<'static>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let nodes = self.of_kind(
            self.hist.nodes(),
            |k| {
                matches!(
                    k,
                    NodeKind::Str(_) | NodeKind::Map(_) | NodeKind::Num(_) | NodeKind::Bool(_)
                )
            },
            name,
        );
        let Some(&node) = nodes.last() else {
            return visitor.visit_enum(EnumAccess::unit(String::new()));
        };
        match &node.kind {
            NodeKind::Map(entries) if entries.len() == 1 => {
                let value = self.with(Hist::One(&entries[0].value), self.convert);
                visitor.visit_enum(EnumAccess::with_value(entries[0].key.to_string(), value))
            }
            NodeKind::Str(s) => visitor.visit_enum(EnumAccess::unit(s.to_string())),
            _ => match self.prim(node, Want::Str) {
                Some(Prim::Str(s)) => visitor.visit_enum(EnumAccess::unit(s)),
                _ => Err(de::Error::custom(format_args!(
                    "cannot decode {} into enum {name}",
                    node.go_kind()
                ))),
            },
        }
    }

    fn deserialize_ignored_any<V: Visitor<'static>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}
