//! Generates Rust types for the NRI API and the ttrpc envelope from the
//! `.proto` files in `proto/`, with protobuf-codegen's pure-Rust parser (no
//! `protoc` needed), then documents them.
//!
//! The pure parser drops the comments of the `.proto` files, so the
//! generated code would have no rustdoc. The generator leaves a marker
//! comment above every message, field, enum and enum value
//! (`// @@protoc_insertion_point(field:nri.pkg.api.v1alpha1.Container.id)`);
//! this script reads our comments out of the `.proto` files
//! (`build/proto_reader.rs`) and writes each one as `///` lines above its
//! marker, followed for message, optional and enum fields by a line on how
//! to read and set them. The other public items the generator emits
//! (`new()`, the `special_fields` bookkeeping field, nested-type modules,
//! `file_descriptor()`) get short generic docs, and the generated `#![allow(missing_docs)]` is dropped, so
//! that `src/lib.rs` can deny undocumented items in the generated module.
//!
//! A `.proto` element without a comment fails the build, naming it.
//!
//! It also writes `dump.rs`, the `Dump` implementation of every message of
//! `proto/nri.proto` (`build/dump_gen.rs`, included by `src/api/dump.rs`),
//! and `reuse.rs`, the in-place decoder of every message of
//! `proto/nri.proto` (`build/reuse_gen.rs`, included by `src/pb/reuse.rs`).

#[path = "build/dump_gen.rs"]
mod dump_gen;
#[path = "build/proto_reader.rs"]
mod proto_reader;

#[path = "build/cost_table.rs"]
mod cost_table;
#[path = "build/reuse_gen.rs"]
mod reuse_gen;

use std::path::Path;

use proto_reader::{Kind, ProtoFile};

const PROTOS: [(&str, &str); 3] = [
    ("proto/nri.proto", "nri.rs"),
    ("proto/ttrpc.proto", "ttrpc.rs"),
    ("proto/status.proto", "status.rs"),
];

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .inputs(PROTOS.map(|(proto, _)| proto))
        .out_dir(&out)
        .run_from_script();
    for (proto, generated) in PROTOS {
        if let Err(e) = document(Path::new(proto), &out.join(generated)) {
            panic!("documenting {generated} from {proto}: {e}");
        }
    }
    // How the messages are stored once decoded, for the memory bounds of
    // decoded requests (src/pb/cost.rs).
    if let Err(e) = generate_cost_table(Path::new(PROTOS[0].0), &out.join("cost_table.rs")) {
        panic!("generating cost_table.rs from {}: {e}", PROTOS[0].0);
    }
    // The in-place decoders of the messages (src/pb/reuse.rs).
    if let Err(e) = generate_reuse(Path::new(PROTOS[0].0), &out.join("reuse.rs")) {
        panic!("generating reuse.rs from {}: {e}", PROTOS[0].0);
    }
    // The messages' Dump implementations (src/api/dump.rs).
    if let Err(e) = generate_dump(Path::new(PROTOS[0].0), &out.join("dump.rs")) {
        panic!("generating dump.rs from {}: {e}", PROTOS[0].0);
    }
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build");
}

/// Writes the decoded-memory table of the messages of `proto` to `out`.
fn generate_cost_table(proto: &Path, out: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(proto).map_err(|e| format!("cannot read: {e}"))?;
    let code = cost_table::table(&proto_reader::parse(&text)?, "crate::proto::nri")?;
    std::fs::write(out, code).map_err(|e| format!("cannot write: {e}"))
}

/// Writes the in-place decoders of the messages of `proto` to `out`.
fn generate_reuse(proto: &Path, out: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(proto).map_err(|e| format!("cannot read: {e}"))?;
    let code = reuse_gen::generate(&proto_reader::parse(&text)?, "crate::proto::nri")?;
    std::fs::write(out, code).map_err(|e| format!("cannot write: {e}"))
}

/// Writes the `Dump` implementations of the messages of `proto` to `out`.
fn generate_dump(proto: &Path, out: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(proto).map_err(|e| format!("cannot read: {e}"))?;
    let code = dump_gen::generate(&proto_reader::parse(&text)?)?;
    std::fs::write(out, code).map_err(|e| format!("cannot write: {e}"))
}

/// Rewrites the generated file `generated` with the docs of `proto`.
fn document(proto: &Path, generated: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(proto).map_err(|e| format!("cannot read: {e}"))?;
    let file = proto_reader::parse(&text)?;
    let code = std::fs::read_to_string(generated).map_err(|e| format!("cannot read: {e}"))?;
    let documented = add_docs(&code, &file)?;
    std::fs::write(generated, documented).map_err(|e| format!("cannot write: {e}"))
}

/// The kinds of element whose comment becomes rustdoc, with the marker
/// prefix protobuf-codegen writes for each.
const DOCUMENTED: [(Kind, &str); 4] = [
    (Kind::Message, "message"),
    (Kind::Field, "field"),
    (Kind::Enum, "enum"),
    (Kind::EnumValue, "enum_value"),
];

const MARKER: &str = "// @@protoc_insertion_point(";

