//! Our `.proto` files against upstream's and against our own rules.
//!
//! `proto/nri.proto` must state exactly what containerd/nri v0.12.5's
//! `pkg/api/api.proto` states (same statements, same order, same scopes),
//! comments aside: names, numbers and types are wire facts. Its comments
//! are ours: every message, field, enum and enum value has one (they become
//! the rustdoc of `nri::api`), and none repeats upstream's text.
//!
//! The upstream file comes from `NRI_UPSTREAM_API_PROTO` (a path), else
//! from the Go module cache (`go mod download`, which fetches it through
//! the Go module proxy when needed). Without Go the comparison is skipped
//! with a notice, except under `CI`, where it fails.

#[path = "../build/proto_reader.rs"]
mod proto_reader;

use std::path::PathBuf;
use std::process::Command;

use proto_reader::{parse, Kind, ProtoFile};

const UPSTREAM_MODULE: &str = "github.com/containerd/nri@v0.12.5";
/// Statements upstream has that only matter to Go code generation.
const GO_ONLY: &[&str] = &["option go_package = \"github.com/containerd/nri/pkg/api;api\""];

fn ours(file: &str) -> ProtoFile {
    let path = format!("{}/proto/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Where upstream's `api.proto` is, if it can be found or fetched.
fn upstream_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NRI_UPSTREAM_API_PROTO") {
        return Ok(PathBuf::from(path));
    }
    let output = Command::new("go")
        .args(["mod", "download", "-json", UPSTREAM_MODULE])
        .current_dir(std::env::temp_dir())
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("cannot run go: {e}"))?;
    let json = String::from_utf8_lossy(&output.stdout);
    // One `"Dir": "/path"` line in go's JSON output.
    let dir = json
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"Dir\": \""))
        .and_then(|rest| rest.strip_suffix("\","))
        .ok_or_else(|| {
            format!(
                "go mod download {UPSTREAM_MODULE} gave no directory: {json}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    Ok(PathBuf::from(dir).join("pkg/api/api.proto"))
}

/// Upstream's file, or `None` (with a notice) when it cannot be had outside
/// CI.
fn upstream() -> Option<ProtoFile> {
    match upstream_path()
        .and_then(|p| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display())))
    {
        Ok(text) => Some(parse(&text).unwrap_or_else(|e| panic!("upstream api.proto: {e}"))),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping the comparison with upstream api.proto: {e}");
            None
        }
        Err(e) => panic!("upstream api.proto is needed under CI: {e}"),
    }
}

fn statements(file: &ProtoFile) -> Vec<String> {
    file.elements
        .iter()
        .filter(|e| !(e.scope.is_empty() && GO_ONLY.contains(&e.statement.as_str())))
        .map(|e| format!("{}: {}", e.scope, e.statement))
        .collect()
}

#[test]
fn nri_proto_states_exactly_what_upstream_v0_12_5_states() {
    let Some(upstream) = upstream() else { return };
    let ours = ours("nri.proto");
    assert_eq!(ours.package, upstream.package);
    let (a, b) = (statements(&ours), statements(&upstream));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "statement {i} differs (ours, then upstream's)");
    }
    assert_eq!(
        a.len(),
        b.len(),
        "ours has {} statements, upstream {}: the extra ones are {:?}",
        a.len(),
        b.len(),
        if a.len() > b.len() {
            &a[b.len()..]
        } else {
            &b[a.len()..]
        }
    );
    // Sanity: the comparison saw the whole API.
    assert!(a.len() > 350, "only {} statements read", a.len());
    assert!(a.contains(&"ConfigureResponse: FailurePolicy failure_policy = 3".to_string()));
}

