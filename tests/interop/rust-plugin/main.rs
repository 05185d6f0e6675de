//! The interop plugin contract (see `tests/interop/README.md`), implemented
//! with this crate. The interop driver runs it under the Go reference
//! runtime, next to the Go implementation of the same contract, and expects
//! identical results.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nri::api::{
    optional, CDIDevice, Container, ContainerAdjustment, ContainerUpdate, EventMask, FailurePolicy,
    Hook, Hooks, IOPrioClass, LinuxDevice, LinuxIOPriority, LinuxNamespace, LinuxNetDevice,
    LinuxResources, LinuxScheduler, LinuxSchedulerPolicy, LinuxSeccomp, LinuxSyscall, Mount,
    MpolFlag, MpolMode, PodSandbox, ValidateContainerAdjustmentRequest,
};
use nri::stub::{Context, DeadlineGuard, HandlerResult, Plugin, Stub, SyncState};

struct Config {
    log: Option<File>,
    prefix: String,
    tag: String,
}

struct Contract {
    name: Mutex<String>,
    file_config: String,
    cfg: Mutex<Config>,
}

fn parse_config(
    text: &str,
    default_tag: &str,
) -> Result<(Option<EventMask>, Option<String>, String, String), String> {
    let (mut events, mut log, mut prefix, mut tag) =
        (None, None, String::new(), default_tag.to_string());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("config line {}: missing '=' in {line:?}", n + 1));
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "events" => {
                events = Some(
                    v.parse::<EventMask>()
                        .map_err(|e| format!("config line {}: {e}", n + 1))?,
                )
            }
            "log" => log = Some(v.to_string()),
            "log-prefix" => prefix = v.to_string(),
            "tag" => tag = v.to_string(),
            _ => {}
        }
    }
    Ok((events, log, prefix, tag))
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn lookup<'a>(pod: &'a PodSandbox, ctr: Option<&'a Container>, key: &str) -> Option<&'a str> {
    ctr.and_then(|c| c.annotations.get(key))
        .or_else(|| pod.annotations.get(key))
        .map(|s| s.as_str())
}

fn common(pod: &PodSandbox, ctr: Option<&Container>) -> HandlerResult<()> {
    if let Some(ms) = lookup(pod, ctr, "interop/sleep-ms").and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if lookup(pod, ctr, "interop/fail") == Some("yes") {
        return Err("interop: failure requested".into());
    }
    Ok(())
}

fn requested_updates(pod: &PodSandbox, ctr: &Container) -> Vec<ContainerUpdate> {
    match lookup(pod, Some(ctr), "interop/update") {
        Some(id) if !id.is_empty() => {
            let mut u = ContainerUpdate::for_container(id);
            u.set_linux_cpu_shares(256);
            if lookup(pod, Some(ctr), "interop/ignore-failure") == Some("yes") {
                u.set_ignore_failure();
            }
            vec![u]
        }
        _ => Vec::new(),
    }
}

