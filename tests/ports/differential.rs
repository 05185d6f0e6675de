//! Differential test of the ported example plugins against the Go libraries
//! the Go originals use, and of `nri::decode` against `sigs.k8s.io/yaml`
//! (`decode.rs`).
//!
//! `tests/ports/oracle` (Go) generates inputs and records what the Go
//! plugins do with them: annotations decoded by `sigs.k8s.io/yaml` into
//! the Go plugins' structs (device-injector, ulimit-adjuster; the device
//! injector's network devices, scheduling policy, sysctls and memory policy
//! applied with Go's NRI API v0.12.5), hook directories read and matched by
//! `go.podman.io/common/pkg/hooks` v0.66.1 (hook-injector). This test feeds the same inputs to the Rust examples
//! and requires the same outcome: the same adjustment, or an error where Go
//! fails. The only accepted differences are the deliberate ones each
//! example documents, listed in [`Exception`]. The cases are read with
//! `nri::decode` too (JSON, into its `Value`).
//!
//! Cases come from `NRI_PORTS_CASES` (written by `tests/ports/run.sh`), or
//! else from the recorded `tests/ports/corpus.jsonl`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nri::api::{Container, PodSandbox};
use nri::decode::{Number, Value};

#[allow(dead_code)]
#[path = "../../examples/device-injector/plugin.rs"]
mod device_injector;
#[allow(dead_code)]
#[path = "../../examples/hook-injector/plugin.rs"]
mod hook_injector;
#[allow(dead_code)]
#[path = "../../examples/ulimit-adjuster/plugin.rs"]
mod ulimit_adjuster;

#[path = "decode.rs"]
mod decode;
#[path = "hooks.rs"]
mod hooks;
#[path = "samples.rs"]
mod samples;

/// A deliberate difference from the Go plugin: the Go result that allows
/// it, and the error the Rust port must give instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exception {
    /// device-injector: Go injects a device with an empty path.
    DeviceWithoutPath,
    /// device-injector: Go injects a mount with an empty destination.
    MountWithoutDestination,
    /// device-injector: Go asks for the host network interface of the
    /// empty name.
    NetDeviceWithoutHostIf,
    /// device-injector: Go's NRI API turns an unknown scheduling policy or
    /// flag, memory policy mode or flag name into the enum's zero value.
    UnknownName,
    /// device-injector: Go passes on a sysctl with an empty name or value.
    EmptySysctl,
    /// All YAML: nesting deeper than 256 levels is refused (Go: 10,000).
    DeepNesting,
    /// All YAML: a tag with `,`, `[` or `]` is refused (Go's older libyaml
    /// takes them into the tag).
    TagFlowCharacter,
    /// All YAML: in a flow collection, a plain scalar with `:` right before
    /// a flow indicator is refused (Go keeps the `:` in the scalar).
    ColonBeforeFlowIndicator,
}

impl Exception {
    /// The text the Rust error must contain.
    fn message(self) -> &'static str {
        match self {
            Exception::DeviceWithoutPath => "has no path",
            Exception::MountWithoutDestination => "has no destination",
            Exception::NetDeviceWithoutHostIf => device_injector::linux::NO_HOST_IF,
            Exception::UnknownName => device_injector::linux::UNKNOWN_NAME,
            Exception::EmptySysctl => device_injector::linux::EMPTY_SYSCTL,
            Exception::DeepNesting => "nesting deeper than 256 levels",
            Exception::TagFlowCharacter => nri::decode::TAG_FLOW_CHARACTER,
            Exception::ColonBeforeFlowIndicator => nri::decode::COLON_BEFORE_FLOW_INDICATOR,
        }
    }
}

impl Exception {
    /// The device injector's annotation kinds this exception is about
    /// (empty: any kind's YAML).
    fn kinds(self) -> &'static [&'static str] {
        match self {
            Exception::DeviceWithoutPath => &["devices"],
            Exception::MountWithoutDestination => &["mounts"],
            Exception::NetDeviceWithoutHostIf => &["network-devices"],
            Exception::UnknownName => &["scheduling-policy", "memory-policy"],
            Exception::EmptySysctl => &["sysctl"],
            _ => &[],
        }
    }

    /// The exception the oracle's quirk `name` allows (it notes inputs Go
    /// takes that the port refuses on purpose).
    fn of_quirk(name: &str) -> Option<Exception> {
        match name {
            "net-device-without-host-if" => Some(Exception::NetDeviceWithoutHostIf),
            "unknown-name" => Some(Exception::UnknownName),
            "empty-sysctl" => Some(Exception::EmptySysctl),
            _ => None,
        }
    }
}

