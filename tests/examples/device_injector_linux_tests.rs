//! The device-injector example's NRI v0.10-v0.12 kinds: network devices,
//! scheduling policy, sysctls and memory policy, through `nri::runtime`.

use super::*;
use nri::api::{Enum, LinuxSchedulerFlag, LinuxSchedulerPolicy, MpolFlag, MpolMode};

fn injector() -> (Runtime, Running) {
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    (runtime, p)
}

fn names<E: Enum + std::fmt::Debug>(values: &[nri::api::EnumOrUnknown<E>]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{:?}", v.enum_value_or_default()))
        .collect()
}

#[test]
fn device_injector_applies_network_devices_scheduling_sysctls_and_memory_policy() {
    let (_runtime, p) = injector();
    let pod = pod(
        "pod-1",
        "tuned",
        &[
            (
                "network-devices.noderesource.dev/container.c0",
                "- hostIf: ens2.100\n  name: netdev0\n- hostIf: ens2.101\n",
            ),
            (
                "scheduling-policy.noderesource.dev/container.c0",
                "policy: SCHED_FIFO\npriority: 10\nflags: [SCHED_FLAG_RESET_ON_FORK]\n",
            ),
            (
                "sysctl.noderesource.dev/pod",
                "net.ipv4.ip_unprivileged_port_start: 80\nkernel.shmmni: \"8192\"\n",
            ),
            (
                "memory-policy.nri.io/container.c0",
                "mode: MPOL_INTERLEAVE\nnodes: 0-1\nflags: [MPOL_F_STATIC_NODES]\n",
            ),
        ],
    );
    let reply = p
        .create_container(&pod, &container("ctr-0", &pod, "c0"))
        .unwrap();
    let linux = &reply.adjust.linux;

    let mut devices: Vec<(&str, &str)> = linux
        .net_devices
        .iter()
        .map(|(host, d)| (host.as_str(), d.name.as_str()))
        .collect();
    devices.sort();
    assert_eq!(
        devices,
        [("ens2.100", "netdev0"), ("ens2.101", "")],
        "an absent name keeps the host's"
    );

    let sched = linux.scheduler.as_ref().expect("scheduling policy set");
    assert_eq!(
        sched.policy.enum_value(),
        Ok(LinuxSchedulerPolicy::SCHED_FIFO)
    );
    assert_eq!(sched.priority, 10);
    assert_eq!(names(&sched.flags), ["SCHED_FLAG_RESET_ON_FORK"]);

    assert_eq!(linux.sysctl.len(), 2);
    assert_eq!(
        linux.sysctl["net.ipv4.ip_unprivileged_port_start"], "80",
        "a YAML number becomes its text, as in Go"
    );
    assert_eq!(linux.sysctl["kernel.shmmni"], "8192");

    let mpol = linux.memory_policy.as_ref().expect("memory policy set");
    assert_eq!(mpol.mode.enum_value(), Ok(MpolMode::MPOL_INTERLEAVE));
    assert_eq!(mpol.nodes, "0-1");
    assert_eq!(names(&mpol.flags), ["MPOL_F_STATIC_NODES"]);

    // Another container of the pod: only the pod-wide sysctls.
    let reply = p
        .create_container(&pod, &container("ctr-1", &pod, "c1"))
        .unwrap();
    let linux = &reply.adjust.linux;
    assert!(linux.net_devices.is_empty());
    assert!(linux.scheduler.is_none() && linux.memory_policy.is_none());
    assert_eq!(linux.sysctl.len(), 2);
}

/// The Linux part of the adjustment for container `c0` of a pod annotated
/// with `annotations`, or the error.
fn linux_for(annotations: &[(&str, &str)]) -> Result<nri::api::LinuxContainerAdjustment, String> {
    let pod = pod("pod-1", "p", annotations);
    let adjust = device_injector::adjustment_for(&pod, &container("c", &pod, "c0"))?;
    Ok(adjust.linux.into_option().unwrap_or_default())
}

