//! JSON text read as Go's `encoding/json` reads it: strict syntax, its error
//! messages (`invalid character 'x' looking for beginning of value`,
//! `unexpected end of JSON input`), invalid UTF-8 and lone surrogates in
//! strings turned into U+FFFD, duplicate keys kept in order.

use std::rc::Rc;

use super::node::{Counter, Entry, Node, NodeKind, Num};
use super::MAX_DEPTH;

/// Parses `text` into the document tree, or fails with Go's syntax error.
pub(crate) fn parse(text: &[u8]) -> Result<Node, String> {
    let mut r = Reader {
        s: text,
        pos: 0,
        counter: Counter::default(),
    };
    // Open containers: an array, or an object with the key being read.
    enum Open {
        Array(u32, Vec<Node>),
        Object(u32, Vec<Entry>, Rc<str>, u32),
    }
    let mut stack: Vec<Open> = Vec::new();
    loop {
        r.skip_ws();
        let pos = r.counter.next();
        let mut value = match r.peek() {
            Some(b'[' | b'{') if stack.len() >= MAX_DEPTH => {
                return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
            }
            Some(b'[') => {
                if r.open_empty(b']') {
                    Node::new(pos, NodeKind::Seq(Vec::new()))
                } else {
                    stack.push(Open::Array(pos, Vec::new()));
                    continue;
                }
            }
            Some(b'{') => {
                if r.open_empty(b'}') {
                    Node::new(pos, NodeKind::Map(Vec::new()))
                } else {
                    let key_pos = r.counter.next();
                    let key = r.key()?;
                    stack.push(Open::Object(pos, Vec::new(), key, key_pos));
                    continue;
                }
            }
            Some(b'"') => Node::new(pos, NodeKind::Str(r.string()?.into())),
            Some(b't') => Node::new(pos, r.literal("true", NodeKind::Bool(true))?),
            Some(b'f') => Node::new(pos, r.literal("false", NodeKind::Bool(false))?),
            Some(b'n') => Node::new(pos, r.literal("null", NodeKind::Null)?),
            Some(b'-' | b'0'..=b'9') => Node::new(pos, r.number()?),
            Some(c) => return Err(invalid(c, "looking for beginning of value")),
            None => return Err(EOF.into()),
        };
        // Close every container that ends after this value.
        loop {
            r.skip_ws();
            match stack.last_mut() {
                None => {
                    return match r.peek() {
                        None => Ok(value),
                        Some(c) => Err(invalid(c, "after top-level value")),
                    };
                }
                Some(Open::Array(_, items)) => {
                    items.push(value);
                    match r.peek() {
                        Some(b',') => {
                            r.pos += 1;
                            break;
                        }
                        Some(b']') => r.pos += 1,
                        Some(c) => return Err(invalid(c, "after array element")),
                        None => return Err(EOF.into()),
                    }
                }
                Some(Open::Object(_, entries, key, key_pos)) => {
                    entries.push(Entry {
                        key: std::mem::replace(key, "".into()),
                        pos: *key_pos,
                        value,
                    });
                    match r.peek() {
                        Some(b',') => {
                            r.pos += 1;
                            r.skip_ws();
                            *key_pos = r.counter.next();
                            *key = r.key()?;
                            break;
                        }
                        Some(b'}') => r.pos += 1,
                        Some(c) => return Err(invalid(c, "after object key:value pair")),
                        None => return Err(EOF.into()),
                    }
                }
            }
            value = match stack.pop() {
                Some(Open::Array(pos, items)) => Node::new(pos, NodeKind::Seq(items)),
                Some(Open::Object(pos, entries, _, _)) => Node::new(pos, NodeKind::Map(entries)),
                None => return Err(EOF.into()),
            };
        }
    }
}

const EOF: &str = "unexpected end of JSON input";

/// Go's `invalid character 'x' <context>`.
fn invalid(c: u8, context: &str) -> String {
    format!("invalid character {} {context}", quote_char(c))
}

