//! Annotations and configuration text decoded into your own serde types
//! exactly as a Go plugin decodes them (cargo feature `go-yaml`).
//!
//! Go plugins read their annotations and configuration with
//! `sigs.k8s.io/yaml`: YAML 1.1 through go-yaml v2, turned into JSON, then
//! decoded by `encoding/json` into a struct. [`from_yaml`] does the same
//! into any `T: Deserialize`, so that a plugin ported from Go reads the same
//! annotation the same way; [`from_json`] is `encoding/json` alone, for JSON
//! files (OCI hook files, for one).
//!
//! ```
//! use serde::Deserialize;
//!
//! /// The Go plugin's `device` struct: `json:"path"`, `json:"file_mode"`...
//! #[derive(Debug, Default, Deserialize)]
//! #[serde(default)] // a missing field keeps its zero value, as in Go
//! struct Device {
//!     path: String,
//!     #[serde(rename = "type")]
//!     kind: String,
//!     major: i64,
//!     minor: i64,
//!     file_mode: u32,
//! }
//!
//! let annotation = "- Path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 0666\n";
//! let devices: Vec<Device> = nri::decode::from_yaml(annotation)?;
//! assert_eq!(devices[0].path, "/dev/nri-null"); // `Path` names `path`
//! assert_eq!(devices[0].file_mode, 0o666); // YAML 1.1 octal
//!
//! let err = nri::decode::from_yaml::<Vec<Device>>("- major: one").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string \
//!      into Go struct field Device.major of type int64"
//! );
//! # Ok::<(), nri::decode::Error>(())
//! ```
//!
//! # What is read as in Go
//!
//! - **YAML 1.1 scalars**, go-yaml v2's resolution: `yes`/`no`/`on`/`off`/`y`/`n`
//!   are booleans, `0777` and `0o17` octal, `0x1F` hexadecimal, `0b101`
//!   binary, `1_000` a thousand, `190:20:30` a string, `.inf`/`.nan` floats,
//!   `~`/`null`/nothing `null`; tags `!!str`, `!!int`, `!!float`, `!!bool`,
//!   `!!null`, `!!binary` (base64), `!!timestamp` (kept as text); other tags
//!   leave the text a string. Anchors, aliases and merge keys (`<<`).
//! - **Only the first document** of the text counts (`---` starts another).
//! - **Keys**: numbers and booleans used as keys become their text (`1: a`
//!   is key `"1"`); a `null` key, or an integer above `i64::MAX`, fails the
//!   document. Of two keys with the same text, the later wins.
//! - **Field names** match keys exactly first, then case-insensitively
//!   (Unicode simple folding: `ſ` is an `s`): serde hands the decoder the
//!   struct's field names (after `#[serde(rename)]`) and the decoder picks
//!   the field as `encoding/json` does. Unknown keys are ignored (unless
//!   the struct says `#[serde(deny_unknown_fields)]`).
//! - **Several keys naming one field** (`path` and `Path`) are all decoded,
//!   in key order, *into* the same field: a later scalar replaces an
//!   earlier one, a later mapping sets more fields of the same struct, a
//!   later list decodes into the elements the earlier one left.
//! - **`null`** leaves a field as it is (its `Default`); in a list, a
//!   mapping value or at the top it is the zero value; an `Option` it makes
//!   `None`.
//! - **Numbers into integers**: the number's JSON text must be an integer
//!   in the type's range: `1.0` (`1` in JSON) goes into an `i64`, `1.5`,
//!   `1e21` and `300` into a `u8` do not; a float into a float type out of
//!   its range does not.
//! - **Numbers and booleans into strings**: a YAML number or boolean decoded
//!   into a `String` becomes its text (`port: 8080` → `"8080"`, `on` →
//!   `"true"`, `0.1` → `"0.1"`, floats with 32-bit precision as Go writes
//!   them), as `sigs.k8s.io/yaml` converts them for string fields. In JSON
//!   ([`from_json`]) a number into a string is an error, as in Go.
//! - **Anything else of the wrong type** is an error; like Go, decoding goes
//!   on and the error reported is the first in document order, worded as
//!   Go words it (see [`Error`]). An infinity or NaN anywhere but in a
//!   string fails the whole document (`json: unsupported value: NaN`).
//! - [`Value`], or a field of that type, takes anything, as an
//!   `interface{}` does (numbers and booleans stay what they are).
//!
//! # Differences from Go
//!
//! Each is an error where Go accepts the text:
//!
//! - nesting deeper than [`MAX_DEPTH`] levels (Go: 10,000; the bound keeps
//!   decoding within a 2 MiB thread stack, even unoptimized), and a YAML
//!   document larger than [`MAX_VALUES`] values or [`MAX_TEXT`] bytes of
//!   text once its aliases are expanded (Go bounds only the share of
//!   aliases); also a document with so many `!` right before a `,` that
//!   checking them for the corner below takes more than 8 MiB of scanning
//!   (a hundred of them in a 100 KB text);
//! - an implicit mapping key (one without `? `) longer than
//!   [`MAX_KEY_BYTES`] bytes: YAML bounds such keys at 1,024 characters,
//!   which go-yaml counts in characters and libyaml-safer in bytes, so a key
//!   with multi-byte characters may be refused here where Go takes it (and
//!   a text Go refuses for it may be refused naming an earlier line);
//! - two corners where go-yaml's older libyaml reads YAML its own way: a tag
//!   holding `,`, `[` or `]` ([`TAG_FLOW_CHARACTER`]), and inside a flow
//!   collection a plain scalar with `:` right before `,`, `[`, `]`, `{`,
//!   `}` or `?` ([`COLON_BEFORE_FLOW_INDICATOR`]); libyaml and YAML 1.2
//!   refuse both.
//!
//! And where serde's model differs from Go's:
//!
//! - a struct without `#[serde(default)]` fails on a missing field, where Go
//!   leaves it at its zero value: put `#[serde(default)]` on the struct;
//! - a `null` for an `Option`, `Vec` or map field leaves it at the struct's
//!   `Default` (Go sets it to nil): they differ only for a `Default` that
//!   fills such a field;
//! - a list decoded into a `Vec` field starts from an empty `Vec`, where Go
//!   decodes into the elements a pre-filled slice holds;
//! - `#[serde(flatten)]`, untagged and internally tagged enums buffer the
//!   document through serde's own value type, which sees plain JSON values:
//!   inside them, field names are case-sensitive and YAML numbers do not
//!   become strings;
//! - an enum decodes from a string (a unit variant) or from a one-key
//!   mapping (`{variant: value}`); Go has no enums.
//!
//! The YAML scanner and parser are `libyaml-safer`, a safe Rust port of
//! libyaml, the parser go-yaml v2 is itself a port of. Go's behaviour is
//! checked case by case against `sigs.k8s.io/yaml` v1.3.0 by
//! `tests/ports/run.sh` (randomized documents and edge cases into the same
//! structs, results and error messages compared).

