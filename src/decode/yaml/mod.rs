//! YAML text to the value go-yaml v2 (`gopkg.in/yaml.v2` v2.4.0) decodes it
//! into when the target is a Go `interface{}`, the first step of
//! `sigs.k8s.io/yaml`.
//!
//! The scanner and parser are `libyaml-safer`, a port of the libyaml that
//! yaml.v2 is itself a port of ([`compose`]). On its events this module
//! applies yaml.v2's rules: anchors and aliases, merge keys (`<<`), tags
//! (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!binary`,
//! `!!timestamp`; others leave a string), the YAML 1.1 resolution of plain
//! scalars ([`resolve`]), and a later duplicate key replacing an earlier one.

mod compose;
mod guards;
mod resolve;

use std::rc::Rc;

use super::format::{base64, lossy};
use super::limits::Budget;
use compose::{Kind, Nodes};

/// The prefix of the standard YAML tags.
const TAG: &str = "tag:yaml.org,2002:";

/// A value as yaml.v2 decodes it into a Go `interface{}`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Go {
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
    /// `string`; shared, as aliases repeat it
    Str(Rc<str>),
    /// `[]interface{}`
    Seq(Vec<Go>),
    /// `map[interface{}]interface{}`, in the order keys first appeared
    Map(Vec<(Go, Go)>),
}

/// What a tag may contain differs: yaml.v2 (an older libyaml) takes `,`,
/// `[` and `]` into a tag, libyaml-safer ends the tag there. Such a tag is
/// refused, with this message.
pub(crate) const TAG_FLOW_CHARACTER: &str = "a tag cannot contain ',', '[' or ']'";

/// libyaml refuses a plain scalar with `:` right before a flow indicator
/// inside a flow collection (`[a:]`), where yaml.v2 keeps the `:` in the
/// scalar. Such a scalar is refused, with this message.
pub(crate) const COLON_BEFORE_FLOW_INDICATOR: &str =
    "':' right before ',', '[', ']', '{', '}' or '?' in a flow collection";

/// A yaml.v2 error: the text after `yaml: `.
#[derive(Debug)]
pub(crate) struct YamlError(pub String);

/// Decodes the first YAML document of `text` as yaml.v2 does into an
/// `interface{}` (`Nil` for an empty stream).
pub(crate) fn decode(text: &str, budget: &mut Budget) -> Result<Go, YamlError> {
    let nodes = compose::compose(text)?;
    let Some(root) = nodes.root else {
        return Ok(Go::Nil);
    };
    let mut d = Decoder {
        nodes: &nodes,
        in_alias: Vec::new(),
        decodes: 1,
        alias_decodes: 0,
        depth: 0,
        budget,
    };
    d.unmarshal(root)
}

struct Decoder<'a> {
    nodes: &'a Nodes,
    /// Aliases being expanded, to refuse one that contains itself.
    in_alias: Vec<usize>,
    decodes: u64,
    alias_decodes: u64,
    depth: usize,
    budget: &'a mut Budget,
}

