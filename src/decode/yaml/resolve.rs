//! YAML 1.1 plain scalars as go-yaml v2 (`gopkg.in/yaml.v2`) resolves
//! them: which type a scalar's text stands for (`yes` a boolean, `0777`
//! octal, `0b1`, `1_000`, `.inf`, `08` a float), with Go's `strconv` rules
//! for the numbers.

use super::Go;

/// yaml.v2's `resolve`: the type a scalar's text stands for, as (tag, value).
/// A timestamp stays a string, as yaml.v2 leaves it in an `interface{}`.
pub(crate) fn resolve(text: &str, tag: Option<&str>) -> (&'static str, Go) {
    let string = ("str", Go::Str(text.into()));
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
                return ("timestamp", Go::Str(text.into()));
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
