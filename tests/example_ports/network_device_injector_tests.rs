//! The network-device-injector example's tests. The moves happen between
//! private network namespaces (see `netns.rs`), never the host's.

use super::hostdev;
use super::netlink::{NetNs, Socket};
use super::netns::{add_link, as_host, ip, link, links, PrivateNs};
use super::network_device_injector::{
    self as plugin, parse_netdevices, NetDevice, NetworkDeviceInjector,
};
use super::*;
use nri::api::{fixtures, Event, EventMask, LinuxNamespace};

const KEY: &str = "netdevice.noderesource.dev/pod";

fn pod_in(ns: &std::path::Path, annotations: &[(&str, &str)]) -> nri::api::PodSandbox {
    let mut pod = fixtures::pod("web").linux_namespace(LinuxNamespace::join(
        LinuxNamespace::NETWORK,
        ns.display().to_string(),
    ));
    for (k, v) in annotations {
        pod = pod.annotation(k, v);
    }
    pod.build()
}

fn device(name: &str, new_name: &str) -> NetDevice {
    NetDevice {
        name: name.into(),
        new_name: new_name.into(),
        ..Default::default()
    }
}

#[test]
fn the_pod_annotation_is_found_in_upstream_order() {
    let order = [
        "netdevice.noderesource.dev/pod",
        "netdevices.nri.containerd.io/pod",
        "netdevice.noderesource.dev",
        "netdevices.nri.containerd.io",
    ];
    for (i, key) in order.iter().enumerate() {
        let mut pod = fixtures::pod("web");
        for (j, other) in order[i..].iter().enumerate() {
            pod = pod.annotation(other, &format!("- name: dev{}", i + j));
        }
        // A container-scoped key is not read: devices are the pod's.
        pod = pod.annotation("netdevice.noderesource.dev/container.web", "- name: nope");
        let devices = parse_netdevices(&pod.build()).unwrap();
        assert_eq!(devices.len(), 1, "{key}");
        assert_eq!(devices[0].name, format!("dev{i}"), "{key} wins");
    }
    assert!(parse_netdevices(&fixtures::pod("web").build())
        .unwrap()
        .is_empty());
    // Present but empty: no devices, as in Go.
    let pod = fixtures::pod("web").annotation(KEY, "").build();
    assert!(parse_netdevices(&pod).unwrap().is_empty());
}

#[test]
fn devices_are_read_as_go_reads_them_and_defaulted_as_go_means_to() {
    let text =
        "- NAME: dummy0\n  New_Name: eth1\n  address: 192.168.2.2\n  prefix: 24\n  MTU: 1500\n\
                - name: dummy1\n  address: fd00::2\n\
                - name: dummy2\n  address: 10.0.0.1\n\
                - name: dummy3\n";
    let pod = fixtures::pod("web").annotation(KEY, text).build();
    let devices = parse_netdevices(&pod).unwrap();
    assert_eq!(
        devices,
        [
            NetDevice {
                name: "dummy0".into(),
                new_name: "eth1".into(),
                address: "192.168.2.2".into(),
                prefix: 24,
                mtu: 1500
            },
            NetDevice {
                name: "dummy1".into(),
                new_name: "dummy1".into(),
                address: "fd00::2".into(),
                prefix: 128,
                mtu: 0
            },
            NetDevice {
                name: "dummy2".into(),
                new_name: "dummy2".into(),
                address: "10.0.0.1".into(),
                prefix: 32,
                mtu: 0
            },
            device("dummy3", "dummy3"),
        ]
    );
}

#[test]
fn bad_annotations_are_refused_with_the_key_and_the_reason() {
    let cases = [
        (
            "- name: d0\n  address: 300.1.1.1\n",
            "error parsing address 300.1.1.1".to_string(),
        ),
        (
            "- name: d0\n  address: 010.1.1.1\n",
            "error parsing address 010.1.1.1".into(),
        ),
        (
            "- name: d0\n  address: fe80::1%eth0\n",
            "error parsing address fe80::1%eth0".into(),
        ),
        (
            "- new_name: eth1\n",
            format!("invalid device annotation {KEY:?}: network device 0 has no name"),
        ),
        (
            "- name: d0\n  mtu: big\n",
            format!("invalid device annotation {KEY:?}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field NetDevice.mtu of type int64"),
        ),
        (
            "name: d0\n",
            format!("invalid device annotation {KEY:?}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal object into Go value of type slice"),
        ),
    ];
    for (text, want) in cases {
        let pod = fixtures::pod("web").annotation(KEY, text).build();
        let err = parse_netdevices(&pod).unwrap_err();
        assert!(err.starts_with(&want), "{text:?}: {err}\n  want {want}");
    }
    assert_eq!(
        plugin::parse_ip("::ffff:10.1.2.3"),
        Some("10.1.2.3".parse().unwrap())
    );
}

