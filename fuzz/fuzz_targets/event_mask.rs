//! Fuzzes event-mask text parsing and printing (`nri::api::EventMask`).
//!
//! Input layout: bytes 0..4 (little-endian i32) are raw mask bits for
//! `EventMask::from_bits`; the whole input, read as lossy UTF-8, is the
//! text for `EventMask::parse` / `FromStr`. Checked:
//!
//! - `parse` and `from_str` agree;
//! - `parse` succeeds exactly when every comma-separated, trimmed item is an
//!   event name or group, ignoring ASCII case (the names are taken from the
//!   crate's own `Display`, so this is an independent oracle); an error
//!   names the first bad item;
//! - a parsed mask is valid and non-empty, and its `Display` parses back to
//!   it;
//! - `Display` of raw bits lists one name per valid bit and parses back
//!   exactly when the bits are valid and non-empty; `!` stays within
//!   `EventMask::ALL`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::api::EventMask;
use nri::Error;

/// Every accepted name: the eleven event names as `Display` prints them,
/// plus the groups.
fn known_names() -> Vec<String> {
    let mut names: Vec<String> = (0..11)
        .map(|bit| EventMask::from_bits(1 << bit).to_string())
        .collect();
    names.extend(["all", "pod", "podsandbox", "container"].map(String::from));
    names
}

fn check_text(text: &str) {
    let parsed = EventMask::parse(text);
    let via_from_str: Result<EventMask, Error> = text.parse();
    match (&parsed, &via_from_str) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("parse and from_str disagree on {text:?}"),
    }

    let known = known_names();
    let is_known = |item: &str| known.iter().any(|k| k.eq_ignore_ascii_case(item));
    let first_bad = text.split(',').map(str::trim).find(|item| !is_known(item));
    match (parsed, first_bad) {
        (Ok(mask), None) => {
            assert!(mask.is_valid(), "parsed mask {mask:?} has bits outside ALL");
            assert!(!mask.is_empty(), "parsed mask of {text:?} is empty");
            let shown = mask.to_string();
            let again = EventMask::parse(&shown)
                .unwrap_or_else(|e| panic!("Display {shown:?} of {mask:?} does not parse: {e}"));
            assert_eq!(again, mask, "Display {shown:?} does not round-trip");
        }
        (Err(Error::UnknownEvent(name)), Some(bad)) => assert_eq!(name, bad),
        (Ok(mask), Some(bad)) => panic!("{text:?} parsed as {mask:?} despite item {bad:?}"),
        (Err(e), None) => panic!("{text:?} has only known items but fails: {e}"),
        (Err(e), Some(_)) => panic!("unexpected error kind for {text:?}: {e}"),
    }
}

fn check_bits(bits: i32) {
    let mask = EventMask::from_bits(bits);
    assert_eq!(mask.bits(), bits);
    let shown = mask.to_string();
    let _ = format!("{mask:?}");
    let valid_bits = bits & EventMask::ALL.bits();
    assert_eq!(mask.events().count(), valid_bits.count_ones() as usize);
    assert!((!mask).is_valid());
    assert_eq!((!mask) | (mask & EventMask::ALL), EventMask::ALL);
    let named = if shown.is_empty() {
        0
    } else {
        shown
            .split(',')
            .filter(|s| !s.starts_with("unknown("))
            .count()
    };
    assert_eq!(named, valid_bits.count_ones() as usize, "{shown:?}");
    match EventMask::parse(&shown) {
        Ok(again) => {
            assert!(mask.is_valid() && !mask.is_empty(), "{shown:?} parsed");
            assert_eq!(again, mask, "Display {shown:?} does not round-trip");
        }
        Err(_) => assert!(
            !mask.is_valid() || mask.is_empty(),
            "{shown:?} of {mask:?} fails"
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    if let [a, b, c, d, ..] = data {
        check_bits(i32::from_le_bytes([*a, *b, *c, *d]));
    }
    check_text(&String::from_utf8_lossy(data));
});