/// The device injector's annotation kinds, for the per-kind counts.
const DEVICE_KINDS: [&str; 8] = [
    "devices",
    "cdi-devices",
    "mounts",
    "io-priority",
    "network-devices",
    "scheduling-policy",
    "sysctl",
    "memory-policy",
];

/// What one case came to.
#[derive(Debug, Default)]
pub struct Tally {
    pub cases: BTreeMap<&'static str, usize>,
    pub agreed_errors: BTreeMap<&'static str, usize>,
    pub exceptions: BTreeMap<(&'static str, Exception), usize>,
    /// device-injector cases by annotation kind present: cases, errors in
    /// both, deliberate differences about that kind.
    pub kinds: BTreeMap<&'static str, (usize, usize, usize)>,
    pub decode_exceptions: BTreeMap<(&'static str, &'static str), usize>,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn fail(&mut self, plugin: &str, id: i64, what: String) {
        if self.failures.len() < 30 {
            self.failures.push(format!("{plugin} case {id}: {what}"));
        } else if self.failures.len() == 30 {
            self.failures.push("...".into());
        }
    }
}

pub fn field<'a>(case: &'a Value, name: &str) -> Option<&'a Value> {
    case.get(name)
}

/// A case's `id`, -1 when it has none.
pub fn case_id(case: &Value) -> i64 {
    field(case, "id").and_then(Value::as_i64).unwrap_or(-1)
}

pub fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

