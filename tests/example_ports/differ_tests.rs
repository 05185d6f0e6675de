//! The differ example's tests.

use super::differ::{parse_indices, Chain, Config};
use super::godiff;
use super::gotree::{self, go_camel_case};
use super::*;
use nri::api::{
    fixtures, Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, Mount,
    OptionalExt, PodSandbox,
};
use nri::runtime::PluginSet;
use nri::stub::{Context, HandlerResult};

#[test]
fn fields_have_their_go_names() {
    for (proto, go) in [
        ("pod_sandbox_id", "PodSandboxId"),
        ("CDI_devices", "CDIDevices"),
        ("oom_score_adj", "OomScoreAdj"),
        ("linux", "Linux"),
        ("hugepage_limits", "HugepageLimits"),
        ("io_priority", "IoPriority"),
        ("_x", "XX"),
        ("a1b", "A1B"),
        ("x_1", "X_1"),
    ] {
        assert_eq!(go_camel_case(proto), go, "{proto}");
    }
}

/// The pair the Go library was run on (see the module docs of godiff.rs).
#[test]
fn changes_are_found_and_worded_as_r3labs_diff_does() {
    let pod = fixtures::pod("web").build();
    let mut a = Container::new();
    a.id = "c1".into();
    a.name = "n".into();
    a.env = vec!["A=1".into(), "B=2".into()];
    a.annotations.insert("x".into(), "1".into());
    a.linux
        .mut_or_insert_default()
        .resources
        .mut_or_insert_default()
        .memory
        .mut_or_insert_default()
        .limit = nri::api::optional(5i64);
    a.mounts.push(Mount {
        destination: "/a".into(),
        options: vec!["ro".into()],
        ..Default::default()
    });
    let mut b = a.clone();
    b.env = vec!["A=1".into(), "B=3".into(), "C=4".into()];
    b.annotations.insert("x".into(), "2".into());
    b.annotations.insert("y".into(), "3".into());
    let res = b
        .linux
        .mut_or_insert_default()
        .resources
        .mut_or_insert_default();
    res.memory.mut_or_insert_default().limit = nri::api::optional(7i64);
    res.cpu.mut_or_insert_default().cpus = "0-1".into();
    b.mounts[0].options = vec!["rw".into()];
    b.mounts.push(Mount {
        destination: "/b".into(),
        ..Default::default()
    });
    let lines: Vec<String> = godiff::diff(&gotree::of(&a), &gotree::of(&b))
        .iter()
        .map(|c| c.line())
        .collect();
    assert_eq!(
        lines,
        [
            "update: [Annotations x]: From: 1 -> To: 2",
            "create: [Annotations y]: From: <nil> -> To: 3",
            "update: [Env 1]: From: B=2 -> To: B=3",
            "create: [Env 2]: From: <nil> -> To: C=4",
            "update: [Mounts 0 Options 0]: From: ro -> To: rw",
            "create: [Mounts 1 Destination]: From: <nil> -> To: /b",
            "update: [Linux Resources Memory Limit Value]: From: 5 -> To: 7",
            "update: [Linux Resources Cpu]: From: <nil> -> To: cpus:\"0-1\"",
        ]
    );
    // And back: deletions.
    let lines: Vec<String> = godiff::diff(&gotree::of(&b), &gotree::of(&a))
        .iter()
        .map(|c| c.line())
        .collect();
    assert!(
        lines.contains(&"delete: [Annotations y]: From: 3 -> To: <nil>".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"delete: [Mounts 1 Destination]: From: /b -> To: <nil>".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"update: [Linux Resources Cpu]: From: cpus:\"0-1\" -> To: <nil>".to_string()
        ),
        "{lines:#?}"
    );
    assert!(godiff::diff(&gotree::of(&pod), &gotree::of(&pod)).is_empty());
}

#[test]
fn indices_are_read_strictly() {
    assert_eq!(parse_indices("00,50,99").unwrap(), [0, 50, 99]);
    assert_eq!(
        parse_indices("5").unwrap_err(),
        "There must be at least two index given."
    );
    assert!(parse_indices("1,x")
        .unwrap_err()
        .contains("\"x\" is not an index"));
    assert!(Chain::new(&[1, 1], Config::default())
        .err()
        .unwrap()
        .contains("given twice"));
    assert!(Chain::new(&[1, 100], Config::default())
        .err()
        .unwrap()
        .contains("between 0 and 99"));
}

