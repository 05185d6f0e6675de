//! The README's code blocks of "Adjustments" and "The toolkit", compiled
//! and run: each block is the code between a `// README <name>` marker and
//! `// README end` in this file, and a test keeps the two the same.

use std::collections::BTreeMap;

const README: &str = include_str!("../README.md");
const THIS_FILE: &str = include_str!("examples_readme.rs");

/// The code of this file between `// README <name>` and `// README end`,
/// unindented.
fn marked(name: &str) -> String {
    let start = format!("// README {name}\n");
    let after = THIS_FILE
        .split_once(&start)
        .unwrap_or_else(|| panic!("no marker {start:?}"))
        .1;
    let body = after
        .split_once("// README end\n")
        .expect("the block ends")
        .0;
    let indent = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.lines()
        .map(|l| format!("{}\n", l.get(indent..).unwrap_or("").trim_end()))
        .collect::<String>()
        .trim_end_matches('\n')
        .to_string()
        + "\n"
}

/// Every ```` ```rust ```` block of the README after `heading`, up to the
/// next `## ` heading.
fn readme_blocks(heading: &str) -> Vec<String> {
    let section = README
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .split("```rust\n")
        .skip(1)
        .map(|b| b.split_once("```\n").expect("the block ends").0.to_string())
        .collect()
}

#[test]
fn readme_blocks_are_the_code_of_this_file() {
    assert_eq!(readme_blocks("## Adjustments"), [marked("adjustments")]);
    assert_eq!(
        readme_blocks("## The toolkit"),
        [
            marked("decode"),
            marked("annotations"),
            marked("cli"),
            marked("fixtures"),
            marked("dump"),
        ]
    );
}

#[test]
fn adjustments() {
    // README adjustments
    use nri::api::*;

    let mut a = ContainerAdjustment::new();
    // Every runtime (NRI v0.9 on); each add_ has a remove_ too.
    a.add_annotation("example.com/seen", "yes");
    a.add_mount(Mount::bind("/srv/data", "/data").read_only());
    a.add_env("LOG_LEVEL", "debug");
    a.add_hooks(Hooks {
        poststart: vec![Hook::command("/bin/true", ["true"])],
        ..Default::default()
    });
    a.add_rlimit("RLIMIT_NOFILE", 4096, 1024);
    a.add_device(LinuxDevice::char_device("/dev/fuse", 10, 229));
    a.add_cdi_device(CDIDevice::named("vendor.com/gpu=0"));
    a.set_linux_oom_score_adj(Some(-500));
    // cgroup resources: memory, CPU, cpuset, pids, hugepages, block I/O
    // class, RDT class, cgroup v2 files (ContainerUpdate has the same).
    a.set_linux_memory_limit(512 << 20);
    a.set_linux_cpuset_cpus("2-3");
    a.add_linux_unified("memory.high", "400M");

    // NRI v0.10 on.
    a.set_args(["/bin/app", "--quiet"]);
    let netns = "/var/run/netns/blue";
    a.add_or_replace_namespace(LinuxNamespace::join(LinuxNamespace::NETWORK, netns));
    let priority = LinuxIOPriority::with_class(IOPrioClass::IOPRIO_CLASS_BE, 4);
    a.set_linux_io_priority(priority);
    a.set_linux_seccomp_policy(LinuxSeccomp::with_default_action("SCMP_ACT_LOG"));

    // NRI v0.11 on.
    a.set_linux_sysctl("net.ipv4.ip_forward", "1");
    a.add_linux_net_device("enp3s0f1", LinuxNetDevice::named("net1"));
    a.set_linux_scheduler(LinuxScheduler::with_policy(
        LinuxSchedulerPolicy::SCHED_BATCH,
    ));
    a.set_linux_rdt_clos_id("gold");
    a.set_linux_rdt_schemata(["L3:0=ff"]);

    // NRI v0.12 on.
    a.set_linux_memory_policy(MpolMode::MPOL_BIND, "0", &[]);

    // Changes to other containers (or to this one, after its creation).
    let mut u = ContainerUpdate::for_container("ctr-id");
    u.set_linux_memory_limit(1 << 30).set_ignore_failure();
    // README end
    assert_eq!(a.linux.sysctl["net.ipv4.ip_forward"], "1");
    assert!(a.linux.net_devices.contains_key("enp3s0f1"));
    assert_eq!(a.args, ["/bin/app", "--quiet"]);
    assert!(u.ignore_failure);
    assert_eq!(a.linux.namespaces[0].path, "/var/run/netns/blue");
    assert!(a
        .dump()
        .contains("memory_policy:\n    mode: MPOL_BIND\n    nodes: \"0\"\n"));
}

