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

struct Node {
    kind: Kind,
    tag: String,
}

struct Nodes {
    nodes: Vec<Node>,
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
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors: HashMap<String, usize> = HashMap::new();
    // Open collections, and whether each is in flow style.
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut root = None;
    loop {
        let event = parser.parse().map_err(|e| parse_error(bytes, &e))?;
        let line = event.start_mark.line;
        let mut flow = false;
        let (anchor, kind, tag) = match event.data {
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
                (None, Kind::Alias(target), String::new())
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
                let tag = tag.unwrap_or_default();
                let kind = Kind::Scalar {
                    value,
                    tag: tag.clone(),
                    implicit: plain_implicit,
                };
                (anchor, kind, tag)
            }
            EventData::SequenceStart {
                anchor, tag, style, ..
            } => {
                flow = style == SequenceStyle::Flow;
                (anchor, Kind::Seq(Vec::new()), tag.unwrap_or_default())
            }
            EventData::MappingStart {
                anchor, tag, style, ..
            } => {
                flow = style == MappingStyle::Flow;
                (anchor, Kind::Map(Vec::new()), tag.unwrap_or_default())
            }
        };
        let id = nodes.len();
        let is_collection = matches!(kind, Kind::Seq(_) | Kind::Map(_));
        nodes.push(Node { kind, tag });
        if let Some(anchor) = anchor {
            anchors.insert(anchor, id);
        }
        match open.last().map(|&(p, _)| &mut nodes[p].kind) {
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
    nodes: &'a [Node],
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
        if let Kind::Alias(target) = node.kind {
            if self.in_alias.contains(&id) {
                return Err(Error("an anchor's value contains itself".into()));
            }
            self.in_alias.push(id);
            let result = self.unmarshal(target);
            self.in_alias.pop();
            return result;
        }
        match &node.kind {
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
        matches!(&self.nodes[id].kind,
            Kind::Scalar { value, tag, implicit } if value == "<<" && (*implicit || *tag == format!("{TAG}merge")))
    }

    fn merge(&mut self, id: usize, map: &mut Vec<(Go, Go)>) -> Result<(), Error> {
        let want_map = || Error("map merge requires map or sequence of maps as the value".into());
        let mapping_of = |d: &Self, id: usize| match d.nodes[id].kind {
            Kind::Map(_) => Some(id),
            Kind::Alias(t) if matches!(d.nodes[t].kind, Kind::Map(_)) => Some(id),
            _ => None,
        };
        match &self.nodes[id].kind {
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
        let Kind::Alias(target) = self.nodes[id].kind else {
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
        let Kind::Map(children) = &self.nodes[target].kind else {
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
    if tag == format!("{TAG}binary") {
        let bytes = base64(value)
            .ok_or_else(|| Error("!!binary value contains invalid base64 data".into()))?;
        return Ok(Go::Str(lossy(&bytes)));
    }
    let short = tag.strip_prefix(TAG);
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

/// yaml.v2's `resolve`: the type a scalar's text stands for, as (tag, value).
/// A timestamp stays a string, as yaml.v2 leaves it in an `interface{}`.
fn resolve(text: &str, tag: Option<&str>) -> (&'static str, Go) {
    let string = ("str", Go::Str(text.to_string()));
    if tag == Some("str") {
        return string;
    }
    let hint = text.bytes().next().map_or(b'N', |c| match c {
        b'+' | b'-' => b'S',
        b'0'..=b'9' => b'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => b'M',
        b'.' => b'.',
        _ => 0,
    });
    if hint == 0 {
        return string;
    }
    let named = match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(("bool", Go::Bool(true)))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(("bool", Go::Bool(false)))
        }
        "" | "~" | "null" | "Null" | "NULL" => Some(("null", Go::Nil)),
        ".nan" | ".NaN" | ".NAN" => Some(("float", Go::Float(f64::NAN))),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            Some(("float", Go::Float(f64::INFINITY)))
        }
        "-.inf" | "-.Inf" | "-.INF" => Some(("float", Go::Float(f64::NEG_INFINITY))),
        "<<" => Some(("merge", Go::Str("<<".into()))),
        _ => None,
    };
    if let Some(found) = named {
        return found;
    }
    match hint {
        b'.' => {
            if let Some(f) = parse_float(text) {
                return ("float", Go::Float(f));
            }
        }
        b'D' | b'S' => {
            if matches!(tag, None | Some("timestamp")) && is_timestamp(text) {
                return ("timestamp", Go::Str(text.to_string()));
            }
            let plain = text.replace('_', "");
            if let Some(v) = parse_int(&plain, 0) {
                return ("int", v);
            }
            if is_yaml_float(&plain) {
                if let Some(f) = parse_float(&plain) {
                    return ("float", Go::Float(f));
                }
            }
            let binary = plain
                .strip_prefix("0b")
                .map(|d| (d.to_string(), false))
                .or_else(|| plain.strip_prefix("-0b").map(|d| (format!("-{d}"), true)));
            if let Some((digits, negative)) = binary {
                let v = if negative {
                    i64::from_str_radix(&digits, 2).ok().map(Go::Int)
                } else {
                    parse_int(&digits, 2)
                };
                if let Some(v) = v {
                    return ("int", v);
                }
            }
        }
        _ => {}
    }
    string
}

/// Go's `strconv.ParseInt` then `ParseUint` (base 0: `0x`, `0o`, `0b`,
/// leading `0` octal), as yaml.v2 tries them.
fn parse_int(s: &str, base: u32) -> Option<Go> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(body, base)?;
    if negative {
        match magnitude {
            m if m <= i64::MAX as u64 + 1 => Some(Go::Int((m as i64).wrapping_neg())),
            _ => None,
        }
    } else if let Ok(i) = i64::try_from(magnitude) {
        Some(Go::Int(i))
    } else if s.starts_with('+') {
        None // ParseUint takes no sign
    } else {
        Some(Go::Uint(magnitude))
    }
}

fn parse_uint(s: &str, base: u32) -> Option<u64> {
    let (radix, digits) = if base != 0 {
        (base, s)
    } else {
        let lower = s.get(..2).map(str::to_ascii_lowercase);
        match lower.as_deref() {
            Some("0x") => (16, &s[2..]),
            Some("0o") => (8, &s[2..]),
            Some("0b") => (2, &s[2..]),
            _ if s.len() > 1 && s.starts_with('0') => (8, &s[1..]),
            _ => (10, s),
        }
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// yaml.v2's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text; out of range is an
/// error, underscores may separate digits.
fn parse_float(s: &str) -> Option<f64> {
    let stripped;
    let s = if s.contains('_') {
        if !underscores_ok(s) {
            return None;
        }
        stripped = s.replace('_', "");
        stripped.as_str()
    } else {
        s
    };
    let plain = s.strip_prefix('+').unwrap_or(s);
    let body = plain.strip_prefix('-').unwrap_or(plain);
    let ok = body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok || !body.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// Go's rule for underscores in a number: each between two digits.
fn underscores_ok(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut saw = '^';
    for c in body.chars() {
        saw = match c {
            '0'..='9' => '0',
            '_' if saw != '0' => return false,
            '_' => '_',
            _ if saw == '_' => return false,
            _ => '!',
        };
    }
    saw != '_'
}

/// yaml.v2's timestamp forms: `2006-1-2`, then a time after `T`, `t` or a
/// space (`15:4:5`, a fraction, and after `T`/`t` a zone `Z` or `±07:00`).
fn is_timestamp(s: &str) -> bool {
    let num = |t: &str, max: u32| {
        (1..=2).contains(&t.len())
            && t.bytes().all(|c| c.is_ascii_digit())
            && t.parse::<u32>().is_ok_and(|n| n <= max)
    };
    let (date, time, zoned) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..]), s.as_bytes()[i] != b' '),
        None => (s, None, false),
    };
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if y.len() != 4 || !y.bytes().all(|c| c.is_ascii_digit()) || !num(m, 12) || !num(d, 31) {
        return false;
    }
    let (year, month, day): (u32, u32, u32) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return false,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if month == 0 || day == 0 || day > days[month as usize - 1] {
        return false;
    }
    let Some(time) = time else {
        return true;
    };
    let (clock, zone) = if zoned {
        match time.find(['Z', '+', '-']) {
            Some(i) => time.split_at(i),
            None => return false,
        }
    } else {
        (time, "")
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let hms: Vec<&str> = hms.split(':').collect();
    let clock_ok = hms.len() == 3 && num(hms[0], 23) && num(hms[1], 59) && num(hms[2], 59);
    let fraction_ok = match fraction {
        Some(f) => !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()),
        None => true,
    };
    let zone_ok = !zoned
        || zone == "Z"
        || (zone.len() == 6
            && zone.as_bytes()[3] == b':'
            && num(&zone[1..3], 99)
            && num(&zone[4..6], 99));
    clock_ok && fraction_ok && zone_ok
}

/// Go's `base64.StdEncoding.DecodeString` (newlines ignored, padding required).
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    if clean.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for (n, quad) in clean.chunks(4).enumerate() {
        let last = n + 1 == clean.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &quad[..4 - pad] {
            acc = (acc << 6) | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        // Bits beyond the data must be zero, as Go's strict decoder checks.
        if (pad == 1 && bytes[2] != 0) || (pad == 2 && bytes[1] != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// Bytes as Go's JSON encoder writes them: U+FFFD for each invalid byte.
fn lossy(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = &bad[1..];
            }
        }
    }
    out
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

/// Shortest decimal digits of a float that read back as it, and the
/// position of the decimal point (`0.DIGITS × 10^point`).
fn shortest(formatted_e: &str) -> (bool, Vec<u8>, i32) {
    let (neg, rest) = match formatted_e.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, formatted_e),
    };
    let (mantissa, exp) = rest.split_once('e').unwrap_or((rest, "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    if digits.iter().all(|&d| d == b'0') {
        return (neg, Vec::new(), 0);
    }
    (neg, digits, exp + 1)
}

/// Go's `%e` with all `digits`.
fn fmt_e(neg: bool, digits: &[u8], point: i32) -> String {
    let mut s = String::from(if neg { "-" } else { "" });
    s.push(digits.first().map_or('0', |&d| d as char));
    if digits.len() > 1 {
        s.push('.');
        s.extend(digits[1..].iter().map(|&d| d as char));
    }
    let exp = if digits.is_empty() { 0 } else { point - 1 };
    s.push_str(&format!(
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    ));
    s
}

/// Go's `%f` with `frac` digits after the point.
fn fmt_f(neg: bool, digits: &[u8], point: i32, frac: i32) -> String {
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .map_or('0', |&d| d as char)
    };
    let mut s = String::from(if neg { "-" } else { "" });
    if point > 0 {
        s.extend((0..point).map(digit));
    } else {
        s.push('0');
    }
    if frac > 0 {
        s.push('.');
        s.extend((0..frac).map(|i| digit(point + i)));
    }
    s
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`: how `sigs.k8s.io/yaml`
/// writes a float into a string field.
pub fn format_g32(f: f64) -> String {
    let f = f as f32;
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let (neg, digits, point) = shortest(&format!("{f:e}"));
    let exp = point - 1;
    if !digits.is_empty() && !(-4..6).contains(&exp) {
        fmt_e(neg, &digits, point)
    } else {
        fmt_f(neg, &digits, point, (digits.len() as i32 - point).max(0))
    }
}

/// How Go's `json.Marshal` writes a finite `float64`.
pub fn json_float(f: f64) -> String {
    let (neg, digits, point) = shortest(&format!("{f:e}"));
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = fmt_e(neg, &digits, point);
        // Go writes e-7, not e-07.
        match s.split_once("e-0") {
            Some((m, e)) => format!("{m}e-{e}"),
            None => s,
        }
    } else {
        fmt_f(neg, &digits, point, (digits.len() as i32 - point).max(0))
    }
}
