//! The network-logger example's tests.

use super::network_logger::{self, NetworkLogger};
use super::*;
use nri::api::{fixtures, Event, EventMask, LinuxNamespace};

#[test]
fn network_logger_logs_namespaces_and_addresses_as_the_go_plugin() {
    let web = fixtures::pod("web")
        .namespace("shop")
        .linux_namespace(LinuxNamespace::join(
            LinuxNamespace::NETWORK,
            "/var/run/netns/cni-1234",
        ))
        .ips(&["10.244.1.5", "fd00::5"])
        .build();
    let agent = fixtures::pod("agent").host_network().build();
    let runtime = Runtime::builder()
        .name("examples-test")
        .version("1.0")
        .build();
    let ctr = fixtures::container(&web, "nginx").build();
    runtime.set_state(vec![web.clone(), agent.clone()], vec![ctr]);

    let lines = Lines::default();
    let sink = lines.clone();
    let p = connect(
        &runtime,
        NetworkLogger::with_sink(Arc::new(move |l: &str| sink.push(l))),
        "network-logger",
        "10",
    );
    assert_eq!(
        p.events(),
        EventMask::from_events(&[
            Event::RUN_POD_SANDBOX,
            Event::STOP_POD_SANDBOX,
            Event::REMOVE_POD_SANDBOX
        ])
    );
    assert_eq!(
        lines.take(),
        [
            "Synchronized state with the runtime (2 pods, 1 containers)...",
            "pod shop/web: namespace=/var/run/netns/cni-1234 ips=[10.244.1.5 fd00::5]",
            "pod default/agent: namespace=<host-network> ips=[]",
        ]
    );
    p.run_pod_sandbox(&web).unwrap();
    p.run_pod_sandbox(&agent).unwrap();
    p.stop_pod_sandbox(&web).unwrap();
    p.remove_pod_sandbox(&web).unwrap();
    p.shutdown().unwrap();
    assert_eq!(
        lines.take(),
        [
            "Started pod shop/web: namespace=/var/run/netns/cni-1234 ips=[10.244.1.5 fd00::5]",
            "Started pod default/agent: namespace=<host-network> ips=[]",
            "Stopped pod shop/web: ips=[10.244.1.5 fd00::5]",
            "Removed pod shop/web: ips=[10.244.1.5 fd00::5]",
            "Runtime shutting down...",
        ]
    );
    // A network namespace without a path is still the pod's, as in Go.
    let odd = fixtures::pod("odd")
        .linux_namespace(LinuxNamespace::create(LinuxNamespace::NETWORK))
        .build();
    assert_eq!(network_logger::network_namespace(&odd), "");
}

#[test]
fn network_logger_binary_logs_to_its_file_and_exits_when_the_runtime_goes() {
    let dir = temp_dir("network-logger");
    let socket = dir.join("nri.sock");
    let log_file = dir.join("plugin.log");
    let runtime = Runtime::new();
    let listener = runtime.listen(&socket).unwrap();
    let mut child = std::process::Command::new(example_binary("network-logger"))
        .args(["-idx", "10", "-socket"])
        .arg(&socket)
        .arg("-log-file")
        .arg(&log_file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = listener.accept_timeout(STEP).unwrap();
    assert_eq!(p.name(), "10-network-logger");
    let pod = fixtures::pod("web").ips(&["10.0.0.7"]).build();
    p.run_pod_sandbox(&pod).unwrap();
    p.close();
    let status = wait_exit(&mut child);
    assert_eq!(
        status.code(),
        Some(1),
        "an external plugin that lost its runtime"
    );
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        text.contains("Synchronized state with the runtime (0 pods, 0 containers)..."),
        "{text}"
    );
    assert!(
        text.contains("Started pod default/web: namespace=/var/run/netns/"),
        "{text}"
    );
    assert!(text.contains("ips=[10.0.0.7]"), "{text}");
    assert!(
        text.contains("Connection to the runtime lost, exiting..."),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Waits (bounded) for `child` to exit.
pub fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the plugin did not exit within {STEP:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Makes a fresh plugin.
type MakePlugin = Box<dyn Fn() -> Arc<dyn Plugin>>;

/// Every port reads the logging keys of its configuration text, and refuses
/// a text that is not a YAML mapping with the reason.
#[test]
fn every_port_refuses_a_configuration_that_is_not_a_mapping() {
    use super::differ::{Chain, Config};
    let chain = Chain::new(&[0, 99], Config::default()).unwrap();
    let plugins: Vec<(&str, MakePlugin)> = vec![
        (
            "network-logger",
            Box::new(|| Arc::new(NetworkLogger::new())),
        ),
        ("rdt", Box::new(|| Arc::new(super::rdt::Rdt))),
        (
            "writable-cgroups",
            Box::new(|| Arc::new(super::writable_cgroups::WritableCgroups::new(true))),
        ),
        (
            "network-device-injector",
            Box::new(|| Arc::new(super::network_device_injector::NetworkDeviceInjector)),
        ),
        (
            "differ",
            Box::new(move || Arc::new(chain.plugin(0).unwrap())),
        ),
    ];
    for (name, make) in &plugins {
        let runtime = Runtime::builder()
            .plugin_config(*name, "- not\n- a mapping\n")
            .build();
        let (runtime_end, plugin_end) = UnixStream::pair().unwrap();
        let stub = Stub::builder(make())
            .plugin_name(*name)
            .plugin_index("10")
            .connection(plugin_end)
            .build()
            .unwrap();
        let serving = stub.clone();
        let thread = thread::spawn(move || serving.run());
        let err = runtime.accept_stream(runtime_end).unwrap_err();
        assert!(
            err.to_string().contains("not a YAML mapping"),
            "{name}: {err}"
        );
        stub.stop();
        let _ = thread.join();
        // A mapping is fine.
        let runtime = Runtime::builder()
            .plugin_config(*name, "verbose: false\n")
            .build();
        let _p = connect(&runtime, make(), name, "10");
    }
}