impl Contract {
    fn logf(&self, line: String) {
        let mut cfg = self.cfg.lock().unwrap_or_else(|e| e.into_inner());
        let line = if cfg.prefix.is_empty() {
            format!("{line}\n")
        } else {
            format!("{} {line}\n", cfg.prefix)
        };
        if let Some(f) = cfg.log.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn tag(&self) -> String {
        self.cfg
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tag
            .clone()
    }

    fn pod_event(&self, name: &str, pod: &PodSandbox) -> HandlerResult<()> {
        self.logf(format!("{name} pod={} ctr=-", or_dash(&pod.id)));
        common(pod, None)
    }

    fn ctr_event(&self, name: &str, pod: &PodSandbox, ctr: &Container) -> HandlerResult<()> {
        self.logf(format!(
            "{name} pod={} ctr={}",
            or_dash(&pod.id),
            or_dash(&ctr.id)
        ));
        common(pod, Some(ctr))
    }
}

fn full_adjustment(a: &mut ContainerAdjustment, t: &str) {
    a.add_annotation(format!("{t}.interop/added"), "yes");
    a.remove_annotation("interop/remove-me");
    a.add_mount(Mount {
        destination: format!("/mnt/{t}"),
        type_: "bind".into(),
        source: format!("/tmp/{t}"),
        options: vec!["rbind".into(), "ro".into()],
        ..Default::default()
    });
    a.remove_mount("/mnt/remove-me");
    a.add_env(format!("INTEROP_{t}"), "yes");
    a.remove_env("REMOVE_ME");
    a.add_hooks(Hooks {
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
    });
    a.add_rlimit("RLIMIT_NOFILE", 1024, 512);
    a.add_device(LinuxDevice {
        path: format!("/dev/{t}-dev"),
        type_: "c".into(),
        major: 1,
        minor: 3,
        file_mode: optional(0o666),
        uid: optional(0),
        gid: optional(0),
        ..Default::default()
    });
    a.remove_device("/dev/remove-me");
    a.add_cdi_device(CDIDevice {
        name: format!("vendor.example/dev={t}"),
        ..Default::default()
    });
    a.set_linux_memory_limit(268435456)
        .set_linux_memory_reservation(134217728)
        .set_linux_memory_swap(536870912)
        .set_linux_memory_kernel(1000000)
        .set_linux_memory_kernel_tcp(2000000)
        .set_linux_memory_swappiness(10)
        .set_linux_memory_disable_oom_killer()
        .set_linux_memory_use_hierarchy()
        .set_linux_cpu_shares(512)
        .set_linux_cpu_quota(50000)
        .set_linux_cpu_period(100000)
        .set_linux_cpu_realtime_runtime(1000)
        .set_linux_cpu_realtime_period(2000)
        .set_linux_cpuset_cpus("0-1")
        .set_linux_cpuset_mems("0")
        .add_linux_hugepage_limit("2MB", 4194304)
        .set_linux_blockio_class(format!("{t}-blockio"))
        .set_linux_rdt_class(format!("{t}-rdt"))
        .add_linux_unified("memory.high", "1000000")
        .set_linux_pid_limits(128)
        .set_linux_cgroups_path(format!("/interop/{t}"))
        .set_linux_oom_score_adj(Some(10));
}

/// `interop/adjust=v012`: every adjustment added since NRI v0.9.
fn v012_adjustment(a: &mut ContainerAdjustment, t: &str) {
    let mut seccomp = LinuxSeccomp::with_default_action("SCMP_ACT_ALLOW");
    seccomp.architectures.push("SCMP_ARCH_X86_64".into());
    seccomp.syscalls.push(LinuxSyscall {
        names: vec![format!("{t}_call")],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: optional(1u32),
        ..Default::default()
    });
    let mut sched = LinuxScheduler::with_policy(LinuxSchedulerPolicy::SCHED_BATCH);
    sched.nice = 5;
    a.set_args([format!("/bin/{t}"), "--interop".to_string()])
        .set_linux_io_priority(LinuxIOPriority::with_class(IOPrioClass::IOPRIO_CLASS_BE, 4))
        .set_linux_seccomp_policy(seccomp)
        .add_or_replace_namespace(LinuxNamespace {
            type_: "network".into(),
            path: format!("/var/run/netns/{t}"),
            ..Default::default()
        })
        .set_linux_sysctl("net.core.somaxconn", "1024")
        .add_linux_net_device(
            format!("{t}-host0"),
            LinuxNetDevice::named(format!("{t}-eth0")),
        )
        .set_linux_scheduler(sched)
        .set_linux_rdt_clos_id(format!("{t}-clos"))
        .set_linux_rdt_schemata(["L3:0=ff"])
        .set_linux_rdt_enable_monitoring(true)
        .set_linux_memory_policy(MpolMode::MPOL_BIND, "0", &[MpolFlag::MPOL_F_STATIC_NODES]);
}

/// The Configure line's NRI version: the runtime's, as the stub knows it.
fn nri_version(ctx: &Context<'_>) -> String {
    ctx.stub()
        .runtime_nri_version()
        .unwrap_or_else(|| "-".to_string())
}

struct Shared(Arc<Contract>);

impl Plugin for Shared {
    fn events(&self) -> EventMask {
        EventMask::ALL
    }

