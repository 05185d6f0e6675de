//! The parser's events of the first YAML document, as a node graph (yaml.v2's
//! `parser.go`), and parse errors worded and numbered as yaml.v2 words them.
//!
//! The inputs that make libyaml-safer panic are steered around first
//! ([`guards`](super::guards)).
//!
//! Where libyaml-safer (libyaml 0.2.5) and yaml.v2 (an older libyaml) part:
//! yaml.v2 ends a plain scalar at `?` inside a flow collection, which then
//! fails to parse, so such a scalar is refused here too; two other corners
//! are refused where yaml.v2 accepts them, with the messages
//! [`TAG_FLOW_CHARACTER`](super::TAG_FLOW_CHARACTER) and [`COLON_BEFORE_FLOW_INDICATOR`](super::COLON_BEFORE_FLOW_INDICATOR).

use std::collections::HashMap;

use libyaml_safer::{ErrorKind, EventData, MappingStyle, Parser, ScalarStyle, SequenceStyle};

use super::guards::{self, bom_len};
use super::{YamlError, COLON_BEFORE_FLOW_INDICATOR, TAG_FLOW_CHARACTER};
use crate::decode::MAX_DEPTH;

/// A node of the document.
pub(super) struct Node {
    pub kind: Kind,
}

pub(super) enum Kind {
    Scalar {
        value: String,
        tag: String,
        /// Plain, or tagged `!`: yaml.v2 resolves its type from its text.
        implicit: bool,
    },
    Seq(Vec<usize>),
    Map(Vec<usize>),
    Alias {
        target: usize,
        name: String,
    },
}

impl Node {
    /// The anchor an alias names (empty for other nodes).
    pub fn alias_name(&self) -> &str {
        match &self.kind {
            Kind::Alias { name, .. } => name,
            _ => "",
        }
    }
}

pub(super) struct Nodes {
    pub nodes: Vec<Node>,
    pub root: Option<usize>,
    /// The block scalar that ends at `block_end` (see [`compose`]).
    pub last_block: Option<usize>,
}

/// yaml.v2's `line N: ` prefix: the problem's line for parser errors
/// (0-based, as yaml.v2 prints it), one more for scanner errors, else the
/// context's line, and no prefix on line 0.
fn where_(e: &libyaml_safer::Error) -> String {
    let problem = e.problem_mark().map_or(0, |m| m.line);
    let context = e.context_mark().map_or(0, |m| m.line);
    let line = if problem != 0 {
        problem + u64::from(e.kind() == ErrorKind::Scanner)
    } else {
        context
    };
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}

fn parse_error(text: &str, e: &libyaml_safer::Error) -> YamlError {
    let Some(mark) = e.problem_mark() else {
        return YamlError(e.problem().to_string());
    };
    let from = |mark: Option<libyaml_safer::Mark>| {
        mark.and_then(|m| usize::try_from(m.index).ok())
            .and_then(|i| text.get(i + bom_len(text)..))
            .unwrap_or_default()
    };
    // The tag, from its start to the next blank.
    let tag = from(e.context_mark())
        .split([' ', '\t', '\n', '\r'])
        .next()
        .unwrap_or_default();
    if e.context().is_some_and(|c| c.ends_with("a tag"))
        && (from(Some(mark)).starts_with([',', '[', ']']) || tag.contains([',', '[', ']']))
    {
        return YamlError(format!("line {}: {TAG_FLOW_CHARACTER}", mark.line + 1));
    }
    if e.problem() == "found unexpected ':'" {
        return YamlError(format!(
            "line {}: {COLON_BEFORE_FLOW_INDICATOR}",
            mark.line + 1
        ));
    }
    YamlError(format!("{}{}", where_(e), e.problem()))
}

