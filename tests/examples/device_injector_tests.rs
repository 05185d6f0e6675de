//! The device-injector example's tests.

use super::*;

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
