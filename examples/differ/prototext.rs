//! A message in protobuf's compact text format, as Go's `%v` prints a
//! generated message (`prototext` with `Multiline: false`):
//! `name:"web" linux:{namespaces:{type:"network" path:"/var/run/netns/x"}}`.
//!
//! Fields in declaration order; scalars without presence only when not
//! zero; repeated fields as one entry per element; map entries sorted by key
//! as `name:{key:"k" value:"v"}`; enums by name; strings quoted with Go's
//! escapes. Go's protobuf library adds a second space between fields in
//! some builds (deliberately random, so that nobody depends on the
//! format); this writes one.

use protobuf::reflect::{ReflectFieldRef, ReflectValueRef, RuntimeFieldType, RuntimeType};
use protobuf::MessageDyn;

/// `message` in the compact text format.
pub fn compact(message: &dyn MessageDyn) -> String {
    let mut out = String::new();
    write_message(&mut out, message);
    out
}

fn write_message(out: &mut String, message: &dyn MessageDyn) {
    for field in message.descriptor_dyn().fields() {
        let name = field.name();
        match field.runtime_field_type() {
            RuntimeFieldType::Singular(RuntimeType::Message(_)) => {
                if let Some(value) = field.get_singular(message) {
                    entry(out, name, value);
                }
            }
            RuntimeFieldType::Singular(_) => {
                let value = field.get_singular_field_or_default(message);
                if !is_zero(&value) {
                    entry(out, name, value);
                }
            }
            RuntimeFieldType::Repeated(_) | RuntimeFieldType::Map(_, _) => {
                match field.get_reflect(message) {
                    ReflectFieldRef::Repeated(list) => {
                        for i in 0..list.len() {
                            entry(out, name, list.get(i));
                        }
                    }
                    ReflectFieldRef::Map(map) => {
                        let mut entries: Vec<(String, ReflectValueRef<'_>, ReflectValueRef<'_>)> =
                            map.into_iter().map(|(k, v)| (sort_key(&k), k, v)).collect();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        for (_, k, v) in entries {
                            separate(out);
                            out.push_str(name);
                            out.push_str(":{");
                            entry(out, "key", k);
                            entry(out, "value", v);
                            out.push('}');
                        }
                    }
                    ReflectFieldRef::Optional(_) => {}
                }
            }
        }
    }
}

/// A space before an entry that follows another one.
fn separate(out: &mut String) {
    if !out.is_empty() && !out.ends_with('{') {
        out.push(' ');
    }
}

fn entry(out: &mut String, name: &str, value: ReflectValueRef<'_>) {
    separate(out);
    out.push_str(name);
    out.push(':');
    match value {
        ReflectValueRef::Message(m) => {
            out.push('{');
            write_message(out, &*m);
            out.push('}');
        }
        ReflectValueRef::String(s) => quote(out, s.as_bytes()),
        ReflectValueRef::Bytes(b) => quote(out, b),
        ReflectValueRef::Enum(d, n) => match d.value_by_number(n) {
            Some(v) => out.push_str(v.name()),
            None => out.push_str(&n.to_string()),
        },
        ReflectValueRef::U32(v) => out.push_str(&v.to_string()),
        ReflectValueRef::U64(v) => out.push_str(&v.to_string()),
        ReflectValueRef::I32(v) => out.push_str(&v.to_string()),
        ReflectValueRef::I64(v) => out.push_str(&v.to_string()),
        ReflectValueRef::Bool(v) => out.push_str(&v.to_string()),
        ReflectValueRef::F32(v) => out.push_str(&v.to_string()),
        ReflectValueRef::F64(v) => out.push_str(&v.to_string()),
    }
}

fn is_zero(value: &ReflectValueRef<'_>) -> bool {
    match value {
        ReflectValueRef::String(s) => s.is_empty(),
        ReflectValueRef::Bytes(b) => b.is_empty(),
        ReflectValueRef::Enum(_, n) => *n == 0,
        ReflectValueRef::U32(v) => *v == 0,
        ReflectValueRef::U64(v) => *v == 0,
        ReflectValueRef::I32(v) => *v == 0,
        ReflectValueRef::I64(v) => *v == 0,
        ReflectValueRef::Bool(v) => !*v,
        ReflectValueRef::F32(v) => *v == 0.0,
        ReflectValueRef::F64(v) => *v == 0.0,
        ReflectValueRef::Message(_) => false,
    }
}

/// Map keys sort as Go's protobuf sorts them: strings by bytes, numbers by
/// value.
fn sort_key(key: &ReflectValueRef<'_>) -> String {
    match key {
        ReflectValueRef::String(s) => s.to_string(),
        ReflectValueRef::I32(v) => format!("{:020}", i64::from(*v) + (1 << 40)),
        ReflectValueRef::I64(v) => format!("{:040}", i128::from(*v) + (1 << 100)),
        ReflectValueRef::U32(v) => format!("{v:020}"),
        ReflectValueRef::U64(v) => format!("{v:020}"),
        ReflectValueRef::Bool(v) => v.to_string(),
        _ => String::new(),
    }
}

/// A string quoted as Go's protobuf text encoder quotes it: `"` and `\`
/// escaped, `\n`, `\r`, `\t` by name, other control bytes and invalid UTF-8
/// as `\x..`, C1 controls as `\u00..`, everything else as it is.
fn quote(out: &mut String, bytes: &[u8]) {
    out.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, b) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(v).unwrap_or_default(), b)
            }
        };
        for c in valid.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
                '\u{80}'..='\u{9f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        if let Some((&b, tail)) = bad.split_first() {
            out.push_str(&format!("\\x{b:02x}"));
            rest = tail;
        } else {
            rest = &[];
        }
    }
    out.push('"');
}
