//! The differential check of the ports of upstream's other samples
//! (`network-device-injector`, `rdt`, `writable-cgroups`, `network-logger`,
//! `differ`) against what the Go oracle (`oracle/samples.go`) records of
//! the Go code: each case's input, fed to the Rust example's own functions,
//! must give the Go outcome, or a deliberate difference the example
//! documents (counted by kind).

use nri::api::{Container, LinuxNamespace, LinuxPodSandbox, Mount, OptionalExt, PodSandbox};
use nri::decode::Value;
use protobuf::{Message, MessageField};
use serde::Deserialize;

use super::{case_id, field, list, normalize, num, object, str_of, string, string_map, Tally};

// The examples' modules, side by side as in each example's main.rs.
#[allow(dead_code)]
#[path = "../../examples/differ/plugin.rs"]
mod differ;
#[allow(dead_code)]
#[path = "../../examples/differ/godiff.rs"]
mod godiff;
#[allow(dead_code)]
#[path = "../../examples/differ/gotree.rs"]
mod gotree;
#[allow(dead_code)]
#[path = "../../examples/network-device-injector/hostdev.rs"]
mod hostdev;
#[allow(dead_code)]
#[path = "../../examples/writable-cgroups/mountinfo.rs"]
mod mountinfo;
#[allow(dead_code)]
#[path = "../../examples/network-device-injector/netlink.rs"]
mod netlink;
#[allow(dead_code)]
#[path = "../../examples/network-device-injector/plugin.rs"]
mod network_device_injector;
#[allow(dead_code)]
#[path = "../../examples/network-logger/plugin.rs"]
mod network_logger;
#[allow(dead_code)]
#[path = "../../examples/differ/prototext.rs"]
mod prototext;
#[allow(dead_code)]
#[path = "../../examples/rdt/plugin.rs"]
mod rdt;
#[allow(dead_code)]
#[path = "../../examples/writable-cgroups/plugin.rs"]
mod writable_cgroups;
#[allow(dead_code)]
#[path = "../../examples/differ/yamldiff.rs"]
mod yamldiff;

/// The plugins whose cases this file checks.
pub const PLUGINS: [&str; 5] = [
    "network-device-injector",
    "rdt",
    "writable-cgroups",
    "network-logger",
    "differ",
];

/// Checks one case of one of [`PLUGINS`].
pub fn check_sample_case(case: &Value, tally: &mut Tally) {
    let plugin = PLUGINS
        .into_iter()
        .find(|p| *p == str_of(field(case, "plugin")))
        .unwrap_or("differ");
    let target = str_of(field(case, "target"));
    // Counted by plugin and kind of case.
    let kind: &'static str = match (plugin, target) {
        ("writable-cgroups", "mountinfo") => "writable-cgroups (mount table)",
        ("writable-cgroups", _) => "writable-cgroups (annotation, mounts)",
        ("differ", "pod") => "differ (pods)",
        ("differ", _) => "differ (containers)",
        ("network-device-injector", _) => "network-device-injector (annotation)",
        ("rdt", _) => "rdt (annotations)",
        _ => "network-logger (pods)",
    };
    *tally.cases.entry(kind).or_default() += 1;
    let outcome = match plugin {
        "network-device-injector" => netdevice(case),
        "rdt" => rdt_case(case),
        "writable-cgroups" if target == "mountinfo" => mount_table(case),
        "writable-cgroups" => cgroups(case),
        "network-logger" => logger(case),
        _ => differ_case(case),
    };
    match outcome {
        Outcome::Same { error: true } => *tally.agreed_errors.entry(kind).or_default() += 1,
        Outcome::Same { error: false } => {}
        Outcome::Deliberate(what) => *tally.decode_exceptions.entry((kind, what)).or_default() += 1,
        Outcome::Differs(what) => tally.fail(kind, case_id(case), what),
    }
}

enum Outcome {
    Same { error: bool },
    Deliberate(&'static str),
    Differs(String),
}

/// Go's outcomes: the recorded one, or each its map order allows.
fn go_outcomes(case: &Value) -> Vec<Result<Value, String>> {
    if let Some(Value::Seq(variants)) = field(case, "variants") {
        return variants
            .iter()
            .map(|v| match v {
                Value::String(e) => Err(e.clone()),
                result => Ok(normalize(result)),
            })
            .collect();
    }
    vec![match field(case, "error") {
        Some(Value::String(e)) => Err(e.clone()),
        _ => Ok(normalize(field(case, "result").unwrap_or(&Value::Null))),
    }]
}

/// The case's input text, as JSON.
fn input<T: serde::de::DeserializeOwned>(case: &Value) -> T {
    let text = str_of(field(case, "text"));
    nri::decode::from_json(text.as_bytes()).unwrap_or_else(|e| panic!("case input {text:?}: {e}"))
}

fn pod_with(case: &Value) -> PodSandbox {
    PodSandbox {
        id: "pod".into(),
        name: "pod".into(),
        namespace: "default".into(),
        annotations: string_map(field(case, "annotations")).into_iter().collect(),
        ..Default::default()
    }
}

/// The YAML corners `nri::decode` refuses where Go reads them.
fn decode_corner(err: &str) -> Option<&'static str> {
    if err.contains("nesting deeper than") {
        Some("YAML nesting deeper than 256 levels")
    } else if err.contains(nri::decode::TAG_FLOW_CHARACTER) {
        Some("YAML tag with a flow character")
    } else if err.contains(nri::decode::COLON_BEFORE_FLOW_INDICATOR) {
        Some("YAML colon before a flow indicator")
    } else {
        None
    }
}