mod de;
mod error;
mod format;
mod json;
mod limits;
mod node;
mod value;
mod yaml;

use serde::de::DeserializeOwned;

pub use error::{Error, ErrorKind};
pub use limits::{MAX_TEXT, MAX_VALUES};
pub use value::{Number, Value};

use error::Step;

/// Most levels of nesting (lists and mappings, aliases included) a
/// document may have.
pub const MAX_DEPTH: usize = 256;

/// The longest implicit mapping key, in bytes: YAML's bound of 1,024
/// characters, as libyaml-safer counts it.
pub const MAX_KEY_BYTES: usize = 1024;

/// The error for a YAML tag holding `,`, `[` or `]` (`!a,b`), which go-yaml
/// v2's older libyaml takes into the tag and libyaml ends the tag at.
pub const TAG_FLOW_CHARACTER: &str = yaml::TAG_FLOW_CHARACTER;

/// The error for a plain scalar with `:` right before `,`, `[`, `]`, `{`,
/// `}` or `?` inside a flow collection (`[a:]`), where go-yaml v2 keeps the
/// `:` in the scalar.
pub const COLON_BEFORE_FLOW_INDICATOR: &str = yaml::COLON_BEFORE_FLOW_INDICATOR;

/// Decodes YAML (or JSON, which is YAML) `text` into a `T`, as
/// `yaml.Unmarshal(text, &t)` of `sigs.k8s.io/yaml` does in Go, starting
/// from a zero value. An empty text, or one that is only `null`, gives `T`'s
/// zero value (its `Default` for a struct with `#[serde(default)]`).
///
/// See the [module documentation](self) for the rules.
///
/// ```
/// use serde::Deserialize;
///
/// #[derive(Debug, Default, Deserialize, PartialEq)]
/// #[serde(default)]
/// struct Ulimit {
///     #[serde(rename = "type")]
///     kind: String,
///     hard: u64,
///     soft: u64,
/// }
///
/// let ulimits: Vec<Ulimit> = nri::decode::from_yaml("- {TYPE: nofile, Hard: 1024, soft: 1_000}")?;
/// assert_eq!(ulimits, [Ulimit { kind: "nofile".into(), hard: 1024, soft: 1000 }]);
///
/// let err = nri::decode::from_yaml::<Vec<Ulimit>>("- type: nofile\n hard: 1").unwrap_err();
/// assert_eq!(err.to_string(), "error converting YAML to JSON: yaml: line 1: did not find expected '-' indicator");
/// # Ok::<(), nri::decode::Error>(())
/// ```
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let mut budget = limits::Budget::default();
    let go = yaml::decode(text, &mut budget).map_err(|e| {
        let kind = if e.0.starts_with("document too large") || e.0.contains("nesting deeper") {
            ErrorKind::Limit
        } else {
            ErrorKind::Syntax
        };
        Error::new(Step::YamlToJson, kind, format_args!("yaml: {}", e.0))
    })?;
    let root =
        node::from_go(go).map_err(|e| Error::new(Step::YamlToJson, ErrorKind::Unsupported, e))?;
    decode_tree(&root, true)
}

