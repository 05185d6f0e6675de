//! The parser's events of the first YAML document, as a node graph (yaml.v2's
//! `parser.go`), and parse errors worded and numbered as yaml.v2 words them.
//!
//! Where libyaml-safer (libyaml 0.2.5) and yaml.v2 (an older libyaml) part:
//! yaml.v2 ends a plain scalar at `?` inside a flow collection, which then
//! fails to parse, so such a scalar is refused here too; two other corners
//! are refused where yaml.v2 accepts them, with the messages
//! [`TAG_FLOW_CHARACTER`] and [`COLON_BEFORE_FLOW_INDICATOR`].

use std::collections::HashMap;

use libyaml_safer::{
    ErrorKind, EventData, MappingStyle, Parser, ScalarStyle, Scanner, SequenceStyle, TokenData,
};

use super::YamlError;
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

/// What a tag may contain differs: yaml.v2 (an older libyaml) takes `,`,
/// `[` and `]` into a tag, libyaml-safer ends the tag there. Such a tag is
/// refused, with this message.
pub(crate) const TAG_FLOW_CHARACTER: &str = "a tag cannot contain ',', '[' or ']'";

/// libyaml refuses a plain scalar with `:` right before a flow indicator
/// inside a flow collection (`[a:]`), where yaml.v2 keeps the `:` in the
/// scalar. Such a scalar is refused, with this message.
pub(crate) const COLON_BEFORE_FLOW_INDICATOR: &str =
    "':' right before ',', '[', ']', '{', '}' or '?' in a flow collection";

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

/// A line break for YAML (and libyaml).
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The length of the byte order mark `text` starts with, if any.
fn bom_len(text: &str) -> usize {
    if text.starts_with('\u{feff}') {
        3
    } else {
        0
    }
}