#[test]
fn no_comment_repeats_upstream_text() {
    let Some(upstream) = upstream() else { return };
    let norm = |doc: &[String]| {
        doc.join(" ")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ours = ours("nri.proto");
    let mut copied = Vec::new();
    for theirs in upstream.elements.iter().filter(|e| !e.doc.is_empty()) {
        let their_text = norm(&theirs.doc);
        if their_text.split(' ').count() < 4 {
            continue;
        }
        for mine in &ours.elements {
            for line in &mine.doc {
                let line = norm(std::slice::from_ref(line));
                if line.split(' ').count() >= 6 && their_text.contains(&line) {
                    copied.push(format!("{} line {}: {line:?}", mine.name, mine.line));
                }
            }
        }
    }
    assert!(
        copied.is_empty(),
        "comment lines found in upstream's text: {copied:#?}"
    );
}

#[test]
fn every_message_field_enum_and_value_has_a_comment() {
    for file in ["nri.proto", "ttrpc.proto", "status.proto"] {
        let parsed = ours(file);
        let documented = [Kind::Message, Kind::Field, Kind::Enum, Kind::EnumValue];
        let bare: Vec<&str> = parsed
            .elements
            .iter()
            .filter(|e| documented.contains(&e.kind) && e.doc.is_empty())
            .map(|e| e.name.as_str())
            .collect();
        assert!(bare.is_empty(), "{file}: without a comment: {bare:?}");
    }
}

#[test]
fn elements_newer_than_v0_9_0_say_since_when() {
    let parsed = ours("nri.proto");
    for name in [
        "nri.pkg.api.v1alpha1.Container.created_at",
        "nri.pkg.api.v1alpha1.Container.user",
        "nri.pkg.api.v1alpha1.Container.image",
        "nri.pkg.api.v1alpha1.ConfigureResponse.failure_policy",
        "nri.pkg.api.v1alpha1.LinuxContainerAdjustment.memory_policy",
        "nri.pkg.api.v1alpha1.RegisterPluginRequest.NRI_version",
    ] {
        let element = parsed.find(Kind::Field, name).expect(name);
        assert!(
            element.doc.iter().any(|l| l.contains("Since NRI v0.")),
            "{name}: {:?}",
            element.doc
        );
    }
}

#[test]
fn reader_names_nested_elements_as_protobuf_codegen_does() {
    let file = parse(
        "syntax = \"proto3\";\npackage a.b;\n\n\
         // The outer message.\n// Second line.\nmessage Outer {\n\
         \x20 // A field.\n  map<string, string> labels = 1; // trailing: ignored\n\
         \x20 // The level.\n  enum Level {\n    // Zero.\n    ZERO = 0;\n  }\n\
         \x20 oneof choice {\n    // In a oneof.\n    string s = 2;\n  }\n}\n\
         service S {\n  // Calls.\n  rpc Call(Outer) returns (Outer) {}\n  rpc Other(Outer) returns (Outer);\n}\n",
    )
    .unwrap();
    assert_eq!(file.package, "a.b");
    let outer = file.find(Kind::Message, "a.b.Outer").unwrap();
    assert_eq!(outer.doc, ["The outer message.", "Second line."]);
    let labels = file.find(Kind::Field, "a.b.Outer.labels").unwrap();
    assert_eq!(labels.doc, ["A field."]);
    assert_eq!(labels.statement, "map < string , string > labels = 1");
    assert_eq!(
        file.find(Kind::Enum, "a.b.Outer.Level").unwrap().doc,
        ["The level."]
    );
    let zero = file.find(Kind::EnumValue, "a.b.Outer.Level.ZERO").unwrap();
    assert_eq!(
        (zero.doc.as_slice(), zero.scope.as_str()),
        (&["Zero.".to_string()][..], "Outer.Level")
    );
    // A oneof's fields belong to the message.
    assert_eq!(
        file.find(Kind::Field, "a.b.Outer.s").unwrap().doc,
        ["In a oneof."]
    );
    // `rpc … {}` and `rpc …;` read the same.
    let call = file.find(Kind::Rpc, "a.b.S.Call").unwrap();
    assert_eq!(call.statement, "rpc Call ( Outer ) returns ( Outer )");
    assert_eq!(call.doc, ["Calls."]);
    assert!(file.find(Kind::Rpc, "a.b.S.Other").unwrap().doc.is_empty());
}

#[test]
fn reader_keeps_only_the_comment_right_above() {
    let file = parse(
        "package p;\n// Detached: a blank line follows.\n\n// Attached.\nmessage M {\n\
         \x20 /* block */\n  string a = 1;\n  // Above b.\n\n  string b = 2;\n}\n",
    )
    .unwrap();
    assert_eq!(file.find(Kind::Message, "p.M").unwrap().doc, ["Attached."]);
    assert!(file.find(Kind::Field, "p.M.a").unwrap().doc.is_empty());
    assert!(file.find(Kind::Field, "p.M.b").unwrap().doc.is_empty());
}

#[test]
fn reader_refuses_what_it_does_not_understand_naming_the_line() {
    for (text, needle) in [
        ("package p;\nmessage M {\n  string a = 1\n}\n", "line 3"),
        ("package p;\nmessage M {\n", "end of file"),
        ("package p;\n}\n", "line 2"),
        ("package p;\nmessage M { string a = 1; @ }\n", "line 2"),
        ("package p;\nmessage M { string a; }\n", "no number"),
        ("package p;\n/* open\n", "line 2"),
    ] {
        let err = parse(text).expect_err(text);
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}
