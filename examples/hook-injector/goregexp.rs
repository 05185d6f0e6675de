//! Go's regular expressions (`regexp`, RE2 syntax) on the `regex` crate:
//! OCI hook files hold Go patterns, and Go's dialect differs from the
//! crate's where it matters to a hook's match.
//!
//! The pattern is parsed with Go's rules and rewritten for the crate:
//! `\d`, `\w`, `\s`, `\b` are ASCII as in Go (the crate's are Unicode);
//! `\Q...\E`, octal `\123` and `x{a}` (a literal `{`) are read as Go reads
//! them; `\p{...}` names are looked up as Go 1.26 does; what Go refuses is
//! refused (repeat counts over 1000, `a**`, `\Z`, `(?x)`, `\<`-style
//! escapes of letters), and what Go takes as a literal stays one
//! (`[a&&b]`, `\<`).

use regex::{Regex, RegexBuilder};

/// Compiles a Go regular expression.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern)?;
    RegexBuilder::new(&translated)
        .nest_limit(2000)
        .build()
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

struct Parser<'a> {
    pattern: &'a str,
    s: Vec<char>,
    i: usize,
    out: String,
}

fn hex(c: char) -> String {
    format!("\\x{{{:X}}}", c as u32)
}

fn literal(c: char) -> String {
    regex::escape(c.encode_utf8(&mut [0; 4]))
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!("invalid regular expression {:?}: {what}", self.pattern)
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.s.get(self.i + ahead).copied()
    }

    fn rest_starts(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(k, c)| self.peek(k) == Some(c))
    }
}

fn translate(pattern: &str) -> Result<String, String> {
    let mut p = Parser {
        pattern,
        s: pattern.chars().collect(),
        i: 0,
        out: String::new(),
    };
    let mut operand = false; // something a repetition can apply to
    let mut last_repeat = false;
    let mut depth = 0usize;
    while let Some(c) = p.peek(0) {
        let mut repeat = false;
        match c {
            '(' => {
                depth += 1;
                if depth > 1000 {
                    return Err(p.error("expression nests too deeply"));
                }
                if p.peek(1) == Some('?') {
                    p.i += 2;
                    match group(&mut p)? {
                        Group::Capture | Group::Flags(true) => operand = false,
                        Group::Flags(false) => depth -= 1,
                    }
                } else {
                    p.i += 1;
                    p.out.push('(');
                    operand = false;
                }
            }
            ')' => {
                if depth == 0 {
                    return Err(p.error("unexpected )"));
                }
                depth -= 1;
                p.i += 1;
                p.out.push(')');
                operand = true;
            }
            '|' => {
                p.i += 1;
                p.out.push('|');
                operand = false;
            }
            '*' | '+' | '?' => {
                p.i += 1;
                repeat_op(&mut p, c.to_string(), operand, last_repeat)?;
                repeat = true;
            }
            '{' => match repeat_count(&p) {
                Some((text, _, false)) => {
                    return Err(p.error(&format!("invalid repeat count {text}")));
                }
                Some((text, len, true)) => {
                    p.i += len;
                    repeat_op(&mut p, text, operand, last_repeat)?;
                    repeat = true;
                }
                None => {
                    p.i += 1;
                    p.out.push_str("\\{");
                    operand = true;
                }
            },
            '[' => {
                p.i += 1;
                class(&mut p)?;
                operand = true;
            }
            '\\' => {
                escape_outside_class(&mut p)?;
                operand = true;
            }
            '.' | '^' | '$' => {
                p.i += 1;
                p.out.push(c);
                operand = true;
            }
            c => {
                p.i += 1;
                p.out.push_str(&literal(c));
                operand = true;
            }
        }
        last_repeat = repeat;
    }
    if depth > 0 {
        return Err(p.error("missing closing )"));
    }
    Ok(p.out)
}

fn repeat_op(p: &mut Parser, op: String, operand: bool, last_repeat: bool) -> Result<(), String> {
    if !operand {
        return Err(p.error(&format!("missing argument to repetition operator {op}")));
    }
    if last_repeat {
        return Err(p.error(&format!("invalid nested repetition operator {op}")));
    }
    p.out.push_str(&op);
    if p.peek(0) == Some('?') {
        p.i += 1;
        p.out.push('?');
    }
    Ok(())
}

