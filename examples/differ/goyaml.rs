//! A message as YAML, the way the Go differ dumps it with
//! `sigs.k8s.io/yaml`: the Go struct marshaled to JSON (fields under their
//! `.proto` names, zero values left out, enums as numbers), then written as
//! YAML by go-yaml v2 (keys sorted in its natural order, where runs of
//! digits compare as numbers; lists not indented under their key).
//!
//! Strings are quoted where YAML would read them as something else (`"true"`,
//! `"0666"`, `""`), single-quoted where they start or end with a space or an
//! indicator or hold `: ` or ` #`, double-quoted with escapes where they
//! hold control characters, and written as a literal block (`|-`) where
//! they hold line breaks. Unlike go-yaml, long strings are not folded at 80
//! columns.

use std::cmp::Ordering;

use super::gotree::{Go, Struct};

/// `s` as YAML (its lines end with `\n`; `{}` for an empty message).
pub fn of_struct(s: &Struct) -> String {
    let mut out = String::new();
    let entries = json_fields(s);
    if entries.is_empty() {
        return "{}\n".into();
    }
    write_map(&mut out, &entries, 0);
    out
}

/// A list of messages as YAML (`[]` for none).
pub fn of_list(items: &[Struct]) -> String {
    if items.is_empty() {
        return "[]\n".into();
    }
    let mut out = String::new();
    for item in items {
        let entries = json_fields(item);
        write_list_item(&mut out, &Json::Object(entries), 0);
    }
    out
}

/// The JSON value encoding/json makes of a Go value.
enum Json {
    Str(String),
    Num(String),
    Bool(bool),
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
}

/// The fields `omitempty` keeps, sorted as go-yaml sorts keys.
fn json_fields(s: &Struct) -> Vec<(String, Json)> {
    let mut entries: Vec<(String, Json)> = s
        .fields
        .iter()
        .filter_map(|f| json(&f.value).map(|j| (f.json_name.clone(), j)))
        .collect();
    entries.sort_by(|a, b| natural(&a.0, &b.0));
    entries
}

/// The JSON of `v`, or `None` where `omitempty` leaves it out.
fn json(v: &Go) -> Option<Json> {
    Some(match v {
        Go::Str(s) if s.is_empty() => return None,
        Go::Str(s) => Json::Str(s.clone()),
        Go::Int(0) | Go::Uint(0) | Go::Enum(0, _) | Go::Bool(false) => return None,
        Go::Int(i) => Json::Num(i.to_string()),
        Go::Uint(u) => Json::Num(u.to_string()),
        Go::Enum(n, _) => Json::Num(n.to_string()),
        Go::Bool(b) => Json::Bool(*b),
        Go::Ptr(None) => return None,
        Go::Ptr(Some(s)) => Json::Object(json_fields(s)),
        Go::Slice(items) if items.is_empty() => return None,
        Go::Slice(items) => Json::Array(items.iter().map(element).collect()),
        Go::Map(entries) if entries.is_empty() => return None,
        Go::Map(entries) => {
            let mut entries: Vec<(String, Json)> = entries
                .iter()
                .map(|(k, v)| (k.clone(), element(v)))
                .collect();
            entries.sort_by(|a, b| natural(&a.0, &b.0));
            Json::Object(entries)
        }
    })
}

/// A slice element or map value: never left out.
fn element(v: &Go) -> Json {
    match v {
        Go::Str(s) => Json::Str(s.clone()),
        Go::Int(i) => Json::Num(i.to_string()),
        Go::Uint(u) => Json::Num(u.to_string()),
        Go::Enum(n, _) => Json::Num(n.to_string()),
        Go::Bool(b) => Json::Bool(*b),
        Go::Ptr(None) => Json::Str("null".into()),
        Go::Ptr(Some(s)) => Json::Object(json_fields(s)),
        Go::Slice(items) => Json::Array(items.iter().map(element).collect()),
        Go::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), element(v)))
                .collect(),
        ),
    }
}

fn write_map(out: &mut String, entries: &[(String, Json)], indent: usize) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar(key));
        out.push(':');
        write_value(out, value, indent, true);
    }
}

