//! A small YAML reader for the subset that NRI plugin annotations and plugin
//! configuration files use, so that the examples need no YAML crate.
//!
//! Supported: block mappings and sequences nested by indentation (including
//! a sequence at its key's indentation, `options:\n- ro`), flow collections
//! (`[a, b]`, `{k: v}`, and therefore JSON, across lines), plain, single- and
//! double-quoted scalars, literal (`|`) and folded (`>`) block scalars, and
//! `#` comments. Not supported, and refused with an error naming the line:
//! anchors and aliases, tags, multi-document streams, complex keys,
//! multi-line plain scalars.
//!
//! Every scalar is kept as text; the typed accessors ([`Value::to_u64`] and
//! friends) read integers as YAML 1.1 does (`0644` is octal, as in
//! `sigs.k8s.io/yaml`, which the Go plugins use).

use std::fmt;

/// A parsed YAML node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An empty value, `~` or `null`.
    Null,
    /// A scalar, as text.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping, in document order.
    Map(Vec<(String, Value)>),
}

/// A YAML syntax error, or a value of the wrong shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based line number, 0 when the error is about a value's type.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Error {}

fn type_error(message: String) -> Error {
    Error { line: 0, message }
}

/// Parses one YAML document.
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
    };
    if text.contains('\t')
        && text
            .lines()
            .any(|l| l.trim_start_matches(' ').starts_with('\t'))
    {
        let line = text
            .lines()
            .position(|l| l.trim_start_matches(' ').starts_with('\t'))
            .unwrap_or(0);
        return Err(Error {
            line: line + 1,
            message: "tabs cannot indent YAML; use spaces".into(),
        });
    }
    if !p.skip_to_content() {
        return Ok(Value::Null);
    }
    let col = p.column();
    let value = p.block_node(col)?;
    if p.skip_to_content() {
        return Err(p.error("unexpected content after the document (check the indentation)"));
    }
    Ok(value)
}

impl Value {
    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The items of a sequence; `Null` is an empty sequence.
    pub fn to_seq(&self, what: &str) -> Result<&[Value], Error> {
        match self {
            Value::Seq(items) => Ok(items),
            Value::Null => Ok(&[]),
            other => Err(type_error(format!(
                "{what}: expected a list, got {}",
                other.kind()
            ))),
        }
    }

    /// The entries of a mapping; `Null` is an empty mapping.
    pub fn to_map(&self, what: &str) -> Result<&[(String, Value)], Error> {
        match self {
            Value::Map(entries) => Ok(entries),
            Value::Null => Ok(&[]),
            other => Err(type_error(format!(
                "{what}: expected a mapping, got {}",
                other.kind()
            ))),
        }
    }

    /// A scalar as a string.
    pub fn to_string_value(&self, what: &str) -> Result<String, Error> {
        match self {
            Value::Str(s) => Ok(s.clone()),
            other => Err(type_error(format!(
                "{what}: expected a string, got {}",
                other.kind()
            ))),
        }
    }

    /// A list of strings; a single scalar is read as a one-item list, and
    /// `Null` as an empty one.
    pub fn to_string_list(&self, what: &str) -> Result<Vec<String>, Error> {
        match self {
            Value::Str(s) => Ok(vec![s.clone()]),
            _ => self
                .to_seq(what)?
                .iter()
                .enumerate()
                .map(|(i, v)| v.to_string_value(&format!("{what}[{i}]")))
                .collect(),
        }
    }

    /// A boolean (`true`/`false`, `yes`/`no`, `on`/`off`, any case).
    pub fn to_bool(&self, what: &str) -> Result<bool, Error> {
        let s = self.as_str().unwrap_or_default().to_ascii_lowercase();
        match s.as_str() {
            "true" | "yes" | "on" | "y" => Ok(true),
            "false" | "no" | "off" | "n" => Ok(false),
            _ => Err(type_error(format!(
                "{what}: expected true or false, got {}",
                self.describe()
            ))),
        }
    }

    /// A signed integer (decimal, `0x` hex, `0o` or leading-zero octal).
    pub fn to_i64(&self, what: &str) -> Result<i64, Error> {
        let s = self.as_str().unwrap_or_default().trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let magnitude = parse_unsigned(digits).ok_or_else(|| {
            type_error(format!(
                "{what}: expected an integer, got {}",
                self.describe()
            ))
        })?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value.ok_or_else(|| type_error(format!("{what}: {s} is out of range")))
    }