fn add_docs(code: &str, file: &ProtoFile) -> Result<String, String> {
    let mut out: Vec<String> = Vec::with_capacity(code.lines().count() * 2);
    let mut missing = Vec::new();
    let mut used = std::collections::HashSet::new();
    // The name of the type whose `impl` block we are in, for `new()`.
    let mut current_impl: Option<String> = None;

    for line in code.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];

        if trimmed == "#![allow(missing_docs)]" {
            continue;
        }
        if let Some(note) = field_type_note(trimmed) {
            // Right after a field's marker: its docs end just above it.
            if out
                .last()
                .is_some_and(|l| l.trim_start().starts_with(MARKER))
            {
                let marker = out.pop().unwrap_or_default();
                out.push(format!("{indent}///"));
                out.push(format!("{indent}/// {note}"));
                out.push(marker);
            }
        }
        if let Some(rest) = trimmed.strip_prefix(MARKER) {
            let point = rest.strip_suffix(')').unwrap_or(rest);
            let (kind, name) = point
                .split_once(':')
                .ok_or_else(|| format!("unexpected marker {trimmed:?}"))?;
            if kind == "special_field" {
                out.push(format!(
                    "{indent}/// Protobuf bookkeeping: fields of unknown numbers kept from decoding, and the"
                ));
                out.push(format!(
                    "{indent}/// cached encoded size. Leave it at its default (`..Default::default()`)."
                ));
            } else if let Some((k, _)) = DOCUMENTED.iter().find(|(_, p)| *p == kind) {
                match file.find(*k, name) {
                    Some(element) if element.doc.iter().any(|l| l.starts_with("    ")) => missing
                        .push(format!(
                            "{kind} {name} (line {}): a comment line indented by 4 spaces would \
                             become a doctest; use a fenced block",
                            element.line
                        )),
                    Some(element) if !element.doc.is_empty() => {
                        out.extend(rustdoc(&element.doc, indent));
                        used.insert((*k, name.to_string()));
                    }
                    Some(element) => missing.push(format!(
                        "{} {name} (line {}) has no comment",
                        kind, element.line
                    )),
                    None => missing.push(format!("{kind} {name} is not in the .proto file")),
                }
            }
            out.push(line.to_string());
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("impl ") {
            // `impl Container {`: an inherent impl (trait impls have `for`).
            if let Some(name) = rest.strip_suffix(" {") {
                if !name.contains(' ') && !name.contains('<') {
                    current_impl = Some(name.to_string());
                } else {
                    current_impl = None;
                }
            }
        }
        if trimmed.starts_with("pub fn new() -> ") {
            let name = current_impl.clone().unwrap_or_else(|| {
                trimmed["pub fn new() -> ".len()..]
                    .trim_end_matches(" {")
                    .to_string()
            });
            out.push(format!(
                "{indent}/// An empty `{name}`: every field at its default, unset or empty (the same"
            ));
            out.push(format!("{indent}/// as `{name}::default()`)."));
        }
        if let Some(module) = trimmed
            .strip_prefix("pub mod ")
            .and_then(|rest| rest.strip_suffix(" {"))
        {
            // `pub mod log_request {`: the types nested in a message. Take the
            // message's name from the generator's doc, then write ours.
            let mut message = module.to_string();
            while out
                .last()
                .is_some_and(|l| l.trim_start().starts_with("///"))
            {
                if let Some(line) = out.pop() {
                    if let Some(name) = line.split('`').nth(1) {
                        message = name.to_string();
                    }
                }
            }
            out.push(format!(
                "{indent}/// The enums and messages declared inside [`{message}`] in the `.proto` file."
            ));
        }
        if trimmed.starts_with("pub fn file_descriptor() ") {
            // Replace the generator's doc with ours.
            while out
                .last()
                .is_some_and(|l| l.trim_start().starts_with("///"))
            {
                out.pop();
            }
            out.push(format!(
                "{indent}/// The protobuf descriptor of this file's messages and enums, for reflection"
            ));
            out.push(format!(
                "{indent}/// (names, numbers and types of fields at run time)."
            ));
        }
        out.push(line.to_string());
    }

    for element in &file.elements {
        if let Some((_, prefix)) = DOCUMENTED.iter().find(|(k, _)| *k == element.kind) {
            if !element.doc.is_empty() && !used.contains(&(element.kind, element.name.clone())) {
                missing.push(format!(
                    "{prefix} {} (line {}): no marker for it in the generated code",
                    element.name, element.line
                ));
            }
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "{} element(s) left undocumented:\n  {}",
            missing.len(),
            missing.join("\n  ")
        ));
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// A line about how to use a field of this generated type, for
/// `pub name: Type,` lines whose type needs explaining.
fn field_type_note(line: &str) -> Option<&'static str> {
    let ty = line.strip_prefix("pub ")?.split_once(": ")?.1;
    if ty.starts_with("::protobuf::MessageField<Optional") {
        Some(
            "Read and set it with [`OptionalExt`](crate::api::OptionalExt) (`.value()`, \
             `.set_value()`), or assign [`optional(v)`](crate::api::optional).",
        )
    } else if ty.starts_with("::protobuf::MessageField<") {
        Some(
            "Unset reads as the empty message, so `a.b.c` reads without checks; \
             `.mut_or_insert_default()` sets it before writing inside.",
        )
    } else if ty.starts_with("::protobuf::EnumOrUnknown<") {
        Some(
            "`.enum_value()` gives the enum (`Err(number)` for a number this crate does not \
             know); assign `Enum::VALUE.into()` to set it.",
        )
    } else {
        None
    }
}

/// `///` lines for a comment. Fenced code blocks without a language are
/// marked `text`, so that rustdoc never runs them as doctests.
fn rustdoc(doc: &[String], indent: &str) -> Vec<String> {
    let mut in_fence = false;
    doc.iter()
        .map(|line| {
            let mut line = line.clone();
            if !in_fence && line.starts_with("    ") {
                // Would be an indented code block, which rustdoc runs as a
                // doctest: refused in `add_docs` before we get here.
                line = line.trim_start().to_string();
            }
            if line.trim_start().starts_with("```") {
                if !in_fence && line.trim() == "```" {
                    line = line.replace("```", "```text");
                }
                in_fence = !in_fence;
            }
            if line.is_empty() {
                format!("{indent}///")
            } else {
                format!("{indent}/// {line}")
            }
        })
        .collect()
}
