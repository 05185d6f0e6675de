//! A compact, readable dump of any NRI message, for logs: a YAML-like
//! text, as Go plugins log `yaml.Marshal(obj)`, without protobuf
//! reflection.
//!
//! The text is YAML, and reads as the same data as Go's `yaml.Marshal` of
//! the Go message (the optional values too: `limit: {value: 536870912}`),
//! in a compact form: fields in `.proto` order under their `.proto` names;
//! fields at their default (empty, zero, unset) left out, as Go's
//! `omitempty` does; enums by name (Go writes their number); lists of
//! scalars and optional values on one line; maps sorted by key. Every
//! message implements
//! [`Dump`]: the implementations are generated at build time from
//! `proto/nri.proto` (`build/dump_gen.rs`), so a plugin that dumps
//! messages needs neither `protobuf::text_format` (about 1.3 MB of a static
//! binary) nor `{:#?}` (every `special_fields` block).
//!
//! ```
//! use nri::api::{fixtures, ContainerAdjustment, Dump, LinuxDevice};
//!
//! let mut adjust = ContainerAdjustment::new();
//! adjust.add_env("POD", "web");
//! adjust.add_device(LinuxDevice::char_device("/dev/nri-null", 1, 3).with_file_mode(0o666));
//! adjust.set_linux_memory_limit(512 << 20);
//! assert_eq!(
//!     adjust.dump(),
//!     "env:\n\
//!      - key: POD\n  value: web\n\
//!      linux:\n  \
//!        devices:\n  \
//!        - path: /dev/nri-null\n    type: c\n    major: 1\n    minor: 3\n    file_mode: {value: 438}\n  \
//!        resources:\n    memory:\n      limit: {value: 536870912}\n"
//! );
//! let pod = fixtures::pod("web").build();
//! assert!(pod.dump().starts_with(&format!("id: {}\nname: web\n", pod.id)));
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;

use protobuf::{Enum, EnumOrUnknown, MessageField};

/// A message that can be dumped in the compact form of the
/// [module documentation](self). Every message of [`crate::api`] has it.
pub trait Dump {
    /// Writes the fields that are set. Generated for each message.
    #[doc(hidden)]
    fn dump_to(&self, w: &mut Writer);

    /// Whether the message only wraps a value, and dumps as it.
    #[doc(hidden)]
    fn is_value(&self) -> bool {
        false
    }

    /// The message as a YAML-like text, one line per field, each line
    /// ended by `\n`; empty for a message with no field set.
    fn dump(&self) -> String {
        let mut w = Writer::default();
        self.dump_to(&mut w);
        w.out
    }
}

/// Logs the dump of `message` at `level`, a record per line, as Go's sample
/// plugins log objects: `prefix: tag:`, then each line as
/// `prefix:    line` (or `tag:` and `  line` without a prefix).
///
/// ```
/// use nri::api::{dump, fixtures};
/// let pod = fixtures::pod("web").build();
/// dump::log(log::Level::Debug, "web/nginx", "pod", &pod);
/// ```
pub fn log(level: log::Level, prefix: &str, tag: &str, message: &dyn Dump) {
    if !log::log_enabled!(level) {
        return;
    }
    let text = message.dump();
    if prefix.is_empty() {
        log::log!(level, "{tag}:");
        for line in text.lines() {
            log::log!(level, "  {line}");
        }
    } else {
        log::log!(level, "{prefix}: {tag}:");
        for line in text.lines() {
            log::log!(level, "{prefix}:    {line}");
        }
    }
}

/// Where [`Dump`] writes (its methods are the crate's own).
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
    /// The value of a message that only wraps one.
    value: Option<String>,
}

/// A field value written as a scalar.
pub(crate) trait Scalar {
    /// Whether it is the default (then a field of it is left out).
    fn is_default(&self) -> bool;
    /// Its text, quoted if YAML would read it otherwise.
    fn render(&self) -> String;
}

impl Scalar for String {
    fn is_default(&self) -> bool {
        self.is_empty()
    }
    fn render(&self) -> String {
        quote(self)
    }
}

impl Scalar for bool {
    fn is_default(&self) -> bool {
        !*self
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn is_default(&self) -> bool {
                *self == <$t>::default()
            }
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
numbers!(i32, i64, u32, u64, f32, f64);

impl<E: Enum + std::fmt::Debug> Scalar for EnumOrUnknown<E> {
    fn is_default(&self) -> bool {
        self.value() == 0
    }
    fn render(&self) -> String {
        match self.enum_value() {
            Ok(e) => format!("{e:?}"),
            Err(n) => n.to_string(),
        }
    }
}

/// Whether YAML would read `s` as something else than this string, or
/// could not read it in a line: then it is written double-quoted.
fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "~" | "null"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    );
    let numeric = s
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    reserved
        || numeric
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.contains([',', '[', ']', '{', '}'])
        || s.chars().any(|c| c.is_control() || c == '\u{feff}')
}

