//! Go's text forms of numbers and bytes, as `sigs.k8s.io/yaml` produces
//! them: how `json.Marshal` writes a `float64`, how a float becomes the text
//! of a string field (`strconv.FormatFloat(f, 'g', -1, 32)`), Go's
//! `strconv` integer parsing, base64 for `!!binary`, and invalid UTF-8
//! turned into U+FFFD.

/// Shortest decimal digits of a float that read back as it, and the
/// position of the decimal point (`0.DIGITS × 10^point`), from Rust's
/// shortest `{:e}` form.
fn shortest(formatted_e: &str) -> (bool, Vec<u8>, i32) {
    let (neg, rest) = match formatted_e.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, formatted_e),
    };
    let (mantissa, exp) = rest.split_once('e').unwrap_or((rest, "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    if digits.iter().all(|&d| d == b'0') {
        return (neg, Vec::new(), 0);
    }
    (neg, digits, exp + 1)
}

/// Go's `%e` with all `digits`.
fn fmt_e(neg: bool, digits: &[u8], point: i32) -> String {
    let mut s = String::from(if neg { "-" } else { "" });
    s.push(digits.first().map_or('0', |&d| char::from(d)));
    if digits.len() > 1 {
        s.push('.');
        s.extend(digits[1..].iter().map(|&d| char::from(d)));
    }
    let exp = if digits.is_empty() { 0 } else { point - 1 };
    s.push_str(&format!(
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    ));
    s
}

/// Go's `%f` with `frac` digits after the point.
fn fmt_f(neg: bool, digits: &[u8], point: i32, frac: i32) -> String {
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .map_or('0', |&d| char::from(d))
    };
    let mut s = String::from(if neg { "-" } else { "" });
    if point > 0 {
        s.extend((0..point).map(digit));
    } else {
        s.push('0');
    }
    if frac > 0 {
        s.push('.');
        s.extend((0..frac).map(|i| digit(point + i)));
    }
    s
}

fn digit_count(digits: &[u8]) -> i32 {
    i32::try_from(digits.len()).unwrap_or(i32::MAX)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`: the text `sigs.k8s.io/yaml`
/// gives a float decoded into a string field, or used as a mapping key.
pub(crate) fn format_g32(f: f64) -> String {
    // The float is rounded to 32 bits first, as Go's bitSize 32 does.
    #[allow(clippy::cast_possible_truncation)]
    let f = f as f32;
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    shortest_g(&format!("{f:e}"))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, as `%v` and `%#v` show a
/// `float64` in messages.
pub(crate) fn format_g64(f: f64) -> String {
    if f.is_nan() || f.is_infinite() {
        return format_g64_special(f).into();
    }
    shortest_g(&format!("{f:e}"))
}

/// Go's shortest `%g` of a number Rust wrote as `{:e}` (itself shortest):
/// exponent form below 1e-4 or from 1e6 on, plain decimals otherwise.
fn shortest_g(sci: &str) -> String {
    let (neg, digits, point) = shortest(sci);
    let exp = point - 1;
    if !digits.is_empty() && !(-4..6).contains(&exp) {
        fmt_e(neg, &digits, point)
    } else {
        fmt_f(neg, &digits, point, (digit_count(&digits) - point).max(0))
    }
}

/// How Go's `json.Marshal` writes a finite `float64`.
pub(crate) fn json_float(f: f64) -> String {
    let (neg, digits, point) = shortest(&format!("{f:e}"));
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = fmt_e(neg, &digits, point);
        // Go writes e-7, not e-07.
        match s.split_once("e-0") {
            Some((m, e)) => format!("{m}e-{e}"),
            None => s,
        }
    } else {
        fmt_f(neg, &digits, point, (digit_count(&digits) - point).max(0))
    }
}

/// How Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes a float, as in
/// `json: unsupported value: +Inf`.
pub(crate) fn format_g64_special(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

/// Go's `strconv.ParseInt(s, 10, bits)`: an optional sign and decimal
/// digits, a value that fits in `bits` bits (64 or more: in an `i64`).
pub(crate) fn parse_go_int(s: &str, bits: u32) -> Option<i64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i: i64 = s.parse().ok()?;
    let fits = bits >= 64 || {
        let half = 1i64 << (bits - 1);
        (-half..half).contains(&i)
    };
    fits.then_some(i)
}

