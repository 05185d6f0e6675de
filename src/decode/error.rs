//! The decoding error, worded as Go words it.

use std::fmt;

/// Why a text could not be decoded.
///
/// Its message is the one a Go plugin logs for the same text, where Go has
/// one: `sigs.k8s.io/yaml`'s two steps for YAML
/// (`error converting YAML to JSON: yaml: line 3: did not find expected key`,
/// `error unmarshaling JSON: while decoding JSON: json: cannot unmarshal
/// string into Go struct field Device.major of type int64`), and
/// `encoding/json`'s for JSON (`invalid character 'x' looking for beginning
/// of value`, `json: cannot unmarshal number into Go struct field
/// Hook.path of type string`).
///
/// In a type error the struct is named as Rust names it (`Device`, where Go
/// says `device`), the field path is the keys' names from the top of the
/// document, and the type is Go's name for a scalar (`int64`, `uint32`,
/// `string`, `bool`, `float64`), the struct's name for a struct, `slice`
/// for a list and `map` for a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// What kind of problem an [`Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not valid YAML or JSON.
    Syntax,
    /// Valid YAML that `sigs.k8s.io/yaml` cannot turn into JSON: a `null`
    /// or too large a number as a mapping key, or an infinity or NaN where
    /// no string is expected.
    Unsupported,
    /// A value of the wrong type for its target, as Go's `encoding/json`
    /// reports it.
    Type,
    /// The document is too deep or too large (see
    /// [`MAX_DEPTH`](super::MAX_DEPTH), [`MAX_VALUES`](super::MAX_VALUES),
    /// [`MAX_TEXT`](super::MAX_TEXT)).
    Limit,
    /// The target type refused a value (an unknown enum variant, a missing
    /// field of a struct without `#[serde(default)]`...).
    Other,
}

/// Which Go function the error comes out of, for its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `sigs.k8s.io/yaml`'s YAML to JSON conversion.
    YamlToJson,
    /// `sigs.k8s.io/yaml`'s JSON decoding.
    YamlDecode,
    /// `encoding/json` on JSON text.
    Json,
}

impl Error {
    pub(crate) fn new(step: Step, kind: ErrorKind, message: impl fmt::Display) -> Error {
        let message = match step {
            Step::YamlToJson => format!("error converting YAML to JSON: {message}"),
            Step::YamlDecode => format!("error unmarshaling JSON: while decoding JSON: {message}"),
            Step::Json => message.to_string(),
        };
        Error { kind, message }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, as Go words it (the same as `to_string()`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error from the decoding step `step`: the target type's own
    /// errors are made without knowing it (called once, at the end).
    pub(crate) fn in_step(self, step: Step) -> Error {
        if self.kind == ErrorKind::Other {
            Error::new(step, self.kind, self.message)
        } else {
            self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error {
            kind: ErrorKind::Other,
            message: msg.to_string(),
        }
    }

    fn missing_field(field: &'static str) -> Error {
        Error::custom(format_args!(
            "missing field `{field}` (add #[serde(default)] to the struct to leave \
             a missing field at its default, as Go leaves it at its zero value)"
        ))
    }
}
