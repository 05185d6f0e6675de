//! `nri::decode` through its public API: the Go rules a plugin author relies
//! on, the bounds, and hostile input. The case-by-case comparison with Go
//! itself is `tests/ports` (`tests/ports/run.sh`).

use std::collections::BTreeMap;

use nri::decode::{self, ErrorKind, Value};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Config {
    name: String,
    port: u16,
    verbose: bool,
    ratio: f64,
    labels: BTreeMap<String, String>,
    rules: Vec<Rule>,
    limit: Option<i64>,
    #[serde(rename = "logFile")]
    log_file: String,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Rule {
    pattern: String,
    count: u32,
}

fn config(text: &str) -> Config {
    decode::from_yaml(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn error(text: &str) -> decode::Error {
    decode::from_yaml::<Config>(text).expect_err(text)
}

#[test]
fn yaml_1_1_scalars_and_go_field_matching() {
    let c = config(
        "NAME: 0x10\nPort: 0o17\nverbose: on\nratio: 1_000.5\nLABELS: {a: yes, b: 1.50}\n\
         rules: [{Pattern: '*', COUNT: 07}]\nlimit: ~\nLOGFILE: /var/log/x",
    );
    assert_eq!(c.name, "16"); // a number into a string: its text
    assert_eq!(c.port, 15);
    assert!(c.verbose);
    assert_eq!(c.ratio, 1000.5);
    assert_eq!(c.labels["a"], "true");
    assert_eq!(c.labels["b"], "1.5");
    assert_eq!(
        c.rules,
        [Rule {
            pattern: "*".into(),
            count: 7
        }]
    );
    assert_eq!(c.limit, None);
    assert_eq!(c.log_file, "/var/log/x");
}

#[test]
fn later_keys_win_and_null_leaves_a_field_alone() {
    let c = config("name: a\nName: b\nport: 1\nport: 2");
    // Sorted keys: "Name" before "name"; of two "port" keys YAML keeps the later.
    assert_eq!((c.name.as_str(), c.port), ("a", 2));
    let c = config("Name: kept\nname: ~");
    assert_eq!(c.name, "kept");
    // Later mappings add to the struct; later lists decode into the elements.
    let c = config("RULES: [{pattern: a, count: 1}, {pattern: b}]\nrules: [{count: 5}]");
    assert_eq!(
        c.rules,
        [Rule {
            pattern: "a".into(),
            count: 5
        }]
    );
}

#[test]
fn go_number_rules() {
    assert_eq!(config("port: 1.0").port, 1);
    let e = error("port: 1.5");
    assert_eq!(e.kind(), ErrorKind::Type);
    assert_eq!(
        e.to_string(),
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number 1.5 \
         into Go struct field Config.port of type uint16"
    );
    assert_eq!(
        error("port: 70000").to_string(),
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number 70000 \
         into Go struct field Config.port of type uint16"
    );
    assert_eq!(
        error("rules: [{count: x}]").to_string(),
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string \
         into Go struct field Rule.rules.count of type uint32"
    );
    // The first error in document (sorted key) order is the one reported.
    assert!(error("verbose: 2\nport: x")
        .to_string()
        .contains("Config.port of type uint16"));
    assert_eq!(
        error("ratio: .nan").to_string(),
        "error converting YAML to JSON: json: unsupported value: NaN"
    );
    assert_eq!(config("name: .nan").name, "NaN");
}

#[test]
fn syntax_errors_name_yaml_v2_lines() {
    let e = error("name: a\nport: 1\n  x: y");
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(
        e.to_string(),
        "error converting YAML to JSON: yaml: line 3: mapping values are not allowed in this context"
    );
    assert_eq!(
        error("~: a").to_string(),
        "error converting YAML to JSON: Unsupported map key of type: %!s(<nil>), key: <nil>, value: \"a\""
    );
    assert_eq!(error("~: a").kind(), ErrorKind::Unsupported);
}

#[test]
fn the_generic_value_takes_anything() {
    let v: Value =
        decode::from_yaml("a: [1, 2.5, yes, ~, x]\nb: {c: 18446744073709551615}").unwrap();
    let a = v.get("a").and_then(Value::as_seq).unwrap();
    assert_eq!(a[0].as_i64(), Some(1));
    assert_eq!(a[1].as_f64(), Some(2.5));
    assert_eq!(a[2].as_bool(), Some(true));
    assert!(a[3].is_null());
    assert_eq!(a[4].as_str(), Some("x"));
    let big = v
        .get("b")
        .and_then(|b| b.get("c"))
        .and_then(Value::as_number);
    assert_eq!(big.and_then(|n| n.as_u64()), Some(u64::MAX));
    assert_eq!(big.unwrap().to_string(), "18446744073709551615");
    assert_eq!(decode::from_yaml::<Value>("").unwrap(), Value::Null);
}

#[test]
fn json_is_decoded_as_encoding_json_decodes_it() {
    let c: Config = decode::from_json(br#"{"NAME": "x", "port": 80, "rules": null}"#).unwrap();
    assert_eq!((c.name.as_str(), c.port), ("x", 80));
    let e = decode::from_json::<Config>(br#"{"name": 1}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal number into Go struct field Config.name of type string"
    );
    let e = decode::from_json::<Config>(b"{\"name\": \"x\"").unwrap_err();
    assert_eq!(e.to_string(), "unexpected end of JSON input");
    assert_eq!(e.kind(), ErrorKind::Syntax);
}

#[test]
fn a_struct_without_serde_default_says_how_to_read_missing_fields_as_go_does() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
        port: u16,
    }
    let e = decode::from_yaml::<Strict>("name: x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other);
    assert!(e.to_string().contains("missing field `port`"), "{e}");
    assert!(e.to_string().contains("#[serde(default)]"), "{e}");
}

#[test]
fn alias_bombs_are_refused_with_bounded_memory() {
    let mut bomb = String::from("a0: &a0 [x, y, z, w, v, u, t, s, r, q]\n");
    for i in 1..12 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            std::iter::repeat(prev.as_str())
                .take(10)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let e = decode::from_yaml::<Value>(&bomb).unwrap_err();
    assert!(
        e.to_string().contains("excessive aliasing") || e.kind() == ErrorKind::Limit,
        "{e}"
    );
}

#[test]
fn deep_nesting_is_bounded_and_fits_a_small_thread_stack() {
    let depth = decode::MAX_DEPTH - 2;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let too_deep = format!("{}{}", "[".repeat(depth + 10), "]".repeat(depth + 10));
    let json_deep = deep.clone();
    // Handler threads of the stub have the default 2 MiB stack.
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let v: Value = decode::from_yaml(&deep).expect("the deepest nesting allowed decodes");
            let mut d = 0;
            let mut at = &v;
            while let Some([inner, ..]) = at.as_seq() {
                at = inner;
                d += 1;
            }
            let json: Value = decode::from_json(json_deep.as_bytes()).expect("JSON too");
            drop(json);
            (d, decode::from_yaml::<Value>(&too_deep).unwrap_err())
        })
        .expect("thread");
    let (d, e) = worker.join().expect("no stack overflow");
    assert_eq!(d, depth - 1);
    assert_eq!(e.kind(), ErrorKind::Limit);
    assert!(
        e.to_string()
            .contains(&format!("nesting deeper than {} levels", decode::MAX_DEPTH)),
        "{e}"
    );
}

#[test]
fn hostile_corners_of_the_parser_give_errors_not_panics() {
    for text in [
        "[!a, b]",
        "{a: !x, b: 1}",
        "tags:\n[!c'x',\n  y]\n",
        "a: \"x\\",
        "a: |\n  b",
        "- |2\n    ",
        "|+\u{85}  a:b",
        "[!<tag:yaml.org,2002:int>, 1]",
    ] {
        let result = std::panic::catch_unwind(|| decode::from_yaml::<Value>(text));
        assert!(result.is_ok(), "{text:?} panicked");
    }
    assert_eq!(
        decode::from_yaml::<BTreeMap<String, String>>("a: |\n  b").unwrap()["a"],
        "b"
    );
}

#[test]
fn yaml_1_1_numbers_resolve_as_go_yaml_v2_resolves_them() {
    let n = |text: &str| decode::from_yaml::<Value>(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let int = |text: &str| n(text).as_i64();
    assert_eq!(int("0666"), Some(0o666));
    assert_eq!(int("0o17"), Some(15));
    assert_eq!(int("0x1F"), Some(31));
    assert_eq!(int("0b11"), Some(3));
    assert_eq!(int("1_000"), Some(1000));
    assert_eq!(int("+1"), Some(1));
    assert_eq!(int("-0"), Some(0));
    // Not octal, so a float.
    assert_eq!(
        n("08").as_number().map(|x| (x.is_integer(), x.as_f64())),
        Some((false, 8.0))
    );
    assert_eq!(n("1e3").as_f64(), Some(1000.0));
    assert_eq!(n("1.0").as_number().map(|x| x.is_integer()), Some(false));
    assert_eq!(
        n("18446744073709551615")
            .as_number()
            .and_then(|x| x.as_u64()),
        Some(u64::MAX)
    );
    assert_eq!(n("yes").as_bool(), Some(true));
    assert_eq!(n("Off").as_bool(), Some(false));
    assert!(n("~").is_null());
    assert_eq!(n("'1'").as_str(), Some("1"), "a quoted number is a string");
    assert_eq!(n("!!str 1").as_str(), Some("1"));
    assert_eq!(n("!!float 1").as_f64(), Some(1.0));
    assert_eq!(n("190:20:30").as_str(), Some("190:20:30"));
    assert!(decode::from_yaml::<Value>("!!int 1.5").is_err());
    // Anchors and aliases resolve; a later duplicate key wins.
    let v = n("a: &anchor 1\nb: *anchor\na: 2\n");
    assert_eq!(
        (
            v.get("a").and_then(Value::as_i64),
            v.get("b").and_then(Value::as_i64)
        ),
        (Some(2), Some(1))
    );
}
