//! YAML read as the Go plugins read it: `sigs.k8s.io/yaml` v1.3.0, which
//! decodes the first document with `gopkg.in/yaml.v2` and hands the result
//! to `encoding/json` (see [`gojson`](super::gojson)).
//!
//! The scanner and parser are `libyaml-safer`, a port of the same libyaml
//! that `yaml.v2` is a port of. On its events this module applies yaml.v2's
//! rules: anchors and aliases, merge keys (`<<`, in document order), tags
//! (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!binary`,
//! `!!timestamp`; others leave a string), the YAML 1.1 resolution of plain
//! scalars (`yes`/`off` booleans, `0777` octal, `0b1`, `1_000`, `.inf`),
//! a later duplicate key replacing an earlier one; then `sigs.k8s.io/yaml`'s:
//! keys become strings (a null key is an error), an object's keys are sorted,
//! a number or boolean decoded into a string field becomes its text.
//!
//! Where libyaml-safer (libyaml 0.2.5) and yaml.v2 (an older libyaml) part:
//! yaml.v2 ends a plain scalar at `?` inside a flow collection, which then
//! fails to parse, so such a scalar is refused here too; two other corners
//! are refused where yaml.v2 accepts them, with the messages
//! [`TAG_FLOW_CHARACTER`] and [`COLON_BEFORE_FLOW_INDICATOR`]. Nesting is
//! bounded at [`MAX_DEPTH`] levels (yaml.v2: 10,000).

use std::collections::HashMap;

use libyaml_safer::{EventData, MappingStyle, Parser, ScalarStyle, SequenceStyle};

use super::gojson::{Decode, Error, Json, Mode, Number, MAX_DEPTH};
use super::yaml11::{base64, format_g32, json_float, lossy, resolve};

const TAG: &str = "tag:yaml.org,2002:";

/// Decodes `text` into a `T`, as `yaml.Unmarshal(text, &t)` does in Go.
pub fn unmarshal<T: Decode + Default>(text: &str) -> Result<T, Error> {
    let mut out = T::default();
    out.decode(&to_json(text)?, Mode::Yaml)?;
    Ok(out)
}

/// The JSON value `sigs.k8s.io/yaml` turns `text` into.
pub fn to_json(text: &str) -> Result<Json, Error> {
    json_of(&decode(text)?)
}

/// A value as yaml.v2 decodes it into a Go `interface{}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Go {
    /// `nil`
    Nil,
    /// `bool`
    Bool(bool),
    /// `int`
    Int(i64),
    /// `uint64`, for integers above `i64::MAX`
    Uint(u64),
    /// `float64`
    Float(f64),
    /// `string`
    Str(String),
    /// `[]interface{}`
    Seq(Vec<Go>),
    /// `map[interface{}]interface{}`, in the order keys first appeared
    Map(Vec<(Go, Go)>),
}

/// Decodes the first YAML document of `text` as yaml.v2 does into an
/// `interface{}` (`Nil` for an empty stream).
pub fn decode(text: &str) -> Result<Go, Error> {
    let nodes = compose(text)?;
    let Some(root) = nodes.root else {
        return Ok(Go::Nil);
    };
    let mut d = Decoder {
        nodes: &nodes.nodes,
        in_alias: Vec::new(),
        decodes: 1,
        alias_decodes: 0,
        depth: 0,
    };
    d.unmarshal(root)
}

// ---------------------------------------------------------------------------
// Events to nodes (yaml.v2's parser.go)
// ---------------------------------------------------------------------------

enum Kind {
    Scalar {
        value: String,
        tag: String,
        /// Plain, or tagged `!`: yaml.v2 resolves its type from its text.
        implicit: bool,
    },
    Seq(Vec<usize>),
    Map(Vec<usize>),
    Alias(usize),
}

struct Nodes {
    nodes: Vec<Kind>,
    root: Option<usize>,
}

/// What a tag may contain differs: yaml.v2 (an older libyaml) takes `,`,
/// `[` and `]` into a tag, libyaml-safer ends the tag there. Such a tag is
/// refused, with this message.
pub const TAG_FLOW_CHARACTER: &str = "a tag cannot contain ',', '[' or ']'";

fn parse_error(text: &str, e: &libyaml_safer::Error) -> Error {
    let Some(mark) = e.problem_mark() else {
        return Error(e.problem().to_string());
    };
    let at = usize::try_from(mark.index).ok().and_then(|i| text.get(i..));
    if e.context() == Some("while scanning a tag")
        && at.is_some_and(|rest| rest.starts_with([',', '[', ']']))
    {
        return Error(format!("line {}: {TAG_FLOW_CHARACTER}", mark.line + 1));
    }
    if e.problem() == "found unexpected ':'" {
        return Error(format!(
            "line {}: {COLON_BEFORE_FLOW_INDICATOR}",
            mark.line + 1
        ));
    }
    Error(format!("line {}: {}", mark.line + 1, e.problem()))
}

