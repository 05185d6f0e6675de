//! The examples' shared flags and YAML reader.

use super::*;

#[test]
fn flags_parse_like_go_flags() {
    let extra = [common::Flag {
        name: "events",
        value: Some("LIST"),
        help: "",
    }];
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cli = common::Cli::parse_from(
        args(&[
            "-idx",
            "10",
            "--name=logger",
            "-events",
            "pod",
            "-verbose",
            "-socket",
            "/tmp/nri.sock",
        ]),
        &extra,
    )
    .unwrap()
    .unwrap();
    assert_eq!(cli.idx.as_deref(), Some("10"));
    assert_eq!(cli.name.as_deref(), Some("logger"));
    assert_eq!(cli.value("events"), Some("pod"));
    assert!(cli.verbose && !cli.reconnect);
    assert_eq!(cli.socket, Some(PathBuf::from("/tmp/nri.sock")));
    assert!(common::Cli::parse_from(args(&["-h"]), &extra)
        .unwrap()
        .is_none());
    assert!(common::Cli::parse_from(args(&["-bogus"]), &extra)
        .unwrap_err()
        .contains("-bogus"));
    assert!(common::Cli::parse_from(args(&["-idx"]), &extra)
        .unwrap_err()
        .contains("needs a value"));
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

#[test]
fn yaml_reads_block_lists_of_maps_with_compact_nested_lists() {
    let doc = yaml::parse(
        "# devices\n- path: /dev/a   # comment\n  major: 1\n  options:\n  - bind\n  - ro\n-   path: '/dev/b c'\n    empty:\n",
    )
    .unwrap();
    assert_eq!(
        doc,
        Value::Seq(vec![
            Value::Map(vec![
                ("path".into(), s("/dev/a")),
                ("major".into(), s("1")),
                ("options".into(), Value::Seq(vec![s("bind"), s("ro")])),
            ]),
            Value::Map(vec![
                ("path".into(), s("/dev/b c")),
                ("empty".into(), Value::Null)
            ]),
        ])
    );
}

#[test]
fn yaml_reads_json_and_flow_collections_across_lines() {
    let doc = yaml::parse(
        "{\n  \"a\": [1, \"two\",\n        {\"k\": \"v\\n\\u00e9\"}],\n  \"b\": true\n}\n",
    )
    .unwrap();
    assert_eq!(
        doc,
        Value::Map(vec![
            (
                "a".into(),
                Value::Seq(vec![
                    s("1"),
                    s("two"),
                    Value::Map(vec![("k".into(), s("v\né"))])
                ])
            ),
            ("b".into(), s("true")),
        ])
    );
    assert_eq!(doc.get("b").unwrap().to_bool("b"), Ok(true));
}

#[test]
fn yaml_reads_nested_maps_and_block_scalars() {
    let doc = yaml::parse("outer:\n  inner: x\n  list: [a, b]\ntext: |\n  line 1\n  line 2\nfold: >-\n  one\n  two\nlast: \"q\"\n").unwrap();
    assert_eq!(doc.get("outer").unwrap().get("inner"), Some(&s("x")));
    assert_eq!(doc.get("text"), Some(&s("line 1\nline 2\n")));
    assert_eq!(doc.get("fold"), Some(&s("one two")));
    assert_eq!(doc.get("last"), Some(&s("q")));
}

#[test]
fn yaml_numbers_follow_yaml_1_1_as_go_yaml_v2_resolves_them() {
    use common::goyaml::{decode, Go};
    let n = |t: &str| decode(t).unwrap();
    assert_eq!(n("0666"), Go::Int(0o666));
    assert_eq!(n("0o17"), Go::Int(15));
    assert_eq!(n("0x1F"), Go::Int(31));
    assert_eq!(n("0b11"), Go::Int(3));
    assert_eq!(n("1_000"), Go::Int(1000));
    assert_eq!(n("+1"), Go::Int(1));
    assert_eq!(n("-0"), Go::Int(0));
    assert_eq!(n("08"), Go::Float(8.0), "not octal, so a float");
    assert_eq!(n("1e3"), Go::Float(1000.0));
    assert_eq!(n("1.0"), Go::Float(1.0));
    assert_eq!(n(".inf"), Go::Float(f64::INFINITY));
    assert_eq!(n("18446744073709551615"), Go::Uint(u64::MAX));
    assert_eq!(n("yes"), Go::Bool(true));
    assert_eq!(n("Off"), Go::Bool(false));
    assert_eq!(n("~"), Go::Nil);
    assert_eq!(n("'1'"), Go::Str("1".into()), "a quoted number is a string");
    assert_eq!(n("!!str 1"), Go::Str("1".into()));
    assert_eq!(n("!!float 1"), Go::Float(1.0));
    assert!(decode("!!int 1.5").is_err());
}

#[test]
fn yaml_errors_name_the_line() {
    let err = yaml::parse("a: 1\n  b: 2\n").unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    let err = yaml::parse("- a\n- [b\n").unwrap_err();
    assert!(err.line > 0, "{err}");
    // As in Go: anchors and aliases resolve, a later duplicate key wins.
    assert_eq!(
        yaml::parse("a: &anchor 1\nb: *anchor\n").unwrap(),
        Value::Map(vec![("a".into(), s("1")), ("b".into(), s("1"))])
    );
    assert_eq!(
        yaml::parse("a: 1\na: 2\n").unwrap(),
        Value::Map(vec![("a".into(), s("2"))])
    );
    assert_eq!(yaml::parse("").unwrap(), Value::Null);
    assert_eq!(yaml::parse("# only a comment\n").unwrap(), Value::Null);
}
