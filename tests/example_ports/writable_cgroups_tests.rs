//! The writable-cgroups example's tests.

use super::mountinfo::ns_delegate_in;
use super::writable_cgroups::{self as plugin, WritableCgroups, ANNOTATION, CGROUPS_MOUNT};
use super::*;
use nri::api::{fixtures, Container, ContainerAdjustment, Mount, PodSandbox};

fn cgroup_mount(options: &[&str]) -> Mount {
    Mount {
        destination: CGROUPS_MOUNT.into(),
        type_: "cgroup".into(),
        source: "cgroup".into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    }
}

fn container_with(pod: &PodSandbox, mounts: Vec<Mount>) -> Container {
    let mut ctr = fixtures::container(pod, "test-container").build();
    ctr.mounts = mounts;
    ctr
}

fn pod_with(annotations: &[(&str, &str)]) -> PodSandbox {
    let mut pod = fixtures::pod("test-pod");
    for (k, v) in annotations {
        pod = pod.annotation(k, v);
    }
    pod.build()
}

/// A mount of an adjustment: destination and options.
type MountSeen = (String, Vec<String>);

fn mounts(adjust: &ContainerAdjustment) -> Vec<MountSeen> {
    adjust
        .mounts
        .iter()
        .map(|m| (m.destination.clone(), m.options.clone()))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The cases of the Go plugin's own test, through the runtime.
#[test]
fn writable_cgroups_does_what_the_go_plugins_test_asks() {
    let runtime = Runtime::new();
    let on = connect(
        &runtime,
        WritableCgroups::new(true),
        "writable-cgroups",
        "10",
    );
    let off = connect(
        &runtime,
        WritableCgroups::new(false),
        "writable-cgroups",
        "11",
    );
    let ro = cgroup_mount(&["ro", "nosuid", "noexec", "nodev", "nsdelegate"]);
    let rw = cgroup_mount(&["rw", "nosuid", "noexec", "nodev", "nsdelegate"]);
    let neither = cgroup_mount(&["nosuid", "noexec", "nodev", "nsdelegate"]);
    let made_rw = (
        CGROUPS_MOUNT.to_string(),
        strings(&["nosuid", "noexec", "nodev", "nsdelegate", "rw"]),
    );
    let removal = (format!("-{CGROUPS_MOUNT}"), Vec::new());
    let own = format!("{ANNOTATION}.container.test-container");
    let other = format!("{ANNOTATION}.container.another-container");

    let cases: Vec<(&str, PodSandbox, Vec<Mount>, Vec<MountSeen>)> = vec![
        ("no annotation", pod_with(&[]), vec![ro.clone()], vec![]),
        (
            "annotation disabled",
            pod_with(&[(ANNOTATION, "false")]),
            vec![ro.clone()],
            vec![],
        ),
        (
            "cgroup mount is ro",
            pod_with(&[(ANNOTATION, "true")]),
            vec![ro.clone()],
            vec![made_rw.clone(), removal.clone()],
        ),
        (
            "already rw",
            pod_with(&[(ANNOTATION, "true")]),
            vec![rw.clone()],
            vec![],
        ),
        (
            "no ro/rw",
            pod_with(&[(ANNOTATION, "true")]),
            vec![neither.clone()],
            vec![made_rw.clone(), removal.clone()],
        ),
        (
            "per-container annotation enabled",
            pod_with(&[(&own, "true")]),
            vec![ro.clone()],
            vec![made_rw.clone(), removal.clone()],
        ),
        (
            "per-container disabled, pod enabled",
            pod_with(&[(ANNOTATION, "true"), (&own, "false")]),
            vec![ro.clone()],
            vec![],
        ),
        (
            "another container enabled",
            pod_with(&[(&other, "true")]),
            vec![ro.clone()],
            vec![],
        ),
        (
            "only exactly true",
            pod_with(&[(ANNOTATION, "True")]),
            vec![ro.clone()],
            vec![],
        ),
    ];
    for (name, pod, ctr_mounts, want) in cases {
        let reply = on
            .create_container(&pod, &container_with(&pod, ctr_mounts.clone()))
            .unwrap();
        assert_eq!(mounts(&reply.adjust), want, "{name}");
        // Without nsdelegate on the host: never any change.
        let reply = off
            .create_container(&pod, &container_with(&pod, ctr_mounts))
            .unwrap();
        assert!(reply.adjust.mounts.is_empty(), "{name}, no nsdelegate");
    }

    let pod = pod_with(&[(ANNOTATION, "true")]);
    let err = on
        .create_container(&pod, &container_with(&pod, vec![]))
        .unwrap_err();
    assert_eq!(
        status_message(err),
        "no /sys/fs/cgroup mount found to modify, this is unexpected"
    );
    // The mount keeps its type and source.
    let made = plugin::read_write_mount(&ro).unwrap();
    assert_eq!(
        (made.type_.as_str(), made.source.as_str()),
        ("cgroup", "cgroup")
    );
}

/// The cases of the Go plugin's mount table test, and Go's parser's rules.
#[test]
fn nsdelegate_is_read_from_the_mount_table_as_go_reads_it() {
    let cases: &[(&str, Result<bool, &str>)] = &[
        ("36 35 98:0 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n", Ok(true)),
        ("36 35 98:0 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n", Ok(false)),
        ("36 35 98:0 / /other/path rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n", Ok(false)),
        ("35 24 0:31 / /run rw,nosuid,nodev,relatime - tmpfs tmpfs rw,mode=755\n36 35 98:0 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n", Ok(true)),
        ("35 24 0:31 / /run rw,nosuid,nodev,relatime - tmpfs tmpfs rw,mode=755\n", Ok(false)),
        // The hybrid layout, optional fields, CRLF, no final newline.
        ("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate\r\n", Ok(true)),
        ("41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate", Ok(true)),
        // An escaped mount point.
        ("41 31 0:38 / /sys/fs/\\143group rw - cgroup2 cgroup2 nsdelegate\n", Ok(true)),
        // Lines after the match are not read.
        ("36 35 98:0 / /sys/fs/cgroup rw - cgroup2 cgroup2 nsdelegate\ngarbage\n", Ok(true)),
        ("", Ok(false)),
        ("\n", Err("error scanning mount file: parsing '' failed: not enough fields (1)")),
        ("1 2 3:4 / /a rw x y z - q\n", Err("error scanning mount file: parsing '1 2 3:4 / /a rw x y z - q' failed: missing - separator")),
        ("1 2 34 / /a rw - ext4 /dev/x rw\n", Err("error scanning mount file: parsing '1 2 34 / /a rw - ext4 /dev/x rw' failed: unexpected major:minor pair [34]")),
        ("1 2 3:4 / /a\\1 rw - ext4 /dev/x rw\n", Err("error scanning mount file: parsing '/a\\1' failed: mount point: bad escape sequence \"\\\\1\": too short")),
        ("1 2 3:4 / /a\\19z rw - ext4 /dev/x rw\n", Err("error scanning mount file: parsing '/a\\19z' failed: mount point: bad escape sequence \"\\\\19\": not a digit")),
        ("1 2 3:4 / /a\\x12 rw - ext4 /dev/x rw\n", Err("error scanning mount file: parsing '/a\\x12' failed: mount point: bad escape sequence %!q(MISSING): not a digit\\x1")),
        ("1 2 3:4 /\\x12 /a rw - ext4 /dev/x rw\n", Err("error scanning mount file: parsing '/\\x12' failed: root: bad escape sequence %!q(MISSING): not a digit\\x1")),
    ];
    for (text, want) in cases {
        let got = ns_delegate_in(text.as_bytes());
        assert_eq!(
            got.as_ref().map(|b| *b).map_err(String::as_str),
            *want,
            "{text:?}"
        );
    }
    let long = format!("1 2 3:4 / /{} rw - ext4 /dev/x rw\n", "a".repeat(70_000));
    assert_eq!(
        ns_delegate_in(long.as_bytes()).unwrap_err(),
        "error scanning mount file: bufio.Scanner: token too long"
    );
}

#[test]
fn writable_cgroups_binary_reads_the_host_mount_file_it_is_given() {
    let dir = temp_dir("writable-cgroups");
    let socket = dir.join("nri.sock");
    let log_file = dir.join("plugin.log");
    let table = dir.join("mountinfo");
    std::fs::write(
        &table,
        "36 35 98:0 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
    )
    .unwrap();
    let runtime = Runtime::new();
    let listener = runtime.listen(&socket).unwrap();
    let mut child = std::process::Command::new(example_binary("writable-cgroups"))
        .args(["-idx", "10", "-socket-path"])
        .arg(&socket)
        .arg("-host-mount-file")
        .arg(&table)
        .arg("-log-file")
        .arg(&log_file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = listener.accept_timeout(STEP).unwrap();
    let pod = pod_with(&[(ANNOTATION, "true")]);
    let reply = p
        .create_container(&pod, &container_with(&pod, vec![cgroup_mount(&["ro"])]))
        .unwrap();
    assert_eq!(reply.adjust.mounts.len(), 2);
    p.close();
    super::network_logger_tests::wait_exit(&mut child);
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        text.contains(
            "Host cgroup mount has 'nsdelegate' option, enabling writable cgroups support"
        ),
        "{text}"
    );
    assert!(
        text.contains("Successfully adjusted mounts for writable cgroups container=test-container namespace=default pod=test-pod"),
        "{text}"
    );

    // No such file: a warning, and annotations are ignored.
    let mut child = std::process::Command::new(example_binary("writable-cgroups"))
        .args(["-idx", "10", "-socket-path"])
        .arg(&socket)
        .arg("-log-file")
        .arg(&log_file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = listener.accept_timeout(STEP).unwrap();
    let reply = p
        .create_container(&pod, &container_with(&pod, vec![cgroup_mount(&["ro"])]))
        .unwrap();
    assert!(reply.adjust.mounts.is_empty());
    p.close();
    super::network_logger_tests::wait_exit(&mut child);
    let text = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        text.contains("Failed to check for nsdelegate option on host cgroup mount, disabling writable cgroups error=\"failed to open mount file \\\"/host/proc/1/mountinfo\\\": open /host/proc/1/mountinfo: no such file or directory\""),
        "{text}"
    );
    assert!(
        text.contains("cgroup mount on host does not have 'nsdelegate' option; ignoring request to make cgroups writable"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