#[test]
fn device_injector_reads_the_newer_kinds_as_go_does() {
    // Of two devices of one host interface, the later wins (Go's map).
    let linux = linux_for(&[(
        "network-devices.noderesource.dev",
        "- {hostIf: eth1, name: a}\n- {HOSTIF: eth1, Name: b}\n",
    )])
    .unwrap();
    assert_eq!(linux.net_devices.len(), 1);
    assert_eq!(linux.net_devices["eth1"].name, "b");

    // An empty policy is SCHED_NONE, which runtimes leave unapplied.
    let linux = linux_for(&[("scheduling-policy.noderesource.dev/pod", "{nice: -5}")]).unwrap();
    let sched = linux.scheduler.as_ref().unwrap();
    assert_eq!(
        sched.policy.enum_value(),
        Ok(LinuxSchedulerPolicy::SCHED_NONE)
    );
    assert_eq!(sched.nice, -5);

    // SCHED_DEADLINE's parameters, numbers in YAML 1.1 forms.
    let linux = linux_for(&[(
        "scheduling-policy.noderesource.dev/pod",
        "policy: SCHED_DEADLINE\nruntime: 1_000_000\ndeadline: 0x1E8480\nperiod: 2e6\nflags: [SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN]\n",
    )])
    .unwrap();
    let sched = linux.scheduler.as_ref().unwrap();
    assert_eq!(
        (sched.runtime, sched.deadline, sched.period),
        (1_000_000, 2_000_000, 2_000_000)
    );
    assert_eq!(
        names(&sched.flags),
        [
            format!("{:?}", LinuxSchedulerFlag::SCHED_FLAG_RECLAIM),
            format!("{:?}", LinuxSchedulerFlag::SCHED_FLAG_DL_OVERRUN)
        ]
    );

    // An empty mode is MPOL_DEFAULT; nodes written as a number are its text.
    let linux = linux_for(&[("memory-policy.noderesource.dev", "nodes: 0")]).unwrap();
    let mpol = linux.memory_policy.as_ref().unwrap();
    assert_eq!(mpol.mode.enum_value(), Ok(MpolMode::MPOL_DEFAULT));
    assert_eq!(mpol.nodes, "0");
    let linux = linux_for(&[(
        "memory-policy.noderesource.dev",
        "mode: MPOL_BIND\nnodes: 1,2\nflags: [MPOL_F_RELATIVE_NODES]\n",
    )])
    .unwrap();
    let mpol = linux.memory_policy.as_ref().unwrap();
    assert_eq!(mpol.nodes, "1,2");
    assert_eq!(
        mpol.flags[0].enum_value(),
        Ok(MpolFlag::MPOL_F_RELATIVE_NODES)
    );

    // Sysctls: exact names, the last duplicate wins, booleans as text.
    let linux = linux_for(&[(
        "sysctl.noderesource.dev",
        "net.ipv4.ip_forward: yes\nkernel.shmmni: 1\nkernel.shmmni: 2\nKernel.Shmmni: 3\n",
    )])
    .unwrap();
    assert_eq!(linux.sysctl["net.ipv4.ip_forward"], "true");
    assert_eq!(linux.sysctl["kernel.shmmni"], "2");
    assert_eq!(linux.sysctl["Kernel.Shmmni"], "3");

    // An empty annotation value injects nothing.
    let linux = linux_for(&[
        ("network-devices.noderesource.dev", ""),
        ("scheduling-policy.noderesource.dev", ""),
        ("sysctl.noderesource.dev", ""),
        ("memory-policy.noderesource.dev", ""),
    ])
    .unwrap();
    assert!(linux.net_devices.is_empty() && linux.sysctl.is_empty());
    assert!(linux.scheduler.is_none() && linux.memory_policy.is_none());
}

