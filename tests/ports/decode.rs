//! decode cases: YAML documents the Go oracle decoded with `sigs.k8s.io/yaml`
//! into Go values (`tests/ports/oracle/decode.go`), decoded here with
//! `nri::decode::from_yaml` into the same shapes, results and error messages
//! compared.
//!
//! The Rust types mirror the Go ones field for field and carry the same
//! names, since Go's messages name the struct (`Go struct field sink.i`).
//! Go names a composite type its own way (`[]string`, `main.inner`,
//! `map[string]int64`); the Rust message names it `slice`, `inner`, `map`:
//! [`go_message`] rewrites Go's message so, and every other word must match.

use std::collections::BTreeMap;

use nri::decode::{self, Number, Value};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::Tally;

#[allow(non_camel_case_types)]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct inner {
    name: String,
    count: i32,
    tags: Vec<String>,
    ok: bool,
}

#[allow(non_camel_case_types)]
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct sink {
    s: String,
    b: bool,
    i8: i8,
    i: i64,
    u16: u16,
    u: u64,
    f32: f32,
    f: f64,
    ps: Option<String>,
    pi: Option<i32>,
    l: Vec<i64>,
    ls: Vec<String>,
    m: BTreeMap<String, String>,
    mi: BTreeMap<String, i64>,
    #[serde(rename = "in")]
    in_: inner,
    pin: Option<inner>,
    ins: Vec<inner>,
    any: Value,
    #[serde(rename = "camelCase")]
    camel: String,
    fold: String,
    #[serde(rename = "FOLD")]
    up: String,
}

/// A result as the JSON Go marshals it, to compare.
trait ToValue {
    fn to_value(&self) -> Value;
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Number(Number::from(i64::from(*self)))
            }
        }
    )*};
}
int_to_value!(i8, i32, i64, u8, u16);

impl ToValue for u64 {
    fn to_value(&self) -> Value {
        Value::Number(Number::from(*self))
    }
}

impl ToValue for f32 {
    fn to_value(&self) -> Value {
        // Go writes a float32 with its own shortest digits.
        Value::Number(Number::from(
            self.to_string().parse::<f64>().unwrap_or(f64::NAN),
        ))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Number(Number::from(*self))
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl<T: ToValue> ToValue for Vec<T> {
    fn to_value(&self) -> Value {
        Value::Seq(self.iter().map(ToValue::to_value).collect())
    }
}

impl<T: ToValue, const N: usize> ToValue for [T; N] {
    fn to_value(&self) -> Value {
        Value::Seq(self.iter().map(ToValue::to_value).collect())
    }
}

impl<T: ToValue> ToValue for BTreeMap<String, T> {
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.clone(), v.to_value()))
                .collect(),
        )
    }
}

fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl ToValue for inner {
    fn to_value(&self) -> Value {
        object(vec![
            ("name", self.name.to_value()),
            ("count", self.count.to_value()),
            ("tags", self.tags.to_value()),
            ("ok", self.ok.to_value()),
        ])
    }
}

impl ToValue for sink {
    fn to_value(&self) -> Value {
        object(vec![
            ("s", self.s.to_value()),
            ("b", self.b.to_value()),
            ("i8", self.i8.to_value()),
            ("i", self.i.to_value()),
            ("u16", self.u16.to_value()),
            ("u", self.u.to_value()),
            ("f32", self.f32.to_value()),
            ("f", self.f.to_value()),
            ("ps", self.ps.to_value()),
            ("pi", self.pi.to_value()),
            ("l", self.l.to_value()),
            ("ls", self.ls.to_value()),
            ("m", self.m.to_value()),
            ("mi", self.mi.to_value()),
            ("in", self.in_.to_value()),
            ("pin", self.pin.to_value()),
            ("ins", self.ins.to_value()),
            ("any", self.any.to_value()),
            ("camelCase", self.camel.to_value()),
            ("fold", self.fold.to_value()),
            ("FOLD", self.up.to_value()),
        ])
    }
}

fn run<T: DeserializeOwned + ToValue>(text: &str) -> Result<Value, String> {
    decode::from_yaml::<T>(text)
        .map(|t| t.to_value())
        .map_err(|e| e.to_string())
}

/// Decodes `text` into the Rust twin of Go type `target`.
fn decode_as(target: &str, text: &str) -> Result<Value, String> {
    match target {
        "sink" => run::<sink>(text),
        "inner" => run::<inner>(text),
        "*inner" => run::<Option<inner>>(text),
        "[]inner" => run::<Vec<inner>>(text),
        "[]string" => run::<Vec<String>>(text),
        "[]int64" => run::<Vec<i64>>(text),
        "[2]string" => run::<[String; 2]>(text),
        "map[string]string" => run::<BTreeMap<String, String>>(text),
        "map[string]int64" => run::<BTreeMap<String, i64>>(text),
        "interface{}" => run::<Value>(text),
        "string" => run::<String>(text),
        "int64" => run::<i64>(text),
        "uint8" => run::<u8>(text),
        "bool" => run::<bool>(text),
        "float32" => run::<f32>(text),
        other => Err(format!("the test knows no target {other:?}")),
    }
}