    /// An unsigned integer (decimal, `0x` hex, `0o` or leading-zero octal).
    pub fn to_u64(&self, what: &str) -> Result<u64, Error> {
        let s = self.as_str().unwrap_or_default().trim();
        parse_unsigned(s.strip_prefix('+').unwrap_or(s)).ok_or_else(|| {
            type_error(format!(
                "{what}: expected a non-negative integer, got {}",
                self.describe()
            ))
        })
    }

    /// A `u32`, range-checked.
    pub fn to_u32(&self, what: &str) -> Result<u32, Error> {
        let v = self.to_u64(what)?;
        u32::try_from(v).map_err(|_| type_error(format!("{what}: {v} does not fit in 32 bits")))
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Str(_) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            other => other.kind().to_string(),
        }
    }
}

fn parse_unsigned(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = s.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    fn line(&self) -> usize {
        self.src[..self.pos.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn column(&self) -> usize {
        let start = self.src[..self.pos]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        self.pos - start
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error {
            line: self.line(),
            message: message.into(),
        }
    }

    /// Skips spaces on the current line.
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// At the end of the line's content (end of input, newline, or comment)?
    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\n') | Some(b'\r') | Some(b'#'))
    }

    /// Skips spaces, comments and line breaks; false at the end of input.
    fn skip_to_content(&mut self) -> bool {
        loop {
            match self.peek() {
                Some(b' ') | Some(b'\n') | Some(b'\r') | Some(b'\t') => self.pos += 1,
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.pos += 1;
                    }
                }
                Some(_) => return true,
                None => return false,
            }
        }
    }

    /// After a value on one line: only spaces and a comment may follow.
    fn expect_line_end(&mut self) -> Result<(), Error> {
        self.skip_spaces();
        if self.at_line_end() {
            Ok(())
        } else {
            Err(self.error(format!(
                "unexpected {:?} after the value",
                self.rest_of_line().trim()
            )))
        }
    }

    fn rest_of_line(&self) -> &str {
        let end = self.src[self.pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.src.len(), |i| self.pos + i);
        &self.text[self.pos..end]
    }

    fn at_dash_item(&self) -> bool {
        self.peek() == Some(b'-')
            && matches!(
                self.peek_at(1),
                None | Some(b' ') | Some(b'\n') | Some(b'\r')
            )
    }

    /// A block node whose first content is at the current position, in
    /// column `col`.
    fn block_node(&mut self, col: usize) -> Result<Value, Error> {
        match self.peek() {
            _ if self.at_dash_item() => self.block_seq(col),
            Some(b'[') | Some(b'{') => {
                let v = self.flow_node()?;
                self.expect_line_end()?;
                Ok(v)
            }
            Some(b'&') | Some(b'*') | Some(b'!') => {
                Err(self.error("anchors, aliases and tags are not supported"))
            }
            Some(b'|') | Some(b'>') => self.block_scalar(col.saturating_sub(1)),
            _ if self.map_key_here() => self.block_map(col),
            _ => {
                let v = self.line_scalar()?;
                self.expect_line_end()?;
                Ok(v)
            }
        }
    }

    fn block_seq(&mut self, col: usize) -> Result<Value, Error> {
        let mut items = Vec::new();
        loop {
            // At a "-" in column `col`.
            self.pos += 1;
            self.skip_spaces();
            let item = if self.at_line_end() {
                self.nested_block(col, false)?
            } else {
                let c = self.column();
                self.block_node(c)?
            };
            items.push(item);
            if !self.skip_to_content() {
                break;
            }
            let c = self.column();
            if c > col {
                return Err(self.error("unexpected indentation in a list"));
            }
            if c < col || !self.at_dash_item() {
                break;
            }
        }
        Ok(Value::Seq(items))
    }

    fn block_map(&mut self, col: usize) -> Result<Value, Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        loop {
            let line = self.line();
            let key = self.map_key()?;
            self.skip_spaces();
            let value = if self.at_line_end() {
                self.nested_block(col, true)?
            } else {
                match self.peek() {
                    Some(b'[') | Some(b'{') => {
                        let v = self.flow_node()?;
                        self.expect_line_end()?;
                        v
                    }
                    Some(b'|') | Some(b'>') => self.block_scalar(col)?,
                    Some(b'&') | Some(b'*') | Some(b'!') => {
                        return Err(self.error("anchors, aliases and tags are not supported"))
                    }
                    _ => {
                        let v = self.line_scalar()?;
                        self.expect_line_end()?;
                        v
                    }
                }
            };
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(Error {
                    line,
                    message: format!("duplicate key {key:?}"),
                });
            }
            entries.push((key, value));
            if !self.skip_to_content() {
                break;
            }
            let c = self.column();
            if c > col {
                return Err(self.error("unexpected indentation in a mapping"));
            }
            if c < col {
                break;
            }
            if !self.map_key_here() {
                return Err(self.error(format!(
                    "expected \"key: value\", got {:?}",
                    self.rest_of_line().trim()
                )));
            }
        }
        Ok(Value::Map(entries))
    }

    /// The value of a "key:" or "-" whose line has nothing after it: a block
    /// on the following lines, indented deeper than `col` (or a list at
    /// `col` itself after a mapping key), else nothing.
    fn nested_block(&mut self, col: usize, after_key: bool) -> Result<Value, Error> {
        let save = self.pos;
        if !self.skip_to_content() {
            return Ok(Value::Null);
        }
        let c = self.column();
        if c > col || (after_key && c == col && self.at_dash_item()) {
            self.block_node(c)
        } else {
            self.pos = save;
            Ok(Value::Null)
        }
    }

    /// Whether the current line, from here, is `key: ...`.
    fn map_key_here(&self) -> bool {
        let mut probe = Parser {
            src: self.src,
            text: self.text,
            pos: self.pos,
        };
        probe.map_key().is_ok()
    }

    /// Reads `key:` and leaves the position after the colon.
    fn map_key(&mut self) -> Result<String, Error> {
        let key = match self.peek() {
            Some(b'"') | Some(b'\'') => {
                let k = self.quoted()?;
                self.skip_spaces();
                k
            }
            _ => {
                let start = self.pos;
                loop {
                    match self.peek() {
                        None | Some(b'\n') | Some(b'\r') => {
                            return Err(self.error("expected \"key: value\""))
                        }
                        Some(b':')
                            if matches!(
                                self.peek_at(1),
                                None | Some(b' ') | Some(b'\n') | Some(b'\r')
                            ) =>
                        {
                            break
                        }
                        Some(b'#') if self.pos > start && self.src[self.pos - 1] == b' ' => {
                            return Err(self.error("expected \"key: value\""))
                        }
                        _ => self.pos += 1,
                    }
                }
                self.text[start..self.pos].trim_end().to_string()
            }
        };
        if self.peek() != Some(b':') {
            return Err(self.error("expected ':' after the key"));
        }
        if key.is_empty() {
            return Err(self.error("empty key"));
        }
        self.pos += 1;
        Ok(key)
    }

    /// A scalar on the rest of the line (quoted, or plain up to a comment).
    fn line_scalar(&mut self) -> Result<Value, Error> {
        match self.peek() {
            Some(b'"') | Some(b'\'') => Ok(Value::Str(self.quoted()?)),
            _ => {
                let start = self.pos;
                while !matches!(self.peek(), None | Some(b'\n') | Some(b'\r')) {
                    if self.peek() == Some(b'#')
                        && self.pos > start
                        && self.src[self.pos - 1] == b' '
                    {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(plain(self.text[start..self.pos].trim_end()))
            }
        }
    }

    /// `|` or `>` block scalar; content lines are indented deeper than
    /// `parent` (the indentation of the key or list owning it).
    fn block_scalar(&mut self, parent: usize) -> Result<Value, Error> {
        let folded = self.peek() == Some(b'>');
        self.pos += 1;
        let mut chomp = b' ';
        if let Some(c @ (b'-' | b'+')) = self.peek() {
            chomp = c;
            self.pos += 1;
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.error("explicit indentation of block scalars is not supported"));
        }
        self.expect_line_end()?;
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.pos += 1;
        }
        let mut lines: Vec<&str> = Vec::new();
        let mut indent: Option<usize> = None;
        while self.peek() == Some(b'\n') {
            let line_start = self.pos + 1;
            let line_end = self.src[line_start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.src.len(), |i| line_start + i);
            let line = self.text[line_start..line_end].trim_end_matches('\r');
            let spaces = line.len() - line.trim_start_matches(' ').len();
            if line.trim().is_empty() {
                lines.push("");
                self.pos = line_end;
                continue;
            }
            let want = *indent.get_or_insert(spaces);
            if spaces <= parent || spaces < want {
                break;
            }
            lines.push(&line[want..]);
            self.pos = line_end;
        }
        // Trailing blank lines belong to the text only with "+".
        let mut body = String::new();
        let content_end = lines
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(0, |i| i + 1);
        for (i, line) in lines[..content_end].iter().enumerate() {
            if i > 0 {
                let prev_empty = lines[i - 1].is_empty();
                if folded && !line.is_empty() && !prev_empty && !line.starts_with(' ') {
                    body.push(' ');
                } else {
                    body.push('\n');
                }
            }
            body.push_str(line);
        }
        match chomp {
            b'-' => {}
            b'+' => {
                body.push('\n');
                for _ in content_end..lines.len() {
                    body.push('\n');
                }
            }
            _ => {
                if content_end > 0 {
                    body.push('\n');
                }
            }
        }
        Ok(Value::Str(body))
    }

    fn quoted(&mut self) -> Result<String, Error> {
        let quote = self.src[self.pos];
        let line = self.line();
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return Err(Error {
                    line,
                    message: "unterminated quoted string".into(),
                });
            };
            self.pos += c.len_utf8();
            match c {
                '\'' if quote == b'\'' => {
                    if self.peek() == Some(b'\'') {
                        self.pos += 1;
                        out.push('\'');
                    } else {
                        return Ok(out);
                    }
                }
                '"' if quote == b'"' => return Ok(out),
                '\\' if quote == b'"' => out.push(self.escape()?),
                '\n' => {
                    // A line break inside quotes folds into a space.
                    while self.peek() == Some(b' ') {
                        self.pos += 1;
                    }
                    let trimmed = out.trim_end_matches(' ').len();
                    out.truncate(trimmed);
                    out.push(' ');
                }
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, Error> {
        let Some(c) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        let hex = |p: &mut Self, n: usize| -> Result<char, Error> {
            let digits = p.text.get(p.pos..p.pos + n).unwrap_or_default();
            let code = u32::from_str_radix(digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| p.error(format!("bad escape \\{}{digits}", c as char)))?;
            p.pos += n;
            Ok(code)
        };
        Ok(match c {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'0' => '\0',
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b' ' => ' ',
            b'x' => hex(self, 2)?,
            b'u' => hex(self, 4)?,
            b'U' => hex(self, 8)?,
            other => return Err(self.error(format!("unknown escape \\{}", other as char))),
        })
    }

    /// A flow node: `[...]`, `{...}` or a scalar inside one; may span lines.
    fn flow_node(&mut self) -> Result<Value, Error> {
        if !self.skip_to_content() {
            return Err(self.error("unexpected end of input in a flow collection"));
        }
        match self.peek() {
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if !self.skip_to_content() {
                        return Err(self.error("unterminated '['"));
                    }
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(Value::Seq(items));
                    }
                    items.push(self.flow_node()?);
                    self.flow_separator(b']')?;
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut entries: Vec<(String, Value)> = Vec::new();
                loop {
                    if !self.skip_to_content() {
                        return Err(self.error("unterminated '{'"));
                    }
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Value::Map(entries));
                    }
                    let key = match self.flow_node()? {
                        Value::Str(s) => s,
                        Value::Null => String::new(),
                        _ => return Err(self.error("complex mapping keys are not supported")),
                    };
                    self.skip_to_content();
                    let value = if self.peek() == Some(b':') {
                        self.pos += 1;
                        self.skip_to_content();
                        if matches!(self.peek(), Some(b',') | Some(b'}')) {
                            Value::Null
                        } else {
                            self.flow_node()?
                        }
                    } else {
                        Value::Null
                    };
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(self.error(format!("duplicate key {key:?}")));
                    }
                    entries.push((key, value));
                    self.flow_separator(b'}')?;
                }
            }
            Some(b'"') | Some(b'\'') => Ok(Value::Str(self.quoted()?)),
            Some(b'&') | Some(b'*') | Some(b'!') => {
                Err(self.error("anchors, aliases and tags are not supported"))
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    let ends = match c {
                        b',' | b']' | b'}' | b'\n' | b'\r' => true,
                        b':' => matches!(
                            self.peek_at(1),
                            None | Some(b' ') | Some(b'\n') | Some(b',') | Some(b']') | Some(b'}')
                        ),
                        b'#' => self.src[self.pos - 1] == b' ',
                        _ => false,
                    };
                    if ends {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(plain(self.text[start..self.pos].trim()))
            }
        }
    }

    fn flow_separator(&mut self, close: u8) -> Result<(), Error> {
        if !self.skip_to_content() {
            return Err(self.error(format!(
                "unterminated flow collection, expected '{}'",
                close as char
            )));
        }
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(())
            }
            Some(c) if c == close => Ok(()),
            _ => Err(self.error(format!(
                "expected ',' or '{}', got {:?}",
                close as char,
                self.rest_of_line().trim()
            ))),
        }
    }
}

fn plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        s => Value::Str(s.to_string()),
    }
}
