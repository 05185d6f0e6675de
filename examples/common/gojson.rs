//! Go's `encoding/json` decoding rules, for the examples that read what Go
//! plugins read: a strict JSON reader (hook files) and the [`Decode`] trait
//! that fills plain Rust values the way `json.Unmarshal` fills Go structs.
//!
//! The rules kept from Go: an object's keys are matched to fields exactly,
//! then case-insensitively (Unicode simple folding, so `ſ` is an `s`); keys
//! are applied in order, so of two keys naming one field the later wins;
//! unknown keys are ignored; `null` leaves a value as it is (and empties a
//! list); a number decodes into an integer only if its text is an integer
//! in range; a string never decodes into a number. A list decoded twice
//! into one field reuses the elements it already holds, as a Go slice does.
//!
//! [`goyaml`](super::goyaml) produces the same [`Json`] values from YAML,
//! as `sigs.k8s.io/yaml` does, and decodes them with [`Mode::Yaml`]: YAML
//! numbers and booleans then also decode into strings, as their text.

use std::fmt;

/// Nesting deeper than this is refused (Go allows 10,000 levels): it bounds
/// the stack the readers use.
pub const MAX_DEPTH: usize = 1000;

/// A JSON value, keys in the order the Go decoder reads them.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, duplicate keys kept.
    Object(Vec<(String, Json)>),
}

/// A number: its JSON text and, for a YAML number, the text it becomes
/// when decoded into a string.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    /// The JSON text; `None` for a YAML infinity or NaN, which JSON cannot hold.
    pub text: Option<String>,
    /// For a YAML number, its text as a Go string field receives it.
    pub as_string: Option<String>,
}

impl Json {
    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "list",
            Json::Object(_) => "mapping",
        }
    }
}

/// Where a value comes from, which changes a few rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `encoding/json` on JSON text.
    Json,
    /// `sigs.k8s.io/yaml`: YAML numbers and booleans also decode into
    /// strings, and a YAML infinity or NaN anywhere but in a string is an error.
    Yaml,
}

/// A decoding error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn mismatch(value: &Json, want: &str) -> Error {
    Error(format!("cannot decode a {} into {want}", value.kind()))
}

/// A value that JSON decodes into as its Go counterpart does.
pub trait Decode {
    /// Decodes `value` into `self`.
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), Error>;

    /// Decodes several values in turn into `self`, as Go does for keys
    /// that name the same field.
    fn decode_each(&mut self, values: &[&Json], mode: Mode) -> Result<(), Error> {
        values.iter().try_for_each(|v| self.decode(v, mode))
    }
}

impl Decode for String {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), Error> {
        match (value, mode) {
            (Json::Null, _) => {}
            (Json::String(s), _) => s.clone_into(self),
            (Json::Bool(b), Mode::Yaml) => *self = b.to_string(),
            (
                Json::Number(Number {
                    as_string: Some(s), ..
                }),
                Mode::Yaml,
            ) => s.clone_into(self),
            _ => return Err(mismatch(value, "a string")),
        }
        Ok(())
    }
}

impl Decode for bool {
    fn decode(&mut self, value: &Json, _mode: Mode) -> Result<(), Error> {
        match value {
            Json::Null => {}
            Json::Bool(b) => *self = *b,
            _ => return Err(mismatch(value, "a boolean")),
        }
        Ok(())
    }
}

macro_rules! decode_integer {
    ($($t:ty => $name:literal),*) => {$(
        impl Decode for $t {
            fn decode(&mut self, value: &Json, _mode: Mode) -> Result<(), Error> {
                match value {
                    Json::Null => Ok(()),
                    Json::Number(Number { text: Some(text), .. }) => {
                        *self = text.parse().map_err(|_| {
                            Error(format!("number {text} does not fit {}", $name))
                        })?;
                        Ok(())
                    }
                    Json::Number(Number { as_string, .. }) => Err(Error(format!(
                        "{} is not a valid number",
                        as_string.as_deref().unwrap_or("?")
                    ))),
                    _ => Err(mismatch(value, $name)),
                }
            }
        }
    )*};
}

