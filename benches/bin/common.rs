//! Shared by the bench plugin and the bench driver: the realistic payload
//! (byte-for-byte the messages of benches/go/payload) and the plugin logic.

#![allow(dead_code)]

use nri::api::{
    optional, Container, ContainerAdjustment, ContainerState, LinuxCPU, LinuxContainer,
    LinuxMemory, LinuxPodSandbox, LinuxResources, Mount, PodSandbox,
};
use protobuf::{EnumOrUnknown, MessageField};

/// Pod `i`: 10 labels, 10 annotations, Linux cgroup paths.
pub fn pod(i: usize) -> PodSandbox {
    let uid = format!("{:032x}", i + 7_000_000);
    let mut p = PodSandbox::new();
    p.id = format!("{:064x}", i + 1_000_000);
    p.name = format!("bench-pod-{i}");
    p.uid = uid.clone();
    p.namespace = "default".into();
    p.runtime_handler = "runc".into();
    let mut linux = LinuxPodSandbox::new();
    linux.cgroup_parent = format!("/kubepods/burstable/pod{uid}");
    linux.cgroups_path = format!("/kubepods/burstable/pod{uid}");
    p.linux = MessageField::some(linux);
    for k in 0..10 {
        p.labels.insert(
            format!("app.kubernetes.io/label-{k}"),
            format!("label-value-{k}"),
        );
        p.annotations.insert(
            format!("example.com/annotation-{k}"),
            format!("annotation-value-{k}-abcdefghijklmnopqrstuvwxyz"),
        );
    }
    p
}

/// Container `i` of `pod`: 20 env, 6 mounts, Linux resources.
pub fn container(i: usize, pod: &PodSandbox) -> Container {
    let id = format!("{:064x}", i + 5_000_000);
    let mut c = Container::new();
    c.pod_sandbox_id = pod.id.clone();
    c.name = format!("bench-ctr-{i}");
    c.state = EnumOrUnknown::new(ContainerState::CONTAINER_CREATED);
    c.labels
        .insert("io.kubernetes.container.name".into(), c.name.clone());
    c.labels
        .insert("io.kubernetes.pod.namespace".into(), "default".into());
    c.annotations
        .insert("io.kubernetes.container.hash".into(), "8f9d3c2a".into());
    c.annotations
        .insert("io.kubernetes.container.restartCount".into(), "0".into());
    c.args = vec!["/bin/sh".into(), "-c".into(), "sleep infinity".into()];
    let mut memory = LinuxMemory::new();
    memory.limit = optional(268_435_456);
    let mut cpu = LinuxCPU::new();
    cpu.shares = optional(1024);
    cpu.quota = optional(50_000);
    cpu.period = optional(100_000);
    cpu.cpus = "0-1".into();
    cpu.mems = "0".into();
    let mut resources = LinuxResources::new();
    resources.memory = MessageField::some(memory);
    resources.cpu = MessageField::some(cpu);
    let mut linux = LinuxContainer::new();
    linux.resources = MessageField::some(resources);
    linux.cgroups_path = format!("/kubepods/burstable/pod{}/{id}", pod.uid);
    c.linux = MessageField::some(linux);
    for k in 0..20 {
        c.env
            .push(format!("ENV_VAR_{k}=value-{k}-abcdefghijklmnop"));
    }
    for k in 0..6 {
        let mut m = Mount::new();
        m.destination = format!("/mnt/vol-{k}");
        m.type_ = "bind".into();
        m.source = format!("/var/lib/kubelet/pods/{}/volumes/vol-{k}", pod.uid);
        m.options = vec!["rbind".into(), "rprivate".into(), "rw".into()];
        c.mounts.push(m);
    }
    c.id = id;
    c
}

/// `n` containers, one pod per 10 containers.
pub fn state(n: usize) -> (Vec<PodSandbox>, Vec<Container>) {
    let mut pods: Vec<PodSandbox> = Vec::with_capacity(n / 10 + 1);
    let mut ctrs = Vec::with_capacity(n);
    for i in 0..n {
        if i % 10 == 0 {
            pods.push(pod(i / 10));
        }
        ctrs.push(container(i, pods.last().expect("a pod")));
    }
    (pods, ctrs)
}

/// The bench plugin's CreateContainer logic: 2 env, 1 mount, CPU shares.
pub fn adjust() -> ContainerAdjustment {
    let mut adj = ContainerAdjustment::new();
    adj.add_env("NRI_BENCH_A", "adjusted-a");
    adj.add_env("NRI_BENCH_B", "adjusted-b");
    let mut m = Mount::new();
    m.destination = "/run/nri-bench".into();
    m.type_ = "bind".into();
    m.source = "/var/lib/nri-bench".into();
    m.options = vec!["rbind".into(), "ro".into()];
    adj.add_mount(m);
    adj.set_linux_cpu_shares(512);
    adj
}