/// A `{n}`, `{n,}` or `{n,m}` at the parser's position: its text, length,
/// and whether Go takes its counts (at most 1000, min not above max).
fn repeat_count(p: &Parser) -> Option<(String, usize, bool)> {
    let rest: String = p.s[p.i..].iter().take(40).collect();
    let body = rest.strip_prefix('{')?;
    let end = body.find('}')?;
    let inner = &body[..end];
    let number = |t: &str| -> Option<i64> {
        if t.is_empty()
            || !t.bytes().all(|b| b.is_ascii_digit())
            || (t.len() > 1 && t.starts_with('0'))
        {
            return None;
        }
        Some(t.parse::<i64>().unwrap_or(i64::MAX).min(100_000_000))
    };
    let (min, max) = match inner.split_once(',') {
        None => (number(inner)?, Some(number(inner)?)),
        Some((lo, "")) => (number(lo)?, None),
        Some((lo, hi)) => (number(lo)?, Some(number(hi)?)),
    };
    let text = format!("{{{inner}}}");
    let len = text.chars().count();
    let valid = min <= 1000 && !max.is_some_and(|m| m > 1000 || m < min);
    Some((text, len, valid))
}

enum Group {
    /// A group that opens (capturing or not).
    Capture,
    /// A flags group: `(?i:` opens (true), `(?i)` does not (false).
    Flags(bool),
}

/// After `(?`: a named group, or flags.
fn group(p: &mut Parser) -> Result<Group, String> {
    let named = if p.rest_starts("P<") {
        Some(2)
    } else if p.peek(0) == Some('<') {
        Some(1)
    } else {
        None
    };
    if let Some(skip) = named {
        p.i += skip;
        let start = p.i;
        while p.peek(0).is_some_and(|c| c != '>') {
            p.i += 1;
        }
        let name: String = p.s[start..p.i].iter().collect();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if p.peek(0) != Some('>') || !valid {
            return Err(p.error("invalid named capture"));
        }
        p.i += 1;
        // Go allows a name twice; only whether it matches matters here.
        p.out.push('(');
        return Ok(Group::Capture);
    }
    let (mut on, mut off) = (String::new(), String::new());
    let mut negated = false;
    let mut flag_after_minus = false;
    loop {
        let Some(c) = p.peek(0) else {
            return Err(p.error("missing closing )"));
        };
        p.i += 1;
        match c {
            'i' | 'm' | 's' | 'U' => {
                on.retain(|f| f != c);
                off.retain(|f| f != c);
                if negated {
                    off.push(c);
                    flag_after_minus = true;
                } else {
                    on.push(c);
                }
            }
            '-' if !negated => negated = true,
            ':' | ')' => {
                if negated && !flag_after_minus {
                    return Err(p.error("invalid or unsupported Perl syntax"));
                }
                let flags = match (on.is_empty(), off.is_empty()) {
                    (true, true) => String::new(),
                    (false, true) => on,
                    (_, false) => format!("{on}-{off}"),
                };
                return Ok(if c == ':' {
                    p.out.push_str(&format!("(?{flags}:"));
                    Group::Flags(true)
                } else {
                    if !flags.is_empty() {
                        p.out.push_str(&format!("(?{flags})"));
                    }
                    Group::Flags(false)
                });
            }
            _ => return Err(p.error("invalid or unsupported Perl syntax")),
        }
    }
}

/// An escape outside a class (after `\`).
fn escape_outside_class(p: &mut Parser) -> Result<(), String> {
    match p.peek(1) {
        Some('A') => p.out.push_str("\\A"),
        Some('z') => p.out.push_str("\\z"),
        Some('b') => p.out.push_str("(?-u:\\b)"),
        Some('B') => p.out.push_str("(?-u:\\B)"),
        Some('Q') => {
            p.i += 2;
            while p.peek(0).is_some() && !p.rest_starts("\\E") {
                let c = p.s[p.i];
                p.out.push_str(&literal(c));
                p.i += 1;
            }
            if p.rest_starts("\\E") {
                p.i += 2;
            }
            return Ok(());
        }
        Some(c @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => p.out.push_str(perl_class(c)),
        Some('p' | 'P') => {
            let class = unicode_class(p)?;
            p.out.push_str(&class);
            return Ok(());
        }
        _ => {
            let c = escaped_char(p)?;
            p.out.push_str(&literal(c));
            return Ok(());
        }
    }
    p.i += 2;
    Ok(())
}

/// Go's ASCII Perl classes.
fn perl_class(c: char) -> &'static str {
    match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\f\\r ]",
        'S' => "[^\\t\\n\\f\\r ]",
        'w' => "[0-9A-Za-z_]",
        _ => "[^0-9A-Za-z_]",
    }
}