/// libyaml refuses a plain scalar with `:` right before a flow indicator
/// inside a flow collection (`[a:]`), where yaml.v2 keeps the `:` in the
/// scalar. Such a scalar is refused, with this message.
pub const COLON_BEFORE_FLOW_INDICATOR: &str =
    "':' right before ',', '[', ']', '{', '}' or '?' in a flow collection";

/// libyaml-safer 0.3.0 panics on a tag followed by `,` inside a flow
/// collection (`[!a, b]`); such a panic is caught, and kept off stderr.
fn quiet_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let from_parser = info
                .location()
                .is_some_and(|l| l.file().contains("libyaml-safer"));
            if !from_parser {
                previous(info);
            }
        }));
    });
}

/// Reads the events of the first document into nodes.
fn compose(text: &str) -> Result<Nodes, Error> {
    quiet_parser_panics();
    std::panic::catch_unwind(|| compose_events(text)).unwrap_or_else(|_| {
        Err(Error(format!(
            "{TAG_FLOW_CHARACTER} (in a flow collection)"
        )))
    })
}

fn compose_events(text: &str) -> Result<Nodes, Error> {
    let bytes = if text.is_empty() { "\n" } else { text };
    let mut input = bytes.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut nodes: Vec<Kind> = Vec::new();
    let mut anchors: HashMap<String, usize> = HashMap::new();
    // Open collections, and whether each is in flow style.
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut root = None;
    loop {
        let event = parser.parse().map_err(|e| parse_error(bytes, &e))?;
        let line = event.start_mark.line;
        let mut flow = false;
        let (anchor, kind) = match event.data {
            EventData::StreamStart { .. } => continue,
            EventData::StreamEnd | EventData::DocumentEnd { .. } => break,
            EventData::DocumentStart {
                version_directive, ..
            } => {
                if let Some(v) = version_directive {
                    if (v.major, v.minor) != (1, 1) {
                        return Err(Error(format!(
                            "line {}: found incompatible YAML document (version {}.{})",
                            line + 1,
                            v.major,
                            v.minor
                        )));
                    }
                }
                continue;
            }
            EventData::SequenceEnd | EventData::MappingEnd => {
                open.pop();
                continue;
            }
            EventData::Alias { anchor } => {
                let Some(&target) = anchors.get(&anchor) else {
                    return Err(Error(format!("unknown anchor '{anchor}' referenced")));
                };
                (None, Kind::Alias(target))
            }
            EventData::Scalar {
                anchor,
                tag,
                value,
                plain_implicit,
                style,
                ..
            } => {
                // yaml.v2 ends a plain scalar at `?` inside a flow
                // collection and then reads a key indicator there, which
                // no flow collection can take at that place.
                let in_flow = open.last().is_some_and(|&(_, flow)| flow);
                if in_flow && style == ScalarStyle::Plain && value.contains('?') {
                    return Err(Error(format!(
                        "line {}: '?' inside a plain scalar in a flow collection",
                        line + 1
                    )));
                }
                let kind = Kind::Scalar {
                    value,
                    tag: tag.unwrap_or_default(),
                    implicit: plain_implicit,
                };
                (anchor, kind)
            }
            EventData::SequenceStart { anchor, style, .. } => {
                flow = style == SequenceStyle::Flow;
                (anchor, Kind::Seq(Vec::new()))
            }
            EventData::MappingStart { anchor, style, .. } => {
                flow = style == MappingStyle::Flow;
                (anchor, Kind::Map(Vec::new()))
            }
        };
        let id = nodes.len();
        let is_collection = matches!(kind, Kind::Seq(_) | Kind::Map(_));
        nodes.push(kind);
        if let Some(anchor) = anchor {
            anchors.insert(anchor, id);
        }
        match open.last().map(|&(p, _)| &mut nodes[p]) {
            Some(Kind::Seq(children) | Kind::Map(children)) => children.push(id),
            _ => root = Some(id),
        }
        if is_collection {
            if open.len() >= MAX_DEPTH {
                return Err(Error(format!(
                    "line {}: nesting deeper than {MAX_DEPTH} levels",
                    line + 1
                )));
            }
            open.push((id, flow));
        }
    }
    Ok(Nodes { nodes, root })
}

// ---------------------------------------------------------------------------
// Nodes to Go values (yaml.v2's decode.go and resolve.go)
// ---------------------------------------------------------------------------

struct Decoder<'a> {
    nodes: &'a [Kind],
    /// Aliases being expanded, to refuse one that contains itself.
    in_alias: Vec<usize>,
    decodes: u64,
    alias_decodes: u64,
    depth: usize,
}

