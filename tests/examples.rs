//! The example plugins, driven through `nri::runtime` as a runtime would:
//! annotations and configuration in, adjustments and updates out.
//!
//! Each example keeps its plugin type in `examples/<name>/plugin.rs`; this
//! file includes those modules (and the examples' shared `common` module)
//! and runs each plugin in-process over a socket pair. One test launches a
//! built example binary the way a runtime launches pre-installed plugins.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nri::api::{
    Container, ContainerState, ContainerUpdate, Event, EventMask, LinuxResources, OptionalExt,
    PodSandbox,
};
use nri::runtime::{PluginHandle, Runtime};
use nri::stub::{Plugin, Stub};
use nri::Error;

#[path = "../examples/common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "../examples/cpu-rebalancer/plugin.rs"]
mod cpu_rebalancer;
#[allow(dead_code)]
#[path = "../examples/device-injector/plugin.rs"]
mod device_injector;
#[allow(dead_code)]
#[path = "../examples/hook-injector/plugin.rs"]
mod hook_injector;
#[allow(dead_code)]
#[path = "../examples/logger/plugin.rs"]
mod logger;
#[allow(dead_code)]
#[path = "../examples/template/plugin.rs"]
mod template;
#[allow(dead_code)]
#[path = "../examples/ulimit-adjuster/plugin.rs"]
mod ulimit_adjuster;

use common::yaml::{self, Value};

/// Upper bound of any wait in these tests.
const STEP: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A plugin served by its stub on a thread, connected to a runtime.
struct Running {
    handle: PluginHandle,
    stub: Stub,
    thread: Option<JoinHandle<nri::Result<()>>>,
}