fn netdevice(case: &Value) -> Outcome {
    let pod = pod_with(case);
    let ours = network_device_injector::parse_netdevices(&pod);
    let show = || format!("annotations {:?}", pod.annotations);
    let mut deliberate = None;
    for go in go_outcomes(case) {
        match (&go, &ours) {
            (Ok(Value::Null), Ok(devices)) if devices.is_empty() => {
                return Outcome::Same { error: false }
            }
            (Ok(Value::Seq(items)), Ok(devices)) => {
                // Go's devices as the Go plugin means its defaults: recorded
                // by the oracle (net.ParseIP's To4 picks the prefix), or,
                // where Go's map order makes several outcomes, derived here.
                let want: Vec<Value> = match field(case, "text") {
                    Some(Value::String(text)) if !text.is_empty() => {
                        match nri::decode::from_json::<Value>(text.as_bytes()) {
                            Ok(Value::Seq(intended)) => intended.iter().map(normalize).collect(),
                            _ => items.iter().map(defaulted).collect(),
                        }
                    }
                    _ => items.iter().map(defaulted).collect(),
                };
                let got: Vec<Value> = devices
                    .iter()
                    .map(|d| {
                        object(vec![
                            ("name", string(&d.name)),
                            ("new_name", string(&d.new_name)),
                            ("address", string(&d.address)),
                            ("prefix", num(d.prefix)),
                            ("mtu", num(d.mtu)),
                        ])
                    })
                    .collect();
                if normalize(&list(want.clone())) == normalize(&list(got)) {
                    let raw: Vec<Value> = items.iter().map(normalize).collect();
                    return if raw == want {
                        Outcome::Same { error: false }
                    } else {
                        Outcome::Deliberate("new_name and prefix defaulted")
                    };
                }
            }
            (Ok(Value::Seq(items)), Err(e)) => {
                if e.contains("has no name")
                    && items.iter().any(|d| str_of(field(d, "name")).is_empty())
                {
                    deliberate = Some("a device without a name refused");
                } else if let Some(corner) = decode_corner(e) {
                    deliberate = Some(corner);
                }
            }
            (Ok(_), Err(e)) => {
                if let Some(corner) = decode_corner(e) {
                    deliberate = Some(corner);
                }
            }
            (Err(g), Err(e)) => {
                // The same refusal; an address is refused in Go's words.
                let address = g.starts_with("error parsing address");
                if !address || g == e || e.contains("has no name") {
                    return Outcome::Same { error: true };
                }
            }
            _ => {}
        }
    }
    match deliberate {
        Some(what) => Outcome::Deliberate(what),
        None => Outcome::Differs(format!(
            "Go {:?}\n  Rust {ours:?}\n  {}",
            go_outcomes(case),
            show()
        )),
    }
}

/// A Go device with `new_name` and `prefix` defaulted.
fn defaulted(device: &Value) -> Value {
    let name = str_of(field(device, "name"));
    let mut new_name = str_of(field(device, "new_name")).to_string();
    if new_name.is_empty() {
        new_name = name.to_string();
    }
    let address = str_of(field(device, "address"));
    let mut prefix = field(device, "prefix").and_then(Value::as_i64).unwrap_or(0);
    if !address.is_empty() && prefix == 0 {
        prefix = if address.parse::<std::net::Ipv4Addr>().is_ok()
            || network_device_injector::parse_ip(address).is_some_and(|ip| ip.is_ipv4())
        {
            32
        } else {
            128
        };
    }
    normalize(&object(vec![
        ("name", string(name)),
        ("new_name", string(&new_name)),
        ("address", string(address)),
        ("prefix", num(prefix)),
        (
            "mtu",
            num(field(device, "mtu").and_then(Value::as_i64).unwrap_or(0)),
        ),
    ]))
}

fn rdt_case(case: &Value) -> Outcome {
    let pod = pod_with(case);
    let ctr = Container {
        name: str_of(field(case, "container")).into(),
        ..Default::default()
    };
    let fields = rdt::Fields::new(&pod, &ctr);
    let ours = rdt::adjust_rdt(&fields, &ctr.name, &pod).map(|adjust| {
        let Some(r) = adjust.linux.rdt.as_ref() else {
            return Value::Null;
        };
        object(vec![
            (
                "closid",
                r.clos_id.value().map_or(Value::Null, |v| string(&v)),
            ),
            (
                "schemata",
                if r.schemata.is_some() {
                    Value::Seq(r.schemata.value.iter().map(|s| string(s)).collect())
                } else {
                    Value::Null
                },
            ),
            (
                "enablemonitoring",
                r.enable_monitoring.value().map_or(Value::Null, Value::Bool),
            ),
        ])
    });
    compare_exact(
        case,
        ours.map(|v| normalize(&v)),
        &format!("annotations {:?}", pod.annotations),
    )
}