/// Writes `value` after a `key:` (or `- `) already written.
fn write_value(out: &mut String, value: &Json, indent: usize, after_key: bool) {
    match value {
        Json::Object(entries) if entries.is_empty() => {
            out.push_str(if after_key { " {}\n" } else { "{}\n" })
        }
        Json::Object(entries) => {
            if after_key {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
                write_map(out, entries, indent + 2);
            } else {
                write_map(out, entries, indent);
            }
        }
        Json::Array(items) if items.is_empty() => {
            out.push_str(if after_key { " []\n" } else { "[]\n" })
        }
        Json::Array(items) => {
            if after_key {
                out.push('\n');
            }
            for (i, item) in items.iter().enumerate() {
                if after_key || i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                write_list_item_body(out, item, indent);
            }
        }
        Json::Str(s) if s.contains('\n') => {
            if after_key {
                out.push(' ');
            }
            let chomp = if s.ends_with("\n\n") {
                "+"
            } else if s.ends_with('\n') {
                ""
            } else {
                "-"
            };
            out.push('|');
            out.push_str(chomp);
            out.push('\n');
            for line in s.trim_end_matches('\n').split('\n') {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        scalar_value => {
            if after_key {
                out.push(' ');
            }
            out.push_str(&match scalar_value {
                Json::Str(s) => scalar(s),
                Json::Num(n) => n.clone(),
                Json::Bool(b) => b.to_string(),
                _ => String::new(),
            });
            out.push('\n');
        }
    }
}

fn write_list_item(out: &mut String, item: &Json, indent: usize) {
    out.push_str(&" ".repeat(indent));
    write_list_item_body(out, item, indent);
}

fn write_list_item_body(out: &mut String, item: &Json, indent: usize) {
    out.push_str("- ");
    match item {
        Json::Array(items) if !items.is_empty() => {
            // A list in a list starts on the same line.
            for (i, inner) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent + 2));
                }
                write_list_item_body(out, inner, indent + 2);
            }
        }
        other => write_value(out, other, indent + 2, false),
    }
}

/// A string scalar, quoted as go-yaml v2 quotes it (see the module docs).
fn scalar(s: &str) -> String {
    if s.chars()
        .any(|c| (c.is_control() && c != '\n') || c == '\u{feff}')
    {
        return double_quoted(s);
    }
    if resolves_to_other_type(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if c.is_control() || c == '\u{feff}' => {
                let u = c as u32;
                if u <= 0xff {
                    out.push_str(&format!("\\x{u:02X}"));
                } else {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether YAML 1.1 (go-yaml v2's resolver) reads plain `s` as something
/// other than a string: null, a boolean, a number, a sexagesimal number or
/// a date.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let plain = s.replace('_', "");
    let digits = plain.strip_prefix(['-', '+']).unwrap_or(&plain);
    let is_int = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        || digits
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        || digits
            .strip_prefix("0b")
            .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
        || digits
            .strip_prefix("0o")
            .is_some_and(|o| !o.is_empty() && o.chars().all(|c| ('0'..='7').contains(&c)));
    let is_float = digits.contains(['.', 'e', 'E'])
        && digits.parse::<f64>().is_ok()
        && digits
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.');
    let is_base60 = digits.contains(':')
        && digits
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.'))
        && digits.chars().next().is_some_and(|c| c.is_ascii_digit());
    let is_date = s.len() >= 10
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[7] == b'-'
        && s[..4].chars().all(|c| c.is_ascii_digit());
    is_int || is_float || is_base60 || is_date
}

/// Whether go-yaml's emitter writes `s` plain in block context.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    let second = s.chars().nth(1);
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let indicator = matches!(
        first,
        ',' | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) || (matches!(first, '-' | '?' | ':') && second.map_or(true, |c| c == ' '));
    !indicator && !s.contains(": ") && !s.contains(" #")
}

/// go-yaml v2's order of map keys: runs of digits compare as numbers,
/// letters before other characters.
pub fn natural(a: &str, b: &str) -> Ordering {
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}
