//! Inputs on which libyaml-safer 0.3.0 panics, found before the parser
//! sees them: a tag right before `,` (refused, as the differences from Go
//! say), and a block scalar whose content ends the text (read as libyaml
//! reads it). The third, a `\\` ending a double-quoted scalar, is handled
//! in [`compose`](super::compose::compose) by parsing the text with an
//! unknown escape in its place.
//!
//! Each check scans the text with libyaml-safer's scanner, on a text the
//! scanner cannot panic on, and learns from the tokens where the parser
//! would.

use libyaml_safer::{ScalarStyle, Scanner, TokenData};

use super::{YamlError, TAG_FLOW_CHARACTER};

/// A line break for YAML (and libyaml).
pub(super) fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The length of the byte order mark `text` starts with, if any.
pub(super) fn bom_len(text: &str) -> usize {
    if text.starts_with('\u{feff}') {
        3
    } else {
        0
    }
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
pub(super) fn block_scalar_at_end(text: &str) -> bool {
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
pub(super) fn refuse_tag_before_comma(text: &str) -> Result<(), YamlError> {
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
