//! Fuzzes `nri::decode` (feature `go-yaml`): YAML and JSON text from a
//! pod annotation or a configuration file, decoded into a typed struct and
//! into the generic `Value`.
//!
//! The input, read as lossy UTF-8, is decoded by `from_yaml` and
//! `from_json` into a struct with a field of every shape and into `Value`.
//! Checked: nothing panics (libyaml-safer panics on a few inputs that the
//! decoder must catch before parsing) or runs away; an error has a message
//! of the family its kind says; a text that decodes into `Value` decodes
//! into `Value` again the same way.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use nri::decode::{self, ErrorKind, Value};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[allow(dead_code)]
struct Inner {
    name: String,
    count: i32,
    tags: Vec<String>,
    ok: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[allow(dead_code)]
struct Shapes {
    s: String,
    b: bool,
    i8: i8,
    u: u64,
    f32: f32,
    ps: Option<String>,
    l: Vec<i64>,
    m: BTreeMap<String, String>,
    inner: Inner,
    inners: Vec<Inner>,
    pair: (String, u16),
    any: Value,
}

fn check(result: Result<(), decode::Error>, json: bool) {
    let Err(e) = result else { return };
    let text = e.to_string();
    assert!(!text.is_empty());
    if !json {
        assert!(text.starts_with("error "), "{text}");
    }
    if e.kind() == ErrorKind::Type && !text.contains("base64") {
        assert!(text.contains("json: cannot unmarshal "), "{text}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let value = decode::from_yaml::<Value>(&text);
    check(value.as_ref().map(|_| ()).map_err(Clone::clone), false);
    if let Ok(v) = &value {
        assert_eq!(decode::from_yaml::<Value>(&text).as_ref(), Ok(v));
    }
    check(decode::from_yaml::<Shapes>(&text).map(|_| ()), false);
    check(decode::from_yaml::<Vec<Inner>>(&text).map(|_| ()), false);
    check(decode::from_json::<Shapes>(data).map(|_| ()), true);
    check(decode::from_json::<Value>(data).map(|_| ()), true);
});