decode_integer!(
    i32 => "a 32-bit integer",
    i64 => "a 64-bit integer",
    u32 => "an unsigned 32-bit integer",
    u64 => "an unsigned 64-bit integer"
);

/// A Go pointer: `null` makes it `None`, anything else fills it.
impl<T: Decode + Default> Decode for Option<T> {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), Error> {
        if let Json::Null = value {
            *self = None;
            return Ok(());
        }
        self.get_or_insert_with(T::default).decode(value, mode)
    }
}

/// A Go slice.
impl<T: Decode + Default> Decode for Vec<T> {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), Error> {
        self.decode_each(&[value], mode)
    }

    /// Go reuses a slice's backing array when it decodes into it again: an
    /// element that is `null` the second time keeps the earlier value, even
    /// one past the length the slice was cut back to.
    fn decode_each(&mut self, values: &[&Json], mode: Mode) -> Result<(), Error> {
        let mut len = self.len();
        for value in values {
            match value {
                Json::Null => {
                    self.clear();
                    len = 0;
                }
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if i == self.len() {
                            self.push(T::default());
                        }
                        self[i].decode(item, mode)?;
                    }
                    len = items.len();
                }
                other => return Err(mismatch(other, "a list")),
            }
        }
        self.truncate(len);
        Ok(())
    }
}

/// A Go `map[string]string`: keys as given, a later duplicate wins, `null`
/// values become empty strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringMap(pub Vec<(String, String)>);

impl Decode for StringMap {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), Error> {
        match value {
            Json::Null => self.0.clear(),
            Json::Object(entries) => {
                for (key, v) in entries {
                    let mut s = String::new();
                    s.decode(v, mode)?;
                    match self.0.iter_mut().find(|(k, _)| k == key) {
                        Some(slot) => slot.1 = s,
                        None => self.0.push((key.clone(), s)),
                    }
                }
            }
            other => return Err(mismatch(other, "a mapping of strings")),
        }
        Ok(())
    }
}

/// Decodes an object into the fields of a struct, named as in the Go
/// struct's `json:"..."` tags.
///
/// ```ignore
/// decode_struct(value, mode, &mut [("path", &mut self.path), ("major", &mut self.major)])
/// ```
pub fn decode_struct(
    value: &Json,
    mode: Mode,
    fields: &mut [(&str, &mut dyn Decode)],
) -> Result<(), Error> {
    let entries = match value {
        Json::Null => return Ok(()),
        Json::Object(entries) => entries,
        other => return Err(mismatch(other, "a mapping")),
    };
    let mut per_field: Vec<Vec<&Json>> = vec![Vec::new(); fields.len()];
    for (key, v) in entries {
        let field = fields
            .iter()
            .position(|(name, _)| name == key)
            .or_else(|| fields.iter().position(|(name, _)| fold_eq(key, name)));
        match field {
            Some(i) => per_field[i].push(v),
            None if mode == Mode::Yaml => check_finite(v)?,
            None => {}
        }
    }
    for ((name, field), values) in fields.iter_mut().zip(per_field) {
        if !values.is_empty() {
            field
                .decode_each(&values, mode)
                .map_err(|e| Error(format!("{name}: {e}")))?;
        }
    }
    Ok(())
}

/// Fails on an infinity or NaN anywhere in `value`: Go's JSON encoder
/// cannot write one, so `sigs.k8s.io/yaml` refuses the whole document.
pub fn check_finite(value: &Json) -> Result<(), Error> {
    match value {
        Json::Number(Number {
            text: None,
            as_string,
        }) => Err(Error(format!(
            "{} cannot be represented in JSON",
            as_string.as_deref().unwrap_or("?")
        ))),
        Json::Array(items) => items.iter().try_for_each(check_finite),
        Json::Object(entries) => entries.iter().try_for_each(|(_, v)| check_finite(v)),
        _ => Ok(()),
    }
}