/// A plugin that stamps what it creates, for the differ to see.
struct Stamper;

impl Plugin for Stamper {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        _container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let mut adjust = ContainerAdjustment::new();
        adjust.add_annotation("owner", pod.name.as_str());
        adjust.add_env("STAMPED", "yes");
        adjust.set_linux_memory_limit(536870912);
        Ok((adjust, Vec::new()))
    }
}

fn join(runtime: &Runtime, set: &PluginSet, plugin: impl Plugin, idx: &str) -> Stub {
    let (runtime_end, plugin_end) = UnixStream::pair().unwrap();
    let stub = Stub::builder(plugin)
        .plugin_name("differ")
        .plugin_index(idx)
        .connection(plugin_end)
        .build()
        .unwrap();
    let serving = stub.clone();
    thread::spawn(move || serving.run());
    set.add(runtime.accept_stream(runtime_end).unwrap())
        .unwrap();
    stub
}

#[test]
fn differ_logs_what_the_plugins_between_its_indices_change() {
    let lines = Lines::default();
    let sink = lines.clone();
    let chain = Chain::with_sink(
        &[0, 99],
        Config::default(),
        Some(Arc::new(move |l: &str| sink.push(l))),
    )
    .unwrap();
    let runtime = Runtime::new();
    let set = PluginSet::new(&runtime);
    let stubs = [
        join(&runtime, &set, chain.plugin(0).unwrap(), "00"),
        join(&runtime, &set, Stamper, "50"),
        join(&runtime, &set, chain.plugin(99).unwrap(), "99"),
    ];
    let pod = fixtures::pod("web").build();
    let ctr = fixtures::container(&pod, "nginx").build();
    set.run_pod_sandbox(&pod).unwrap();
    let reply = set.create_container(&pod, &ctr).unwrap();
    assert_eq!(
        reply.adjust.linux.resources.memory.limit.value(),
        Some(536870912)
    );
    assert_eq!(
        lines.take(),
        [
            "[99] RunPodSandbox: pod: <no changes>",
            "[99] CreateContainer: pod: <no changes>",
            "[99] CreateContainer: container: create: [Annotations owner]: From: <nil> -> To: web",
            &format!("[99] CreateContainer: container: create: [Env {}]: From: <nil> -> To: STAMPED=yes", ctr.env.len()),
            "[99] CreateContainer: container: update: [Linux Resources Memory Limit]: From: <nil> -> To: value:536870912",
        ]
    );
    for stub in &stubs {
        stub.stop();
    }
}

#[test]
fn differ_verbose_levels_dump_and_yaml_compares_dumps() {
    let lines = Lines::default();
    let sink = lines.clone();
    let chain = Chain::with_sink(
        &[10, 90],
        Config {
            verbose_level: 2,
            yaml: false,
        },
        Some(Arc::new(move |l: &str| sink.push(l))),
    )
    .unwrap();
    let runtime = Runtime::new();
    let set = PluginSet::new(&runtime);
    let _stubs = [
        join(&runtime, &set, chain.plugin(10).unwrap(), "10"),
        join(&runtime, &set, Stamper, "50"),
        join(&runtime, &set, chain.plugin(90).unwrap(), "90"),
    ];
    let pod = fixtures::pod("web").build();
    let ctr = fixtures::container(&pod, "nginx").build();
    set.create_container(&pod, &ctr).unwrap();
    let got = lines.take();
    assert_eq!(got[0], "[10] CreateContainer: pod:");
    assert!(
        got.contains(&format!("[10] CreateContainer:    id: {}", pod.id)),
        "{got:#?}"
    );
    assert!(got.contains(&"[10] CreateContainer: container:".to_string()));
    assert!(got.contains(&"[90] Original values for container".to_string()));
    assert!(got.contains(&"[90] Values after changes for container".to_string()));
    assert!(
        got.contains(&"[90] CreateContainer:      owner: web".to_string()),
        "{got:#?}"
    );

    let lines = Lines::default();
    let sink = lines.clone();
    let chain = Chain::with_sink(
        &[10, 90],
        Config {
            verbose_level: 0,
            yaml: true,
        },
        Some(Arc::new(move |l: &str| sink.push(l))),
    )
    .unwrap();
    let set = PluginSet::new(&runtime);
    let _stubs = [
        join(&runtime, &set, chain.plugin(10).unwrap(), "10"),
        join(&runtime, &set, Stamper, "50"),
        join(&runtime, &set, chain.plugin(90).unwrap(), "90"),
    ];
    set.create_container(&pod, &ctr).unwrap();
    let got = lines.take();
    assert_eq!(got[0], "[90] CreateContainer: pod: <no changes>");
    assert!(
        got.contains(&"[90] CreateContainer: container: +   owner: web".to_string()),
        "{got:#?}"
    );
    assert!(
        got.iter().any(
            |l| l.starts_with("[90] CreateContainer: container: + env: [")
                && l.ends_with(", STAMPED=yes]")
        ),
        "{got:#?}"
    );
    assert!(
        got.contains(
            &"[90] CreateContainer: container: +       limit: {value: 536870912}".to_string()
        ),
        "{got:#?}"
    );
}