/// Whether two results are the same once marshaled: numbers by value, a
/// Go nil slice or map (`null`) the same as an empty one.
fn same(go: &Value, ours: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Seq(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
        _ => false,
    };
    match (go, ours) {
        (a, b) if empty(a) && empty(b) => true,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Seq(a), Value::Seq(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (a, b) => a == b,
    }
}

/// Go's message with its names of composite types rewritten as the Rust
/// message names them.
fn go_message(message: &str) -> String {
    let Some((head, ty)) = message.rsplit_once(" of type ") else {
        return message.to_string();
    };
    let ty = ty.trim_start_matches('*');
    let ours = if ty.starts_with("[]") {
        "slice"
    } else if ty.starts_with('[') {
        "array"
    } else if ty.starts_with("map[") {
        "map"
    } else if let Some(name) = ty.strip_prefix("main.") {
        name
    } else {
        ty
    };
    format!("{head} of type {ours}")
}

/// The deliberate differences: errors here where Go decodes.
const EXCEPTIONS: [(&str, &str); 5] = [
    ("DeepNesting", "nesting deeper than 256 levels"),
    ("TagFlowCharacter", decode::TAG_FLOW_CHARACTER),
    (
        "ColonBeforeFlowIndicator",
        decode::COLON_BEFORE_FLOW_INDICATOR,
    ),
    ("TooManyValues", "more than 250000 values"),
    ("TooMuchText", "bytes of text once aliases"),
];

/// The deliberate difference of [`decode::MAX_KEY_BYTES`]: a line of more
/// than 1,024 bytes but not characters, where Go fails with the same
/// message on a later line (or accepts the text).
fn long_key_line(text: &str, go: &[Result<Value, String>], ours: &str) -> Option<&'static str> {
    let long = text
        .lines()
        .any(|l| l.len() > decode::MAX_KEY_BYTES && !l.is_ascii());
    let strip_line = |m: &str| {
        let m = go_message(m);
        match m.split_once("yaml: line ") {
            Some((head, rest)) => format!(
                "{head}yaml: {}",
                rest.split_once(": ").map_or(rest, |r| r.1)
            ),
            None => m,
        }
    };
    let same_but_line = go
        .iter()
        .any(|g| matches!(g, Err(g) if strip_line(g) == strip_line(ours)));
    let go_accepts = go.iter().any(Result::is_ok);
    (long && (same_but_line || go_accepts)).then_some("KeyOver1024Bytes")
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DecodeCase {
    id: i64,
    target: String,
    text: String,
    result: Value,
    error: Option<String>,
    variants: Vec<Value>,
    edge: bool,
}

/// Go's possible outcomes of a case.
fn outcomes(case: &DecodeCase) -> Vec<Result<Value, String>> {
    if !case.variants.is_empty() {
        return case
            .variants
            .iter()
            .map(|v| match v.get("error").and_then(Value::as_str) {
                Some(e) if v.as_map().is_some_and(|m| m.len() == 1) => Err(e.to_string()),
                _ => Ok(v.clone()),
            })
            .collect();
    }
    vec![match &case.error {
        Some(e) => Err(e.clone()),
        None => Ok(case.result.clone()),
    }]
}

pub fn check_decode_case(line: &[u8], tally: &mut Tally) {
    let case: DecodeCase = match decode::from_json(line) {
        Ok(case) => case,
        Err(e) => {
            tally.fail("decode", -1, format!("unreadable case: {e}"));
            return;
        }
    };
    let plugin: &'static str = if case.edge {
        "decode (written out)"
    } else {
        "decode (random)"
    };
    *tally.cases.entry(plugin).or_default() += 1;
    let ours = decode_as(&case.target, &case.text);
    let go = outcomes(&case);
    let agrees = go.iter().any(|go| match (go, &ours) {
        (Ok(a), Ok(b)) => same(a, b),
        (Err(a), Err(b)) => go_message(a) == *b,
        _ => false,
    });
    if agrees {
        if ours.is_err() {
            *tally.agreed_errors.entry(plugin).or_default() += 1;
        }
        return;
    }
    let exception = match &ours {
        Err(e) => EXCEPTIONS
            .iter()
            .find(|(_, m)| e.contains(m))
            .map(|(name, _)| *name)
            .or_else(|| long_key_line(&case.text, &go, e)),
        Ok(_) => None,
    };
    match exception {
        Some(name) => *tally.decode_exceptions.entry((plugin, name)).or_default() += 1,
        None => tally.fail(
            plugin,
            case.id,
            format!(
                "target {}, text {:?}\n  Go   {:?}\n  Rust {:?}",
                case.target,
                case.text,
                go.iter()
                    .map(|o| o.as_ref().map_err(|e| go_message(e)))
                    .collect::<Vec<_>>(),
                ours
            ),
        ),
    }
}