/// Reads the events of the first document into nodes.
pub(super) fn compose(text: &str) -> Result<Nodes, YamlError> {
    refuse_tag_before_comma(text)?;
    if block_scalar_at_end(text) {
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

/// libyaml-safer 0.3.0 panics on a block scalar (`|`, `>`) whose last line
/// holds content and ends the text without a line break (`a: |\n  b`),
/// which libyaml reads as a scalar without a final line break. Such a text
/// is parsed with a line break added, and the scalar then loses the one it
/// gained, if any (it has no other final line break: breaks are kept only
/// before more content).
///
/// The last line holds content when it is longer than the scalar's
/// indentation, which is libyaml's: the header's indicator added to the
/// enclosing block's indentation, or else the deepest indentation of the
/// scalar's lines up to its first line of content.
fn block_scalar_at_end(text: &str) -> bool {
    if text.is_empty() || text.ends_with(is_break) {
        return false;
    }
    let bom = bom_len(text);
    let with_break = format!("{text}\n");
    let mut input = with_break.as_bytes();
    let mut scanner = Scanner::new();
    scanner.set_input_string(&mut input);
    // The columns of the open block collections (libyaml's indents).
    let mut indents: Vec<u64> = Vec::new();
    // The last block scalar: where it starts and ends, and its parent's indent.
    let mut last_block = None;
    for token in scanner.by_ref() {
        let Ok(token) = token else { break };
        match token.data {
            TokenData::BlockSequenceStart | TokenData::BlockMappingStart => {
                indents.push(token.start_mark.column);
            }
            TokenData::BlockEnd => {
                indents.pop();
            }
            TokenData::Scalar { style, .. } => {
                last_block =
                    matches!(style, ScalarStyle::Literal | ScalarStyle::Folded).then(|| {
                        (
                            token.start_mark.index,
                            token.end_mark.index,
                            indents.last().copied(),
                        )
                    });
            }
            TokenData::StreamEnd => break,
            _ => {}
        }
    }
    let Some((start, end, parent)) = last_block else {
        return false;
    };
    if end != (text.len() + 1 - bom) as u64 {
        return false;
    }
    let Some(scalar) = usize::try_from(start)
        .ok()
        .and_then(|s| text.get(s + bom..))
    else {
        return false;
    };
    let (header, body) = scalar.split_once(is_break).unwrap_or((scalar, ""));
    let explicit = header
        .chars()
        .skip(1)
        .take(2)
        .find_map(|c| c.to_digit(10))
        .filter(|&n| n > 0);
    // The last line (splitting "\r\n" in two gives an empty line more,
    // which changes neither the last line nor the deepest indentation).
    let Some(last) = body.split(is_break).next_back().map(|l| l.chars().count()) else {
        return false;
    };
    let parent = parent.map_or(-1, |p| i64::try_from(p).unwrap_or(i64::MAX));
    let indent = match explicit {
        Some(n) => i64::from(n) + parent.max(0),
        None => {
            let mut deepest = 0i64;
            for line in body.split(is_break) {
                let spaces = line.chars().take_while(|&c| c == ' ').count();
                deepest = deepest.max(i64::try_from(spaces).unwrap_or(i64::MAX));
                if line.chars().any(|c| c != ' ') {
                    break;
                }
            }
            deepest.max(parent + 1).max(1)
        }
    };
    i64::try_from(last).unwrap_or(i64::MAX) > indent
}

/// libyaml-safer 0.3.0 panics on a tag followed by `,` (`[!a, b]`), where
/// yaml.v2 takes the `,` into the tag; such a tag is refused here before the
/// parser sees it.
///
/// Only a `,` after a run of tag characters that starts with `!` can end a
/// tag. For each such `,`, in order, the text up to it is scanned on its
/// own, with a line break after it: the scanner meets the same tokens there
/// as in the whole text, and a tag ending at the `,` ends at the line break
/// instead, cleanly. A scan of a prefix cannot panic on a `,` before its
/// end: each was checked already.
///
/// The scanner holds tokens back while the token before them may still be
/// a mapping key; in a block mapping a key in the mapping's column must be
/// one, and when the line break shows it is not, the scan fails with
/// `could not find expected ':'` before the tag comes out. The text is then
/// scanned again from that would-be key on: at the start of a text, a key
/// is never required, and the tokens come out.
fn refuse_tag_before_comma(text: &str) -> Result<(), YamlError> {
    let mut scanned = 0usize;
    for comma in tag_comma_candidates(text) {
        scanned = scanned.saturating_add(comma);
        if scanned > MAX_TAG_SCAN {
            return Err(YamlError(format!(
                "document too large: more than {MAX_TAG_SCAN} bytes to scan for tags before ','"
            )));
        }
        let found = match scan_prefix(text, 0, comma) {
            PrefixScan::Tag(line) => Some(line),
            PrefixScan::KeyRequired { key } => match scan_prefix(text, key, comma) {
                PrefixScan::Tag(line) => Some(line),
                _ => None,
            },
            PrefixScan::NoTag => None,
        };
        if let Some(line) = found {
            return Err(YamlError(format!("line {line}: {TAG_FLOW_CHARACTER}")));
        }
    }
    Ok(())
}

/// The most bytes [`refuse_tag_before_comma`] scans for one text (each
/// candidate `,` costs the text before it, about 20 ms a MiB); past it the
/// text is refused.
const MAX_TAG_SCAN: usize = 8 << 20;

/// What the scan of `text[from..comma]` found.
enum PrefixScan {
    /// A tag ending at the `,`, on this (1-based) line.
    Tag(u64),
    /// No tag ends there, or the whole text fails before it.
    NoTag,
    /// The scan failed at its end on a would-be key starting at this offset.
    KeyRequired { key: usize },
}

fn scan_prefix(text: &str, from: usize, comma: usize) -> PrefixScan {
    let Some(part) = text.get(from..comma) else {
        return PrefixScan::NoTag;
    };
    let prefix = format!("{part}\n");
    // The scanner's offsets leave out a byte order mark.
    let bom = if from == 0 { bom_len(text) } else { 0 };
    let end = (comma - from - bom) as u64;
    let lines_before = text[..from].chars().filter(|&c| c == '\n').count() as u64;
    let mut input = prefix.as_bytes();
    let mut scanner = Scanner::new();
    scanner.set_input_string(&mut input);
    for token in scanner.by_ref() {
        match token {
            Ok(token) => match token.data {
                TokenData::Tag { .. } if token.end_mark.index == end => {
                    return PrefixScan::Tag(lines_before + token.end_mark.line + 1);
                }
                TokenData::StreamEnd => break,
                _ => {}
            },
            Err(e) => {
                // Failing before the end, the whole text fails there too.
                let at_end = e.problem_mark().is_some_and(|m| m.index >= end);
                let key = e.context_mark().and_then(|m| usize::try_from(m.index).ok());
                return match key {
                    Some(key)
                        if at_end && from == 0 && e.problem() == "could not find expected ':'" =>
                    {
                        PrefixScan::KeyRequired { key: key + bom }
                    }
                    _ => PrefixScan::NoTag,
                };
            }
        }
    }
    PrefixScan::NoTag
}

/// The offsets of the `,` that may end a tag: after a run of tag characters
/// that holds a `!`, or after a verbatim tag (`!<tag:yaml.org,2002:str>`).
fn tag_comma_candidates(text: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = text.as_bytes();
    let tag_char = |c: u8| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_'
                    | b';'
                    | b'/'
                    | b'?'
                    | b':'
                    | b'@'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b'.'
                    | b'%'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
                    | b'('
                    | b')'
            )
    };
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    bytes.iter().enumerate().filter_map(move |(i, &b)| {
        if b != b',' || i == 0 {
            return None;
        }
        if bytes[i - 1] == b'>' {
            let word = bytes[..i].iter().rev().take_while(|&&c| !blank(c)).count();
            if bytes[i - word..i].windows(2).any(|w| w == b"!<") {
                return Some(i);
            }
        }
        let run = bytes[..i]
            .iter()
            .rev()
            .take_while(|&&c| tag_char(c))
            .count();
        bytes[i - run..i].contains(&b'!').then_some(i)
    })
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
        assert_eq!(scalar("a: |\n  b"), "b");
        assert_eq!(scalar("a: |\n  b\n"), "b\n");
        assert_eq!(scalar(">+\n  bb\n  c"), "bb c");
        assert_eq!(scalar("a: |-\n  b"), "b");
        assert_eq!(scalar("a: |+\n  x\n\n  "), "x\n\n");
        assert_eq!(scalar("a: |\n  b\n  "), "b\n");
        assert_eq!(scalar("\u{feff}a: >\n  b\n  c"), "b c");
        assert_eq!(scalar("- |\n  x\n- y"), "y");
        // In a later document: the first is read as it is.
        assert_eq!(scalar("a: 1\n--- |\n  x"), "1");
        // Spaces past the indentation are content.
        assert_eq!(scalar("- |2\n    "), "  ");
        assert_eq!(scalar("- |2\n  a\n    "), "a\n  ");
        assert_eq!(scalar("a: |\n  b\n   "), "b\n ");
        assert_eq!(scalar("a: |1\n  x"), " x");
        assert_eq!(scalar("- >-\n\n   x"), "\nx");
        assert_eq!(scalar("- |\n  a\n  \tb"), "a\n\tb");
        assert_eq!(scalar("|+\u{85}  a:b"), "a:b");
        assert_eq!(scalar("a: |\r\n  b\r\n  c"), "b\nc");
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
        assert_eq!(error("a: b\n- c"), "line 1: did not find expected key");
        assert_eq!(
            error("a:\n\t- b"),
            "line 2: found character that cannot start any token"
        );
        assert_eq!(error("'a"), "found unexpected end of stream");
        assert_eq!(error("[[["), "line 1: did not find expected node content");
        assert_eq!(
            error("a: b: c"),
            "mapping values are not allowed in this context"
        );
        assert_eq!(
            error("%YAML 1.2\n---\na: 1"),
            "found incompatible YAML document"
        );
    }
}
