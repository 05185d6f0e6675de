//! The deployment files of the ports.

use nri::cli::Cli;
use nri::decode::Value;

/// The plugin container's args and capabilities of a DaemonSet file.
fn plugin_container(text: &str) -> (Vec<String>, Vec<String>, Value) {
    let doc: Value = nri::decode::from_yaml(text).expect("the DaemonSet is YAML");
    let spec = doc
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .expect("a pod template")
        .clone();
    let container = match spec.get("containers") {
        Some(Value::Seq(containers)) => containers[0].clone(),
        other => panic!("no containers: {other:?}"),
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Seq(items)) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        }
    };
    let args = strings(container.get("args"));
    let caps = strings(
        container
            .get("securityContext")
            .and_then(|s| s.get("capabilities"))
            .and_then(|c| c.get("add")),
    );
    (args, caps, spec)
}

#[test]
fn network_device_injector_daemonset_runs_in_the_node_network_with_the_capabilities_it_needs() {
    let text = include_str!("../../examples/deploy/network-device-injector-daemonset.yaml");
    let (args, caps, spec) = plugin_container(text);
    let cli = Cli::parse_from(args, &[])
        .expect("the plugin takes its args")
        .unwrap();
    assert!(cli.reconnect && cli.idx.is_some());
    assert_eq!(caps, ["NET_ADMIN", "SYS_ADMIN"]);
    assert_eq!(spec.get("hostNetwork").and_then(Value::as_bool), Some(true));
    assert!(
        text.contains("mountPath: /var/run/netns\n              mountPropagation: HostToContainer")
    );
}

#[test]
fn writable_cgroups_daemonset_reads_the_node_mount_table_where_the_plugin_looks() {
    let text = include_str!("../../examples/deploy/writable-cgroups-daemonset.yaml");
    let (args, caps, _) = plugin_container(text);
    let cli = Cli::parse_from(args, &[])
        .expect("the plugin takes its args")
        .unwrap();
    assert!(cli.reconnect && cli.idx.is_some());
    assert!(caps.is_empty());
    assert_eq!(
        super::writable_cgroups::DEFAULT_HOST_MOUNT_FILE,
        "/host/proc/1/mountinfo"
    );
    assert!(text.contains("mountPath: /host/proc\n"));
    assert!(text.contains("path: /proc\n"));
}