/// A plugin that fails the start of pods named `fail`.
struct Failer;

impl Plugin for Failer {
    fn events(&self) -> EventMask {
        Event::RUN_POD_SANDBOX.into()
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        if pod.name == "fail" {
            return Err("refused".into());
        }
        Ok(())
    }
}

/// The Go differ pairs values in arrival order, so an event failed between
/// two indices puts every later pair off by one; the port pairs by event,
/// pod and container.
#[test]
fn differ_pairs_values_of_the_same_event_after_a_failed_one() {
    let lines = Lines::default();
    let sink = lines.clone();
    let chain = Chain::with_sink(
        &[0, 99],
        Config::default(),
        Some(Arc::new(move |l: &str| sink.push(l))),
    )
    .unwrap();
    let runtime = Runtime::new();
    let set = PluginSet::new(&runtime);
    let _stubs = [
        join(&runtime, &set, chain.plugin(0).unwrap(), "00"),
        join(&runtime, &set, Failer, "40"),
        join(&runtime, &set, Stamper, "50"),
        join(&runtime, &set, chain.plugin(99).unwrap(), "99"),
    ];
    let failing = fixtures::pod("fail").build();
    assert!(set.run_pod_sandbox(&failing).is_err());
    let pod = fixtures::pod("web").build();
    set.run_pod_sandbox(&pod).unwrap();
    let ctr = fixtures::container(&pod, "nginx").build();
    set.create_container(&pod, &ctr).unwrap();
    let got = lines.take();
    assert_eq!(got[0], "[99] RunPodSandbox: pod: <no changes>", "{got:#?}");
    assert_eq!(
        got[1], "[99] CreateContainer: pod: <no changes>",
        "{got:#?}"
    );
    assert_eq!(
        got[2],
        "[99] CreateContainer: container: create: [Annotations owner]: From: <nil> -> To: web"
    );
    assert_eq!(got.len(), 5, "{got:#?}");
}

#[test]
fn differ_binary_registers_at_each_index_and_exits_when_one_loses_the_runtime() {
    let dir = temp_dir("differ");
    let socket = dir.join("nri.sock");
    let log_file = dir.join("plugin.log");
    let runtime = Runtime::new();
    let listener = runtime.listen(&socket).unwrap();
    let mut child = std::process::Command::new(example_binary("differ"))
        .args(["-indices", "10,90", "-socket"])
        .arg(&socket)
        .arg("-log-file")
        .arg(&log_file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let a = listener.accept_timeout(STEP).unwrap();
    let b = listener.accept_timeout(STEP).unwrap();
    let mut names = [a.name().to_string(), b.name().to_string()];
    names.sort();
    assert_eq!(names, ["10-differ", "90-differ"]);
    a.close();
    let status = super::network_logger_tests::wait_exit(&mut child);
    assert_eq!(
        status.code(),
        Some(1),
        "an external plugin that lost its runtime"
    );
    assert!(b.wait_closed(STEP), "the other index let go too");
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        text.contains("Connection to the runtime lost, exiting..."),
        "{text}"
    );

    // Bad indices: refused at start, exit status 78.
    let out = std::process::Command::new(example_binary("differ"))
        .args(["-indices", "10,10", "-socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(i32::from(nri::EXIT_CONFIG)));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("index 10 is given twice"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