/// Go's `quoteChar`: a byte as Go quotes it in syntax errors.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        0x07 => r"'\a'".into(),
        0x08 => r"'\b'".into(),
        0x0c => r"'\f'".into(),
        b'\n' => r"'\n'".into(),
        b'\r' => r"'\r'".into(),
        b'\t' => r"'\t'".into(),
        0x0b => r"'\v'".into(),
        b'\\' => r"'\\'".into(),
        0x00..=0x1f | 0x7f => format!("'\\x{c:02x}'"),
        0x80..=0x9f | 0xad => format!("'\\u{:04x}'", u32::from(c)),
        _ => format!("'{}'", char::from(c)),
    }
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
    counter: Counter,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Steps over an opening bracket and the space after it; true (with
    /// `close` taken too) for an empty array or object.
    fn open_empty(&mut self, close: u8) -> bool {
        self.pos += 1;
        self.skip_ws();
        self.eat(close)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, kind: NodeKind) -> Result<NodeKind, String> {
        for (i, want) in word.bytes().enumerate() {
            match self.peek() {
                Some(c) if c == want => self.pos += 1,
                Some(c) => {
                    return Err(invalid(
                        c,
                        &format!("in literal {word} (expecting {})", quote_char(want)),
                    ))
                }
                None if i > 0 => return Err(EOF.into()),
                None => return Err(EOF.into()),
            }
        }
        Ok(kind)
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<Rc<str>, String> {
        match self.peek() {
            Some(b'"') => {}
            Some(c) => return Err(invalid(c, "looking for beginning of object key string")),
            None => return Err(EOF.into()),
        }
        let key = self.string()?;
        self.skip_ws();
        match self.peek() {
            Some(b':') => self.pos += 1,
            Some(c) => return Err(invalid(c, "after object key")),
            None => return Err(EOF.into()),
        }
        Ok(key.into())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<NodeKind, String> {
        let start = self.pos;
        self.eat(b'-');
        let need_digit = |r: &Self, context: &str| match r.peek() {
            Some(c) => invalid(c, context),
            None => EOF.into(),
        };
        if !self.eat(b'0') && self.digits() == 0 {
            return Err(need_digit(self, "in numeric literal"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(need_digit(self, "after decimal point in numeric literal"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(need_digit(self, "in exponent of numeric literal"));
            }
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]);
        Ok(NodeKind::Num(Num::Text(text.into())))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.s.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(EOF.into());
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                0..=0x1f => return Err(invalid(b, "in string literal")),
                b'\\' => {
                    let escaped = self.s.get(self.pos + 1).copied();
                    self.pos += 2;
                    let c = match escaped {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        Some(c) => return Err(invalid(c, "in string escape code")),
                        None => return Err(EOF.into()),
                    };
                    out.push(c);
                }
                _ => {
                    // One character, or U+FFFD for each byte of invalid UTF-8.
                    let rest = &self.s[self.pos..];
                    let len = utf8_len(rest);
                    match std::str::from_utf8(&rest[..len]) {
                        Ok(s) if len > 0 => out.push_str(s),
                        _ => {
                            out.push('\u{FFFD}');
                            self.pos += 1;
                            continue;
                        }
                    }
                    self.pos += len;
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape (and of a second one, for a
    /// surrogate pair); `pos` is after the `u`.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let Some(hi) = self.hex4(self.pos) else {
            let bad = self.s[self.pos..]
                .iter()
                .take(4)
                .find(|b| !b.is_ascii_hexdigit());
            return Err(match bad {
                Some(&c) => invalid(c, "in \\u hexadecimal character escape"),
                None => EOF.into(),
            });
        };
        self.pos += 4;
        if !(0xD800..0xE000).contains(&hi) {
            return Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'));
        }
        // A surrogate: only a valid pair makes a character.
        let lo = (self.s.get(self.pos..self.pos + 2) == Some(b"\\u"))
            .then(|| self.hex4(self.pos + 2))
            .flatten();
        match lo {
            Some(lo) if hi < 0xDC00 && (0xDC00..0xE000).contains(&lo) => {
                self.pos += 6;
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                Ok(char::from_u32(c).unwrap_or('\u{FFFD}'))
            }
            _ => Ok('\u{FFFD}'),
        }
    }
}

/// The length of the UTF-8 sequence `s` starts with, if it is valid (else 0).
fn utf8_len(s: &[u8]) -> usize {
    let want = match s[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return 0,
    };
    match s.get(..want).map(std::str::from_utf8) {
        Some(Ok(_)) => want,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn syntax_errors_are_worded_as_in_go() {
        crate::decode::assert_cases(
            error,
            &[
                ("", "unexpected end of JSON input"),
                ("x", "invalid character 'x' looking for beginning of value"),
                (
                    "{1: 2}",
                    "invalid character '1' looking for beginning of object key string",
                ),
                ("{\"a\" 1}", "invalid character '1' after object key"),
                (
                    "{\"a\": 1 2}",
                    "invalid character '2' after object key:value pair",
                ),
                ("[1 2]", "invalid character '2' after array element"),
                ("[1] x", "invalid character 'x' after top-level value"),
                ("\"a\nb\"", "invalid character '\\n' in string literal"),
                ("\"\\q\"", "invalid character 'q' in string escape code"),
                ("-", "unexpected end of JSON input"),
                ("-x", "invalid character 'x' in numeric literal"),
                (
                    "1.x",
                    "invalid character 'x' after decimal point in numeric literal",
                ),
                (
                    "tru ",
                    "invalid character ' ' in literal true (expecting 'e')",
                ),
                ("[1,", "unexpected end of JSON input"),
            ],
        );
    }

    #[test]
    fn strings_and_numbers_are_kept_as_written() {
        let node = parse(b"{\"a\": [1.0, -0, \"\\u00e9\\ud800\", \"\xff\"], \"a\": null}").unwrap();
        let NodeKind::Map(entries) = &node.kind else {
            panic!()
        };
        assert_eq!(entries.len(), 2, "duplicates kept");
        let NodeKind::Seq(items) = &entries[0].value.kind else {
            panic!()
        };
        assert!(matches!(&items[0].kind, NodeKind::Num(Num::Text(t)) if &**t == "1.0"));
        assert!(matches!(&items[1].kind, NodeKind::Num(Num::Text(t)) if &**t == "-0"));
        assert!(matches!(&items[2].kind, NodeKind::Str(s) if &**s == "\u{e9}\u{FFFD}"));
    }
}