/// Go's `strconv.ParseUint(s, 10, bits)`: decimal digits only, no sign, a
/// value that fits in `bits` bits (64 or more: in a `u64`).
pub(crate) fn parse_go_uint(s: &str, bits: u32) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let u: u64 = s.parse().ok()?;
    (bits >= 64 || u < (1u64 << bits)).then_some(u)
}

/// Go's `base64.StdEncoding.DecodeString` on `!!binary` text (line breaks
/// ignored, padding required).
pub(crate) fn base64(text: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    base64_strict(&clean).ok()
}

/// Go's `base64.StdEncoding.Decode`: `Err(offset)` of the first illegal byte.
pub(crate) fn base64_strict(clean: &[u8]) -> Result<Vec<u8>, usize> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let quads = clean.len().div_ceil(4);
    for (n, quad) in clean.chunks(4).enumerate() {
        let at = n * 4;
        let last = n + 1 == quads;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if quad.len() < 4 {
            // Go reports the offset where the input ran short.
            let bad = quad.iter().position(|&c| value(c).is_none());
            return Err(at + bad.unwrap_or(quad.len()));
        }
        if pad > 2 || (pad > 0 && !last) {
            return Err(at + 4 - pad);
        }
        let mut acc = 0u32;
        for (i, &c) in quad[..4 - pad].iter().enumerate() {
            acc = (acc << 6) | value(c).ok_or(at + i)?;
        }
        acc <<= 6 * pad;
        let bytes = acc.to_be_bytes();
        let bytes = [bytes[1], bytes[2], bytes[3]];
        // Bits beyond the data must be zero, as Go's strict decoder checks.
        if (pad == 1 && bytes[2] != 0) || (pad == 2 && bytes[1] != 0) {
            return Err(at + 4 - pad - 1);
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

/// Bytes as Go's JSON encoder writes them: U+FFFD for each invalid byte.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = &bad[1..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        assert_eq!(json_float(1.0), "1");
        assert_eq!(json_float(1.5), "1.5");
        assert_eq!(json_float(-0.0), "-0");
        assert_eq!(json_float(1e20), "100000000000000000000");
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(1e-7), "1e-7");
        assert_eq!(json_float(0.000001), "0.000001");
        assert_eq!(format_g32(0.1), "0.1");
        assert_eq!(format_g32(2.5), "2.5");
        assert_eq!(format_g32(1e30), "1e+30");
        assert_eq!(format_g32(1.234_567_891_234), "1.2345679");
        assert_eq!(format_g32(1e20), "1e+20");
        assert_eq!(format_g32(123456789.0), "1.2345679e+08");
        assert_eq!(format_g32(1000.0), "1000");
        assert_eq!(format_g32(0.0001), "0.0001");
        assert_eq!(format_g32(0.00001), "1e-05");
        assert_eq!(format_g32(f64::INFINITY), "+Inf");
    }

    #[test]
    fn integers_parse_as_strconv_does() {
        assert_eq!(parse_go_int("-0", 64), Some(0));
        assert_eq!(parse_go_int("+5", 64), Some(5));
        assert_eq!(parse_go_int("1.0", 64), None);
        assert_eq!(parse_go_int("9223372036854775808", 64), None);
        assert_eq!(parse_go_int("-128", 8), Some(-128));
        assert_eq!(parse_go_int("128", 8), None);
        assert_eq!(parse_go_int("-2147483649", 32), None);
        assert_eq!(parse_go_uint("-0", 64), None);
        assert_eq!(parse_go_uint("18446744073709551615", 64), Some(u64::MAX));
        assert_eq!(parse_go_uint("255", 8), Some(255));
        assert_eq!(parse_go_uint("65536", 16), None);
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64("aGk").as_deref(), None);
        assert_eq!(base64("aGl=").as_deref(), None); // non-zero trailing bits
        assert_eq!(base64("aG\nk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(lossy(b"a\xffb"), "a\u{FFFD}b");
    }
}
