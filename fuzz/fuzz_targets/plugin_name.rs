//! Fuzzes the plugin identity rules (`nri::api::parse_plugin_name`,
//! `validate_plugin_name`, `validate_plugin_index`) on arbitrary strings
//! (the input as lossy UTF-8). Checked against a plain restatement of the
//! rules, over `char`s rather than bytes:
//!
//! - a successful `parse_plugin_name` gives a valid index and a name that
//!   re-join to the input (`format!("{idx}-{name}") == input`), split at the
//!   first `-`;
//! - a failed one is `InvalidPluginName` exactly when there is no `-`, else
//!   `InvalidPluginIndex` naming the part before the first `-`;
//! - the index rule is "exactly two ASCII digits", the name rule
//!   "non-empty, only `[A-Za-z0-9_.+-]`", and errors name the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::api::{parse_plugin_name, validate_plugin_index, validate_plugin_name};
use nri::Error;

fn index_ok(s: &str) -> bool {
    s.chars().count() == 2 && s.chars().all(|c| c.is_ascii_digit())
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
}

fn check(s: &str) {
    match parse_plugin_name(s) {
        Ok((idx, name)) => {
            assert_eq!(format!("{idx}-{name}"), s);
            assert!(index_ok(&idx), "index {idx:?} of {s:?} accepted");
            assert!(!idx.contains('-'), "split of {s:?} not at the first '-'");
        }
        Err(Error::InvalidPluginName { name, .. }) => {
            assert!(
                !s.contains('-'),
                "{s:?} has a '-' but was refused as a name"
            );
            assert_eq!(name, s);
        }
        Err(Error::InvalidPluginIndex { index }) => {
            let (before, _) = s.split_once('-').expect("index error implies a '-'");
            assert_eq!(index, before);
            assert!(!index_ok(before), "valid index {before:?} refused");
        }
        Err(e) => panic!("unexpected error kind for {s:?}: {e}"),
    }

    match validate_plugin_index(s) {
        Ok(()) => assert!(index_ok(s), "index {s:?} accepted"),
        Err(e) => {
            assert!(!index_ok(s), "index {s:?} refused");
            assert!(matches!(&e, Error::InvalidPluginIndex { index } if index == s));
            assert!(e.to_string().contains(&format!("{s:?}")));
        }
    }

    match validate_plugin_name(s) {
        Ok(()) => assert!(name_ok(s), "name {s:?} accepted"),
        Err(e) => {
            assert!(!name_ok(s), "name {s:?} refused");
            assert!(matches!(&e, Error::InvalidPluginName { name, .. } if name == s));
            assert!(e.to_string().contains(&format!("{s:?}")));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});