/// A character escape (Go's `parseEscape`), the parser at the `\`.
fn escaped_char(p: &mut Parser) -> Result<char, String> {
    let Some(c) = p.peek(1) else {
        return Err(p.error("trailing backslash at end of expression"));
    };
    p.i += 2;
    let octal = |p: &Parser, k: usize| p.peek(k).filter(|d| ('0'..='7').contains(d));
    match c {
        '1'..='7' if octal(p, 0).is_none() => {
            Err(p.error(&format!("invalid escape sequence \\{c}")))
        }
        '0'..='7' => {
            let mut value = c as u32 - '0' as u32;
            for _ in 0..2 {
                match octal(p, 0) {
                    Some(d) => {
                        value = value * 8 + (d as u32 - '0' as u32);
                        p.i += 1;
                    }
                    None => break,
                }
            }
            char::from_u32(value).ok_or_else(|| p.error("invalid escape sequence"))
        }
        'x' => {
            let digits: String = if p.peek(0) == Some('{') {
                let start = p.i + 1;
                let end = p.s[start..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|k| start + k)
                    .ok_or_else(|| p.error("invalid escape sequence \\x"))?;
                p.i = end + 1;
                p.s[start..end].iter().collect()
            } else {
                let two: String = p.s[p.i..].iter().take(2).collect();
                p.i += 2;
                if two.chars().count() != 2 {
                    return Err(p.error("invalid escape sequence \\x"));
                }
                two
            };
            if digits.is_empty() || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                return Err(p.error("invalid escape sequence \\x"));
            }
            u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|&v| v <= 0x10FFFF)
                .and_then(char::from_u32)
                .ok_or_else(|| p.error("invalid escape sequence \\x"))
        }
        'a' => Ok('\u{7}'),
        'f' => Ok('\u{c}'),
        'n' => Ok('\n'),
        'r' => Ok('\r'),
        't' => Ok('\t'),
        'v' => Ok('\u{b}'),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
        c => Err(p.error(&format!("invalid escape sequence \\{c}"))),
    }
}

/// `\pN`, `\p{Name}`, `\p{^Name}`, `\PN`: the crate's class for it.
fn unicode_class(p: &mut Parser) -> Result<String, String> {
    let mut negated = p.peek(1) == Some('P');
    p.i += 2;
    let name: String = match p.peek(0) {
        Some('{') => {
            let start = p.i + 1;
            let end = p.s[start..]
                .iter()
                .position(|&c| c == '}')
                .map(|k| start + k)
                .ok_or_else(|| p.error("invalid character class range"))?;
            p.i = end + 1;
            p.s[start..end].iter().collect()
        }
        Some(c) => {
            p.i += 1;
            c.to_string()
        }
        None => return Err(p.error("invalid character class range")),
    };
    let name = match name.strip_prefix('^') {
        Some(rest) => {
            negated = !negated;
            rest.to_string()
        }
        None => name,
    };
    let table = unicode_table(&name)
        .ok_or_else(|| p.error(&format!("invalid character class range \\p{{{name}}}")))?;
    Ok(match (table, negated) {
        ("ASCII", false) => "[\\x00-\\x7F]".into(),
        ("ASCII", true) => "[^\\x00-\\x7F]".into(),
        (t, false) => format!("\\p{{{t}}}"),
        (t, true) => format!("\\P{{{t}}}"),
    })
}

/// The table Go 1.26 finds for a `\p` name, by the crate's name for it.
fn unicode_table(name: &str) -> Option<&'static str> {
    // Go's canonical name: no `_`, `-` or space, first letter upper case,
    // the others lower case.
    let mut canonical = String::new();
    for c in name.chars().filter(|c| !matches!(c, '_' | '-' | ' ')) {
        if canonical.is_empty() {
            canonical.push(c.to_ascii_uppercase());
        } else {
            canonical.push(c.to_ascii_lowercase());
        }
    }
    const CATEGORIES: [&str; 38] = [
        "C", "Cc", "Cf", "Cn", "Co", "Cs", "L", "LC", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc",
        "Me", "Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S",
        "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
    ];
    const ALIASES: [(&str, &str); 42] = [
        ("Casedletter", "LC"),
        ("Closepunctuation", "Pe"),
        ("Combiningmark", "M"),
        ("Connectorpunctuation", "Pc"),
        ("Control", "Cc"),
        ("Currencysymbol", "Sc"),
        ("Dashpunctuation", "Pd"),
        ("Decimalnumber", "Nd"),
        ("Enclosingmark", "Me"),
        ("Finalpunctuation", "Pf"),
        ("Format", "Cf"),
        ("Initialpunctuation", "Pi"),
        ("Letter", "L"),
        ("Letternumber", "Nl"),
        ("Lineseparator", "Zl"),
        ("Lowercaseletter", "Ll"),
        ("Mark", "M"),
        ("Mathsymbol", "Sm"),
        ("Modifierletter", "Lm"),
        ("Modifiersymbol", "Sk"),
        ("Nonspacingmark", "Mn"),
        ("Number", "N"),
        ("Openpunctuation", "Ps"),
        ("Other", "C"),
        ("Otherletter", "Lo"),
        ("Othernumber", "No"),
        ("Otherpunctuation", "Po"),
        ("Othersymbol", "So"),
        ("Paragraphseparator", "Zp"),
        ("Privateuse", "Co"),
        ("Punctuation", "P"),
        ("Separator", "Z"),
        ("Spaceseparator", "Zs"),
        ("Spacingmark", "Mc"),
        ("Surrogate", "Cs"),
        ("Symbol", "S"),
        ("Titlecaseletter", "Lt"),
        ("Unassigned", "Cn"),
        ("Uppercaseletter", "Lu"),
        ("Cntrl", "Cc"),
        ("Digit", "Nd"),
        ("Punct", "P"),
    ];
    match canonical.as_str() {
        "Any" => return Some("Any"),
        "Assigned" => return Some("Assigned"),
        "Ascii" => return Some("ASCII"),
        "Lc" => return Some("LC"),
        _ => {}
    }
    if let Some(c) = CATEGORIES.iter().find(|&&c| c == canonical) {
        return Some(c);
    }
    // Go's script names; only those already in canonical form can be found.
    if let Some(s) = SCRIPTS.iter().find(|&&s| s == canonical) {
        return Some(s);
    }
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == canonical)
        .map(|(_, c)| *c)
}