impl Running {
    fn stop(mut self) -> nri::Result<()> {
        self.stub.stop();
        self.thread
            .take()
            .map_or(Ok(()), |t| t.join().expect("stub thread panicked"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stub.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::ops::Deref for Running {
    type Target = PluginHandle;
    fn deref(&self) -> &PluginHandle {
        &self.handle
    }
}

/// Connects `plugin` as `idx-name` to `runtime` over a socket pair.
fn connect(runtime: &Runtime, plugin: impl Plugin, name: &str, idx: &str) -> Running {
    let (runtime_end, plugin_end) = UnixStream::pair().expect("socket pair");
    let stub = Stub::builder(plugin)
        .plugin_name(name)
        .plugin_index(idx)
        .connection(plugin_end)
        .build()
        .expect("stub builds");
    let serving = stub.clone();
    let thread = thread::spawn(move || serving.run());
    let handle = runtime
        .accept_stream(runtime_end)
        .expect("plugin registers, configures and synchronizes");
    Running {
        handle,
        stub,
        thread: Some(thread),
    }
}

fn runtime_with_config(name: &str, config: &str) -> Runtime {
    Runtime::builder()
        .name("examples-test")
        .version("1.0")
        .plugin_config(name, config)
        .build()
}

fn pod(id: &str, name: &str, annotations: &[(&str, &str)]) -> PodSandbox {
    let mut pod = PodSandbox::new();
    pod.id = id.into();
    pod.name = name.into();
    pod.namespace = "default".into();
    pod.uid = format!("uid-{id}");
    pod.annotations = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pod
}

fn container(id: &str, pod: &PodSandbox, name: &str) -> Container {
    let mut ctr = Container::new();
    ctr.id = id.into();
    ctr.pod_sandbox_id = pod.id.clone();
    ctr.name = name.into();
    ctr.state = ContainerState::CONTAINER_CREATED.into();
    ctr
}

fn running(mut ctr: Container) -> Container {
    ctr.state = ContainerState::CONTAINER_RUNNING.into();
    ctr
}

/// A fresh temporary directory.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nri-examples-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn status_message(err: Error) -> String {
    match err {
        Error::Status { message, .. } => message,
        other => panic!("expected an error status from the plugin, got {other}"),
    }
}

fn cpuset(update: &ContainerUpdate) -> &str {
    &update.linux.resources.cpu.cpus
}

fn cpusets(updates: &[ContainerUpdate]) -> HashMap<String, String> {
    updates
        .iter()
        .map(|u| (u.container_id.clone(), cpuset(u).to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// template
// ---------------------------------------------------------------------------

#[test]
fn template_sees_every_event_of_a_pod_and_container_lifecycle() {
    let runtime = runtime_with_config("template", "cfgParam1: hello");
    let plugin = Arc::new(template::Template::new());
    let p = connect(&runtime, Arc::clone(&plugin), "template", "10");
    assert_eq!(p.events(), EventMask::ALL);
    assert_eq!(plugin.config().cfg_param1, "hello");

    let pod = pod("pod-1", "web", &[]);
    let ctr = container("ctr-1", &pod, "nginx");
    p.run_pod_sandbox(&pod).unwrap();
    let reply = p.create_container(&pod, &ctr).unwrap();
    assert_eq!(
        reply.adjust,
        Default::default(),
        "the template changes nothing"
    );
    assert!(reply.update.is_empty());
    p.post_create_container(&pod, &ctr).unwrap();
    p.start_container(&pod, &ctr).unwrap();
    p.post_start_container(&pod, &ctr).unwrap();
    assert!(p
        .update_container(&pod, &ctr, &LinuxResources::new())
        .unwrap()
        .update
        .is_empty());
    p.post_update_container(&pod, &ctr).unwrap();
    assert!(p.stop_container(&pod, &ctr).unwrap().update.is_empty());
    p.remove_container(&pod, &ctr).unwrap();
    p.stop_pod_sandbox(&pod).unwrap();
    p.remove_pod_sandbox(&pod).unwrap();
    p.shutdown().unwrap();

    assert_eq!(
        plugin.seen(),
        [
            "Configure: connected to examples-test 1.0",
            "Synchronize: 0 pods, 0 containers",
            "RunPodSandbox default/web",
            "CreateContainer web/nginx",
            "PostCreateContainer web/nginx",
            "StartContainer web/nginx",
            "PostStartContainer web/nginx",
            "UpdateContainer web/nginx",
            "PostUpdateContainer web/nginx",
            "StopContainer web/nginx",
            "RemoveContainer web/nginx",
            "StopPodSandbox default/web",
            "RemovePodSandbox default/web",
            "Shutdown",
        ]
    );
    p.stop().expect("run() returns Ok after stop()");
}

#[test]
fn template_refuses_a_configuration_that_is_not_yaml() {
    let runtime = runtime_with_config("template", "cfgParam1: [unclosed");
    let (runtime_end, plugin_end) = UnixStream::pair().unwrap();
    let stub = Stub::builder(template::Template::new())
        .plugin_name("template")
        .plugin_index("10")
        .connection(plugin_end)
        .build()
        .unwrap();
    let serving = stub.clone();
    let thread = thread::spawn(move || serving.run());
    let err = runtime
        .accept_stream(runtime_end)
        .expect_err("Configure fails");
    assert!(err.to_string().contains("invalid configuration"), "{err}");
    assert!(
        thread.join().unwrap().is_err(),
        "the stub reports the failed start"
    );
}

// ---------------------------------------------------------------------------
// logger
// ---------------------------------------------------------------------------

#[test]
fn logger_subscribes_to_the_configured_events_and_stamps_containers() {
    let config = "events: [RunPodSandbox, CreateContainer]\n\
                  setAnnotation: logger.nri.io/owner\n\
                  addAnnotation: logger.nri.io/seen\n\
                  setEnv: LOGGER_SET\n\
                  addEnv: LOGGER_ADD\n";
    let runtime = runtime_with_config("logger", config);
    let p = connect(
        &runtime,
        logger::Logger::new(Default::default()),
        "logger",
        "00",
    );
    assert_eq!(
        p.events(),
        EventMask::from_events(&[Event::RUN_POD_SANDBOX, Event::CREATE_CONTAINER])
    );

    let pod = pod("pod-1", "web", &[]);
    let reply = p
        .create_container(&pod, &container("ctr-1", &pod, "nginx"))
        .unwrap();
    let stamp = format!("logger-pid-{}", std::process::id());
    let annotations = &reply.adjust.annotations;
    assert_eq!(
        annotations.get("-logger.nri.io/owner").map(String::as_str),
        Some("")
    );
    assert_eq!(annotations.get("logger.nri.io/owner"), Some(&stamp));
    assert_eq!(annotations.get("logger.nri.io/seen"), Some(&stamp));
    let env: Vec<(&str, &str)> = reply
        .adjust
        .env
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("LOGGER_ADD", stamp.as_str()),
            ("-LOGGER_SET", ""),
            ("LOGGER_SET", stamp.as_str())
        ]
    );
}

#[test]
fn logger_events_from_flags_apply_without_configuration() {
    let flags = logger::Config {
        events: Some(EventMask::POD_EVENTS),
        ..Default::default()
    };
    let runtime = Runtime::new();
    let p = connect(&runtime, logger::Logger::new(flags), "logger", "01");
    assert_eq!(p.events(), EventMask::POD_EVENTS);
}

#[test]
fn logger_rejects_unknown_events_in_its_configuration() {
    let err = logger::Config::default()
        .merge("events: [CreateContainer, Bogus]")
        .unwrap_err();
    assert!(err.contains("Bogus"), "{err}");
    let mask = logger::Config::default()
        .merge("events: pod,StartContainer")
        .unwrap()
        .events
        .unwrap();
    assert!(mask.contains(EventMask::POD_EVENTS) && mask.is_set(Event::START_CONTAINER));
}

/// The path of an example binary, built for these tests.
///
/// `cargo test --all-targets` builds examples as test harnesses only, so the
/// examples run as processes here are built once per test run with a
/// nested `cargo build` into `<target>/example-bins` (its own target
/// directory, so it does not wait for the outer cargo's lock). That also
/// keeps them fresh when only this test is run after editing an example.
///
/// `NRI_EXAMPLE_BIN_DIR` names a directory of prebuilt example binaries to
/// use instead (CI points it at statically linked release builds).
fn example_binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("NRI_EXAMPLE_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(
            path.is_file(),
            "NRI_EXAMPLE_BIN_DIR has no {}",
            path.display()
        );
        return path;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // <target>/debug/deps/examples-<hash>
        let target = exe
            .ancestors()
            .nth(3)
            .ok_or("cannot find the target directory")?;
        let target_dir = target.join("example-bins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "--offline"])
            .env("CARGO_TARGET_DIR", &target_dir);
        for example in PROCESS_EXAMPLES {
            cmd.args(["--example", example]);
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build of the examples failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(target_dir.join("debug").join("examples"))
    });
    match dir {
        Ok(dir) => dir.join(name),
        Err(e) => panic!("{e}"),
    }
}

/// The examples the tests run as processes.
const PROCESS_EXAMPLES: [&str; 3] = ["logger", "memory-defaulter", "device-injector"];

#[test]
fn launched_logger_writes_to_the_log_file_named_in_its_configuration() {
    let binary = example_binary("logger");
    let dir = temp_dir("launched-logger");
    let log_file = dir.join("logger.log");
    let runtime = Runtime::new();
    // As a pre-installed plugin: no arguments, only NRI_* variables, stdout
    // and stderr on /dev/null; the configuration is all it gets.
    let config = format!("logFile: {}\nevents: pod\n", log_file.display());
    let p = runtime
        .launch(&binary, "logger", "05", &config)
        .expect("launched logger starts");
    assert!(p.is_launched());
    assert_eq!(p.events(), EventMask::POD_EVENTS);
    p.run_pod_sandbox(&pod("pod-9", "launched-pod", &[]))
        .unwrap();

    let deadline = Instant::now() + STEP;
    let text = loop {
        let text = std::fs::read_to_string(&log_file).unwrap_or_default();
        if text.contains("launched-pod") || Instant::now() > deadline {
            break text;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("RunPodSandbox"), "log file:\n{text}");
    assert!(text.contains("name: \"launched-pod\""), "log file:\n{text}");
    p.close();
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// device-injector
// ---------------------------------------------------------------------------

const DEVICES: &str = "
- path: /dev/nri-null
  type: c
  major: 1
  minor: 3
  file_mode: 0666
  uid: 1000
- path: /dev/nri-zero
  type: c
  major: 1
  minor: 5
";

#[test]
fn device_injector_injects_annotated_devices_cdi_devices_and_mounts() {
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    assert_eq!(p.events(), Event::CREATE_CONTAINER.into());

    let pod = pod(
        "pod-1",
        "bbdev0",
        &[
            ("devices.noderesource.dev/container.c0", DEVICES),
            ("cdi-devices.noderesource.dev/pod", "- vendor0.com/device=null\n- vendor1.com/device=dev1\n"),
            (
                "mounts.nri.io/container.c0",
                "- source: /home\n  destination: /host-home\n  type: bind\n  options:\n  - bind\n  - ro\n",
            ),
        ],
    );
    let reply = p
        .create_container(&pod, &container("ctr-0", &pod, "c0"))
        .unwrap();
    let adjust = &reply.adjust;

    let devices = &adjust.linux.devices;
    assert_eq!(devices.len(), 2);
    assert_eq!(
        (
            devices[0].path.as_str(),
            devices[0].type_.as_str(),
            devices[0].major,
            devices[0].minor
        ),
        ("/dev/nri-null", "c", 1, 3)
    );
    assert_eq!(
        devices[0].file_mode.value(),
        Some(0o666),
        "0666 is octal, as in YAML 1.1"
    );
    assert_eq!(devices[0].uid.value(), Some(1000));
    assert_eq!(devices[0].gid.value(), None, "gid 0 / absent stays unset");
    assert_eq!(devices[1].path, "/dev/nri-zero");
    assert_eq!(devices[1].file_mode.value(), None);

    let cdi: Vec<&str> = adjust.CDI_devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(cdi, ["vendor0.com/device=null", "vendor1.com/device=dev1"]);

    assert_eq!(adjust.mounts.len(), 1);
    let m = &adjust.mounts[0];
    assert_eq!(
        (m.source.as_str(), m.destination.as_str(), m.type_.as_str()),
        ("/home", "/host-home", "bind")
    );
    assert_eq!(m.options, ["bind", "ro"]);

    // Another container of the pod: only the pod-wide CDI devices.
    let reply = p
        .create_container(&pod, &container("ctr-1", &pod, "c1"))
        .unwrap();
    assert!(reply.adjust.linux.devices.is_empty());
    assert!(reply.adjust.mounts.is_empty());
    assert_eq!(reply.adjust.CDI_devices.len(), 2);
}

#[test]
fn device_injector_prefers_the_most_specific_annotation() {
    let one = |path: &str| format!("[{{path: {path}, type: c, major: 1, minor: 3}}]");
    let pod = pod(
        "pod-1",
        "p",
        &[
            ("devices.nri.io/container.c0", &one("/dev/old-container")),
            ("devices.noderesource.dev/pod", &one("/dev/new-pod")),
            ("devices.noderesource.dev", &one("/dev/new-bare")),
        ],
    );
    let path = |ctr: &str| {
        let adjust = device_injector::adjustment_for(&pod, &container("x", &pod, ctr)).unwrap();
        adjust.linux.devices[0].path.clone()
    };
    assert_eq!(
        path("c0"),
        "/dev/old-container",
        "container-specific beats pod-wide"
    );
    assert_eq!(path("c1"), "/dev/new-pod", "/pod beats the bare key");
}

#[test]
fn device_injector_fails_creation_on_a_malformed_annotation_naming_the_key() {
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    let pod = pod(
        "pod-1",
        "bad",
        &[(
            "devices.noderesource.dev/container.c0",
            "- path: /dev/x\n  type: c\n  major: one\n",
        )],
    );
    let err = p
        .create_container(&pod, &container("ctr-0", &pod, "c0"))
        .unwrap_err();
    let message = status_message(err);
    assert!(
        message.contains("devices.noderesource.dev/container.c0"),
        "{message}"
    );
    assert!(message.contains("major"), "{message}");
    assert!(
        p.is_connected(),
        "a handler error is not fatal to the plugin"
    );
}

/// An injected device: path, type, major, minor, file mode.
type Dev = (String, String, i64, i64, Option<u32>);

/// One device annotation through the device injector: the devices, or the error.
fn injected_devices(value: &str) -> Result<Vec<Dev>, String> {
    let pod = pod("pod-1", "p", &[("devices.noderesource.dev", value)]);
    let adjust = device_injector::adjustment_for(&pod, &container("c", &pod, "c0"))?;
    Ok(adjust
        .linux
        .devices
        .iter()
        .map(|d| {
            let mode = d.file_mode.as_ref().map(|m| m.value);
            (d.path.clone(), d.type_.clone(), d.major, d.minor, mode)
        })
        .collect())
}

fn dev(path: &str, type_: &str, major: i64, minor: i64) -> Dev {
    (path.into(), type_.into(), major, minor, None)
}

#[test]
fn device_injector_matches_field_names_in_any_case_as_go_does() {
    assert_eq!(
        injected_devices(
            "- Path: /dev/x\n  TYPE: c\n  Major: 10\n  minor: 200\n  File_mode: 0600\n"
        ),
        Ok(vec![("/dev/x".into(), "c".into(), 10, 200, Some(0o600))])
    );
}

#[test]
fn device_injector_takes_the_yaml_go_takes() {
    let one = |value: &str| injected_devices(value).map(|d| d.into_iter().next());
    let x = |major, minor| Ok(Some(dev("/dev/x", "c", major, minor)));
    // Document markers, comments, a second document (ignored).
    assert_eq!(one("%YAML 1.1\n---\n# devices\n- {path: /dev/x, type: c, major: 1, minor: 3}\n...\n--- [ignored\n"), x(1, 3));
    // Anchors, aliases and merge keys.
    assert_eq!(
        injected_devices(
            "- &base {path: /dev/a, type: c, major: 1, minor: 3}\n- <<: *base\n  path: /dev/b\n"
        ),
        Ok(vec![dev("/dev/a", "c", 1, 3), dev("/dev/b", "c", 1, 3)])
    );
    // Tags, a multi-line plain scalar, a block scalar.
    assert_eq!(
        one("- path: !!str /dev/x\n  type: >-\n    c\n  major: !!int \"1\"\n  minor:\n    3\n"),
        x(1, 3)
    );
    // Number forms: YAML 1.1 octal, binary, floats that are whole numbers.
    assert_eq!(
        one("- {path: /dev/x, type: c, major: 1.0, minor: 1e3}"),
        x(1, 1000)
    );
    assert_eq!(
        one("- {path: /dev/x, type: c, major: 08, minor: 0b11}"),
        x(8, 3)
    );
    assert_eq!(
        one("- {path: /dev/x, type: c, major: 0x1f, minor: +1}"),
        x(31, 1)
    );
    // Duplicate keys: the last wins.
    assert_eq!(
        one("- {path: /dev/x, type: c, major: 1, major: 5, minor: 3}"),
        x(5, 3)
    );
    // A missing type is passed on as empty, as Go does.
    assert_eq!(
        one("- {path: /dev/x, major: 1, minor: 3}"),
        Ok(Some(dev("/dev/x", "", 1, 3)))
    );
}

#[test]
fn device_injector_refuses_what_go_refuses() {
    for value in [
        "- {path: /dev/x, type: c, major: \"1\", minor: 3}",
        "- {path: /dev/x, type: c, major: 1.5}",
        "- {path: /dev/x, type: c, uid: -1}",
        "- {path: /dev/x, type: c, file_mode: 4294967296}",
        "- {path: /dev/x, type: c, minor: .inf}",
        "- {path: /dev/x, type: c, unknown: .nan}",
        "{path: /dev/x, type: c}",
        "/dev/x",
        "- {path: /dev/x, ~: 1}",
    ] {
        assert!(
            injected_devices(value).is_err(),
            "{value:?} should be refused"
        );
    }
}

#[test]
fn device_injector_renders_scalars_into_strings_as_go_does() {
    assert_eq!(
        injected_devices("- {path: yes, type: 1.10, major: 1, minor: 2}"),
        Ok(vec![dev("true", "1.1", 1, 2)])
    );
    let annotated = pod(
        "pod-1",
        "p",
        &[
            (
                "cdi-devices.noderesource.dev",
                "- vendor.com/dev=a\n- null\n- 0x10\n- 1e21\n",
            ),
            (
                "mounts.noderesource.dev",
                "- {source: /s, destination: /d, options: [ro, 0644]}",
            ),
        ],
    );
    let adjust =
        device_injector::adjustment_for(&annotated, &container("c", &annotated, "c0")).unwrap();
    let cdi: Vec<&str> = adjust.CDI_devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(cdi, ["vendor.com/dev=a", "", "16", "1e+21"]);
    assert_eq!(adjust.mounts[0].options, ["ro", "420"]);
    for value in ["vendor.com/dev=a", "- [vendor.com/dev=a]", "- {a: b}"] {
        let pod = pod("pod-1", "p", &[("cdi-devices.noderesource.dev", value)]);
        assert!(
            device_injector::adjustment_for(&pod, &container("c", &pod, "c0")).is_err(),
            "{value:?} is not a list of CDI device names"
        );
    }
}

#[test]
fn device_injector_refuses_devices_without_path_and_mounts_without_destination() {
    let err = injected_devices("- {type: c, major: 1, minor: 3}").unwrap_err();
    assert!(err.contains("device 0 has no path"), "{err}");
    let err = injected_devices("- null").unwrap_err();
    assert!(err.contains("has no path"), "{err}");
    let pod = pod(
        "pod-1",
        "p",
        &[("mounts.nri.io", "- {source: /s, type: bind}")],
    );
    let err = device_injector::adjustment_for(&pod, &container("c", &pod, "c0")).unwrap_err();
    assert!(err.contains("mount 0 has no destination"), "{err}");
}

#[test]
fn device_injector_sets_the_annotated_io_priority() {
    let pod = pod(
        "pod-1",
        "p",
        &[
            (
                "io-priority.noderesource.dev/container.c0",
                "class: IOPRIO_CLASS_RT\nPriority: 4\n",
            ),
            (
                "io-priority.nri.io/pod",
                "{class: IOPRIO_CLASS_UNKNOWN, priority: 1}",
            ),
        ],
    );
    let adjust = device_injector::adjustment_for(&pod, &container("c", &pod, "c0")).unwrap();
    let prio = adjust.linux.io_priority.as_ref().expect("I/O priority set");
    assert_eq!(
        prio.class.enum_value(),
        Ok(nri::api::IOPrioClass::IOPRIO_CLASS_RT)
    );
    assert_eq!(prio.priority, 4);
    let adjust = device_injector::adjustment_for(&pod, &container("c", &pod, "c1")).unwrap();
    assert!(
        adjust.linux.io_priority.is_none(),
        "an unknown class is ignored, as in Go"
    );
}

// ---------------------------------------------------------------------------
// ulimit-adjuster
// ---------------------------------------------------------------------------

#[test]
fn ulimit_adjuster_sets_annotated_rlimits() {
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        ulimit_adjuster::UlimitAdjuster,
        "ulimit-adjuster",
        "20",
    );
    let pod = pod(
        "pod-1",
        "sleep",
        &[(
            "ulimits.noderesource.dev/container.sleep",
            "- type: memlock\n  hard: 987654\n  soft: 645321\n\
             - type: RLIMIT_NOFILE\n  hard: 4096\n  soft: 1024\n\
             - type: nproc\n  hard: 9000\n",
        )],
    );
    let reply = p
        .create_container(&pod, &container("ctr-1", &pod, "sleep"))
        .unwrap();
    let rlimits: Vec<(&str, u64, u64)> = reply
        .adjust
        .rlimits
        .iter()
        .map(|r| (r.type_.as_str(), r.hard, r.soft))
        .collect();
    assert_eq!(
        rlimits,
        [
            ("RLIMIT_MEMLOCK", 987654, 645321),
            ("RLIMIT_NOFILE", 4096, 1024),
            ("RLIMIT_NPROC", 9000, 0),
        ]
    );

    // Other containers, and the deprecated key.
    let reply = p
        .create_container(&pod, &container("ctr-2", &pod, "other"))
        .unwrap();
    assert!(reply.adjust.rlimits.is_empty());
    let old = self::pod(
        "pod-2",
        "old",
        &[(
            "ulimits.nri.containerd.io/container.c",
            "[{type: core, hard: 0, soft: 0}]",
        )],
    );
    let reply = p
        .create_container(&old, &container("ctr-3", &old, "c"))
        .unwrap();
    assert_eq!(reply.adjust.rlimits[0].type_, "RLIMIT_CORE");
}

#[test]
fn ulimit_adjuster_reads_annotations_as_the_go_plugin_does() {
    let limits = |value: &str| {
        let pod = pod(
            "pod-1",
            "p",
            &[("ulimits.noderesource.dev/container.c", value)],
        );
        ulimit_adjuster::parse_ulimits(&pod, "c").map(|l| {
            l.into_iter()
                .map(|u| (u.type_, u.hard, u.soft))
                .collect::<Vec<_>>()
        })
    };
    let l = |t: &str, hard, soft| (t.to_string(), hard, soft);
    // Field names in any case (Go: case-insensitive), YAML 1.1 numbers.
    assert_eq!(
        limits("- Type: nofile\n  Hard: 0x1000\n  Soft: 1e3\n"),
        Ok(vec![l("RLIMIT_NOFILE", 4096, 1000)])
    );
    // Go's strings.ToUpper: a dotless ı upper-cases to I, ß stays ß.
    assert_eq!(
        limits("- {type: nofıle}"),
        Ok(vec![l("RLIMIT_NOFILE", 0, 0)])
    );
    assert!(limits("- {type: ﬆack}").is_err());
    // Quoted numbers are strings; a list is required.
    assert!(limits("- {type: core, hard: \"1\"}").is_err());
    assert!(limits("type: core").is_err());
    assert_eq!(limits("~"), Ok(vec![]));
}

#[test]
fn ulimit_adjuster_refuses_unknown_types_and_soft_above_hard() {
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        ulimit_adjuster::UlimitAdjuster,
        "ulimit-adjuster",
        "20",
    );
    let key = "ulimits.noderesource.dev/container.c";
    let bad_type = pod(
        "pod-1",
        "p",
        &[(key, "- {type: nofiles, hard: 1, soft: 1}")],
    );
    let message = status_message(
        p.create_container(&bad_type, &container("c1", &bad_type, "c"))
            .unwrap_err(),
    );
    assert!(
        message.contains("failed to parse type: \"nofiles\""),
        "{message}"
    );
    assert!(message.contains(key), "{message}");

    let inverted = pod(
        "pod-2",
        "p",
        &[(key, "- {type: nofile, hard: 10, soft: 20}")],
    );
    let message = status_message(
        p.create_container(&inverted, &container("c2", &inverted, "c"))
            .unwrap_err(),
    );
    assert!(message.contains("hard limit >= soft limit"), "{message}");
}

// ---------------------------------------------------------------------------
// hook-injector
// ---------------------------------------------------------------------------

fn hook_json(path: &str, when: &str, stages: &str) -> String {
    format!(
        r#"{{
    "version": "1.0.0",
    "hook": {{
        "path": "{path}",
        "args": ["demo-hook", "injected"],
        "env": ["DEMO_HOOK=1"],
        "timeout": 5
    }},
    "when": {when},
    "stages": {stages}
}}
"#
    )
}

#[test]
fn hook_injector_injects_matching_hooks_at_their_stages() {
    let base = temp_dir("hooks-base");
    let over = temp_dir("hooks-override");
    let hook_path = base.join("demo-hook.sh");
    std::fs::write(&hook_path, "#!/bin/sh\n").unwrap();
    let hook = hook_path.to_str().unwrap();
    let write =
        |dir: &PathBuf, file: &str, text: String| std::fs::write(dir.join(file), text).unwrap();
    write(
        &base,
        "10-always.json",
        hook_json(hook, r#"{"always": true}"#, r#"["prestart", "poststop"]"#),
    );
    write(
        &base,
        "20-busybox.json",
        hook_json(
            hook,
            r#"{"commands": ["busybox$"]}"#,
            r#"["createRuntime"]"#,
        ),
    );
    write(
        &base,
        "30-annotated.json",
        hook_json(
            hook,
            r#"{"annotations": {"^demo\\.io/hook$": "^yes$"}}"#,
            r#"["poststart"]"#,
        ),
    );
    // Same name in the override directory: replaces the base one.
    write(
        &over,
        "10-always.json",
        hook_json(hook, r#"{"always": false}"#, r#"["prestart"]"#),
    );

    let injector = hook_injector::HookInjector::new(vec![base.clone(), over.clone()])
        .expect("every hook file loads");
    let runtime = Runtime::new();
    let p = connect(&runtime, injector, "hook-injector", "30");

    let pod = pod("pod-1", "p", &[("demo.io/hook", "yes")]);
    let mut ctr = container("ctr-1", &pod, "bb");
    ctr.args = vec!["/bin/busybox".into(), "sh".into()];
    let reply = p.create_container(&pod, &ctr).unwrap();
    let hooks = &reply.adjust.hooks;
    assert!(
        hooks.prestart.is_empty(),
        "10-always.json was overridden by always: false"
    );
    assert!(hooks.poststop.is_empty());
    assert_eq!(hooks.create_runtime.len(), 1, "busybox command matched");
    assert_eq!(hooks.poststart.len(), 1, "annotation matched");
    let h = &hooks.create_runtime[0];
    assert_eq!(h.path, hook);
    assert_eq!(h.args, ["demo-hook", "injected"]);
    assert_eq!(h.env, ["DEMO_HOOK=1"]);
    assert_eq!(h.timeout.value(), Some(5));

    // No match at all: no hooks message.
    let plain = self::pod("pod-2", "q", &[]);
    let mut other = container("ctr-2", &plain, "nginx");
    other.args = vec!["/usr/sbin/nginx".into()];
    let reply = p.create_container(&plain, &other).unwrap();
    assert!(reply.adjust.hooks.is_none());

    // A hook file added later is picked up without a restart.
    write(
        &over,
        "50-nginx.json",
        hook_json(hook, r#"{"commands": ["nginx"]}"#, r#"["startContainer"]"#),
    );
    let reply = p.create_container(&plain, &other).unwrap();
    assert_eq!(reply.adjust.hooks.start_container.len(), 1);

    let _ = std::fs::remove_dir_all(base);
    let _ = std::fs::remove_dir_all(over);
}

fn hook_names(hooks: &[nri::api::Hook]) -> Vec<&str> {
    hooks.iter().map(|h| h.args[1].as_str()).collect()
}

#[test]
fn hook_injector_ignores_or_in_1_0_0_files_and_reads_0_1_0_files_as_any_of() {
    let dir = temp_dir("hooks-or");
    let hook = |id: &str, when: &str| {
        format!(
            r#"{{"version": "1.0.0", "hook": {{"path": "/bin/sh", "args": ["sh", "{id}"]}},
               "when": {when}, "stages": ["prestart"]}}"#
        )
    };
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    // `or` is not a 1.0.0 key: all conditions must hold, as in Go.
    write(
        "10-or.json",
        &hook(
            "or-1.0.0",
            r#"{"commands": ["^nomatch$"], "hasBindMounts": true, "or": true}"#,
        ),
    );
    // A 0.1.0 file: any condition suffices.
    write(
        "20-old.json",
        r#"{"hook": "/bin/sh", "arguments": ["old-0.1.0"], "stage": ["prestart"],
            "cmd": ["^nomatch$"], "hasbindmounts": true}"#,
    );
    // An unknown key in `when` is ignored, the file loads.
    write(
        "30-unknown.json",
        &hook("unknown-key", r#"{"always": true, "sometimes": {"x": 1}}"#),
    );
    let injector =
        hook_injector::HookInjector::new(vec![dir.clone()]).expect("every hook file loads");

    let pod = pod("pod-1", "p", &[]);
    let mut ctr = container("ctr-1", &pod, "c");
    ctr.args = vec!["/bin/true".into()];
    ctr.mounts.push(nri::api::Mount {
        destination: "/data".into(),
        source: "/srv".into(),
        type_: "bind".into(),
        ..Default::default()
    });
    let hooks = injector.hooks_for(&pod, &ctr).unwrap();
    assert_eq!(
        hook_names(&hooks.prestart),
        ["old-0.1.0", "unknown-key"],
        "the 0.1.0 hook matches by bind mount, the 1.0.0 one does not"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_orders_hooks_by_lower_cased_file_name() {
    let dir = temp_dir("hooks-order");
    for (name, id) in [("B.json", "B"), ("a.json", "a"), ("C.json", "C")] {
        std::fs::write(
            dir.join(name),
            format!(
                r#"{{"version": "1.0.0", "hook": {{"path": "/bin/sh", "args": ["sh", "{id}"]}},
                   "when": {{"always": true}}, "stages": ["poststop"]}}"#
            ),
        )
        .unwrap();
    }
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let hooks = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap();
    assert_eq!(hook_names(&hooks.poststop), ["a", "B", "C"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_does_not_start_on_a_broken_hook_file_as_go_does() {
    let dir = temp_dir("hooks-broken");
    std::fs::write(dir.join("10-broken.json"), "{ not json").unwrap();
    let err = hook_injector::HookInjector::new(vec![dir.clone()])
        .err()
        .expect("a broken hook file stops the plugin from starting");
    assert!(err.contains("10-broken.json"), "{err}");

    // A missing hook binary as the directory's first failure is tolerated,
    // and the files that load are used.
    let _ = std::fs::remove_file(dir.join("10-broken.json"));
    let hook = |path: &str, stage: &str| {
        format!(
            r#"{{"version": "1.0.0", "hook": {{"path": "{path}", "args": ["x", "{stage}"]}},
               "when": {{"always": true}}, "stages": ["{stage}"]}}"#
        )
    };
    std::fs::write(
        dir.join("10-missing.json"),
        hook("/does/not/exist", "prestart"),
    )
    .unwrap();
    std::fs::write(dir.join("20-bad-stage.json"), hook("/bin/sh", "prestartt")).unwrap();
    std::fs::write(dir.join("30-good.json"), hook("/bin/sh", "poststop")).unwrap();
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let hooks = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap();
    assert!(hooks.prestart.is_empty());
    assert_eq!(hook_names(&hooks.poststop), ["poststop"]);

    let read = |name: &str| match common::ocihooks::read(&dir.join(name)) {
        common::ocihooks::Entry::Failed(e) => e.message,
        _ => panic!("{name} should not load"),
    };
    assert!(read("20-bad-stage.json").contains("prestartt"));
    assert!(read("10-missing.json").contains("/does/not/exist"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_fails_creation_when_commands_meet_a_container_without_arguments() {
    let dir = temp_dir("hooks-noargs");
    std::fs::write(
        dir.join("cmd.json"),
        r#"{"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {"commands": ["sh"]},
            "stages": ["prestart"]}"#,
    )
    .unwrap();
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let err = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap_err();
    assert!(err.contains("process.args"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------
// cpu-rebalancer
// ---------------------------------------------------------------------------

#[test]
fn cpu_rebalancer_spreads_cpus_with_solicited_and_unsolicited_updates() {
    let runtime = runtime_with_config("cpu-rebalancer", "cpus: 0-7");
    let web = pod("pod-1", "web", &[]);
    let batch = pod(
        "pod-2",
        "batch",
        &[(cpu_rebalancer::SKIP_ANNOTATION, "true")],
    );
    let a = running(container("ctr-a", &web, "a"));
    let b = running(container("ctr-b", &web, "b"));
    let skipped = running(container("ctr-s", &batch, "s"));
    let mut gone = container("ctr-x", &web, "x");
    gone.state = ContainerState::CONTAINER_STOPPED.into();
    runtime.set_state(
        vec![web.clone(), batch.clone()],
        vec![a.clone(), b.clone(), skipped, gone],
    );

    let plugin = Arc::new(cpu_rebalancer::CpuRebalancer::new(vec![0], false));
    let p = connect(&runtime, Arc::clone(&plugin), "cpu-rebalancer", "50");
    assert_eq!(
        plugin.pool(),
        (0..8).collect::<Vec<_>>(),
        "pool from the configuration"
    );

    // Synchronize: the two running, managed containers split the pool.
    let sync = cpusets(p.sync_updates());
    assert_eq!(
        sync,
        HashMap::from([
            ("ctr-a".into(), "0-3".into()),
            ("ctr-b".into(), "4-7".into())
        ])
    );

    // CreateContainer: the new one in its adjustment, the others in updates.
    let c = container("ctr-c", &web, "c");
    let reply = p.create_container(&web, &c).unwrap();
    assert_eq!(reply.adjust.linux.resources.cpu.cpus, "6-7");
    assert_eq!(
        cpusets(&reply.update),
        HashMap::from([
            ("ctr-a".into(), "0-2".into()),
            ("ctr-b".into(), "3-5".into())
        ])
    );

    // StopContainer: updates in the reply.
    let reply = p.stop_container(&web, &a).unwrap();
    assert_eq!(
        cpusets(&reply.update),
        HashMap::from([
            ("ctr-b".into(), "0-3".into()),
            ("ctr-c".into(), "4-7".into())
        ])
    );

    // RemoveContainer without a stop: a notification, so the updates come
    // as an unsolicited UpdateContainers after the reply.
    p.remove_container(&web, &b).unwrap();
    let unsolicited = p.wait_unsolicited_updates(1, STEP);
    assert_eq!(
        cpusets(&unsolicited),
        HashMap::from([("ctr-c".into(), "0-7".into())])
    );
    assert!(
        p.is_connected(),
        "updates after the reply do not deadlock the runtime"
    );
}

#[test]
fn cpu_rebalancer_pushes_updates_from_its_own_thread_when_cpus_change() {
    let runtime = Runtime::new();
    let web = pod("pod-1", "web", &[]);
    runtime.set_state(
        vec![web.clone()],
        vec![
            running(container("ctr-a", &web, "a")),
            running(container("ctr-b", &web, "b")),
        ],
    );
    let plugin = Arc::new(cpu_rebalancer::CpuRebalancer::new(vec![0, 1, 2, 3], false));
    let p = connect(&runtime, Arc::clone(&plugin), "cpu-rebalancer", "50");
    assert_eq!(cpusets(p.sync_updates()).len(), 2);

    // CPUs 4-5 come online.
    let online = Arc::new(Mutex::new(vec![0, 1, 2, 3]));
    let source = Arc::clone(&online);
    let watcher = cpu_rebalancer::PoolWatcher::start(
        Arc::clone(&plugin),
        p.stub.clone(),
        Duration::from_millis(10),
        move || Some(source.lock().unwrap().clone()),
    )
    .unwrap();
    *online.lock().unwrap() = vec![0, 1, 2, 3, 4, 5];
    let updates = p.wait_unsolicited_updates(2, STEP);
    drop(watcher);
    assert_eq!(
        cpusets(&updates),
        HashMap::from([
            ("ctr-a".into(), "0-2".into()),
            ("ctr-b".into(), "3-5".into())
        ])
    );
    assert_eq!(plugin.cpuset_of("ctr-b").as_deref(), Some("3-5"));
}

#[test]
fn cpu_rebalancer_splits_and_formats_cpu_lists() {
    use cpu_rebalancer::{format_cpuset, parse_cpuset, split};
    assert_eq!(
        parse_cpuset("0-3,8, 10-11").unwrap(),
        [0, 1, 2, 3, 8, 10, 11]
    );
    assert_eq!(format_cpuset(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
    assert!(parse_cpuset("3-1").is_err());
    assert!(parse_cpuset("").is_err());
    assert_eq!(split(&[0, 1, 2, 3, 4], 2), ["0-2", "3-4"]);
    assert_eq!(
        split(&[0, 1], 3),
        ["0", "1", "0"],
        "more containers than CPUs share round-robin"
    );
}

// ---------------------------------------------------------------------------
// common: flags and the YAML subset
// ---------------------------------------------------------------------------

#[test]
fn flags_parse_like_go_flags() {
    let extra = [common::Flag {
        name: "events",
        value: Some("LIST"),
        help: "",
    }];
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cli = common::Cli::parse_from(
        args(&[
            "-idx",
            "10",
            "--name=logger",
            "-events",
            "pod",
            "-verbose",
            "-socket",
            "/tmp/nri.sock",
        ]),
        &extra,
    )
    .unwrap()
    .unwrap();
    assert_eq!(cli.idx.as_deref(), Some("10"));
    assert_eq!(cli.name.as_deref(), Some("logger"));
    assert_eq!(cli.value("events"), Some("pod"));
    assert!(cli.verbose && !cli.reconnect);
    assert_eq!(cli.socket, Some(PathBuf::from("/tmp/nri.sock")));
    assert!(common::Cli::parse_from(args(&["-h"]), &extra)
        .unwrap()
        .is_none());
    assert!(common::Cli::parse_from(args(&["-bogus"]), &extra)
        .unwrap_err()
        .contains("-bogus"));
    assert!(common::Cli::parse_from(args(&["-idx"]), &extra)
        .unwrap_err()
        .contains("needs a value"));
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

#[test]
fn yaml_reads_block_lists_of_maps_with_compact_nested_lists() {
    let doc = yaml::parse(
        "# devices\n- path: /dev/a   # comment\n  major: 1\n  options:\n  - bind\n  - ro\n-   path: '/dev/b c'\n    empty:\n",
    )
    .unwrap();
    assert_eq!(
        doc,
        Value::Seq(vec![
            Value::Map(vec![
                ("path".into(), s("/dev/a")),
                ("major".into(), s("1")),
                ("options".into(), Value::Seq(vec![s("bind"), s("ro")])),
            ]),
            Value::Map(vec![
                ("path".into(), s("/dev/b c")),
                ("empty".into(), Value::Null)
            ]),
        ])
    );
}

#[test]
fn yaml_reads_json_and_flow_collections_across_lines() {
    let doc = yaml::parse(
        "{\n  \"a\": [1, \"two\",\n        {\"k\": \"v\\n\\u00e9\"}],\n  \"b\": true\n}\n",
    )
    .unwrap();
    assert_eq!(
        doc,
        Value::Map(vec![
            (
                "a".into(),
                Value::Seq(vec![
                    s("1"),
                    s("two"),
                    Value::Map(vec![("k".into(), s("v\né"))])
                ])
            ),
            ("b".into(), s("true")),
        ])
    );
    assert_eq!(doc.get("b").unwrap().to_bool("b"), Ok(true));
}

#[test]
fn yaml_reads_nested_maps_and_block_scalars() {
    let doc = yaml::parse("outer:\n  inner: x\n  list: [a, b]\ntext: |\n  line 1\n  line 2\nfold: >-\n  one\n  two\nlast: \"q\"\n").unwrap();
    assert_eq!(doc.get("outer").unwrap().get("inner"), Some(&s("x")));
    assert_eq!(doc.get("text"), Some(&s("line 1\nline 2\n")));
    assert_eq!(doc.get("fold"), Some(&s("one two")));
    assert_eq!(doc.get("last"), Some(&s("q")));
}

#[test]
fn yaml_numbers_follow_yaml_1_1_as_go_yaml_v2_resolves_them() {
    use common::goyaml::{decode, Go};
    let n = |t: &str| decode(t).unwrap();
    assert_eq!(n("0666"), Go::Int(0o666));
    assert_eq!(n("0o17"), Go::Int(15));
    assert_eq!(n("0x1F"), Go::Int(31));
    assert_eq!(n("0b11"), Go::Int(3));
    assert_eq!(n("1_000"), Go::Int(1000));
    assert_eq!(n("+1"), Go::Int(1));
    assert_eq!(n("-0"), Go::Int(0));
    assert_eq!(n("08"), Go::Float(8.0), "not octal, so a float");
    assert_eq!(n("1e3"), Go::Float(1000.0));
    assert_eq!(n("1.0"), Go::Float(1.0));
    assert_eq!(n(".inf"), Go::Float(f64::INFINITY));
    assert_eq!(n("18446744073709551615"), Go::Uint(u64::MAX));
    assert_eq!(n("yes"), Go::Bool(true));
    assert_eq!(n("Off"), Go::Bool(false));
    assert_eq!(n("~"), Go::Nil);
    assert_eq!(n("'1'"), Go::Str("1".into()), "a quoted number is a string");
    assert_eq!(n("!!str 1"), Go::Str("1".into()));
    assert_eq!(n("!!float 1"), Go::Float(1.0));
    assert!(decode("!!int 1.5").is_err());
}

#[test]
fn yaml_errors_name_the_line() {
    let err = yaml::parse("a: 1\n  b: 2\n").unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    let err = yaml::parse("- a\n- [b\n").unwrap_err();
    assert!(err.line > 0, "{err}");
    // As in Go: anchors and aliases resolve, a later duplicate key wins.
    assert_eq!(
        yaml::parse("a: &anchor 1\nb: *anchor\n").unwrap(),
        Value::Map(vec![("a".into(), s("1")), ("b".into(), s("1"))])
    );
    assert_eq!(
        yaml::parse("a: 1\na: 2\n").unwrap(),
        Value::Map(vec![("a".into(), s("2"))])
    );
    assert_eq!(yaml::parse("").unwrap(), Value::Null);
    assert_eq!(yaml::parse("# only a comment\n").unwrap(), Value::Null);
}

// ---------------------------------------------------------------------------
// The README plugin, the deployment files, and the binaries as processes
// ---------------------------------------------------------------------------

const README: &str = include_str!("../README.md");
const MEMORY_DEFAULTER: &str = include_str!("../examples/memory-defaulter/main.rs");

#[test]
fn readme_plugin_is_the_memory_defaulter_example_verbatim() {
    let block = README
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a ```rust block");
    assert_eq!(
        block, MEMORY_DEFAULTER,
        "README's plugin and examples/memory-defaulter/main.rs differ: update one from the other"
    );
    let lines = MEMORY_DEFAULTER.lines().count();
    assert!(
        lines <= 45,
        "the README plugin should stay short ({lines} lines)"
    );
}

#[test]
fn readme_keeps_the_two_quickstart_commands() {
    let quickstart = README
        .split("## Quickstart")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("README has a Quickstart with a sh block");
    assert_eq!(quickstart, "cargo run --example demo\ncargo test\n");
}

#[test]
fn deploy_logger_config_is_valid_for_the_logger() {
    let text = include_str!("../examples/deploy/10-logger.conf");
    let doc = yaml::parse(text).unwrap();
    assert_eq!(
        doc.get("logFile").and_then(Value::as_str),
        Some("/var/log/nri-logger.log")
    );
    // Everything but the log file, which would redirect this process's log.
    let without_log_file: String = text
        .lines()
        .filter(|l| !l.starts_with("logFile"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = logger::Config::default().merge(&without_log_file).unwrap();
    assert_eq!(
        cfg.events,
        Some(EventMask::from_events(&[
            Event::RUN_POD_SANDBOX,
            Event::CREATE_CONTAINER,
            Event::STOP_CONTAINER,
            Event::REMOVE_POD_SANDBOX
        ]))
    );
    assert_eq!(cfg.add_annotation, "logger.nri.io/seen-by");
}

#[test]
fn launched_memory_defaulter_sets_the_annotated_limit() {
    let binary = example_binary("memory-defaulter");
    let runtime = Runtime::new();
    let p = runtime
        .launch(&binary, "memory-defaulter", "10", "")
        .expect("launched plugin starts");
    let key = "memory-defaulter.example.com/limit";
    let pod = pod("pod-1", "p", &[(key, "536870912")]);
    let reply = p
        .create_container(&pod, &container("c1", &pod, "c"))
        .unwrap();
    assert_eq!(
        reply.adjust.linux.resources.memory.limit.value(),
        Some(512 << 20)
    );

    // A container that has a limit keeps it.
    let mut limited = container("c2", &pod, "limited");
    limited
        .linux
        .mut_or_insert_default()
        .resources
        .mut_or_insert_default()
        .memory
        .mut_or_insert_default()
        .limit
        .set_value(Some(1 << 30));
    let reply = p.create_container(&pod, &limited).unwrap();
    assert!(reply.adjust.linux.is_none());

    let bad = self::pod("pod-2", "q", &[(key, "lots")]);
    let message = status_message(
        p.create_container(&bad, &container("c3", &bad, "c"))
            .unwrap_err(),
    );
    assert!(
        message.contains(key) && message.contains("lots"),
        "{message}"
    );
}

#[test]
fn external_device_injector_stops_cleanly_on_sigterm() {
    let binary = example_binary("device-injector");
    let dir = temp_dir("external");
    let socket = dir.join("nri.sock");
    let runtime = Runtime::new();
    let listener = runtime.listen(&socket).unwrap();
    let mut child = std::process::Command::new(&binary)
        .args(["-idx", "10", "-socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = listener
        .accept_timeout(STEP)
        .expect("external plugin connects");
    assert_eq!(p.name(), "10-device-injector");

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + STEP;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the plugin did not exit within {STEP:?} of SIGTERM");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    assert!(p.wait_closed(STEP), "the plugin closed its connection");
    let _ = std::fs::remove_dir_all(dir);
}
