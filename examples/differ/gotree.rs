//! An NRI message as the Go plugin's libraries see the Go struct generated
//! for it: fields under their Go names (`pod_sandbox_id` is
//! `PodSandboxId`), in declaration order; messages behind pointers (nil when
//! unset); repeated fields as slices; maps with their keys. Built once per
//! message through protobuf reflection, then diffed ([`super::godiff`])
//! without it.

use protobuf::reflect::{ReflectFieldRef, ReflectValueRef, RuntimeFieldType, RuntimeType};
use protobuf::MessageDyn;

/// A Go value.
#[derive(Clone, Debug, PartialEq)]
pub enum Go {
    /// A string.
    Str(String),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A boolean.
    Bool(bool),
    /// An enum value: its number, and its name if the enum has one for it.
    Enum(i32, Option<String>),
    /// A pointer to a message, `None` for nil.
    Ptr(Option<Box<Struct>>),
    /// A slice.
    Slice(Vec<Go>),
    /// A map: each key as Go's `fmt.Sprint` writes it, sorted.
    Map(Vec<(String, Go)>),
}

/// A message: its fields, and its text in protobuf's compact text format
/// (what Go's `%v` prints for a message).
#[derive(Clone, Debug, PartialEq)]
pub struct Struct {
    /// `(Go name, JSON name, value)` of each field, in declaration order.
    pub fields: Vec<Field>,
    /// The message in protobuf's compact text format.
    pub text: String,
}

/// One field of a [`Struct`].
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The Go field's name.
    pub go_name: String,
    /// The `.proto` name, which is also the Go field's JSON name.
    pub json_name: String,
    /// Its value.
    pub value: Go,
}

impl Go {
    /// The zero value of this value's type.
    pub fn zero(&self) -> Go {
        match self {
            Go::Str(_) => Go::Str(String::new()),
            Go::Int(_) => Go::Int(0),
            Go::Uint(_) => Go::Uint(0),
            Go::Bool(_) => Go::Bool(false),
            Go::Enum(_, _) => Go::Enum(0, None),
            Go::Ptr(_) => Go::Ptr(None),
            Go::Slice(_) => Go::Slice(Vec::new()),
            Go::Map(_) => Go::Map(Vec::new()),
        }
    }

    /// The value as Go's `%v` prints it.
    pub fn show(&self) -> String {
        match self {
            Go::Str(s) => s.clone(),
            Go::Int(i) => i.to_string(),
            Go::Uint(u) => u.to_string(),
            Go::Bool(b) => b.to_string(),
            Go::Enum(n, name) => name.clone().unwrap_or_else(|| n.to_string()),
            Go::Ptr(None) => "<nil>".into(),
            Go::Ptr(Some(s)) => s.text.clone(),
            Go::Slice(items) => {
                let shown: Vec<String> = items.iter().map(Go::show).collect();
                format!("[{}]", shown.join(" "))
            }
            Go::Map(entries) => {
                let shown: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.show()))
                    .collect();
                format!("map[{}]", shown.join(" "))
            }
        }
    }
}

/// The Go view of `message`.
pub fn of(message: &dyn MessageDyn) -> Struct {
    let descriptor = message.descriptor_dyn();
    let mut fields = Vec::new();
    for field in descriptor.fields() {
        let value = match field.runtime_field_type() {
            RuntimeFieldType::Singular(RuntimeType::Message(_)) => {
                match field.get_singular(message) {
                    Some(ReflectValueRef::Message(m)) => Go::Ptr(Some(Box::new(of(&*m)))),
                    _ => Go::Ptr(None),
                }
            }
            RuntimeFieldType::Singular(_) => scalar(field.get_singular_field_or_default(message)),
            RuntimeFieldType::Repeated(_) | RuntimeFieldType::Map(_, _) => {
                match field.get_reflect(message) {
                    ReflectFieldRef::Repeated(list) => {
                        Go::Slice((0..list.len()).map(|i| element(list.get(i))).collect())
                    }
                    ReflectFieldRef::Map(map) => {
                        let mut entries: Vec<(String, Go)> = map
                            .into_iter()
                            .map(|(k, v)| (scalar(k).show(), element(v)))
                            .collect();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        Go::Map(entries)
                    }
                    ReflectFieldRef::Optional(_) => Go::Ptr(None),
                }
            }
        };
        fields.push(Field {
            go_name: go_camel_case(field.name()),
            json_name: field.name().to_string(),
            value,
        });
    }
    Struct {
        fields,
        text: super::prototext::compact(message),
    }
}

/// An element of a repeated field or a map value: a message behind a
/// pointer, or a scalar.
fn element(value: ReflectValueRef<'_>) -> Go {
    match value {
        ReflectValueRef::Message(m) => Go::Ptr(Some(Box::new(of(&*m)))),
        other => scalar(other),
    }
}

fn scalar(value: ReflectValueRef<'_>) -> Go {
    match value {
        ReflectValueRef::U32(v) => Go::Uint(v.into()),
        ReflectValueRef::U64(v) => Go::Uint(v),
        ReflectValueRef::I32(v) => Go::Int(v.into()),
        ReflectValueRef::I64(v) => Go::Int(v),
        ReflectValueRef::Bool(v) => Go::Bool(v),
        ReflectValueRef::String(v) => Go::Str(v.to_string()),
        ReflectValueRef::Enum(descriptor, n) => Go::Enum(
            n,
            descriptor.value_by_number(n).map(|v| v.name().to_string()),
        ),
        // Neither floats nor bytes occur in pods and containers; shown as
        // Go shows them, roughly.
        ReflectValueRef::F32(v) => Go::Str(v.to_string()),
        ReflectValueRef::F64(v) => Go::Str(v.to_string()),
        ReflectValueRef::Bytes(v) => Go::Slice(v.iter().map(|b| Go::Uint((*b).into())).collect()),
        ReflectValueRef::Message(m) => Go::Ptr(Some(Box::new(of(&*m)))),
    }
}

/// The Go name protoc-gen-go gives a field (`GoCamelCase`): `_x` and a
/// leading lowercase letter become `X`, a leading `_` becomes `X`.
pub fn go_camel_case(name: &str) -> String {
    let s = name.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next_lower = i + 1 < s.len() && s[i + 1].is_ascii_lowercase();
        if c == b'.' && next_lower {
            // Skipped.
        } else if c == b'.' {
            out.push(b'_');
        } else if c == b'_' && (i == 0 || s[i - 1] == b'.') {
            out.push(b'X');
        } else if c == b'_' && next_lower {
            // Skipped.
        } else if c.is_ascii_digit() {
            out.push(c);
        } else {
            out.push(c.to_ascii_uppercase());
            while i + 1 < s.len() && s[i + 1].is_ascii_lowercase() {
                i += 1;
                out.push(s[i]);
            }
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