impl Decoder<'_> {
    fn unmarshal(&mut self, id: usize) -> Result<Go, Error> {
        self.count()?;
        if self.depth >= MAX_DEPTH {
            return Err(Error(format!(
                "nesting deeper than {MAX_DEPTH} levels (aliases included)"
            )));
        }
        self.depth += 1;
        let result = self.node(id);
        self.depth -= 1;
        result
    }

    /// yaml.v2's guard against alias bombs ("billion laughs").
    fn count(&mut self) -> Result<(), Error> {
        self.decodes += 1;
        if !self.in_alias.is_empty() {
            self.alias_decodes += 1;
        }
        let (low, high) = (400_000.0, 4_000_000.0);
        let n = self.decodes as f64;
        let allowed = if n <= low {
            0.99
        } else if n >= high {
            0.10
        } else {
            0.99 - 0.89 * ((n - low) / (high - low))
        };
        if self.alias_decodes > 100
            && self.decodes > 1000
            && self.alias_decodes as f64 / n > allowed
        {
            return Err(Error("document contains excessive aliasing".into()));
        }
        Ok(())
    }

    fn node(&mut self, id: usize) -> Result<Go, Error> {
        let node = &self.nodes[id];
        if let Kind::Alias(target) = *node {
            if self.in_alias.contains(&id) {
                return Err(Error("an anchor's value contains itself".into()));
            }
            self.in_alias.push(id);
            let result = self.unmarshal(target);
            self.in_alias.pop();
            return result;
        }
        match node {
            Kind::Scalar {
                value,
                tag,
                implicit,
            } => scalar(value, tag, *implicit),
            Kind::Seq(children) => children
                .iter()
                .map(|&c| self.unmarshal(c))
                .collect::<Result<_, _>>()
                .map(Go::Seq),
            Kind::Map(children) => {
                let mut map = Vec::new();
                self.mapping(children, &mut map)?;
                Ok(Go::Map(map))
            }
            Kind::Alias(_) => unreachable!("handled above"),
        }
    }

    /// Adds a mapping's entries to `map`, merges included, in document order.
    fn mapping(&mut self, children: &[usize], map: &mut Vec<(Go, Go)>) -> Result<(), Error> {
        for pair in children.chunks(2) {
            let [key, value] = *pair else {
                return Err(Error("a mapping key has no value".into()));
            };
            if self.is_merge(key) {
                self.merge(value, map)?;
                continue;
            }
            let k = self.unmarshal(key)?;
            if matches!(k, Go::Seq(_) | Go::Map(_)) {
                return Err(Error("invalid map key: a list or mapping".into()));
            }
            let v = self.unmarshal(value)?;
            insert(map, k, v);
        }
        Ok(())
    }

    fn is_merge(&self, id: usize) -> bool {
        matches!(&self.nodes[id],
            Kind::Scalar { value, tag, implicit } if value == "<<" && (*implicit || tag.strip_prefix(TAG) == Some("merge")))
    }

    fn merge(&mut self, id: usize, map: &mut Vec<(Go, Go)>) -> Result<(), Error> {
        let want_map = || Error("map merge requires map or sequence of maps as the value".into());
        let mapping_of = |d: &Self, id: usize| match d.nodes[id] {
            Kind::Map(_) => Some(id),
            Kind::Alias(t) if matches!(d.nodes[t], Kind::Map(_)) => Some(id),
            _ => None,
        };
        match &self.nodes[id] {
            Kind::Map(_) | Kind::Alias(_) => {
                mapping_of(self, id).ok_or_else(want_map)?;
                self.merge_one(id, map)
            }
            Kind::Seq(children) => {
                // Earlier maps take precedence: merge them last.
                for &c in children.iter().rev() {
                    mapping_of(self, c).ok_or_else(want_map)?;
                    self.merge_one(c, map)?;
                }
                Ok(())
            }
            Kind::Scalar { .. } => Err(want_map()),
        }
    }

    /// Decodes a mapping (or an alias of one) into an existing map.
    fn merge_one(&mut self, id: usize, map: &mut Vec<(Go, Go)>) -> Result<(), Error> {
        self.count()?;
        let Kind::Alias(target) = self.nodes[id] else {
            return self.merge_into(id, map);
        };
        if self.in_alias.contains(&id) {
            return Err(Error("an anchor's value contains itself".into()));
        }
        self.in_alias.push(id);
        let result = self.count().and_then(|()| self.merge_into(target, map));
        self.in_alias.pop();
        result
    }

    fn merge_into(&mut self, target: usize, map: &mut Vec<(Go, Go)>) -> Result<(), Error> {
        let Kind::Map(children) = &self.nodes[target] else {
            return Err(Error("map merge requires a map".into()));
        };
        if self.depth >= MAX_DEPTH {
            return Err(Error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let result = self.mapping(children, map);
        self.depth -= 1;
        result
    }
}

/// Sets `map[k] = v`; like a Go map, an equal key is replaced (key too).
fn insert(map: &mut Vec<(Go, Go)>, k: Go, v: Go) {
    match map.iter_mut().find(|(old, _)| go_eq(old, &k)) {
        Some(slot) => *slot = (k, v),
        None => map.push((k, v)),
    }
}

/// Go's `==` on two `interface{}` keys.
fn go_eq(a: &Go, b: &Go) -> bool {
    match (a, b) {
        (Go::Nil, Go::Nil) => true,
        (Go::Bool(a), Go::Bool(b)) => a == b,
        (Go::Int(a), Go::Int(b)) => a == b,
        (Go::Uint(a), Go::Uint(b)) => a == b,
        (Go::Float(a), Go::Float(b)) => a == b,
        (Go::Str(a), Go::Str(b)) => a == b,
        _ => false,
    }
}

fn scalar(value: &str, tag: &str, implicit: bool) -> Result<Go, Error> {
    if tag.is_empty() && !implicit {
        return Ok(Go::Str(value.to_string()));
    }
    let short = tag.strip_prefix(TAG);
    if short == Some("binary") {
        let bytes = base64(value)
            .ok_or_else(|| Error("!!binary value contains invalid base64 data".into()))?;
        return Ok(Go::Str(lossy(&bytes)));
    }
    let resolvable = tag.is_empty()
        || matches!(
            short,
            Some("str" | "bool" | "int" | "float" | "null" | "timestamp")
        );
    if !resolvable {
        return Ok(Go::Str(value.to_string()));
    }
    let (rtag, resolved) = resolve(value, short);
    match (short, rtag) {
        (None, _) | (Some("str"), _) => Ok(resolved),
        (Some(want), got) if want == got => Ok(resolved),
        (Some("float"), "int") => match resolved {
            Go::Int(i) => Ok(Go::Float(i as f64)),
            _ => Err(cannot(value, got_tag(&resolved), "float")),
        },
        (Some(want), got) => Err(cannot(value, got, want)),
    }
}

fn got_tag(v: &Go) -> &'static str {
    match v {
        Go::Uint(_) | Go::Int(_) => "int",
        _ => "str",
    }
}

