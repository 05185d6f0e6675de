//! The RDT plugin: sets a container's Intel RDT (resctrl) class of service,
//! schemata and monitoring from pod annotations. A port of containerd/nri's
//! `plugins/rdt`.
//!
//! The annotations, one per field, for the container named `<name>`:
//!
//! ```yaml
//! closid.rdt.noderesource.dev/container.<name>: gold          # CLOS id
//! schemata.rdt.noderesource.dev/container.<name>: L3:0=f,MB:0=50  # split at ","
//! enablemonitoring.rdt.noderesource.dev/container.<name>: "true"  # a Go boolean
//! ```
//!
//! Values are plain strings, read as the Go plugin reads them: the CLOS id
//! as it is, the schemata split at every `,` (an empty value is one empty
//! line), the monitoring switch with Go's `strconv.ParseBool` (`1`, `t`,
//! `T`, `TRUE`, `true`, `True`, and `0`, `f`... for false). A value
//! `ParseBool` refuses fails the container's creation with Go's error,
//! `strconv.ParseBool: parsing "yes": invalid syntax`. Any other key ending
//! in `.rdt.noderesource.dev/container.<name>` is logged (`Unknown rdt
//! field`) and ignored.
//!
//! The log lines are the Go plugin's messages followed by its fields the way
//! logrus prints them (`Adjust closid closid=gold container=c0
//! namespace=default pod=web`).
//!
//! The Go plugin visits the annotations in Go's random map order; this port
//! visits them in key order. Only the order of the log lines can differ:
//! each field has one key, and a bad monitoring value fails the creation
//! whatever else is annotated.
//!
//! Runtimes take RDT adjustments from NRI v0.11 on (containerd 2.2.1 and
//! later), and write them into the container's OCI spec
//! (`linux.intelRdt`); older ones drop them. The node needs resctrl for the
//! OCI runtime to apply them.
//!
//! Like every example here (and unlike the Go plugin, which takes no
//! configuration), it reads `logFile`, `syslog` and `verbose` from the
//! configuration text the runtime sends (see `nri::logging`): the only
//! settings a plugin the runtime launches gets.

use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::stub::{Context, HandlerResult, Plugin};

/// The domain and scope every RDT annotation key ends with, before the
/// container's name.
pub const KEY_SUFFIX: &str = ".rdt.noderesource.dev/container.";

/// The RDT plugin.
#[derive(Debug, Default)]
pub struct Rdt;

impl Plugin for Rdt {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        // The logging keys (logFile, syslog, verbose), as every example.
        nri::logging::configure_from_text(config)?;
        Ok(None)
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let fields = Fields::new(pod, container);
        log::debug!("{}", fields.line("Create container", &[]));
        let adjust = adjust_rdt(&fields, &container.name, pod)?;
        Ok((adjust, Vec::new()))
    }
}

/// The adjustment the annotations of `pod` ask for container `container`,
/// or Go's `strconv.ParseBool` error for a bad monitoring value.
pub fn adjust_rdt(
    fields: &Fields,
    container: &str,
    pod: &PodSandbox,
) -> Result<ContainerAdjustment, String> {
    let suffix = format!("{KEY_SUFFIX}{container}");
    let mut keys: Vec<&String> = pod
        .annotations
        .keys()
        .filter(|k| k.ends_with(&suffix))
        .collect();
    keys.sort();
    let mut adjust = ContainerAdjustment::new();
    for key in keys {
        let value = &pod.annotations[key];
        match &key[..key.len() - suffix.len()] {
            "closid" => {
                log::info!("{}", fields.line("Adjust closid", &[("closid", value)]));
                adjust.set_linux_rdt_clos_id(value.as_str());
            }
            "schemata" => {
                let schemata: Vec<&str> = value.split(',').collect();
                let shown = format!("[{}]", schemata.join(" "));
                log::info!(
                    "{}",
                    fields.line("Adjust schemata", &[("schemata", &shown)])
                );
                adjust.set_linux_rdt_schemata(schemata);
            }
            "enablemonitoring" => {
                let enable = parse_bool(value)?;
                let shown = enable.to_string();
                log::info!(
                    "{}",
                    fields.line("Adjust enablemonitoring", &[("enablemonitoring", &shown)])
                );
                adjust.set_linux_rdt_enable_monitoring(enable);
            }
            other => {
                log::info!(
                    "{}",
                    fields.line("Unknown rdt field", &[("field_name", other)])
                );
            }
        }
    }
    Ok(adjust)
}

/// Go's `strconv.ParseBool`, with its error text.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(value)
        )),
    }
}

/// The fields the Go plugin logs with every line of a container's creation.
pub struct Fields {
    base: Vec<(&'static str, String)>,
}

impl Fields {
    /// The pod's namespace and name and the container's name.
    pub fn new(pod: &PodSandbox, container: &Container) -> Fields {
        Fields {
            base: vec![
                ("namespace", pod.namespace.clone()),
                ("pod", pod.name.clone()),
                ("container", container.name.clone()),
            ],
        }
    }

    /// `message` followed by these fields and `extra`, sorted by key and
    /// quoted as logrus's text format does.
    pub fn line(&self, message: &str, extra: &[(&str, &str)]) -> String {
        let mut all: Vec<(&str, &str)> = self
            .base
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(extra.iter().copied())
            .collect();
        all.sort_by_key(|(k, _)| *k);
        let mut line = message.to_string();
        for (key, value) in all {
            line.push(' ');
            line.push_str(key);
            line.push('=');
            if value.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+')
            }) {
                line.push_str(value);
            } else {
                line.push_str(&go_quote(value));
            }
        }
        line
    }
}

/// A string quoted as Go's `strconv.Quote` quotes it: printable characters
/// as they are, the others escaped. Go decides printability with Unicode's
/// categories; this knows the control, format, separator and private-use
/// characters, and takes unassigned code points as printable.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if !is_go_printable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint` for the characters it refuses: controls, format
/// characters (Cf), separators other than the space (Zs, Zl, Zp), private
/// use (Co) and noncharacters.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    let refused = c.is_control()
        || matches!(u,
            // Zs (but U+0020), Zl, Zp
            0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
            // Cf
            | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
            | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
            | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
            // Co
            | 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd
            // noncharacters (Cn)
            | 0xfdd0..=0xfdef)
        || (u & 0xfffe) == 0xfffe;
    !refused
}