#[test]
fn host_network_pods_and_bad_annotations_fail_the_pod_start() {
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        NetworkDeviceInjector,
        "network-device-injector",
        "10",
    );
    assert_eq!(
        p.events(),
        EventMask::from_events(&[Event::RUN_POD_SANDBOX, Event::STOP_POD_SANDBOX])
    );
    // No annotation: nothing to do, whatever the network.
    let plain = fixtures::pod("plain").host_network().build();
    p.run_pod_sandbox(&plain).unwrap();
    p.stop_pod_sandbox(&plain).unwrap();

    let host = fixtures::pod("host")
        .host_network()
        .annotation(KEY, "- name: dummy0\n")
        .build();
    let err = status_message(p.run_pod_sandbox(&host).unwrap_err());
    assert_eq!(err, "trying to inject network device on host network Pod");
    // Stopping it has nothing to move back.
    p.stop_pod_sandbox(&host).unwrap();

    let bad = fixtures::pod("bad")
        .annotation(KEY, "- name: dummy0\n  address: nope\n")
        .build();
    let err = status_message(p.run_pod_sandbox(&bad).unwrap_err());
    assert_eq!(err, "error parsing address nope");
    let err = status_message(p.stop_pod_sandbox(&bad).unwrap_err());
    assert_eq!(err, "error parsing address nope");

    // A pod whose namespace path is no namespace.
    let dir = temp_dir("not-a-netns");
    let file = dir.join("netns");
    std::fs::write(&file, "").unwrap();
    let odd = pod_in(&file, &[(KEY, "- name: dummy0\n")]);
    let err = status_message(p.run_pod_sandbox(&odd).unwrap_err());
    assert!(
        err.starts_with(
            "cannot inject network device \"dummy0\" as \"dummy0\": unknown FS magic on"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn devices_move_into_the_pod_and_back_through_the_runtime() {
    as_host(|host| {
        add_link(host, "nri-d0");
        add_link(host, "nri-d1");
        ip(host, &["link", "set", "nri-d1", "up"]);
        let pod_ns = PrivateNs::new().expect("a pod namespace");
        let runtime = Runtime::new();
        let p = connect(
            &runtime,
            NetworkDeviceInjector,
            "network-device-injector",
            "10",
        );
        let pod = pod_in(
            pod_ns.path(),
            &[(
                KEY,
                "- name: nri-d0\n  new_name: eth1\n- name: nri-d1\n  address: 10.9.0.1\n",
            )],
        );
        p.run_pod_sandbox(&pod).unwrap();
        assert_eq!(link(host, "nri-d0"), None, "moved out of the host");
        assert_eq!(link(host, "nri-d1"), None, "moved out of the host");
        assert_eq!(
            link(pod_ns.path(), "eth1"),
            Some(("eth1".into(), true, "nri-d0".into())),
            "renamed, up, its host name as alias: {:?}",
            links(pod_ns.path())
        );
        assert_eq!(
            link(pod_ns.path(), "nri-d1"),
            Some(("nri-d1".into(), true, "nri-d1".into())),
            "no new_name: the same name"
        );

        p.stop_pod_sandbox(&pod).unwrap();
        assert_eq!(link(pod_ns.path(), "eth1"), None);
        assert_eq!(link(pod_ns.path(), "nri-d1"), None);
        let back = link(host, "nri-d0").expect("back on the host");
        assert!(!back.1, "left down");
        let back = link(host, "nri-d1").expect("back on the host");
        assert!(!back.1, "left down, though it was up");
        // Stopping again finds nothing to move: logged, not an error.
        p.stop_pod_sandbox(&pod).unwrap();
    });
}

#[test]
fn a_device_that_cannot_be_moved_fails_the_pod_and_undoes_the_others() {
    as_host(|host| {
        add_link(host, "nri-d2");
        ip(host, &["link", "set", "nri-d2", "up"]);
        let pod_ns = PrivateNs::new().expect("a pod namespace");
        let runtime = Runtime::new();
        let p = connect(
            &runtime,
            NetworkDeviceInjector,
            "network-device-injector",
            "10",
        );
        let pod = pod_in(
            pod_ns.path(),
            &[(
                KEY,
                "- name: nri-d2\n  new_name: eth2\n- name: no-such-dev\n",
            )],
        );
        let err = status_message(p.run_pod_sandbox(&pod).unwrap_err());
        assert_eq!(
            err,
            "cannot inject network device \"no-such-dev\" as \"no-such-dev\": Link not found"
        );
        assert_eq!(link(pod_ns.path(), "eth2"), None, "moved back");
        let back = link(host, "nri-d2").expect("back on the host, under its name");
        assert_eq!(back.2, "nri-d2", "its alias says where it was");

        // A name already taken in the pod: the device stays on the host as
        // it was (name and state).
        let taken = pod_in(pod_ns.path(), &[(KEY, "- name: nri-d2\n  new_name: lo\n")]);
        ip(host, &["link", "set", "nri-d2", "up"]);
        let err = status_message(p.run_pod_sandbox(&taken).unwrap_err());
        assert!(
            err.starts_with("cannot inject network device \"nri-d2\" as \"lo\": failed to move link failed to rename device \"temp_"),
            "{err}"
        );
        let back = link(host, "nri-d2").expect("still on the host");
        assert!(back.1, "still up");
        assert_eq!(link(pod_ns.path(), "lo").map(|l| l.2), Some(String::new()));
    });
}

#[test]
fn moving_a_device_back_without_an_alias_leaves_it_in_the_pod() {
    as_host(|host| {
        let pod_ns = PrivateNs::new().expect("a pod namespace");
        // A device the plugin did not move: created in the pod directly.
        add_link(pod_ns.path(), "nri-d3");
        ip(pod_ns.path(), &["link", "set", "nri-d3", "up"]);
        let host_ns = NetNs::current().unwrap();
        let container_ns = NetNs::open(pod_ns.path()).unwrap();
        let mut sock = Socket::open().unwrap();
        let err = hostdev::move_link_out(&mut sock, &host_ns, &container_ns, "nri-d3").unwrap_err();
        assert!(err.contains("has no alias"), "{err}");
        let kept = link(pod_ns.path(), "nri-d3").expect("moved back into the pod");
        assert!(kept.1, "up again");
        assert!(links(host).iter().all(|(n, _, _)| !n.starts_with("temp_")));
    });
}