/// The Unicode 15.0 scripts Go knows whose names are in canonical form.
const SCRIPTS: &[&str] = &[
    "Adlam",
    "Ahom",
    "Arabic",
    "Armenian",
    "Avestan",
    "Balinese",
    "Bamum",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "Carian",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Common",
    "Coptic",
    "Cuneiform",
    "Cypriot",
    "Cyrillic",
    "Deseret",
    "Devanagari",
    "Dogra",
    "Duployan",
    "Elbasan",
    "Elymaic",
    "Ethiopic",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Inherited",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kharoshthi",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "Lao",
    "Latin",
    "Lepcha",
    "Limbu",
    "Lisu",
    "Lycian",
    "Lydian",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Medefaidrin",
    "Miao",
    "Modi",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "Nabataean",
    "Nandinagari",
    "Newa",
    "Nko",
    "Nushu",
    "Ogham",
    "Oriya",
    "Osage",
    "Osmanya",
    "Palmyrene",
    "Phoenician",
    "Rejang",
    "Runic",
    "Samaritan",
    "Saurashtra",
    "Sharada",
    "Shavian",
    "Siddham",
    "Sinhala",
    "Sogdian",
    "Soyombo",
    "Sundanese",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Toto",
    "Ugaritic",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Yezidi",
    "Yi",
];

/// A class, the parser after its `[`.
fn class(p: &mut Parser) -> Result<(), String> {
    let mut out = String::from("[");
    if p.peek(0) == Some('^') {
        p.i += 1;
        out.push('^');
    }
    let mut first = true;
    loop {
        let Some(c) = p.peek(0) else {
            return Err(p.error("missing closing ]"));
        };
        if c == ']' && !first {
            p.i += 1;
            break;
        }
        first = false;
        // A POSIX class, [:alpha:] or [:^alpha:].
        if c == '[' && p.peek(1) == Some(':') {
            let rest: String = p.s[p.i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                let bare = name.strip_prefix('^').unwrap_or(name);
                const POSIX: [&str; 14] = [
                    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
                    "print", "punct", "space", "upper", "word", "xdigit",
                ];
                if !POSIX.contains(&bare) {
                    return Err(p.error(&format!("invalid character class range [:{name}:]")));
                }
                out.push_str(&format!("[[:{name}:]]"));
                p.i += 2 + name.chars().count() + 2;
                continue;
            }
        }
        if c == '\\' {
            match p.peek(1) {
                Some('p' | 'P') => {
                    out.push_str(&unicode_class(p)?);
                    continue;
                }
                Some(k @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                    out.push_str(perl_class(k));
                    p.i += 2;
                    continue;
                }
                _ => {}
            }
        }
        let lo = class_char(p)?;
        if p.peek(0) == Some('-') && p.peek(1).is_some_and(|c| c != ']') {
            p.i += 1;
            let hi = class_char(p)?;
            if hi < lo {
                return Err(p.error("invalid character class range"));
            }
            out.push_str(&format!("{}-{}", hex(lo), hex(hi)));
        } else {
            out.push_str(&hex(lo));
        }
    }
    out.push(']');
    p.out.push_str(&out);
    Ok(())
}

fn class_char(p: &mut Parser) -> Result<char, String> {
    match p.peek(0) {
        Some('\\') => escaped_char(p),
        Some(c) => {
            p.i += 1;
            Ok(c)
        }
        None => Err(p.error("missing closing ]")),
    }
}