/// Decodes JSON `text` into a `T`, as `json.Unmarshal(text, &t)` does in Go,
/// starting from a zero value: the same rules as [`from_yaml`] but for
/// YAML's (no YAML 1.1 scalars, and a number or boolean never decodes into
/// a string); duplicate keys are all decoded, in order.
///
/// ```
/// use serde::Deserialize;
///
/// #[derive(Debug, Default, Deserialize)]
/// #[serde(default)]
/// struct Hook {
///     path: String,
///     args: Vec<String>,
///     timeout: Option<i64>,
/// }
///
/// let hook: Hook = nri::decode::from_json(br#"{"PATH": "/bin/sh", "args": ["sh", "-c", "true"]}"#)?;
/// assert_eq!((hook.path.as_str(), hook.args.len(), hook.timeout), ("/bin/sh", 3, None));
///
/// let err = nri::decode::from_json::<Hook>(br#"{"path": 1}"#).unwrap_err();
/// assert_eq!(err.to_string(), "json: cannot unmarshal number into Go struct field Hook.path of type string");
/// let err = nri::decode::from_json::<Hook>(b"{'path': 1}").unwrap_err();
/// assert_eq!(err.to_string(), "invalid character '\\'' looking for beginning of object key string");
/// # Ok::<(), nri::decode::Error>(())
/// ```
pub fn from_json<T: DeserializeOwned>(text: &[u8]) -> Result<T, Error> {
    let root = json::parse(text).map_err(|e| {
        let kind = if e.contains("nesting deeper") {
            ErrorKind::Limit
        } else {
            ErrorKind::Syntax
        };
        Error::new(Step::Json, kind, e)
    })?;
    decode_tree(&root, false)
}

/// Decodes a document tree into a `T`, and picks the error Go would report.
fn decode_tree<T: DeserializeOwned>(root: &node::Node, yaml: bool) -> Result<T, Error> {
    let ctx = de::Ctx::new(yaml);
    let result = T::deserialize(de::Slot::root(&ctx, root));
    if ctx.check_pass() {
        // Only its type errors and conversions count.
        let _ = T::deserialize(de::Slot::root(&ctx, root));
    }
    let step = if yaml { Step::YamlDecode } else { Step::Json };
    // Go marshals the YAML document to JSON before decoding it: an infinity
    // or NaN left as a number fails first.
    if yaml {
        if let Some(value) = root.unsupported_value() {
            return Err(Error::new(
                Step::YamlToJson,
                ErrorKind::Unsupported,
                format_args!("json: unsupported value: {value}"),
            ));
        }
    }
    if let Some(message) = ctx.first_error() {
        return Err(Error::new(step, ErrorKind::Type, message));
    }
    result.map_err(|e| e.in_step(step))
}

/// Asserts that `f` turns the text of each case into the case's expected
/// result, naming the text that does not (for the parsers' tests).
#[cfg(test)]
fn assert_cases<T, E>(f: impl Fn(&str) -> T, cases: &[(&str, E)])
where
    T: PartialEq<E> + std::fmt::Debug,
    E: std::fmt::Debug,
{
    for (text, want) in cases {
        assert_eq!(f(text), *want, "{text:?}");
    }
}