/// A string as YAML reads it back: plain when it can be, else
/// double-quoted with JSON's escapes.
fn quote(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A map key (a string or an integer).
pub(crate) trait Key: Ord {
    fn render(&self) -> String;
}

impl Key for String {
    fn render(&self) -> String {
        quote(self)
    }
}

impl Key for i32 {
    fn render(&self) -> String {
        self.to_string()
    }
}

/// `text` indented by `by` spaces, each line.
fn indented(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

// The generated code calls the generic methods, thin layers over the
// non-generic ones below: a few kilobytes of code for all the messages.
impl Writer {
    fn line(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.out, "{key}: {value}");
    }

    /// A block under `key`.
    fn block(&mut self, key: &str, body: &str) {
        if body.is_empty() {
            self.line(key, "{}");
        } else {
            let _ = writeln!(self.out, "{key}:");
            self.out.push_str(&indented(body, "  "));
        }
    }

    /// The dump of a message: its value, or its block.
    fn nested(message: &dyn Dump) -> Result<String, String> {
        let mut w = Writer::default();
        message.dump_to(&mut w);
        match w.value {
            Some(value) if message.is_value() => Ok(value),
            _ => Err(w.out),
        }
    }

    fn scalar_dyn(&mut self, key: &str, value: &dyn Scalar) {
        if !value.is_default() {
            self.line(key, &value.render());
        }
    }

    fn flow(items: &mut dyn Iterator<Item = String>) -> String {
        format!("[{}]", items.collect::<Vec<_>>().join(", "))
    }

    fn message_dyn(&mut self, key: &str, message: Option<&dyn Dump>) {
        let Some(message) = message else {
            return;
        };
        match Writer::nested(message) {
            Ok(value) => self.line(key, &value),
            Err(body) => self.block(key, &body),
        }
    }

    fn messages_dyn(&mut self, key: &str, values: &mut dyn ExactSizeIterator<Item = &dyn Dump>) {
        if values.len() == 0 {
            return;
        }
        let _ = writeln!(self.out, "{key}:");
        for message in values {
            match Writer::nested(message) {
                Ok(value) => {
                    let _ = writeln!(self.out, "- {value}");
                }
                Err(body) if body.is_empty() => self.out.push_str("- {}\n"),
                Err(body) => {
                    let mut lines = body.lines();
                    if let Some(first) = lines.next() {
                        let _ = writeln!(self.out, "- {first}");
                    }
                    for line in lines {
                        let _ = writeln!(self.out, "  {line}");
                    }
                }
            }
        }
    }

    /// A map's entries, sorted by key: rendered keys and values.
    fn map_dyn(&mut self, key: &str, entries: Vec<(String, Result<String, &dyn Dump>)>) {
        if entries.is_empty() {
            return;
        }
        let mut body = Writer::default();
        for (k, value) in entries {
            match value {
                Ok(scalar) => body.line(&k, &scalar),
                Err(message) => match Writer::nested(message) {
                    Ok(value) => body.line(&k, &value),
                    Err(block) => body.block(&k, &block),
                },
            }
        }
        self.block(key, &body.out);
    }

    pub(crate) fn scalar<S: Scalar>(&mut self, key: &str, value: &S) {
        self.scalar_dyn(key, value);
    }

    pub(crate) fn enumeration<S: Scalar>(&mut self, key: &str, value: &S) {
        self.scalar_dyn(key, value);
    }

    pub(crate) fn list<S: Scalar>(&mut self, key: &str, values: &[S]) {
        if !values.is_empty() {
            let text = Writer::flow(&mut values.iter().map(Scalar::render));
            self.line(key, &text);
        }
    }

    pub(crate) fn enums<S: Scalar>(&mut self, key: &str, values: &[S]) {
        self.list(key, values);
    }

    pub(crate) fn message<M: Dump>(&mut self, key: &str, field: &MessageField<M>) {
        self.message_dyn(key, field.as_ref().map(|m| m as &dyn Dump));
    }

    pub(crate) fn messages<M: Dump>(&mut self, key: &str, values: &[M]) {
        self.messages_dyn(key, &mut values.iter().map(|m| m as &dyn Dump));
    }

    pub(crate) fn map<K: Key, S: Scalar>(&mut self, key: &str, map: &HashMap<K, S>) {
        let mut entries: Vec<(&K, &S)> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let entries = entries
            .into_iter()
            .map(|(k, v)| (k.render(), Ok(v.render())))
            .collect();
        self.map_dyn(key, entries);
    }

    pub(crate) fn map_messages<K: Key, M: Dump>(&mut self, key: &str, map: &HashMap<K, M>) {
        let mut entries: Vec<(&K, &M)> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let entries = entries
            .into_iter()
            .map(|(k, m)| (k.render(), Err(m as &dyn Dump)))
            .collect();
        self.map_dyn(key, entries);
    }

    /// The value of a message that only wraps one (set even at its
    /// default), on one line.
    pub(crate) fn inline<S: Scalar>(&mut self, value: &S) {
        self.value = Some(format!("{{value: {}}}", value.render()));
    }

    /// The values of a message that only wraps a list, on one line.
    pub(crate) fn inline_list<S: Scalar>(&mut self, values: &[S]) {
        let list = Writer::flow(&mut values.iter().map(Scalar::render));
        self.value = Some(format!("{{value: {list}}}"));
    }
}

include!(concat!(env!("OUT_DIR"), "/dump.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{fixtures, optional, ContainerState, Hook, Hooks, LinuxNamespace};

    #[test]
    fn strings_are_quoted_only_when_yaml_would_misread_them() {
        for plain in [
            "web",
            "/dev/nri-null",
            "a b",
            "k=v",
            "x:y",
            "nginx:1.25",
            "é",
            "say \"hi\"",
        ] {
            assert_eq!(quote(plain), plain);
        }
        for (s, q) in [
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("NULL", "\"NULL\""),
            ("42", "\"42\""),
            ("-1", "\"-1\""),
            (".5", "\".5\""),
            ("a: b", "\"a: b\""),
            ("- x", "\"- x\""),
            ("a, b", "\"a, b\""),
            ("line\nbreak", "\"line\\nbreak\""),
            ("\"hi\"", "\"\\\"hi\\\"\""),
            (" lead", "\" lead\""),
            ("*alias", "\"*alias\""),
        ] {
            assert_eq!(quote(s), q, "{s:?}");
        }
    }

    #[test]
    fn a_container_dumps_in_proto_order_without_defaults() {
        let pod = fixtures::pod("web").build();
        let ctr = fixtures::container(&pod, "nginx")
            .state(ContainerState::CONTAINER_RUNNING)
            .hooks(Hooks {
                poststart: vec![Hook::command("/bin/sh", ["sh", "-c", "echo hi"])],
                ..Default::default()
            })
            .build();
        let text = ctr.dump();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("id: {}", ctr.id));
        assert_eq!(lines[1], format!("pod_sandbox_id: {}", pod.id));
        assert_eq!(lines[2], "name: nginx");
        assert_eq!(lines[3], "state: CONTAINER_RUNNING");
        assert!(text.contains("\nlabels:\n  io.kubernetes.container.name: nginx\n"));
        assert!(text.contains("\nargs: [/usr/local/bin/nginx]\n"));
        assert!(text.contains("\nmounts:\n- destination: /proc\n  type: proc\n  source: proc\n  options: [nosuid, noexec, nodev]\n"));
        assert!(text.contains(
            "\nhooks:\n  poststart:\n  - path: /bin/sh\n    args: [sh, \"-c\", echo hi]\n"
        ));
        assert!(text.contains("\n  namespaces:\n  - type: pid\n"), "{text}");
        assert!(
            text.contains("\n  oom_score_adj: {value: 1000}\n"),
            "{text}"
        );
        // Defaults are left out: exit_code 0, no rlimits, no CDI devices.
        assert!(!text.contains("exit_code"));
        assert!(!text.contains("rlimits"));
        assert!(!text.contains("special_fields"));
        // Lines stay short: no wrapper messages, no reflection names.
        assert!(text.len() < 6000, "{}", text.len());
    }

    #[test]
    fn set_optionals_show_even_at_their_default() {
        let mut ns = LinuxNamespace::create(LinuxNamespace::PID);
        assert_eq!(ns.dump(), "type: pid\n");
        ns.path = "/proc/1/ns/pid".into();
        assert_eq!(ns.dump(), "type: pid\npath: /proc/1/ns/pid\n");
        let device = crate::api::LinuxDevice {
            uid: optional(0),
            ..Default::default()
        };
        assert_eq!(device.dump(), "uid: {value: 0}\n");
        assert_eq!(crate::api::Container::default().dump(), "");
    }

    #[test]
    fn maps_of_messages_nest_by_sorted_key() {
        let mut adjust = crate::api::ContainerAdjustment::new();
        adjust.add_annotation("b", "2");
        adjust.add_annotation("a", "1");
        let text = adjust.dump();
        assert_eq!(text, "annotations:\n  a: \"1\"\n  b: \"2\"\n");
    }
}