fn cannot(value: &str, got: &str, want: &str) -> Error {
    Error(format!("cannot decode !!{got} `{value}` as a !!{want}"))
}

// ---------------------------------------------------------------------------
// Go values to JSON (sigs.k8s.io/yaml's convertToJSONableObject + json.Marshal)
// ---------------------------------------------------------------------------

/// The text `sigs.k8s.io/yaml` gives a map key, or the error for a key
/// JSON cannot have.
pub fn key_string(key: &Go) -> Result<String, Error> {
    match key {
        Go::Str(s) => Ok(s.clone()),
        Go::Int(i) => Ok(i.to_string()),
        Go::Bool(b) => Ok(b.to_string()),
        Go::Float(f) => Ok(match format_g32(*f).as_str() {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            "NaN" => ".nan".into(),
            s => s.to_string(),
        }),
        Go::Nil => Err(Error("unsupported map key: null".into())),
        Go::Uint(u) => Err(Error(format!("unsupported map key: {u} (uint64)"))),
        Go::Seq(_) | Go::Map(_) => Err(Error("unsupported map key: a collection".into())),
    }
}

/// The JSON value of a Go value; an object's keys sorted, as `json.Marshal`
/// writes them (of two keys with the same text, the later one is kept).
pub fn json_of(value: &Go) -> Result<Json, Error> {
    Ok(match value {
        Go::Nil => Json::Null,
        Go::Bool(b) => Json::Bool(*b),
        Go::Int(i) => integer(i.to_string()),
        Go::Uint(u) => integer(u.to_string()),
        Go::Float(f) => Json::Number(Number {
            text: f.is_finite().then(|| json_float(*f)),
            as_string: Some(format_g32(*f)),
        }),
        Go::Str(s) => Json::String(s.clone()),
        Go::Seq(items) => Json::Array(items.iter().map(json_of).collect::<Result<_, _>>()?),
        Go::Map(entries) => {
            let mut object: Vec<(String, Json)> = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let (k, v) = (key_string(k)?, json_of(v)?);
                match object.iter_mut().find(|(old, _)| *old == k) {
                    Some(slot) => slot.1 = v,
                    None => object.push((k, v)),
                }
            }
            object.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(object)
        }
    })
}

fn integer(text: String) -> Json {
    Json::Number(Number {
        as_string: Some(text.clone()),
        text: Some(text),
    })
}