pub fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_map)
        .map(|entries| {
            entries
                .iter()
                .map(|(k, v)| (k.clone(), str_of(Some(v)).to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn num(n: impl Into<Number>) -> Value {
    Value::Number(n.into())
}

pub fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

pub fn list(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Seq(items)
    }
}

pub fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// `[]` and `null` are the same list to a runtime; a number is its value.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Seq(items) if items.is_empty() => Value::Null,
        Value::Seq(items) => Value::Seq(items.iter().map(normalize).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => num(i),
            (None, Some(u)) => num(u),
            _ => v.clone(),
        },
        other => other.clone(),
    }
}

fn pod_with(annotations: Vec<(String, String)>) -> PodSandbox {
    PodSandbox {
        id: "pod".into(),
        name: "pod".into(),
        namespace: "default".into(),
        annotations: annotations.into_iter().collect(),
        ..Default::default()
    }
}

fn container_named(name: &str) -> Container {
    Container {
        id: "ctr".into(),
        pod_sandbox_id: "pod".into(),
        name: name.into(),
        ..Default::default()
    }
}

fn device_result(pod: &PodSandbox, ctr: &Container) -> Result<Value, String> {
    let adjust = device_injector::adjustment_for(pod, ctr)?;
    let optional = |v: Option<u32>| v.map_or(Value::Null, |v| num(u64::from(v)));
    let devices = adjust
        .linux
        .devices
        .iter()
        .map(|d| {
            object(vec![
                ("path", string(&d.path)),
                ("type", string(&d.type_)),
                ("major", num(d.major)),
                ("minor", num(d.minor)),
                ("file_mode", optional(d.file_mode.as_ref().map(|m| m.value))),
                ("uid", optional(d.uid.as_ref().map(|m| m.value))),
                ("gid", optional(d.gid.as_ref().map(|m| m.value))),
            ])
        })
        .collect();
    let cdi = adjust.CDI_devices.iter().map(|d| string(&d.name)).collect();
    let mounts = adjust
        .mounts
        .iter()
        .map(|m| {
            object(vec![
                ("source", string(&m.source)),
                ("destination", string(&m.destination)),
                ("type", string(&m.type_)),
                (
                    "options",
                    list(m.options.iter().map(|o| string(o)).collect()),
                ),
            ])
        })
        .collect();
    let priority = match adjust.linux.io_priority.as_ref() {
        Some(p) => object(vec![
            (
                "class",
                string(&format!("{:?}", p.class.enum_value_or_default())),
            ),
            ("priority", num(i64::from(p.priority))),
        ]),
        None => Value::Null,
    };
    let linux = &adjust.linux;
    let map = |entries: Vec<(String, Value)>| {
        if entries.is_empty() {
            Value::Null
        } else {
            Value::Map(entries.into_iter().collect())
        }
    };
    let net_devices = map(linux
        .net_devices
        .iter()
        .map(|(host, d)| (host.clone(), string(&d.name)))
        .collect());
    let sysctl = map(linux
        .sysctl
        .iter()
        .map(|(k, v)| (k.clone(), string(v)))
        .collect());
    let name = |n: String| string(&n);
    let scheduler = match linux.scheduler.as_ref() {
        Some(s) => object(vec![
            (
                "policy",
                name(format!("{:?}", s.policy.enum_value_or_default())),
            ),
            ("nice", num(i64::from(s.nice))),
            ("priority", num(i64::from(s.priority))),
            (
                "flags",
                list(
                    s.flags
                        .iter()
                        .map(|f| name(format!("{:?}", f.enum_value_or_default())))
                        .collect(),
                ),
            ),
            ("runtime", num(s.runtime)),
            ("deadline", num(s.deadline)),
            ("period", num(s.period)),
        ]),
        None => Value::Null,
    };
    let memory_policy = match linux.memory_policy.as_ref() {
        Some(m) => object(vec![
            (
                "mode",
                name(format!("{:?}", m.mode.enum_value_or_default())),
            ),
            ("nodes", string(&m.nodes)),
            (
                "flags",
                list(
                    m.flags
                        .iter()
                        .map(|f| name(format!("{:?}", f.enum_value_or_default())))
                        .collect(),
                ),
            ),
        ]),
        None => Value::Null,
    };
    Ok(object(vec![
        ("devices", list(devices)),
        ("cdi_devices", list(cdi)),
        ("mounts", list(mounts)),
        ("io_priority", priority),
        ("net_devices", net_devices),
        ("scheduler", scheduler),
        ("sysctl", sysctl),
        ("memory_policy", memory_policy),
    ]))
}

fn ulimit_result(pod: &PodSandbox, ctr: &Container) -> Result<Value, String> {
    let ulimits = ulimit_adjuster::parse_ulimits(pod, &ctr.name)?;
    let adjust = ulimit_adjuster::adjust_ulimits(&ctr.name, &ulimits)?;
    let rlimits = adjust
        .rlimits
        .iter()
        .map(|r| {
            object(vec![
                ("type", string(&r.type_)),
                ("hard", num(r.hard)),
                ("soft", num(r.soft)),
            ])
        })
        .collect();
    Ok(object(vec![("rlimits", list(rlimits))]))
}

/// The exception a Go result allows, if any.
fn exception_for(plugin: &str, go: &Value) -> Option<Exception> {
    if plugin != "device-injector" {
        return None;
    }
    let any = |kind: &str, name: &str| match field(go, kind) {
        Some(Value::Seq(items)) => items.iter().any(|i| str_of(field(i, name)).is_empty()),
        _ => false,
    };
    if any("devices", "path") {
        Some(Exception::DeviceWithoutPath)
    } else if any("mounts", "destination") {
        Some(Exception::MountWithoutDestination)
    } else {
        None
    }
}

fn check_annotation_case(case: &Value, tally: &mut Tally) {
    let plugin: &'static str = match str_of(field(case, "plugin")) {
        "device-injector" => "device-injector",
        _ => "ulimit-adjuster",
    };
    let id = case_id(case);
    *tally.cases.entry(plugin).or_default() += 1;
    let annotations = string_map(field(case, "annotations"));
    let kinds: Vec<&'static str> = if plugin == "device-injector" {
        DEVICE_KINDS
            .into_iter()
            .filter(|kind| {
                let prefixes = [format!("{kind}.noderesource.dev"), format!("{kind}.nri.io")];
                annotations.iter().any(|(k, _)| {
                    prefixes
                        .iter()
                        .any(|p| k == p || k.starts_with(&format!("{p}/")))
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    for kind in &kinds {
        tally.kinds.entry(kind).or_default().0 += 1;
    }
    let quirks: Vec<Exception> = match field(case, "quirks") {
        Some(Value::Seq(q)) => q
            .iter()
            .filter_map(|q| Exception::of_quirk(str_of(Some(q))))
            .collect(),
        _ => Vec::new(),
    };
    let pod = pod_with(annotations.clone());
    let ctr = container_named(str_of(field(case, "container")));
    let ours = if plugin == "device-injector" {
        device_result(&pod, &ctr)
    } else {
        ulimit_result(&pod, &ctr)
    };
    // Go's outcomes: one, or each its map iteration order allows.
    let mut outcomes: Vec<Result<Value, String>> = match field(case, "variants") {
        Some(Value::Seq(variants)) => variants
            .iter()
            .map(|v| match v {
                Value::String(e) => Err(e.clone()),
                result => Ok(normalize(result)),
            })
            .collect(),
        _ => Vec::new(),
    };
    if outcomes.is_empty() {
        outcomes.push(match field(case, "error") {
            Some(Value::String(e)) => Err(e.clone()),
            _ => Ok(normalize(field(case, "result").unwrap_or(&Value::Null))),
        });
    }
    let show = || format!("annotations {annotations:?}, container {:?}", ctr.name);
    let agrees = |ours: &Result<Value, String>| {
        outcomes.iter().any(|go| match (go, ours) {
            (Ok(a), Ok(b)) => *a == normalize(b),
            (Err(_), Err(_)) => true,
            _ => false,
        })
    };
    if agrees(&ours) {
        if ours.is_err() {
            *tally.agreed_errors.entry(plugin).or_default() += 1;
            for kind in &kinds {
                tally.kinds.entry(kind).or_default().1 += 1;
            }
        }
        return;
    }
    // Not the same: only a listed exception may explain it.
    let parser_exception = [
        Exception::DeepNesting,
        Exception::TagFlowCharacter,
        Exception::ColonBeforeFlowIndicator,
    ]
    .into_iter()
    .find(|x| matches!(&ours, Err(e) if e.contains(x.message())));
    // A quirk the oracle noted allows its exception when Go took the input.
    let quirk_exception = quirks
        .iter()
        .copied()
        .find(|x| matches!(&ours, Err(e) if e.contains(x.message())));
    let exception = match (&outcomes[0], &ours) {
        (_, Err(_)) if parser_exception.is_some() => parser_exception,
        (Ok(_), Err(_)) if quirk_exception.is_some() => quirk_exception,
        (Ok(go), Err(_)) => exception_for(plugin, go),
        _ => None,
    };
    match (exception, &ours) {
        (Some(x), Err(e)) if e.contains(x.message()) => {
            *tally.exceptions.entry((plugin, x)).or_default() += 1;
            for kind in &kinds {
                if x.kinds().is_empty() || x.kinds().contains(kind) {
                    tally.kinds.entry(kind).or_default().2 += 1;
                }
            }
        }
        _ => tally.fail(
            plugin,
            id,
            format!("Go {:?}\n  Rust {ours:?}\n  {}", outcomes, show()),
        ),
    }
}

fn cases_file() -> PathBuf {
    match std::env::var_os("NRI_PORTS_CASES") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ports/corpus.jsonl"),
    }
}

#[test]
fn ported_plugins_do_what_the_go_plugins_do_on_every_generated_case() {
    let path = cases_file();
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tally = Tally::default();
    let mut lines = 0;
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let case: Value = nri::decode::from_json(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
        match str_of(field(&case, "plugin")) {
            "hook-injector" => hooks::check_hook_case(&case, &mut tally),
            "decode" => decode::check_decode_case(line, &mut tally),
            p if samples::PLUGINS.contains(&p) => samples::check_sample_case(&case, &mut tally),
            _ => check_annotation_case(&case, &mut tally),
        }
    }
    println!("{}: {lines} cases", path.display());
    for (plugin, n) in &tally.cases {
        println!(
            "  {plugin}: {n} cases, {} errors in both",
            tally.agreed_errors.get(plugin).unwrap_or(&0)
        );
    }
    for (kind, (n, errors, exceptions)) in &tally.kinds {
        println!(
            "  device-injector {kind}: {n} cases, {errors} errors in both, {exceptions} deliberate differences"
        );
    }
    for ((plugin, x), n) in &tally.exceptions {
        println!("  {plugin}: {n} deliberate differences {x:?}");
    }
    for ((plugin, x), n) in &tally.decode_exceptions {
        println!("  {plugin}: {n} deliberate differences {x}");
    }
    assert!(lines > 0, "no cases in {}", path.display());
    assert!(
        tally.failures.is_empty(),
        "{} cases differ from Go:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}