    fn configure(
        &self,
        ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        let text = if config.trim().is_empty() {
            &self.0.file_config
        } else {
            config
        };
        let default_tag = self
            .0
            .name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (events, log, prefix, tag) = parse_config(text, &default_tag)?;
        let log = match log {
            Some(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| format!("open log {p:?}: {e}"))?,
            ),
            None => None,
        };
        *self.0.cfg.lock().unwrap_or_else(|e| e.into_inner()) = Config { log, prefix, tag };
        self.0.logf(format!(
            "Configure pod=- ctr=- runtime={runtime}/{version} nri={}",
            nri_version(ctx)
        ));
        Ok(events)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let (pods, containers) = state.into_decoded()?;
        self.0.logf(format!(
            "Synchronize pods={} containers={}",
            pods.len(),
            containers.len()
        ));
        Ok(containers
            .iter()
            .filter(|c| c.annotations.get("interop/sync-update").map(|s| s.as_str()) == Some("yes"))
            .map(|c| {
                let mut u = ContainerUpdate::for_container(c.id.as_str());
                u.set_linux_cpu_shares(384);
                u
            })
            .collect())
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.0.pod_event("RunPodSandbox", pod)
    }
    fn stop_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.0.pod_event("StopPodSandbox", pod)
    }
    fn remove_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.0.pod_event("RemovePodSandbox", pod)
    }
    fn update_pod_sandbox(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        _overhead: &LinuxResources,
        _resources: &LinuxResources,
    ) -> HandlerResult<()> {
        self.0.pod_event("UpdatePodSandbox", pod)
    }
    fn post_update_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.0.pod_event("PostUpdatePodSandbox", pod)
    }

    fn validate_container_adjustment(
        &self,
        _ctx: &Context<'_>,
        req: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        let pod = req.pod.get_or_default();
        let ctr = req.container.get_or_default();
        let plugins: Vec<String> = req.plugins.iter().map(|p| p.full_name()).collect();
        let plugins = if plugins.is_empty() {
            "-".to_string()
        } else {
            plugins.join(",")
        };
        self.0.logf(format!(
            "ValidateContainerAdjustment pod={} ctr={} plugins={plugins}",
            or_dash(&pod.id),
            or_dash(&ctr.id)
        ));
        if let Some(ms) = lookup(pod, Some(ctr), "interop/sleep-ms").and_then(|v| v.parse().ok()) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if lookup(pod, Some(ctr), "interop/fail") == Some("yes") {
            // A failing validator answers with an error status, not a
            // rejection: the stub turns errors into rejections, so fail the
            // request with a status of its own.
            return Err(Box::new(nri::ttrpc::Status::new(
                nri::ttrpc::Code::Unknown,
                "interop: failure requested",
            )));
        }
        let t = self.0.tag();
        match lookup(pod, Some(ctr), "interop/validate") {
            Some("reject") => Err(format!("interop: {t} rejects").into()),
            Some("reject-long") => {
                let mut reason = format!("interop: {t} rejects ");
                reason.push_str(&"x".repeat(16384 - reason.len()));
                Err(reason.into())
            }
            _ => Ok(()),
        }
    }

    fn create_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        ctr: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        self.0.logf(format!(
            "CreateContainer pod={} ctr={}",
            or_dash(&pod.id),
            or_dash(&ctr.id)
        ));
        common(pod, Some(ctr))?;
        let t = self.0.tag();
        let mut adjust = ContainerAdjustment::new();
        match lookup(pod, Some(ctr), "interop/adjust") {
            Some("full") => full_adjustment(&mut adjust, &t),
            Some("env") => {
                adjust.add_annotation(format!("{t}.interop/added"), "yes");
                adjust.add_env(format!("INTEROP_{t}"), "yes");
            }
            Some("v012") => v012_adjustment(&mut adjust, &t),
            _ => {}
        }
        if let Some(n) =
            lookup(pod, Some(ctr), "interop/reply-bytes").and_then(|v| v.parse::<usize>().ok())
        {
            adjust.add_annotation(format!("{t}.interop/blob"), "x".repeat(n));
        }
        if let Some(target) =
            lookup(pod, Some(ctr), "interop/unsolicited").filter(|s| !s.is_empty())
        {
            let target = target.to_string();
            let log = self.0.clone();
            ctx.after_reply(move |stub| {
                let mut u = ContainerUpdate::for_container(target.as_str());
                u.set_linux_cpu_shares(128);
                let (failed, err) = match stub.update_containers(vec![u]) {
                    Ok(f) => (f.len(), "-".to_string()),
                    Err(e) => (0, e.to_string()),
                };
                log.logf(format!(
                    "Unsolicited ctr={target} failed={failed} err={err}"
                ));
            });
        }
        Ok((adjust, requested_updates(pod, ctr)))
    }

    fn post_create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.0.ctr_event("PostCreateContainer", pod, c)
    }
    fn start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.0.ctr_event("StartContainer", pod, c)
    }
    fn post_start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.0.ctr_event("PostStartContainer", pod, c)
    }
    fn update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
        _r: &LinuxResources,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.0.ctr_event("UpdateContainer", pod, c)?;
        Ok(requested_updates(pod, c))
    }
    fn post_update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.0.ctr_event("PostUpdateContainer", pod, c)
    }
    fn stop_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.0.ctr_event("StopContainer", pod, c)?;
        Ok(requested_updates(pod, c))
    }
    fn remove_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        self.0.ctr_event("RemoveContainer", pod, c)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut name, mut idx, mut socket, mut config, mut guard) = (None, None, None, None, false);
    let (mut policy, mut require) = (None, None);
    while let Some(a) = args.next() {
        match a.trim_start_matches('-') {
            "name" => name = args.next(),
            "idx" => idx = args.next(),
            "socket" => socket = args.next(),
            "config" => config = args.next(),
            "deadline-guard" => guard = true,
            "failure-policy" => policy = Some(parse_policy(args.next().as_deref())),
            "require" => {
                let text = args.next().unwrap_or_default();
                require = Some(text.parse::<EventMask>().unwrap_or_else(|e| {
                    eprintln!("rust-plugin: -require {text:?}: {e}");
                    std::process::exit(2)
                }));
            }
            other => {
                eprintln!("rust-plugin: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let file_config = match config {
        Some(p) => std::fs::read_to_string(&p).unwrap_or_else(|e| {
            eprintln!("rust-plugin: {p}: {e}");
            std::process::exit(1)
        }),
        None => String::new(),
    };
    let contract = Arc::new(Contract {
        name: Mutex::new(String::new()),
        file_config,
        cfg: Mutex::new(Config {
            log: None,
            prefix: String::new(),
            tag: String::new(),
        }),
    });
    let mut b = Stub::builder(Shared(contract.clone()));
    if let Some(n) = name {
        b = b.plugin_name(n);
    }
    if let Some(i) = idx {
        b = b.plugin_index(i);
    }
    if let Some(s) = socket {
        b = b.socket_path(s);
    }
    if guard {
        b = b.deadline_guard(DeadlineGuard::default());
    }
    if let Some(Some(policy)) = policy {
        b = b.failure_policy(policy);
    }
    if let Some(events) = require {
        b = b.require_events(events);
    }
    let stub = match b.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rust-plugin: failed to create stub: {e}");
            std::process::exit(1);
        }
    };
    *contract.name.lock().unwrap_or_else(|e| e.into_inner()) = stub.plugin_name().to_string();
    match stub.run() {
        Ok(()) | Err(nri::Error::ConnectionClosed(_)) => {}
        Err(e) => {
            eprintln!("rust-plugin: {e}");
            std::process::exit(e.exit_code().into());
        }
    }
}

/// `-failure-policy`: `None` for `none`, exits with status 2 on a bad value.
fn parse_policy(value: Option<&str>) -> Option<FailurePolicy> {
    match value.unwrap_or_default() {
        "none" => None,
        "fail-request" => Some(FailurePolicy::from_flags(true, false)),
        "keep-connected" => Some(FailurePolicy::from_flags(false, true)),
        "fail-request,keep-connected" | "keep-connected,fail-request" => {
            Some(FailurePolicy::from_flags(true, true))
        }
        other => {
            eprintln!(
                "rust-plugin: -failure-policy {other:?} is none of none, fail-request, \
                 keep-connected, fail-request,keep-connected"
            );
            std::process::exit(2)
        }
    }
}
