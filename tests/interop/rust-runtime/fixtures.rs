//! Realistic pods and containers (the Go driver's fixtures) and the
//! adjustments the contract asks for.

use crate::*;

// ---------------------------------------------------------------------------
// Realistic pods and containers (the Go driver's fixtures).

pub(crate) fn smap(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn ns(t: &str, path: &str) -> LinuxNamespace {
    LinuxNamespace {
        type_: t.into(),
        path: path.into(),
        ..Default::default()
    }
}

pub(crate) fn mk_pod(id: &str, ann: &[(&str, &str)]) -> PodSandbox {
    let mut annotations = smap(&[
        ("io.kubernetes.cri.sandbox-id", id),
        ("kubernetes.io/config.seen", "2024-01-01T00:00:00Z"),
        ("kubernetes.io/config.source", "api"),
    ]);
    annotations.extend(smap(ann));
    let name = format!("pod-{id}");
    PodSandbox {
        id: id.into(),
        name: name.clone(),
        uid: format!("uid-{id}"),
        namespace: "default".into(),
        labels: smap(&[
            ("app", "interop"),
            ("io.kubernetes.pod.name", &name),
            ("io.kubernetes.pod.namespace", "default"),
            ("pod-template-hash", "5d8f7c9b6"),
        ]),
        annotations,
        runtime_handler: "runc".into(),
        linux: MessageField::some(LinuxPodSandbox {
            cgroup_parent: format!("/kubepods/besteffort/pod{id}"),
            cgroups_path: format!("/kubepods/besteffort/pod{id}/{id}"),
            namespaces: vec![
                ns("ipc", ""),
                ns("uts", ""),
                ns("network", &format!("/var/run/netns/cni-{id}")),
            ],
            pod_overhead: MessageField::some(LinuxResources {
                cpu: MessageField::some(LinuxCPU {
                    shares: optional(2),
                    ..Default::default()
                }),
                memory: MessageField::some(LinuxMemory {
                    limit: optional(0),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pod_resources: MessageField::some(LinuxResources {
                cpu: MessageField::some(LinuxCPU {
                    shares: optional(1024),
                    quota: optional(100000),
                    period: optional(100000),
                    ..Default::default()
                }),
                memory: MessageField::some(LinuxMemory {
                    limit: optional(512 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        pid: 4242,
        ips: vec!["10.88.0.7".into(), "fd00::7".into()],
        ..Default::default()
    }
}

pub(crate) fn mk_ctr(id: &str, pod_id: &str, ann: &[(&str, &str)]) -> Container {
    let name = format!("ctr-{id}");
    let mut annotations = smap(&[
        ("io.kubernetes.cri.container-name", &name),
        ("io.kubernetes.cri.sandbox-id", pod_id),
    ]);
    annotations.extend(smap(ann));
    Container {
        id: id.into(),
        pod_sandbox_id: pod_id.into(),
        name: name.clone(),
        state: EnumOrUnknown::new(ContainerState::CONTAINER_CREATED),
        labels: smap(&[
            ("io.kubernetes.container.name", &name),
            ("io.kubernetes.pod.name", &format!("pod-{pod_id}")),
        ]),
        annotations,
        args: vec!["/bin/sh".into(), "-c".into(), "sleep 3600".into()],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            format!("HOSTNAME=pod-{pod_id}"),
            "KEEP=1".into(),
        ],
        mounts: vec![
            mount(
                "/etc/hosts",
                "bind",
                &format!("/var/lib/pods/{pod_id}/etc-hosts"),
                &["rbind", "rprivate", "rw"],
            ),
            mount(
                "/dev/shm",
                "bind",
                &format!("/run/pods/{pod_id}/shm"),
                &["rbind", "ro"],
            ),
        ],
        hooks: MessageField::some(Hooks {
            prestart: vec![Hook {
                path: "/usr/bin/runtime-hook".into(),
                args: vec!["runtime-hook".into(), "prestart".into()],
                ..Default::default()
            }],
            ..Default::default()
        }),
        linux: MessageField::some(LinuxContainer {
            namespaces: vec![
                ns("pid", ""),
                ns("mount", ""),
                ns("network", &format!("/var/run/netns/cni-{pod_id}")),
            ],
            devices: vec![device("/dev/fuse", 10, 229, true)],
            resources: MessageField::some(LinuxResources {
                memory: MessageField::some(LinuxMemory {
                    limit: optional(256 << 20),
                    swappiness: optional(60),
                    ..Default::default()
                }),
                cpu: MessageField::some(LinuxCPU {
                    shares: optional(102),
                    quota: optional(20000),
                    period: optional(100000),
                    cpus: "0-3".into(),
                    mems: "0".into(),
                    ..Default::default()
                }),
                unified: smap(&[("memory.oom.group", "1")]),
                ..Default::default()
            }),
            oom_score_adj: optional(1000),
            cgroups_path: format!("/kubepods/besteffort/pod{pod_id}/{id}"),
            ..Default::default()
        }),
        pid: 0,
        rlimits: vec![rlimit("RLIMIT_NPROC", 4096, 4096)],
        ..Default::default()
    }
}

pub(crate) fn with_state(mut c: Container, s: ContainerState) -> Container {
    c.state = EnumOrUnknown::new(s);
    c
}

pub(crate) fn mount(dst: &str, t: &str, src: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dst.into(),
        type_: t.into(),
        source: src.into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub(crate) fn device(path: &str, major: i64, minor: i64, full: bool) -> LinuxDevice {
    let mut d = LinuxDevice {
        path: path.into(),
        type_: "c".into(),
        major,
        minor,
        ..Default::default()
    };
    if full {
        d.file_mode = optional(0o666);
        d.uid = optional(0);
        d.gid = optional(0);
    }
    d
}

pub(crate) fn rlimit(t: &str, hard: u64, soft: u64) -> POSIXRlimit {
    POSIXRlimit {
        type_: t.into(),
        hard,
        soft,
        ..Default::default()
    }
}

pub(crate) fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    }
}

pub(crate) fn removal_mount(dst: &str) -> Mount {
    Mount {
        destination: format!("-{dst}"),
        ..Default::default()
    }
}

/// The contract's full adjustment with tag `t`, on a container holding
/// `interop/remove-me`, `/mnt/remove-me`, `REMOVE_ME` and `/dev/remove-me`.
///
/// `raw`: as the plugin sends it, built with upstream's `ContainerAdjustment`
/// helpers (each removal is a `-`-marked entry appended after the addition
/// it follows in the contract). Otherwise: what the reference v0.9.0
/// adaptation hands back after collecting it (the Go driver's
/// `expectedFullAdjustment`): annotation and mount removals stay in the
/// reply, env and device removals only act on the request, and the reply
/// has its skeleton.
pub(crate) fn full_adjustment(t: &str, raw: bool) -> ContainerAdjustment {
    let mut env = vec![kv(&format!("INTEROP_{t}"), "yes")];
    let mut devices = vec![device(&format!("/dev/{t}-dev"), 1, 3, true)];
    if raw {
        env.push(kv("-REMOVE_ME", ""));
        devices.push(LinuxDevice {
            path: "-/dev/remove-me".into(),
            ..Default::default()
        });
    }
    ContainerAdjustment {
        annotations: smap(&[
            (&format!("{t}.interop/added"), "yes"),
            ("-interop/remove-me", ""),
        ]),
        mounts: vec![
            mount(
                &format!("/mnt/{t}"),
                "bind",
                &format!("/tmp/{t}"),
                &["rbind", "ro"],
            ),
            removal_mount("/mnt/remove-me"),
        ],
        env,
        hooks: MessageField::some(Hooks {
            prestart: vec![Hook {
                path: format!("/bin/{t}-prestart"),
                args: vec![format!("{t}-prestart"), "arg".into()],
                env: vec![format!("HOOK={t}")],
                timeout: optional(5),
                ..Default::default()
            }],
            poststop: vec![Hook {
                path: format!("/bin/{t}-poststop"),
                ..Default::default()
            }],
            ..Default::default()
        }),
        rlimits: vec![rlimit("RLIMIT_NOFILE", 1024, 512)],
        CDI_devices: vec![CDIDevice {
            name: format!("vendor.example/dev={t}"),
            ..Default::default()
        }],
        linux: MessageField::some(LinuxContainerAdjustment {
            devices,
            resources: MessageField::some(LinuxResources {
                memory: MessageField::some(LinuxMemory {
                    limit: optional(268435456),
                    reservation: optional(134217728),
                    swap: optional(536870912),
                    kernel: optional(1000000),
                    kernel_tcp: optional(2000000),
                    swappiness: optional(10),
                    disable_oom_killer: optional(true),
                    use_hierarchy: optional(true),
                    ..Default::default()
                }),
                cpu: MessageField::some(LinuxCPU {
                    shares: optional(512),
                    quota: optional(50000),
                    period: optional(100000),
                    realtime_runtime: optional(1000),
                    realtime_period: optional(2000),
                    cpus: "0-1".into(),
                    mems: "0".into(),
                    ..Default::default()
                }),
                hugepage_limits: vec![HugepageLimit {
                    page_size: "2MB".into(),
                    limit: 4194304,
                    ..Default::default()
                }],
                blockio_class: optional(format!("{t}-blockio")),
                rdt_class: optional(format!("{t}-rdt")),
                unified: smap(&[("memory.high", "1000000")]),
                pids: MessageField::some(LinuxPids {
                    limit: 128,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            cgroups_path: format!("/interop/{t}"),
            oom_score_adj: optional(10),
            // As the reference from v0.11 (the version with RDT
            // adjustments): a collected adjustment with a linux part
            // carries an empty RDT part.
            rdt: MessageField::from_option((!raw && nri_since(0, 11, 0)).then(LinuxRdt::new)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the reference v0.9.0 returns for a CreateContainer no plugin
/// adjusted: the skeleton (hooks, linux.resources.memory/cpu set).
pub(crate) fn empty_adjustment() -> ContainerAdjustment {
    ContainerAdjustment {
        hooks: MessageField::some(Hooks::new()),
        linux: MessageField::some(LinuxContainerAdjustment {
            resources: MessageField::some(LinuxResources {
                memory: MessageField::some(LinuxMemory::new()),
                cpu: MessageField::some(LinuxCPU::new()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The contract's `interop/adjust=v012` adjustment with tag `t`, as a
/// plugin on the emulated version's API sends it, or (`collected`) as a set
/// hands it back: with the reference's skeleton, without the memory policy
/// before v0.12 and without the sysctl, net device, scheduler and RDT parts
/// before v0.11 (the versions whose API and merge have them).
pub(crate) fn v012_adjustment(t: &str, collected: bool) -> ContainerAdjustment {
    use nri::api::{
        IOPrioClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxNetDevice, LinuxScheduler,
        LinuxSchedulerPolicy, LinuxSeccomp, LinuxSyscall, MpolFlag, MpolMode,
        OptionalRepeatedString,
    };
    let memory_policy = nri().has_per_event_rpcs();
    let mut linux = LinuxContainerAdjustment {
        io_priority: MessageField::some(LinuxIOPriority {
            class: IOPrioClass::IOPRIO_CLASS_BE.into(),
            priority: 4,
            ..Default::default()
        }),
        seccomp_policy: MessageField::some(LinuxSeccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            architectures: vec!["SCMP_ARCH_X86_64".into()],
            syscalls: vec![LinuxSyscall {
                names: vec![format!("{t}_call")],
                action: "SCMP_ACT_ERRNO".into(),
                errno_ret: optional(1u32),
                ..Default::default()
            }],
            ..Default::default()
        }),
        namespaces: vec![ns("network", &format!("/var/run/netns/{t}"))],
        sysctl: smap(&[("net.core.somaxconn", "1024")]),
        net_devices: [(
            format!("{t}-host0"),
            LinuxNetDevice {
                name: format!("{t}-eth0"),
                ..Default::default()
            },
        )]
        .into(),
        scheduler: MessageField::some(LinuxScheduler {
            policy: LinuxSchedulerPolicy::SCHED_BATCH.into(),
            nice: 5,
            ..Default::default()
        }),
        rdt: MessageField::some(LinuxRdt {
            clos_id: optional(format!("{t}-clos")),
            schemata: MessageField::some(OptionalRepeatedString {
                value: vec!["L3:0=ff".into()],
                ..Default::default()
            }),
            enable_monitoring: optional(true),
            ..Default::default()
        }),
        memory_policy: MessageField::from_option(memory_policy.then(|| LinuxMemoryPolicy {
            mode: MpolMode::MPOL_BIND.into(),
            nodes: "0".into(),
            flags: vec![MpolFlag::MPOL_F_STATIC_NODES.into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    if !nri_since(0, 11, 0) {
        linux.sysctl.clear();
        linux.net_devices.clear();
        linux.scheduler.clear();
        linux.rdt.clear();
    }
    let mut hooks = MessageField::none();
    if collected {
        let res = linux.resources.mut_or_insert_default();
        res.memory.mut_or_insert_default();
        res.cpu.mut_or_insert_default();
        hooks = MessageField::some(Hooks::new());
    }
    ContainerAdjustment {
        args: vec![format!("/bin/{t}"), "--interop".into()],
        hooks,
        linux: MessageField::some(linux),
        ..Default::default()
    }
}
