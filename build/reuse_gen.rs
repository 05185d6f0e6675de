//! Writes the in-place decoders of the messages of a `.proto` file
//! (`src/pb/reuse.rs` includes them): for every message, an implementation
//! of `Reuse::overwrite` that decodes wire bytes into a message decoded
//! before, reusing the strings, vectors, maps and boxes it holds.
//!
//! The generated code follows what the protobuf crate's generated decoder
//! makes of the same bytes (last value wins for singular fields, a
//! singular message replaced as a whole, packed and unpacked repeated
//! scalars, map entries with default keys and values), and gives up
//! (`Fallback`) on anything else: an unknown field number, a wire type the
//! field does not take, a field inside a map entry other than its key and
//! value. The caller then decodes with the protobuf crate, which keeps
//! unknown fields and reports errors.
//!
//! Scalar types are limited to the varint ones (the NRI API has no
//! `double`, `float`, `fixed*` or `sfixed*` field); any other type, a
//! proto3 `optional` field, a `oneof` or a nested message fails the build,
//! naming the field.

use std::fmt::Write;

use crate::proto_reader::{FieldType, Kind, Label, ProtoFile};

/// How one value of a field is stored and read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ty {
    /// A varint scalar: the name of its reading helper in
    /// `crate::pb::reuse` (`int32`, `uint64`, `bool`...).
    Varint(&'static str),
    /// An enum, read as an `int32` into an `EnumOrUnknown`.
    Enum,
    /// A `String`.
    Str,
    /// A `Vec<u8>`.
    Bytes,
    /// A message of this file.
    Message,
}

impl Ty {
    fn of(ty: &str, messages: &[String], enums: &[String], line: usize) -> Result<Ty, String> {
        Ok(match ty {
            "int32" | "int64" | "uint32" | "uint64" | "sint32" | "sint64" | "bool" => {
                Ty::Varint(match ty {
                    "int32" => "int32",
                    "int64" => "int64",
                    "uint32" => "uint32",
                    "uint64" => "uint64",
                    "sint32" => "sint32",
                    "sint64" => "sint64",
                    _ => "boolean",
                })
            }
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            _ if enums.iter().any(|e| e == ty) => Ty::Enum,
            _ if messages.iter().any(|m| m == ty) => Ty::Message,
            _ => {
                return Err(format!(
                    "line {line}: field type {ty:?} is not supported by the in-place decoder"
                ))
            }
        })
    }

    /// The wire type its values arrive with (unpacked).
    fn wire(&self) -> u32 {
        match self {
            Ty::Varint(_) | Ty::Enum => 0,
            Ty::Str | Ty::Bytes | Ty::Message => 2,
        }
    }

    /// An expression for one value of a scalar or enum read from reader
    /// `r` (tag `tag`); `None` for the other kinds.
    fn value(&self, r: &str) -> Option<String> {
        match self {
            Ty::Varint(f) => Some(format!("{f}({r}, tag)?")),
            Ty::Enum => Some(format!(
                "::protobuf::EnumOrUnknown::from_i32(int32({r}, tag)?)"
            )),
            _ => None,
        }
    }

    /// Code that reads one value from reader `r` (tag `tag`) into `place`
    /// (a place expression, or for a message anything that calls methods on
    /// it), which `mref` borrows mutably, overwriting what it held.
    fn read_into(&self, place: &str, mref: &str, r: &str) -> String {
        if let Some(v) = self.value(r) {
            return format!("{place} = {v}");
        }
        match self {
            Ty::Bytes => format!("set_bytes({mref}, {r}, tag, pool)?"),
            Ty::Message => format!("{place}.overwrite(len({r}, tag)?, pool, depth + 1)?"),
            _ => format!("set_str({mref}, {r}, tag, pool)?"),
        }
    }
}

/// One field of a message.
enum Field {
    Singular(Ty),
    Repeated(Ty),
    Map(Ty, Ty),
}

/// Rust's name for a proto field: keywords get a trailing `_`, as
/// protobuf-codegen spells them.
fn rust_name(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
        "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
        "where", "while", "abstract", "alignof", "become", "box", "do", "final", "macro",
        "offsetof", "override", "priv", "proc", "pure", "sizeof", "typeof", "unsized", "virtual",
        "yield", "async", "await", "dyn", "try",
    ];
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// The Rust source of the `Reuse` implementations of the top-level
/// messages of `file`, whose generated types live in `module`.
pub fn generate(file: &ProtoFile, module: &str) -> Result<String, String> {
    let messages = file.short_names(Kind::Message, true);
    let enums = file.short_names(Kind::Enum, false);
    if let Some(e) = file
        .elements
        .iter()
        .find(|e| (e.kind == Kind::Message && !e.scope.is_empty()) || e.kind == Kind::Oneof)
    {
        return Err(format!(
            "line {}: {} is not supported by the in-place decoder",
            e.line, e.statement
        ));
    }
    let mut out = String::new();
    out.push_str("// Generated by build.rs (build/reuse_gen.rs) from the .proto file.\n");
    for m in &messages {
        let mut fields: Vec<(u32, String, Field)> = Vec::new();
        for f in file.fields_of(m) {
            let decl = f.field()?;
            let ty = |t: &str| Ty::of(t, &messages, &enums, f.line);
            let field = match (&decl.ty, decl.label) {
                (FieldType::Map(k, v), _) => Field::Map(ty(k)?, ty(v)?),
                (FieldType::Plain(_), Label::Optional) => {
                    return Err(format!(
                        "line {}: optional fields are not supported by the in-place decoder",
                        f.line
                    ))
                }
                (FieldType::Plain(t), Label::Repeated) => Field::Repeated(ty(t)?),
                (FieldType::Plain(t), Label::Singular) => Field::Singular(ty(t)?),
            };
            let (name, number) = (decl.name, decl.number);
            fields.push((number, rust_name(&name), field));
        }
        fields.sort_by_key(|(n, _, _)| *n);
        message(&mut out, module, m, &fields);
    }
    Ok(out)
}