#[test]
fn device_injector_refuses_what_go_would_pass_on_wrongly_naming_key_and_rule() {
    let (_runtime, p) = injector();
    for (key, value, rule) in [
        (
            "network-devices.noderesource.dev/pod",
            "- name: netdev0\n",
            "network device 0 has no hostIf",
        ),
        (
            "scheduling-policy.noderesource.dev/pod",
            "policy: SCHED_FOO\n",
            "unknown name \"SCHED_FOO\" for the scheduling policy",
        ),
        (
            "scheduling-policy.noderesource.dev/pod",
            "policy: SCHED_RR\nflags: [SCHED_FLAG_FOO]\n",
            "unknown name \"SCHED_FLAG_FOO\" for a scheduling flag",
        ),
        (
            "sysctl.noderesource.dev/pod",
            "net.ipv4.ip_unprivileged_port_start: ~\n",
            "empty sysctl value for \"net.ipv4.ip_unprivileged_port_start\"",
        ),
        (
            "sysctl.noderesource.dev/pod",
            "'': 1\n",
            "empty sysctl name",
        ),
        (
            "memory-policy.noderesource.dev/pod",
            "mode: mpol_bind\n",
            "unknown name \"mpol_bind\" for the memory policy mode",
        ),
        (
            "memory-policy.noderesource.dev/pod",
            "mode: MPOL_BIND\nflags: ['']\n",
            "unknown name \"\" for a memory policy flag",
        ),
    ] {
        let pod = pod("pod-1", "p", &[(key, value)]);
        let err = p
            .create_container(&pod, &container("ctr-0", &pod, "c0"))
            .expect_err(value);
        let message = status_message(err);
        assert!(message.contains(key), "{message}");
        assert!(message.contains(rule), "{message}");
    }
    // The wrong shapes Go refuses are refused too.
    for (key, value) in [
        ("network-devices.noderesource.dev/pod", "hostIf: eth1\n"),
        (
            "scheduling-policy.noderesource.dev/pod",
            "policy: SCHED_RR\nflags: SCHED_FLAG_RECLAIM\n",
        ),
        ("scheduling-policy.noderesource.dev/pod", "runtime: -1\n"),
        ("sysctl.noderesource.dev/pod", "a: {b: 1}\n"),
        ("memory-policy.noderesource.dev/pod", "- mode: MPOL_BIND\n"),
    ] {
        let pod = pod("pod-1", "p", &[(key, value)]);
        let err = p
            .create_container(&pod, &container("ctr-0", &pod, "c0"))
            .expect_err(value);
        assert!(status_message(err).contains(key), "{value}");
    }
    assert!(p.is_connected(), "refusals are not fatal to the plugin");
}

/// A runtime emulating `emulation`, named and versioned as `name` `version`.
fn runtime_as(emulation: nri::runtime::Emulation, name: &str, version: &str) -> Runtime {
    Runtime::builder()
        .emulate(emulation)
        .name(name)
        .version(version)
        .build()
}

#[test]
fn device_injector_refuses_kinds_the_runtime_cannot_apply() {
    use nri::runtime::Emulation;
    let annotated = |kind: &str, value: &str| {
        let pod = pod("pod-1", "p", &[(kind, value)]);
        let ctr = container("ctr-0", &pod, "c0");
        (pod, ctr)
    };
    let sysctl = annotated("sysctl.noderesource.dev/pod", "kernel.shmmni: 2048\n");
    let mpol = annotated("memory-policy.noderesource.dev/pod", "mode: MPOL_LOCAL\n");
    let netdev = annotated("network-devices.noderesource.dev/pod", "- hostIf: eth1\n");
    let sched = annotated(
        "scheduling-policy.noderesource.dev/pod",
        "policy: SCHED_BATCH\n",
    );

    // containerd 2.2.9 embeds NRI v0.11.0 (inferred from its version): it
    // would panic merging a sysctl and drop a memory policy.
    let runtime = runtime_as(Emulation::V0_11_0, "containerd", "v2.2.9");
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    for (pod, ctr) in [&sysctl, &mpol] {
        let message = status_message(p.create_container(pod, ctr).unwrap_err());
        assert!(
            message.contains("the runtime's NRI v0.11.0 cannot apply"),
            "{message}"
        );
        assert!(message.contains("NRI v0.12.0 or newer"), "{message}");
    }
    let reply = p.create_container(&netdev.0, &netdev.1).unwrap();
    assert_eq!(reply.adjust.linux.net_devices.len(), 1);
    let reply = p.create_container(&sched.0, &sched.1).unwrap();
    assert!(reply.adjust.linux.scheduler.is_some());
    drop(p);

    // containerd 2.2.0 embeds NRI v0.10.0: none of the four.
    let runtime = runtime_as(Emulation::V0_10_0, "containerd", "v2.2.0");
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    for (pod, ctr) in [&sysctl, &mpol, &netdev, &sched] {
        let message = status_message(p.create_container(pod, ctr).unwrap_err());
        assert!(
            message.contains("the runtime's NRI v0.10.0 cannot apply"),
            "{message}"
        );
    }
    drop(p);

    // A runtime whose NRI version is unknown gets what it is asked for.
    let runtime = runtime_as(Emulation::V0_11_0, "my-runtime", "1.0");
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    let reply = p.create_container(&sysctl.0, &sysctl.1).unwrap();
    assert_eq!(reply.adjust.linux.sysctl["kernel.shmmni"], "2048");

    // NRI v0.12 runtimes send their version: every kind applies.
    let runtime = Runtime::new();
    let p = connect(
        &runtime,
        device_injector::DeviceInjector,
        "device-injector",
        "10",
    );
    for (pod, ctr) in [&sysctl, &mpol, &netdev, &sched] {
        p.create_container(pod, ctr).unwrap();
    }
}