impl Decoder<'_> {
    fn unmarshal(&mut self, id: usize) -> Result<Go, YamlError> {
        self.count()?;
        if self.depth >= super::MAX_DEPTH {
            return Err(YamlError(format!(
                "nesting deeper than {} levels (aliases included)",
                super::MAX_DEPTH
            )));
        }
        self.depth += 1;
        let result = self.node(id);
        self.depth -= 1;
        result
    }

    /// yaml.v2's guard against alias bombs ("billion laughs").
    fn count(&mut self) -> Result<(), YamlError> {
        self.decodes += 1;
        if !self.in_alias.is_empty() {
            self.alias_decodes += 1;
        }
        let (low, high) = (400_000.0, 4_000_000.0);
        #[allow(clippy::cast_precision_loss)]
        let n = self.decodes as f64;
        let allowed = if n <= low {
            0.99
        } else if n >= high {
            0.10
        } else {
            0.99 - 0.89 * ((n - low) / (high - low))
        };
        #[allow(clippy::cast_precision_loss)]
        let alias_share = self.alias_decodes as f64 / n;
        if self.alias_decodes > 100 && self.decodes > 1000 && alias_share > allowed {
            return Err(YamlError("document contains excessive aliasing".into()));
        }
        Ok(())
    }

    fn node(&mut self, id: usize) -> Result<Go, YamlError> {
        let node = &self.nodes.nodes[id];
        if let Kind::Alias { target, .. } = node.kind {
            if self.in_alias.contains(&id) {
                return Err(YamlError(format!(
                    "anchor '{}' value contains itself",
                    node.alias_name()
                )));
            }
            self.in_alias.push(id);
            let result = self.unmarshal(target);
            self.in_alias.pop();
            return result;
        }
        self.budget.value().map_err(YamlError)?;
        match &node.kind {
            Kind::Scalar {
                value,
                tag,
                implicit,
            } => {
                let go = scalar(value, tag, *implicit)?;
                if let Go::Str(s) = &go {
                    self.budget.text(s.len()).map_err(YamlError)?;
                }
                Ok(go)
            }
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
            Kind::Alias { .. } => Err(YamlError("an alias of an alias".into())),
        }
    }

    /// Adds a mapping's entries to `map`, merges included, in document order.
    fn mapping(&mut self, children: &[usize], map: &mut Vec<(Go, Go)>) -> Result<(), YamlError> {
        for pair in children.chunks(2) {
            let [key, value] = *pair else {
                return Err(YamlError("a mapping key has no value".into()));
            };
            if self.is_merge(key) {
                self.merge(value, map)?;
                continue;
            }
            let k = self.unmarshal(key)?;
            if matches!(k, Go::Seq(_) | Go::Map(_)) {
                return Err(YamlError(format!("invalid map key: {}", go_syntax(&k))));
            }
            let v = self.unmarshal(value)?;
            insert(map, k, v);
        }
        Ok(())
    }

    fn is_merge(&self, id: usize) -> bool {
        matches!(&self.nodes.nodes[id].kind,
            Kind::Scalar { value, tag, implicit }
                if value == "<<" && (*implicit || tag.strip_prefix(TAG) == Some("merge")))
    }

    fn merge(&mut self, id: usize, map: &mut Vec<(Go, Go)>) -> Result<(), YamlError> {
        let want_map =
            || YamlError("map merge requires map or sequence of maps as the value".into());
        let is_mapping = |d: &Self, id: usize| match d.nodes.nodes[id].kind {
            Kind::Map(_) => true,
            Kind::Alias { target, .. } => matches!(d.nodes.nodes[target].kind, Kind::Map(_)),
            _ => false,
        };
        match &self.nodes.nodes[id].kind {
            Kind::Map(_) | Kind::Alias { .. } => {
                if !is_mapping(self, id) {
                    return Err(want_map());
                }
                self.merge_one(id, map)
            }
            Kind::Seq(children) => {
                // Earlier maps take precedence: merge them last.
                for &c in children.iter().rev() {
                    if !is_mapping(self, c) {
                        return Err(want_map());
                    }
                    self.merge_one(c, map)?;
                }
                Ok(())
            }
            Kind::Scalar { .. } => Err(want_map()),
        }
    }

    /// Decodes a mapping (or an alias of one) into an existing map.
    fn merge_one(&mut self, id: usize, map: &mut Vec<(Go, Go)>) -> Result<(), YamlError> {
        self.count()?;
        let node = &self.nodes.nodes[id];
        let Kind::Alias { target, .. } = node.kind else {
            return self.merge_into(id, map);
        };
        if self.in_alias.contains(&id) {
            return Err(YamlError(format!(
                "anchor '{}' value contains itself",
                node.alias_name()
            )));
        }
        self.in_alias.push(id);
        let result = self.count().and_then(|()| self.merge_into(target, map));
        self.in_alias.pop();
        result
    }

    fn merge_into(&mut self, target: usize, map: &mut Vec<(Go, Go)>) -> Result<(), YamlError> {
        let Kind::Map(children) = &self.nodes.nodes[target].kind else {
            return Err(YamlError("map merge requires a map".into()));
        };
        if self.depth >= super::MAX_DEPTH {
            return Err(YamlError(format!(
                "nesting deeper than {} levels",
                super::MAX_DEPTH
            )));
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

fn scalar(value: &str, tag: &str, implicit: bool) -> Result<Go, YamlError> {
    if tag.is_empty() && !implicit {
        return Ok(Go::Str(value.into()));
    }
    let short = tag.strip_prefix(TAG);
    if short == Some("binary") {
        let bytes = base64(value)
            .ok_or_else(|| YamlError("!!binary value contains invalid base64 data".into()))?;
        return Ok(Go::Str(lossy(&bytes).into()));
    }
    let resolvable = tag.is_empty()
        || matches!(
            short,
            Some("str" | "bool" | "int" | "float" | "null" | "timestamp")
        );
    if !resolvable {
        return Ok(Go::Str(value.into()));
    }
    let (rtag, resolved) = resolve::resolve(value, short);
    match (short, rtag) {
        (None | Some("str"), _) => Ok(resolved),
        (Some(want), got) if want == got => Ok(resolved),
        (Some("float"), "int") => match resolved {
            #[allow(clippy::cast_precision_loss)]
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

fn cannot(value: &str, got: &str, want: &str) -> YamlError {
    YamlError(format!("cannot decode !!{got} `{value}` as a !!{want}"))
}

/// Go's `%#v` of a decoded value, for the messages that show one.
pub(crate) fn go_syntax(v: &Go) -> String {
    match v {
        Go::Nil => "interface {}(nil)".into(),
        Go::Bool(b) => b.to_string(),
        Go::Int(i) => i.to_string(),
        Go::Uint(u) => format!("0x{u:x}"),
        Go::Float(f) => super::format::format_g64(*f),
        Go::Str(s) => format!("{:?}", &**s),
        Go::Seq(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(go_syntax).collect::<Vec<_>>().join(", ")
        ),
        Go::Map(entries) => {
            // Go prints a map's keys sorted: by type (in the order a Go
            // binary lays its types out: strings, integers, floats,
            // booleans), then by value.
            let mut sorted: Vec<&(Go, Go)> = entries.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| key_order(a, b));
            format!(
                "map[interface {{}}]interface {{}}{{{}}}",
                sorted
                    .iter()
                    .map(|(k, v)| format!("{}:{}", go_syntax(k), go_syntax(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// The order Go's `fmt` prints two `interface{}` map keys in.
fn key_order(a: &Go, b: &Go) -> std::cmp::Ordering {
    let rank = |v: &Go| match v {
        Go::Str(_) => 0,
        Go::Int(_) | Go::Uint(_) => 1,
        Go::Float(_) => 2,
        Go::Bool(_) => 3,
        _ => 4,
    };
    match (a, b) {
        (Go::Str(x), Go::Str(y)) => x.cmp(y),
        (Go::Int(x), Go::Int(y)) => x.cmp(y),
        (Go::Uint(x), Go::Uint(y)) => x.cmp(y),
        (Go::Float(x), Go::Float(y)) => x.total_cmp(y),
        (Go::Bool(x), Go::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}
