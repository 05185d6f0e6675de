//! The ulimit-adjuster example's tests.

use super::*;

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