/// Writes the implementation for message `m`.
fn message(out: &mut String, module: &str, m: &str, fields: &[(u32, String, Field)]) {
    let mut reset = String::new();
    let mut arms = String::new();
    let mut finish = String::new();
    for (n, name, field) in fields {
        match field {
            Field::Singular(ty) => {
                let key = n << 3 | ty.wire();
                match ty {
                    Ty::Str | Ty::Bytes => {
                        let _ = writeln!(reset, "        clear_{}(&mut self.{name});", kind(ty));
                    }
                    Ty::Message => {
                        let _ = writeln!(reset, "        let mut seen_{name} = false;");
                        let _ = writeln!(
                            finish,
                            "        if !seen_{name} {{\n            self.{name} = ::protobuf::MessageField::none();\n        }}"
                        );
                    }
                    _ => {
                        let _ = writeln!(
                            reset,
                            "        self.{name} = ::std::default::Default::default();"
                        );
                    }
                }
                let read = if *ty == Ty::Message {
                    format!(
                        "seen_{name} = true;\n                {}",
                        ty.read_into(&format!("boxed(&mut self.{name}, pool)"), "", "&mut r")
                    )
                } else {
                    ty.read_into(
                        &format!("self.{name}"),
                        &format!("&mut self.{name}"),
                        "&mut r",
                    )
                };
                let _ = writeln!(
                    arms,
                    "            {key} => {{\n                {read};\n            }}"
                );
            }
            Field::Repeated(ty) => {
                let key = n << 3 | ty.wire();
                match ty {
                    Ty::Varint(_) | Ty::Enum => {
                        let _ = writeln!(reset, "        self.{name}.clear();");
                        let (unpacked, packed_value) = (
                            ty.value("&mut r").unwrap_or_default(),
                            ty.value("&mut p").unwrap_or_default(),
                        );
                        // Unpacked and packed.
                        let _ = writeln!(
                            arms,
                            "            {key} => push(&mut self.{name}, {unpacked}, pool),"
                        );
                        let packed = n << 3 | 2;
                        let _ = writeln!(
                            arms,
                            "            {packed} => {{\n                let mut p = Reader::new(len(&mut r, tag)?);\n                while !p.at_end() {{\n                    let v = {packed_value};\n                    push(&mut self.{name}, v, pool);\n                }}\n            }}"
                        );
                        let _ = writeln!(finish, "        fit_vec(&mut self.{name});");
                    }
                    _ => {
                        let _ = writeln!(reset, "        let mut n_{name} = 0usize;");
                        let read = ty.read_into("v", "v", "&mut r");
                        let _ = writeln!(
                            arms,
                            "            {key} => {{\n                let v = slot(&mut self.{name}, &mut n_{name}, pool);\n                {read};\n            }}"
                        );
                        let _ =
                            writeln!(finish, "        end_vec(&mut self.{name}, n_{name}, pool);");
                    }
                }
            }
            Field::Map(k, v) => {
                let key = n << 3 | 2;
                let _ = writeln!(reset, "        drain_map(&mut self.{name}, pool);");
                let (rk, rv) = (
                    k.read_into("k", "&mut k", "&mut e"),
                    v.read_into("v", "&mut v", "&mut e"),
                );
                let (kk, vk) = (1 << 3 | k.wire(), 2 << 3 | v.wire());
                let _ = writeln!(
                    arms,
                    "            {key} => {{
                let mut e = Reader::new(len(&mut r, tag)?);
                let (mut k, mut v) = fresh_entry(&self.{name}, pool);
                while let Some(tag) = next_tag(&mut e)? {{
                    match tag.key() {{
                        {kk} => {rk},
                        {vk} => {rv},
                        _ => return Err(Fallback),
                    }}
                }}
                map_insert(&mut self.{name}, k, v, pool);
            }}"
                );
                let _ = writeln!(finish, "        fit_map(&mut self.{name});");
            }
        }
    }
    let body = if arms.is_empty() {
        // No fields: any field is unknown.
        "        if next_tag(&mut r)?.is_some() {\n            return Err(Fallback);\n        }\n"
            .to_string()
    } else {
        format!(
            "        while let Some(tag) = next_tag(&mut r)? {{
            match tag.key() {{
{arms}                _ => return Err(Fallback),
            }}
        }}
"
        )
    };
    let _ = write!(
        out,
        "impl Reuse for {module}::{m} {{
    #[allow(unused_variables, unused_mut, non_snake_case)]
    fn overwrite(&mut self, bytes: &[u8], pool: &mut Pool, depth: u32) -> Result<(), Fallback> {{
        enter(depth)?;
{reset}        let mut r = Reader::new(bytes);
{body}{finish}        self.special_fields = ::protobuf::SpecialFields::new();
        Ok(())
    }}
}}

impl Pooled for {module}::{m} {{
    fn fresh(_: &mut Pool) -> Self {{
        ::std::default::Default::default()
    }}
}}

"
    );
}

fn kind(ty: &Ty) -> &'static str {
    match ty {
        Ty::Bytes => "bytes",
        _ => "str",
    }
}