/// Reads the events of the first document into nodes.
pub(super) fn compose(text: &str) -> Result<Nodes, YamlError> {
    guards::refuse_tag_before_comma(text)?;
    if guards::block_scalar_at_end(text) {
        let mut nodes = compose_events(&format!("{text}\n"), Some(text.len() + 1))?;
        if let Some(id) = nodes.last_block {
            // With `-` (strip) it gained none.
            if let Kind::Scalar { value, .. } = &mut nodes.nodes[id].kind {
                if value.ends_with('\n') {
                    value.pop();
                }
            }
        }
        return Ok(nodes);
    }
    if text.ends_with('\\') {
        // libyaml-safer 0.3.0 panics on a `\` that ends the text inside a
        // double-quoted scalar, where libyaml reads an unknown escape: so is
        // `\q`, with the same error at the same place.
        if let Err(e) = compose_events(&format!("{text}q"), None) {
            if e.0.ends_with("found unknown escape character") {
                return Err(e);
            }
        }
    }
    compose_events(text, None)
}

/// Reads the first document of `text`; notes the block scalar whose token
/// ends at byte `block_end`, if any.
fn compose_events(text: &str, block_end: Option<usize>) -> Result<Nodes, YamlError> {
    let bytes = if text.is_empty() { "\n" } else { text };
    let mut input = bytes.as_bytes();
    let mut parser = Parser::new();
    parser.set_input_string(&mut input);
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors: HashMap<String, usize> = HashMap::new();
    // Open collections, and whether each is in flow style.
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut root = None;
    let mut last_block = None;
    let block_end = block_end.map(|end| (end - bom_len(text)) as u64);
    loop {
        let event = parser.parse().map_err(|e| parse_error(bytes, &e))?;
        let line = event.start_mark.line;
        let ends_at_block_end = Some(event.end_mark.index) == block_end;
        let mut flow = false;
        let (anchor, kind) = match event.data {
            EventData::StreamStart { .. } => continue,
            EventData::StreamEnd | EventData::DocumentEnd { .. } => break,
            EventData::DocumentStart {
                version_directive, ..
            } => {
                if let Some(v) = version_directive {
                    if (v.major, v.minor) != (1, 1) {
                        let at = if line == 0 {
                            String::new()
                        } else {
                            format!("line {line}: ")
                        };
                        return Err(YamlError(format!("{at}found incompatible YAML document")));
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
                    return Err(YamlError(format!("unknown anchor '{anchor}' referenced")));
                };
                (
                    None,
                    Kind::Alias {
                        target,
                        name: anchor,
                    },
                )
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
                if let Some(&(parent, true)) = open.last() {
                    if style == ScalarStyle::Plain && value.contains('?') {
                        let at = if line == 0 {
                            String::new()
                        } else {
                            format!("line {line}: ")
                        };
                        let close = match nodes[parent].kind {
                            Kind::Map(_) => '}',
                            _ => ']',
                        };
                        return Err(YamlError(format!(
                            "{at}did not find expected ',' or '{close}'"
                        )));
                    }
                }
                if ends_at_block_end && matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                {
                    last_block = Some(nodes.len());
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
        nodes.push(Node { kind });
        if let Some(anchor) = anchor {
            anchors.insert(anchor, id);
        }
        match open.last().map(|&(p, _)| &mut nodes[p].kind) {
            Some(Kind::Seq(children) | Kind::Map(children)) => children.push(id),
            _ => root = Some(id),
        }
        if is_collection {
            if open.len() >= MAX_DEPTH {
                return Err(YamlError(format!(
                    "line {}: nesting deeper than {MAX_DEPTH} levels",
                    line + 1
                )));
            }
            open.push((id, flow));
        }
    }
    Ok(Nodes {
        nodes,
        root,
        last_block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match compose(text) {
            Ok(_) => panic!("{text:?} parsed"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_tag_before_a_comma_is_refused_without_reaching_the_parser() {
        for text in [
            "[!a, b]",
            "{a: !x, b: 1}",
            "[!!str, b]",
            "- [1, !t,]",
            "\u{feff}[!a, b]",
        ] {
            assert!(error(text).contains(TAG_FLOW_CHARACTER), "{text:?}");
        }
        // A verbatim tag.
        assert!(error("[!<tag:yaml.org,2002:int>, 1]").contains(TAG_FLOW_CHARACTER));
        assert!(compose("[!<tag:yaml.org,2002:int> 1, 2]").is_ok());
        // Held back by a would-be key in the mapping's column.
        assert!(error("name: a\ntags:\n[!c'x',\n  y]\n").contains(TAG_FLOW_CHARACTER));
        assert!(error("---\ntags:\n&a1 [!p, 07]\n").contains(TAG_FLOW_CHARACTER));
        assert!(error("- a: b\n  minor:\n  &a2 [!1470, &a3 4153]\n").contains(TAG_FLOW_CHARACTER));
        // After a candidate that is none, in a block scalar cut short.
        assert!(error("a: 'x !y, z'\nb: [!t, u]").contains(TAG_FLOW_CHARACTER));
        assert!(error("- >-\n  /d!e,v\n- [!a, b]").contains(TAG_FLOW_CHARACTER));
        // Not a tag: in quotes, in a comment, inside a plain scalar.
        for text in [
            "a: \"x !y, z\"",
            "a: b # !c, d",
            "[x!y, z]",
            "a: 'it!, is'",
            "- >-\n    /d!e,v/x\n- 0x",
        ] {
            assert!(compose(text).is_ok(), "{text:?}");
        }
        // In block context libyaml refuses it cleanly; still our message.
        assert!(error("- !a,b").contains(TAG_FLOW_CHARACTER));
        assert!(error("- !![int 08\n").contains(TAG_FLOW_CHARACTER));
        assert!(error("[!![a]]").contains(TAG_FLOW_CHARACTER));
    }

    fn scalar(text: &str) -> String {
        let nodes = compose(text).unwrap_or_else(|e| panic!("{text:?}: {}", e.0));
        let found = nodes.nodes.iter().rev().find_map(|n| match &n.kind {
            Kind::Scalar { value, .. } => Some(value.clone()),
            _ => None,
        });
        found.unwrap_or_else(|| panic!("{text:?}: no scalar"))
    }

    #[test]
    fn a_block_scalar_may_end_the_text_without_a_line_break() {
        crate::decode::assert_cases(
            scalar,
            &[
                ("a: |\n  b", "b"),
                ("a: |\n  b\n", "b\n"),
                (">+\n  bb\n  c", "bb c"),
                ("a: |-\n  b", "b"),
                ("a: |+\n  x\n\n  ", "x\n\n"),
                ("a: |\n  b\n  ", "b\n"),
                ("\u{feff}a: >\n  b\n  c", "b c"),
                ("- |\n  x\n- y", "y"),
                // In a later document: the first is read as it is.
                ("a: 1\n--- |\n  x", "1"),
                // Spaces past the indentation are content.
                ("- |2\n    ", "  "),
                ("- |2\n  a\n    ", "a\n  "),
                ("a: |\n  b\n   ", "b\n "),
                ("a: |1\n  x", " x"),
                ("- >-\n\n   x", "\nx"),
                ("- |\n  a\n  \tb", "a\n\tb"),
                ("|+\u{85}  a:b", "a:b"),
                ("a: |\r\n  b\r\n  c", "b\nc"),
            ],
        );
    }

    #[test]
    fn a_backslash_ending_a_double_quoted_scalar_is_an_unknown_escape() {
        assert_eq!(error("\"abc\\"), "found unknown escape character");
        assert_eq!(error("a: \"x\\"), "found unknown escape character");
        assert_eq!(scalar("a: x\\"), "x\\");
        assert_eq!(scalar("a: 'x\\'"), "x\\");
    }

    #[test]
    fn errors_carry_yaml_v2_line_numbers() {
        crate::decode::assert_cases(
            error,
            &[
                ("a: b\n- c", "line 1: did not find expected key"),
                (
                    "a:\n\t- b",
                    "line 2: found character that cannot start any token",
                ),
                ("'a", "found unexpected end of stream"),
                ("[[[", "line 1: did not find expected node content"),
                ("a: b: c", "mapping values are not allowed in this context"),
                ("%YAML 1.2\n---\na: 1", "found incompatible YAML document"),
            ],
        );
    }
}