/// Whether a key names a field (an ASCII name) for Go: equal under Unicode
/// simple case folding, where only `ſ` (an `s`) and the Kelvin sign (a `k`)
/// fold onto ASCII letters.
pub fn fold_eq(key: &str, name: &str) -> bool {
    let folded = key.chars().map(|c| match c {
        'ſ' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    folded.eq(name.chars().map(|c| c.to_ascii_lowercase()))
}

/// Reads JSON text as `json.Unmarshal` does: strict syntax, whitespace
/// around the value only, invalid UTF-8 and lone surrogates in strings
/// become U+FFFD.
pub fn parse(text: &[u8]) -> Result<Json, Error> {
    let mut r = Reader { s: text, pos: 0 };
    // Open containers: an array, or an object with the key being read.
    enum Open {
        Array(Vec<Json>),
        Object(Vec<(String, Json)>, String),
    }
    let mut stack: Vec<Open> = Vec::new();
    loop {
        r.skip_ws();
        let mut value = match r.peek() {
            Some(b'[') | Some(b'{') if stack.len() >= MAX_DEPTH => {
                return Err(r.error("nesting deeper than 1000 levels"));
            }
            Some(b'[') => {
                r.pos += 1;
                r.skip_ws();
                if r.eat(b']') {
                    Json::Array(Vec::new())
                } else {
                    stack.push(Open::Array(Vec::new()));
                    continue;
                }
            }
            Some(b'{') => {
                r.pos += 1;
                r.skip_ws();
                if r.eat(b'}') {
                    Json::Object(Vec::new())
                } else {
                    let key = r.key()?;
                    stack.push(Open::Object(Vec::new(), key));
                    continue;
                }
            }
            Some(b'"') => Json::String(r.string()?),
            Some(b't') => r.literal("true", Json::Bool(true))?,
            Some(b'f') => r.literal("false", Json::Bool(false))?,
            Some(b'n') => r.literal("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => r.number()?,
            _ => return Err(r.error("expected a value")),
        };
        // Close every container that ends after this value.
        loop {
            r.skip_ws();
            match stack.last_mut() {
                None => {
                    if r.pos < r.s.len() {
                        return Err(r.error("unexpected text after the value"));
                    }
                    return Ok(value);
                }
                Some(Open::Array(items)) => {
                    items.push(value);
                    if r.eat(b',') {
                        break;
                    }
                    if !r.eat(b']') {
                        return Err(r.error("expected ',' or ']'"));
                    }
                }
                Some(Open::Object(entries, key)) => {
                    entries.push((std::mem::take(key), value));
                    if r.eat(b',') {
                        r.skip_ws();
                        *key = r.key()?;
                        break;
                    }
                    if !r.eat(b'}') {
                        return Err(r.error("expected ',' or '}'"));
                    }
                }
            }
            value = match stack.pop() {
                Some(Open::Array(items)) => Json::Array(items),
                Some(Open::Object(entries, _)) => Json::Object(entries),
                None => unreachable!("the stack had an element"),
            };
        }
    }
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> Error {
        Error(format!("invalid JSON at offset {}: {what}", self.pos))
    }

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

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, Error> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<String, Error> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        let key = self.string()?;
        self.skip_ws();
        if !self.eat(b':') {
            return Err(self.error("expected ':'"));
        }
        Ok(key)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, Error> {
        let start = self.pos;
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("invalid number"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        Ok(Json::Number(Number {
            text: Some(text),
            as_string: None,
        }))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.s.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                0..=0x1f => return Err(self.error("control character in string")),
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
                        Some(b'u') => {
                            let hi = self
                                .hex4(self.pos)
                                .ok_or_else(|| self.error("invalid \\u escape"))?;
                            self.pos += 4;
                            if (0xD800..0xE000).contains(&hi) {
                                // A surrogate: only a valid pair makes a character.
                                let lo = (self.s.get(self.pos..self.pos + 2) == Some(b"\\u"))
                                    .then(|| self.hex4(self.pos + 2))
                                    .flatten();
                                match lo {
                                    Some(lo) if hi < 0xDC00 && (0xDC00..0xE000).contains(&lo) => {
                                        self.pos += 6;
                                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                        char::from_u32(c).unwrap_or('\u{FFFD}')
                                    }
                                    _ => '\u{FFFD}',
                                }
                            } else {
                                char::from_u32(hi).unwrap_or('\u{FFFD}')
                            }
                        }
                        _ => return Err(self.error("invalid escape")),
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