#[test]
fn decode() {
    // README decode
    use serde::Deserialize;

    // The Go plugin's struct, field for field (json:"path", json:"type"...).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)] // a missing field keeps its zero value, as in Go
    struct Device {
        path: String,
        #[serde(rename = "type")]
        kind: String,
        major: i64,
        minor: i64,
        file_mode: u32,
    }

    let annotation = "- Path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 0666";
    let devices: Vec<Device> = nri::decode::from_yaml(annotation).unwrap();
    assert_eq!(
        (devices[0].path.as_str(), devices[0].file_mode),
        ("/dev/nri-null", 0o666)
    );

    let err = nri::decode::from_yaml::<Vec<Device>>("- major: one").unwrap_err();
    assert_eq!(
        err.to_string(),
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field Device.major of type int64"
    );
    // README end
    assert_eq!(devices[0].kind, "c");
    assert_eq!((devices[0].major, devices[0].minor), (1, 3));
}

#[test]
fn annotations() {
    let pod = nri::api::fixtures::pod("web")
        .annotation("devices.nri.io/pod", "- path: /dev/fuse")
        .build();
    let container = nri::api::fixtures::container(&pod, "nginx").build();
    let found: BTreeMap<&str, &str> = {
        // README annotations
        use nri::api::annotations;

        // devices.noderesource.dev/container.nginx, devices.nri.io/container.nginx,
        // devices.noderesource.dev/pod, devices.nri.io/pod, devices.noderesource.dev,
        // devices.nri.io: the first one present.
        if let Some(found) = annotations::lookup(&pod.annotations, "devices", &container.name) {
            // devices.nri.io/pod: - path: /dev/fuse
            println!("{}: {}", found.key, found.value);
        }
        // README end
        annotations::lookup(&pod.annotations, "devices", &container.name)
            .map(|f| (f.value, "found"))
            .into_iter()
            .collect()
    };
    assert_eq!(found.get("- path: /dev/fuse"), Some(&"found"));
}

// The block is a whole `main`; here it is compiled, not run (it would
// serve until a signal).
#[allow(dead_code)]
mod cli_block {
    // README cli
    use std::process::ExitCode;

    use nri::api::{Event, EventMask};
    use nri::cli::{self, Cli, Flag};
    use nri::stub::Plugin;

    struct Mine;
    impl Plugin for Mine {
        fn events(&self) -> EventMask {
            Event::CREATE_CONTAINER.into()
        }
    }

    fn main() -> ExitCode {
        // -name, -idx, -socket, -reconnect, -log-file, -syslog, -verbose,
        // -h..., and -config.
        let cli = Cli::parse("mine", "An NRI plugin that does mine.", &[Flag::CONFIG]);
        cli.init_logging("mine");
        // Until SIGTERM/SIGINT or the runtime goes away; exits 0, 1 or 78.
        cli::serve(cli.stub_builder(Mine), &cli)
    }
    // README end
}

#[test]
fn fixtures() {
    // README fixtures
    use nri::api::{fixtures, LinuxNamespace};

    let pod = fixtures::pod("agent")
        .namespace("monitoring")
        .host_network()
        .build();
    let ctr = fixtures::container(&pod, "agent")
        .without_linux_namespace(LinuxNamespace::IPC)
        .build();
    // hostNetwork: no network namespace, for the pod or its containers.
    assert!(pod.linux.namespace(LinuxNamespace::NETWORK).is_none());
    assert_eq!(
        ctr.linux.namespace_path(LinuxNamespace::UTS),
        Some(format!("/proc/{}/ns/uts", pod.pid).as_str())
    );
    // README end
    assert!(ctr.linux.namespace(LinuxNamespace::IPC).is_none());
}

#[test]
fn dump() {
    let pod = nri::api::fixtures::pod("web").build();
    let ctr = nri::api::fixtures::container(&pod, "nginx").build();
    // README dump
    use nri::api::{dump, Dump};

    // "id: …\npod_sandbox_id: …\nname: nginx\nstate: CONTAINER_CREATED\n…"
    let text = ctr.dump();
    // One log line per line of it, as Go's samples dump objects.
    dump::log(log::Level::Debug, "web/nginx", "container", &ctr);
    // README end
    assert!(text.contains("\nname: nginx\nstate: CONTAINER_CREATED\n"));
}