/// The same result, or the same error word for word.
fn compare_exact(case: &Value, ours: Result<Value, String>, show: &str) -> Outcome {
    let outcomes = go_outcomes(case);
    if outcomes.iter().any(|go| match (go, &ours) {
        (Ok(a), Ok(b)) => *a == normalize(b),
        (Err(a), Err(b)) => a == b,
        _ => false,
    }) {
        return Outcome::Same {
            error: ours.is_err(),
        };
    }
    Outcome::Differs(format!("Go {outcomes:?}\n  Rust {ours:?}\n  {show}"))
}

fn mount_table(case: &Value) -> Outcome {
    let text = str_of(field(case, "text"));
    let ours = mountinfo::ns_delegate_in(text.as_bytes()).map(Value::Bool);
    compare_exact(case, ours, &format!("mount table {text:?}"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CgroupsInput {
    mounts: Option<Vec<MountInput>>,
    ns_delegate: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MountInput {
    source: String,
    destination: String,
    #[serde(rename = "type")]
    type_: String,
    options: Option<Vec<String>>,
}

fn cgroups(case: &Value) -> Outcome {
    let input: CgroupsInput = input(case);
    let pod = pod_with(case);
    let ctr = Container {
        name: str_of(field(case, "container")).into(),
        mounts: input
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| Mount {
                source: m.source,
                destination: m.destination,
                type_: m.type_,
                options: m.options.unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let plugin = writable_cgroups::WritableCgroups::new(input.ns_delegate);
    let ours = plugin
        .adjustment_for(&pod, &ctr)
        .map(|adjust| match adjust {
            None => Value::Null,
            Some(a) => object(vec![(
                "mounts",
                list(
                    a.mounts
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
                        .collect(),
                ),
            )]),
        });
    compare_exact(
        case,
        ours,
        &format!("annotations {:?}, mounts {:?}", pod.annotations, ctr.mounts),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoggerInput {
    namespace: String,
    name: String,
    namespaces: Option<Vec<NamespaceInput>>,
    ips: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NamespaceInput {
    #[serde(rename = "type")]
    type_: String,
    path: String,
}

fn logger(case: &Value) -> Outcome {
    let input: LoggerInput = input(case);
    let mut pod = PodSandbox {
        namespace: input.namespace,
        name: input.name,
        ips: input.ips.unwrap_or_default(),
        ..Default::default()
    };
    if let Some(namespaces) = input.namespaces {
        pod.linux = MessageField::some(LinuxPodSandbox {
            namespaces: namespaces
                .into_iter()
                .map(|n| LinuxNamespace::join(n.type_, n.path))
                .collect(),
            ..Default::default()
        });
    }
    let lines = [
        network_logger::pod_line(&pod),
        network_logger::started_line(&pod),
        network_logger::ended_line("Stopped", &pod),
        network_logger::ended_line("Removed", &pod),
    ];
    let ours = Ok(list(lines.iter().map(|l| string(l)).collect()));
    compare_exact(case, ours, &format!("pod {pod:?}"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DifferInput {
    a: String,
    b: String,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn differ_case(case: &Value) -> Outcome {
    let input: DifferInput = input(case);
    let (a, b) = (unhex(&input.a), unhex(&input.b));
    let (ta, tb) = if str_of(field(case, "target")) == "pod" {
        (
            gotree::of(&PodSandbox::parse_from_bytes(&a).expect("a pod")),
            gotree::of(&PodSandbox::parse_from_bytes(&b).expect("a pod")),
        )
    } else {
        (
            gotree::of(&Container::parse_from_bytes(&a).expect("a container")),
            gotree::of(&Container::parse_from_bytes(&b).expect("a container")),
        )
    };
    let ours = godiff::diff(&ta, &tb);
    let go: Vec<String> = match field(case, "result") {
        Some(Value::Seq(lines)) => lines.iter().map(|l| squeeze(str_of(Some(l)))).collect(),
        _ => return Outcome::Differs(format!("Go failed: {:?}", field(case, "error"))),
    };
    // Go's protobuf adds a random second space between the fields of a
    // message's text, and visits a map's keys in random order: lines of
    // map entries compare as a set, the others in order.
    let mut rest = go.clone();
    let mut ordered = Vec::new();
    for change in &ours {
        let line = squeeze(&change.line());
        if change.in_map {
            match rest.iter().position(|l| *l == line) {
                Some(i) => {
                    rest.remove(i);
                }
                None => return differ_mismatch(&go, &ours),
            }
        } else {
            ordered.push(line);
        }
    }
    if rest == ordered {
        Outcome::Same { error: false }
    } else {
        differ_mismatch(&go, &ours)
    }
}

fn differ_mismatch(go: &[String], ours: &[godiff::Change]) -> Outcome {
    let ours: Vec<String> = ours.iter().map(|c| c.line()).collect();
    Outcome::Differs(format!("Go {go:#?}\n  Rust {ours:#?}"))
}

/// Runs of spaces as one.
fn squeeze(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    out
}
