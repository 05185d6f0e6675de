//! The other direction of the interop harness: this crate's runtime side
//! (`nri::runtime`) drives a contract plugin (see `tests/interop/README.md`)
//! built on the reference Go stub (`github.com/containerd/nri` v0.9.0
//! `pkg/stub`), or any other implementation of the contract, through the
//! scenarios of the Go driver that make sense from the runtime's side.
//!
//! ```text
//! interop-runtime -plugin PATH [-plugin2 PATH] [-run REGEX] [-v]
//! ```
//!
//! Prints `PASS <name> (<ms>ms)` or `FAIL <name>: <reason>` per scenario,
//! then `N passed, M failed`; exits 1 when anything failed, or when nothing
//! ran without a `-run` filter (a filter matching none of these scenarios,
//! e.g. one meant for the Go driver, is not an error).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nri::api::{
    optional, CDIDevice, Container, ContainerAdjustment, ContainerState, ContainerUpdate,
    CreateContainerResponse, Event, EventMask, Hook, Hooks, HugepageLimit, KeyValue, LinuxCPU,
    LinuxContainer, LinuxContainerAdjustment, LinuxContainerUpdate, LinuxDevice, LinuxMemory,
    LinuxNamespace, LinuxPids, LinuxPodSandbox, LinuxResources, Mount, POSIXRlimit, PodSandbox,
    StopContainerResponse, UpdateContainerResponse,
};
use nri::runtime::{
    PluginHandle, PluginListener, PluginOutput, PluginSet, Runtime, RuntimeBuilder,
};
use nri::ttrpc::Code;
use protobuf::reflect::{ReflectFieldRef, ReflectValueRef, RuntimeFieldType, RuntimeType};
use protobuf::{EnumOrUnknown, Message, MessageDyn, MessageField};

const RT_NAME: &str = "interop-rust-runtime";
const RT_VERSION: &str = "v0.1.0";
const FAIL_MSG: &str = "interop: failure requested";
/// Longest a scenario may take before it is reported as hung.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(25);
/// Scenarios not started by then are reported as failed, and a scenario
/// still running then is cut (whole run < 60 s).
const RUN_BUDGET: Duration = Duration::from_secs(55);
/// How long an external plugin has to dial us.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

type R<T = ()> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

// ---------------------------------------------------------------------------
// Log capture: everything the crate logs through `log` lands here, so that a
// scenario can look for what the runtime said (chunked Synchronize, plugins
// dropped) and fail on unexpected warnings.

struct Recorder {
    lines: Mutex<Vec<(log::Level, String)>>,
    verbose: AtomicBool,
}

static RECORDER: Recorder = Recorder {
    lines: Mutex::new(Vec::new()),
    verbose: AtomicBool::new(false),
};

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = format!("{}", record.args());
        if self.verbose.load(Ordering::Relaxed) {
            eprintln!("    | {:<5} {}", record.level(), msg);
        }
        lock(&self.lines).push((record.level(), msg));
    }

    fn flush(&self) {}
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn log_mark() -> usize {
    lock(&RECORDER.lines).len()
}

fn log_since(mark: usize) -> Vec<(log::Level, String)> {
    let lines = lock(&RECORDER.lines);
    lines[mark.min(lines.len())..].to_vec()
}

/// Runtime log lines that reveal a plugin being dropped.
const DROP_PATTERNS: &[&str] = &[
    "dropping plugin",
    "dropped while relaying",
    "removing closed plugin",
    "did not register",
    "failed to configure",
    "failed to synchronize",
    "refusing registration",
];

// ---------------------------------------------------------------------------
// Processes, scenario context.

struct Proc {
    child: Child,
    name: String,
    out: PathBuf,
}

impl Proc {
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Ctx {
    dir: PathBuf,
    plugin: PathBuf,
    plugin2: Option<PathBuf>,
    verbose: bool,
    procs: Vec<Proc>,
    allow_drops: bool,
    allowed: Vec<&'static str>,
}

impl Ctx {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn builder(&self) -> RuntimeBuilder {
        Runtime::builder()
            .name(RT_NAME)
            .version(RT_VERSION)
            .plugin_output(PluginOutput::File(self.path("launched.out")))
    }

    fn expect_drops(&mut self) {
        self.allow_drops = true;
    }

    /// Starts an external plugin dialing `listener` and accepts it. Returns
    /// the handle and the process slot.
    fn external(
        &mut self,
        listener: &PluginListener,
        bin: &Path,
        name: &str,
        idx: &str,
        config: &str,
    ) -> R<(PluginHandle, usize)> {
        let slot = self.spawn_external(listener, bin, name, idx, config)?;
        match listener.accept_timeout(ACCEPT_TIMEOUT) {
            Ok(h) => Ok((h, slot)),
            Err(e) => Err(format!(
                "external plugin {idx}-{name}: {e}{}",
                self.output_of(slot)
            )),
        }
    }

    fn spawn_external(
        &mut self,
        listener: &PluginListener,
        bin: &Path,
        name: &str,
        idx: &str,
        config: &str,
    ) -> R<usize> {
        let out = self.path(&format!("{idx}-{name}.{}.out", self.procs.len()));
        let file = File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("-socket")
            .arg(listener.path())
            .args(["-name", name, "-idx", idx]);
        if !config.is_empty() {
            let cfg = self.path(&format!("{idx}-{name}.conf"));
            fs::write(&cfg, config).map_err(|e| format!("{}: {e}", cfg.display()))?;
            cmd.arg("-config").arg(&cfg);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        self.procs.push(Proc {
            child,
            name: format!("{idx}-{name}"),
            out,
        });
        Ok(self.procs.len() - 1)
    }

    fn output_of(&self, slot: usize) -> String {
        let p = &self.procs[slot];
        match fs::read_to_string(&p.out) {
            Ok(s) if !s.trim().is_empty() => {
                format!(" (plugin {} output: {})", p.name, trunc(s.trim(), 400))
            }
            _ => String::new(),
        }
    }

    fn dump_outputs(&self) {
        for p in &self.procs {
            if let Ok(s) = fs::read_to_string(&p.out) {
                eprintln!("    --- {} output:\n{s}", p.name);
            }
        }
        if let Ok(s) = fs::read_to_string(self.path("launched.out")) {
            eprintln!("    --- launched plugins' output:\n{s}");
        }
    }
}

fn trunc(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...({} bytes)", &s[..end], s.len())
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

fn sigkill(pid: u32) -> R {
    // SAFETY: kill(2) with a pid of a process this program started (through
    // the runtime) and SIGKILL; no memory is involved.
    let rc = unsafe { kill(pid as i32, 9) };
    ensure!(
        rc == 0,
        "kill({pid}, SIGKILL): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// The sockets a process has open (`socket:[inode]`).
fn socket_inodes(pid: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(target) = fs::read_link(e.path()) {
                let t = target.to_string_lossy().into_owned();
                if t.starts_with("socket:") {
                    out.insert(t);
                }
            }
        }
    }
    out
}

/// True while `/proc/<pid>` exists and is not a zombie.
fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
            state != Some('Z')
        }
        Err(_) => false,
    }
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

// ---------------------------------------------------------------------------
// The contract's request log.

#[derive(Clone, Debug)]
struct Entry {
    prefix: String,
    event: String,
    kv: HashMap<String, String>,
    raw: String,
}

impl Entry {
    fn kv(&self, k: &str) -> &str {
        self.kv.get(k).map(String::as_str).unwrap_or("")
    }
}

const LOG_EVENTS: &[&str] = &[
    "Configure",
    "Synchronize",
    "RunPodSandbox",
    "StopPodSandbox",
    "RemovePodSandbox",
    "CreateContainer",
    "PostCreateContainer",
    "StartContainer",
    "PostStartContainer",
    "UpdateContainer",
    "PostUpdateContainer",
    "StopContainer",
    "RemoveContainer",
    "Unsolicited",
];

fn parse_entry(line: &str) -> R<Entry> {
    let mut e = Entry {
        prefix: String::new(),
        event: String::new(),
        kv: HashMap::new(),
        raw: line.to_string(),
    };
    let (mut word, mut rest) = line.split_once(' ').unwrap_or((line, ""));
    if !LOG_EVENTS.contains(&word) {
        e.prefix = word.to_string();
        (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    }
    ensure!(
        LOG_EVENTS.contains(&word),
        "unknown event in log line {line:?}"
    );
    e.event = word.to_string();
    while !rest.is_empty() {
        let tok;
        if rest.starts_with("err=") {
            (tok, rest) = (rest, "");
        } else {
            (tok, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        }
        let Some((k, v)) = tok.split_once('=') else {
            return Err(format!("malformed field {tok:?} in log line {line:?}"));
        };
        e.kv.insert(k.to_string(), v.to_string());
    }
    Ok(e)
}

fn read_log(path: &Path) -> R<Vec<Entry>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    // A partially written line is ignored until it is complete.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(parse_entry)
        .collect()
}

fn wait_entries(
    path: &Path,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[Entry]) -> bool,
) -> R<Vec<Entry>> {
    let deadline = Instant::now() + timeout;
    loop {
        let es = read_log(path)?;
        if pred(&es) {
            return Ok(es);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "plugin log {}: {what} not seen within {timeout:?} (log: {})",
                path.file_name().unwrap_or_default().to_string_lossy(),
                summarize(&es)
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn summarize(es: &[Entry]) -> String {
    let parts: Vec<String> = es.iter().map(|e| trunc(&e.raw, 80)).collect();
    format!("[{}]", trunc(&parts.join(" | "), 600))
}

fn event_lines(es: &[Entry]) -> Vec<Entry> {
    es.iter()
        .filter(|e| {
            !matches!(
                e.event.as_str(),
                "Configure" | "Synchronize" | "Unsolicited"
            )
        })
        .cloned()
        .collect()
}

fn filter_event(es: &[Entry], event: &str) -> Vec<Entry> {
    es.iter().filter(|e| e.event == event).cloned().collect()
}

fn with_prefix(es: &[Entry], prefix: &str) -> Vec<Entry> {
    es.iter().filter(|e| e.prefix == prefix).cloned().collect()
}

/// `(event, pod id, container id)` of an expected event line.
type Expect = (String, String, String);

fn ex(event: &str, pod: &str, ctr: &str) -> Expect {
    (event.to_string(), pod.to_string(), ctr.to_string())
}

fn check_event_seq(es: &[Entry], want: &[Expect]) -> R {
    let got = event_lines(es);
    for i in 0..got.len().max(want.len()) {
        match (got.get(i), want.get(i)) {
            (None, Some(w)) => {
                return Err(format!(
                    "plugin log: line {} missing, want {} pod={} ctr={} (log: {})",
                    i + 1,
                    w.0,
                    w.1,
                    w.2,
                    summarize(&got)
                ))
            }
            (Some(g), None) => {
                return Err(format!(
                    "plugin log: unexpected extra line {:?} (log: {})",
                    g.raw,
                    summarize(&got)
                ))
            }
            (Some(g), Some(w)) => ensure!(
                g.event == w.0 && g.kv("pod") == w.1 && g.kv("ctr") == w.2,
                "plugin log: line {} is {:?}, want \"{} pod={} ctr={}\" (log: {})",
                i + 1,
                g.raw,
                w.0,
                w.1,
                w.2,
                summarize(&got)
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

/// Checks that `es` holds Configure (with our runtime's name and version)
/// then Synchronize with the given counts, from line `at` on.
fn check_preamble(es: &[Entry], at: usize, pods: usize, ctrs: usize) -> R {
    ensure!(
        es.len() >= at + 2,
        "plugin log: want Configure and Synchronize at line {}, log: {}",
        at + 1,
        summarize(es)
    );
    let (c, s) = (&es[at], &es[at + 1]);
    let want_rt = format!("{RT_NAME}/{RT_VERSION}");
    ensure!(
        c.event == "Configure"
            && c.kv("pod") == "-"
            && c.kv("ctr") == "-"
            && c.kv("runtime") == want_rt,
        "plugin log line {}: got {:?}, want \"Configure pod=- ctr=- runtime={want_rt}\"",
        at + 1,
        c.raw
    );
    ensure!(
        s.event == "Synchronize"
            && s.kv("pods") == pods.to_string()
            && s.kv("containers") == ctrs.to_string(),
        "plugin log line {}: got {:?}, want \"Synchronize pods={pods} containers={ctrs}\"",
        at + 2,
        s.raw
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Realistic pods and containers (the Go driver's fixtures).

fn smap(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ns(t: &str, path: &str) -> LinuxNamespace {
    LinuxNamespace {
        type_: t.into(),
        path: path.into(),
        ..Default::default()
    }
}

fn mk_pod(id: &str, ann: &[(&str, &str)]) -> PodSandbox {
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

fn mk_ctr(id: &str, pod_id: &str, ann: &[(&str, &str)]) -> Container {
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

fn with_state(mut c: Container, s: ContainerState) -> Container {
    c.state = EnumOrUnknown::new(s);
    c
}

fn mount(dst: &str, t: &str, src: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dst.into(),
        type_: t.into(),
        source: src.into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn device(path: &str, major: i64, minor: i64, full: bool) -> LinuxDevice {
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

fn rlimit(t: &str, hard: u64, soft: u64) -> POSIXRlimit {
    POSIXRlimit {
        type_: t.into(),
        hard,
        soft,
        ..Default::default()
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    }
}

fn removal_mount(dst: &str) -> Mount {
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
fn full_adjustment(t: &str, raw: bool) -> ContainerAdjustment {
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
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the reference v0.9.0 returns for a CreateContainer no plugin
/// adjusted: the skeleton (hooks, linux.resources.memory/cpu set).
fn empty_adjustment() -> ContainerAdjustment {
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

// ---------------------------------------------------------------------------
// Field-by-field comparison of protobuf messages, through reflection.
// Presence matters for message fields (Optional* wrappers: "unset" differs
// from "set to 0").

fn diff(path: &str, want: &dyn MessageDyn, got: &dyn MessageDyn) -> Vec<String> {
    let mut out = Vec::new();
    diff_msg(path, want, got, &mut out);
    out
}

fn render_msg(m: &dyn MessageDyn) -> String {
    let text = protobuf::text_format::print_to_string(m);
    if text.is_empty() {
        return "{} (set, every field zero)".to_string();
    }
    format!("{{{}}}", trunc(&text, 200))
}

fn render_value(v: &ReflectValueRef<'_>) -> String {
    match v {
        ReflectValueRef::String(s) => format!("{:?}", trunc(s, 100)),
        ReflectValueRef::Bytes(b) => format!("{} bytes", b.len()),
        ReflectValueRef::Message(m) => render_msg(&**m),
        ReflectValueRef::U32(x) => x.to_string(),
        ReflectValueRef::U64(x) => x.to_string(),
        ReflectValueRef::I32(x) => x.to_string(),
        ReflectValueRef::I64(x) => x.to_string(),
        ReflectValueRef::Bool(x) => x.to_string(),
        other => format!("{other:?}"),
    }
}

fn render_list(l: &protobuf::reflect::ReflectRepeatedRef<'_>) -> String {
    let parts: Vec<String> = (0..l.len()).map(|i| render_value(&l.get(i))).collect();
    trunc(&format!("[{}]", parts.join(", ")), 400)
}

fn diff_value(path: &str, w: &ReflectValueRef<'_>, g: &ReflectValueRef<'_>, out: &mut Vec<String>) {
    match (w, g) {
        (ReflectValueRef::Message(wm), ReflectValueRef::Message(gm)) => {
            diff_msg(path, &**wm, &**gm, out)
        }
        _ if w != g => out.push(format!(
            "{path}: want {}, got {}",
            render_value(w),
            render_value(g)
        )),
        _ => {}
    }
}

fn diff_msg(path: &str, want: &dyn MessageDyn, got: &dyn MessageDyn, out: &mut Vec<String>) {
    for f in want.descriptor_dyn().fields() {
        let p = format!("{path}.{}", f.name());
        match (f.get_reflect(want), f.get_reflect(got)) {
            (ReflectFieldRef::Repeated(w), ReflectFieldRef::Repeated(g)) => {
                if w.len() != g.len() {
                    out.push(format!(
                        "{p}: want {} items {}, got {} items {}",
                        w.len(),
                        render_list(&w),
                        g.len(),
                        render_list(&g)
                    ));
                    continue;
                }
                for i in 0..w.len() {
                    diff_value(&format!("{p}[{i}]"), &w.get(i), &g.get(i), out);
                }
            }
            (ReflectFieldRef::Map(w), ReflectFieldRef::Map(g)) => {
                let mut keys = BTreeSet::new();
                for (k, _) in &w {
                    keys.insert(k.to_str().unwrap_or_default().to_string());
                }
                for (k, _) in &g {
                    keys.insert(k.to_str().unwrap_or_default().to_string());
                }
                for k in keys {
                    let ep = format!("{p}[{k:?}]");
                    match (
                        w.get(ReflectValueRef::String(&k)),
                        g.get(ReflectValueRef::String(&k)),
                    ) {
                        (Some(wv), None) => {
                            out.push(format!("{ep}: want {}, got missing", render_value(&wv)))
                        }
                        (None, Some(gv)) => {
                            out.push(format!("{ep}: unexpected {}", render_value(&gv)))
                        }
                        (Some(wv), Some(gv)) => diff_value(&ep, &wv, &gv, out),
                        (None, None) => {}
                    }
                }
            }
            (ReflectFieldRef::Optional(w), ReflectFieldRef::Optional(g)) => {
                let is_msg = matches!(
                    f.runtime_field_type(),
                    RuntimeFieldType::Singular(RuntimeType::Message(_))
                );
                if is_msg {
                    match (w.value(), g.value()) {
                        (Some(wv), None) => {
                            out.push(format!("{p}: want {}, got unset", render_value(&wv)))
                        }
                        (None, Some(gv)) => {
                            out.push(format!("{p}: want unset, got {}", render_value(&gv)))
                        }
                        (Some(wv), Some(gv)) => diff_value(&p, &wv, &gv, out),
                        (None, None) => {}
                    }
                } else {
                    let wv = f.get_singular_field_or_default(want);
                    let gv = f.get_singular_field_or_default(got);
                    diff_value(&p, &wv, &gv, out);
                }
            }
            _ => out.push(format!("{p}: field kinds differ")),
        }
    }
}

fn join_diffs(d: &[String]) -> String {
    const MAX: usize = 8;
    if d.len() > MAX {
        format!("{}; ... ({} differences)", d[..MAX].join("; "), d.len())
    } else {
        d.join("; ")
    }
}

fn check_adjust(what: &str, want: &ContainerAdjustment, resp: &CreateContainerResponse) -> R {
    let d = diff("adjust", want, &resp.adjust.clone().unwrap_or_default());
    ensure!(
        d.is_empty(),
        "{what}: adjustment differs: {}",
        join_diffs(&d)
    );
    ensure!(
        resp.update.is_empty() && resp.evict.is_empty(),
        "{what}: unexpected updates {:?} / evictions {}",
        update_ids(&resp.update),
        resp.evict.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Update checks.

fn shares_of(u: &ContainerUpdate) -> Option<u64> {
    u.linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .and_then(|r| r.cpu.as_ref())
        .and_then(|c| c.shares.as_ref())
        .map(|s| s.value)
}

fn check_update(what: &str, u: Option<&ContainerUpdate>, id: &str, shares: u64, ignore: bool) -> R {
    let Some(u) = u else {
        return Err(format!("{what}: no update"));
    };
    ensure!(
        u.container_id == id,
        "{what}: update for container {:?}, want {id:?}",
        u.container_id
    );
    ensure!(
        shares_of(u) == Some(shares),
        "{what}: update of {id}: cpu shares {:?}, want {shares}",
        shares_of(u)
    );
    ensure!(
        u.ignore_failure == ignore,
        "{what}: update of {id}: ignore_failure {}, want {ignore}",
        u.ignore_failure
    );
    Ok(())
}

/// A container update as the plugin sends it (`raw`: upstream's
/// `SetLinuxCPUShares` on a fresh update), or as the reference collects it:
/// a skeleton with memory and cpu set, over the requested resources for the
/// container being updated.
fn shaped_update(
    id: &str,
    shares: u64,
    ignore: bool,
    raw: bool,
    requested: Option<&LinuxResources>,
) -> ContainerUpdate {
    let mut res = requested.cloned().unwrap_or_default();
    if !raw {
        res.memory.mut_or_insert_default();
    }
    res.cpu.mut_or_insert_default().shares = optional(shares);
    ContainerUpdate {
        container_id: id.into(),
        linux: MessageField::some(LinuxContainerUpdate {
            resources: MessageField::some(res),
            ..Default::default()
        }),
        ignore_failure: ignore,
        ..Default::default()
    }
}

fn check_shape(what: &str, got: &ContainerUpdate, want: &ContainerUpdate) -> R {
    let d = diff("update", want, got);
    ensure!(d.is_empty(), "{what}: update differs: {}", join_diffs(&d));
    Ok(())
}

fn update_ids(us: &[ContainerUpdate]) -> Vec<String> {
    us.iter().map(|u| u.container_id.clone()).collect()
}

fn check_sync_updates(what: &str, got: &[ContainerUpdate], ids: &[&str]) -> R {
    ensure!(
        got.len() == ids.len(),
        "{what}: {} sync updates {:?}, want {ids:?}",
        got.len(),
        update_ids(got)
    );
    for id in ids {
        check_update(
            what,
            got.iter().find(|u| u.container_id == *id),
            id,
            384,
            false,
        )?;
    }
    Ok(())
}

/// Expects a non-OK status from the plugin carrying the contract's failure
/// message (code UNKNOWN: what a Go handler's plain error becomes).
fn expect_status_failure<T>(what: &str, r: nri::Result<T>) -> R {
    match r {
        Ok(_) => Err(format!("{what} succeeded, want error {FAIL_MSG:?}")),
        Err(nri::Error::Status { code, message, .. }) => {
            ensure!(
                message.contains(FAIL_MSG),
                "{what}: status message {message:?} does not carry {FAIL_MSG:?}"
            );
            ensure!(
                code == Code::Unknown,
                "{what}: status code {code:?}, want Unknown"
            );
            Ok(())
        }
        Err(e) => Err(format!("{what}: error {e} is not a status from the plugin")),
    }
}

// ---------------------------------------------------------------------------
// One plugin or a set, through the whole lifecycle.

enum Target<'a> {
    One(&'a PluginHandle),
    Set(&'a PluginSet),
}

impl Target<'_> {
    fn create(&self, pod: &PodSandbox, c: &Container) -> nri::Result<CreateContainerResponse> {
        match self {
            Target::One(h) => h.create_container(pod, c),
            Target::Set(s) => s.create_container(pod, c),
        }
    }

    fn update(
        &self,
        pod: &PodSandbox,
        c: &Container,
        r: &LinuxResources,
    ) -> nri::Result<UpdateContainerResponse> {
        match self {
            Target::One(h) => h.update_container(pod, c, r),
            Target::Set(s) => s.update_container(pod, c, r),
        }
    }

    fn stop(&self, pod: &PodSandbox, c: &Container) -> nri::Result<StopContainerResponse> {
        match self {
            Target::One(h) => h.stop_container(pod, c),
            Target::Set(s) => s.stop_container(pod, c),
        }
    }

    fn state(&self, ev: Event, pod: &PodSandbox, c: Option<&Container>) -> nri::Result<()> {
        match self {
            Target::One(h) => h.state_change(ev, pod, c),
            Target::Set(s) => s.state_change(ev, pod, c),
        }
    }
}

struct Lifecycle {
    create: CreateContainerResponse,
    update: UpdateContainerResponse,
    stop: StopContainerResponse,
}

/// Every event in lifecycle order for one pod and one container (built
/// afresh by `mk` for each call); returns the replies and the expected
/// plugin log lines.
fn lifecycle(
    t: &Target<'_>,
    pod: &PodSandbox,
    mk: &dyn Fn() -> Container,
) -> R<(Lifecycle, Vec<Expect>)> {
    use ContainerState::{
        CONTAINER_CREATED as CREATED, CONTAINER_RUNNING as RUNNING, CONTAINER_STOPPED as STOPPED,
    };
    let (p, c) = (pod.id.as_str(), mk().id);
    let want = vec![
        ex("RunPodSandbox", p, "-"),
        ex("CreateContainer", p, &c),
        ex("PostCreateContainer", p, &c),
        ex("StartContainer", p, &c),
        ex("PostStartContainer", p, &c),
        ex("UpdateContainer", p, &c),
        ex("PostUpdateContainer", p, &c),
        ex("StopContainer", p, &c),
        ex("RemoveContainer", p, &c),
        ex("StopPodSandbox", p, "-"),
        ex("RemovePodSandbox", p, "-"),
    ];
    let new_res = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(512 << 20),
            ..Default::default()
        }),
        cpu: MessageField::some(LinuxCPU {
            shares: optional(204),
            quota: optional(40000),
            period: optional(100000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let step = |name: &str, r: nri::Result<()>| r.map_err(|e| format!("{name}: {e}"));
    step("RunPodSandbox", t.state(Event::RUN_POD_SANDBOX, pod, None))?;
    let create = t
        .create(pod, &mk())
        .map_err(|e| format!("CreateContainer: {e}"))?;
    step(
        "PostCreateContainer",
        t.state(
            Event::POST_CREATE_CONTAINER,
            pod,
            Some(&with_state(mk(), CREATED)),
        ),
    )?;
    step(
        "StartContainer",
        t.state(
            Event::START_CONTAINER,
            pod,
            Some(&with_state(mk(), CREATED)),
        ),
    )?;
    step(
        "PostStartContainer",
        t.state(
            Event::POST_START_CONTAINER,
            pod,
            Some(&with_state(mk(), RUNNING)),
        ),
    )?;
    let update = t
        .update(pod, &with_state(mk(), RUNNING), &new_res)
        .map_err(|e| format!("UpdateContainer: {e}"))?;
    step(
        "PostUpdateContainer",
        t.state(
            Event::POST_UPDATE_CONTAINER,
            pod,
            Some(&with_state(mk(), RUNNING)),
        ),
    )?;
    let stop = t
        .stop(pod, &with_state(mk(), RUNNING))
        .map_err(|e| format!("StopContainer: {e}"))?;
    step(
        "RemoveContainer",
        t.state(
            Event::REMOVE_CONTAINER,
            pod,
            Some(&with_state(mk(), STOPPED)),
        ),
    )?;
    step(
        "StopPodSandbox",
        t.state(Event::STOP_POD_SANDBOX, pod, None),
    )?;
    step(
        "RemovePodSandbox",
        t.state(Event::REMOVE_POD_SANDBOX, pod, None),
    )?;
    Ok((
        Lifecycle {
            create,
            update,
            stop,
        },
        want,
    ))
}

fn check_handle(h: &PluginHandle, name: &str, launched: bool) -> R {
    ensure!(
        h.name() == name,
        "plugin name {:?}, want {name:?}",
        h.name()
    );
    let (idx, base) = name.split_once('-').unwrap_or_default();
    ensure!(
        h.index() == idx && h.base_name() == base,
        "{name}: index {:?} base {:?}",
        h.index(),
        h.base_name()
    );
    ensure!(
        h.is_launched() == launched,
        "{name}: launched={}, want {launched}",
        h.is_launched()
    );
    ensure!(
        h.pid().is_some() == launched,
        "{name}: pid {:?} (launched={launched})",
        h.pid()
    );
    ensure!(
        h.is_connected(),
        "{name}: not connected: {:?}",
        h.drop_reason()
    );
    ensure!(
        h.events() == EventMask::ALL,
        "{name}: subscribed to {} (0x{:x}), want all events",
        h.events(),
        h.events().bits()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenarios.

type Scenario = fn(&mut Ctx) -> R;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("external-register", sc_external_register),
    ("launched-config", sc_launched_config),
    ("synchronize-small", sc_synchronize_small),
    ("synchronize-chunked", sc_synchronize_chunked),
    ("lifecycle-events", sc_lifecycle_events),
    ("event-subscription", sc_event_subscription),
    ("create-full-adjustment", sc_create_full_adjustment),
    ("update-and-stop-replies", sc_update_and_stop_replies),
    ("message-sizes", sc_message_sizes),
    ("message-size-limits", sc_message_size_limits),
    ("unsolicited-update", sc_unsolicited_update),
    ("handler-failure", sc_handler_failure),
    ("slow-handler-dropped", sc_slow_handler_dropped),
    ("plugin-restart", sc_plugin_restart),
    ("launched-plugin-killed", sc_launched_plugin_killed),
    ("shutdown", sc_shutdown),
    ("registration-refused", sc_registration_refused),
    ("registration-timeout", sc_registration_timeout),
    ("configure-failure", sc_configure_failure),
    ("oversized-reply-dropped", sc_oversized_reply_dropped),
    ("serialized-requests", sc_serialized_requests),
    ("unsolicited-during-relay", sc_unsolicited_during_relay),
    ("two-plugins-ordering", sc_two_plugins_ordering),
    ("two-plugins-updates", sc_two_plugins_updates),
    ("two-plugins-one-dies", sc_two_plugins_one_dies),
];

/// External plugins dial our socket, register, get their configuration
/// (from their `-config` file, or through Configure from the runtime's
/// `plugin_config`) and are synchronized; a set orders them by index.
fn sc_external_register(ctx: &mut Ctx) -> R {
    let (log_a, log_c, log_c_base) = (
        ctx.path("ext.log"),
        ctx.path("cfg.log"),
        ctx.path("cfg-base.log"),
    );
    let rt = ctx
        .builder()
        // the full NN-name wins over the base name
        .plugin_config("12-cfg", format!("log={}\n", log_c.display()))
        .plugin_config("cfg", format!("log={}\n", log_c_base.display()))
        .build();
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (a, _) = ctx.external(
        &l,
        &plugin,
        "ext",
        "10",
        &format!("log={}\n", log_a.display()),
    )?;
    // no configuration at all
    let (b, _) = ctx.external(&l, &plugin, "bare", "11", "")?;
    // configuration only through Configure
    let (c, _) = ctx.external(&l, &plugin, "cfg", "12", "")?;
    check_handle(&a, "10-ext", false)?;
    check_handle(&b, "11-bare", false)?;
    check_handle(&c, "12-cfg", false)?;
    for h in [&a, &b, &c] {
        ensure!(
            h.sync_updates().is_empty(),
            "{}: sync updates {:?}",
            h.name(),
            update_ids(h.sync_updates())
        );
    }
    let set = PluginSet::new(&rt);
    for h in [c, b, a] {
        set.add(h).map_err(|e| e.to_string())?;
    }
    let names = set.names();
    ensure!(
        names == ["10-ext", "11-bare", "12-cfg"],
        "plugin set order {names:?}, want [10-ext 11-bare 12-cfg]"
    );
    for log in [&log_a, &log_c] {
        let es = wait_entries(log, Duration::from_secs(2), "Configure+Synchronize", |es| {
            es.len() >= 2
        })?;
        check_preamble(&es, 0, 0, 0)?;
        ensure!(
            es.len() == 2,
            "plugin log: unexpected extra lines: {}",
            summarize(&es)
        );
    }
    ensure!(
        !log_c_base.exists(),
        "12-cfg got the configuration of \"cfg\" instead of \"12-cfg\""
    );
    Ok(())
}

/// `Runtime::launch`: no arguments, a bare environment, the socket as fd 3;
/// the configuration arrives through Configure; closing kills the plugin.
fn sc_launched_config(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_l = ctx.path("launched.log");
    // sockets of ours that must not leak into the launched plugin
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (other, _) = ctx.external(&l, &plugin, "other", "10", "")?;
    let h = rt
        .launch(
            &ctx.plugin,
            "launched",
            "20",
            &format!("log={}\ntag=launched\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    check_handle(&h, "20-launched", true)?;
    let pid = h.pid().unwrap_or_default();
    ensure!(pid_alive(pid), "launched plugin pid {pid} is not running");
    // what the process got
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| e.to_string())?;
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    ensure!(
        args.len() == 1,
        "launched plugin has arguments: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let environ = fs::read(format!("/proc/{pid}/environ")).map_err(|e| e.to_string())?;
    let mut env: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    env.sort();
    ensure!(
        env == [
            "NRI_PLUGIN_IDX=20",
            "NRI_PLUGIN_NAME=launched",
            "NRI_PLUGIN_SOCKET=3"
        ],
        "launched plugin environment {env:?}"
    );
    let ours = socket_inodes("self");
    let theirs = socket_inodes(&pid.to_string());
    let leaked: Vec<String> = theirs.intersection(&ours).cloned().collect();
    ensure!(
        leaked.is_empty() && !ours.is_empty() && !theirs.is_empty(),
        "the launched plugin holds sockets of the runtime process: {leaked:?}"
    );
    ensure!(other.is_connected(), "10-other dropped");
    let es = read_log(&log_l)?;
    check_preamble(&es, 0, 0, 0)
        .map_err(|e| format!("{e} (config not delivered through Configure?)"))?;
    let pod = mk_pod("pod-l", &[]);
    let resp = h
        .create_container(
            &pod,
            &mk_ctr("ctr-l", &pod.id, &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer: {e}"))?;
    let want = ContainerAdjustment {
        annotations: smap(&[("launched.interop/added", "yes")]),
        env: vec![kv("INTEROP_launched", "yes")],
        ..Default::default()
    };
    check_adjust("CreateContainer (tag from the configuration)", &want, &resp)?;
    check_event_seq(
        &read_log(&log_l)?,
        &[ex("CreateContainer", "pod-l", "ctr-l")],
    )?;

    h.close();
    ensure!(!h.is_connected(), "plugin still connected after close");
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "launched plugin {pid} still running after close"
    );
    ensure!(h.pid().is_none(), "closed plugin still has a pid");
    match h.create_container(&pod, &mk_ctr("ctr-after", &pod.id, &[])) {
        Err(nri::Error::ConnectionClosed(_)) => Ok(()),
        other => Err(format!(
            "CreateContainer after close: {other:?}, want ConnectionClosed"
        )),
    }
}

fn sc_synchronize_small(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let pods: Vec<PodSandbox> = (0..3).map(|i| mk_pod(&format!("pod-{i}"), &[])).collect();
    let ctrs: Vec<Container> = (0..5)
        .map(|i| {
            let ann: &[(&str, &str)] = if i == 1 || i == 4 {
                &[("interop/sync-update", "yes")]
            } else {
                &[]
            };
            with_state(
                mk_ctr(&format!("ctr-{i}"), &pods[i % 3].id, ann),
                ContainerState::CONTAINER_RUNNING,
            )
        })
        .collect();
    rt.set_state(pods, ctrs);
    let (log_l, log_e) = (ctx.path("sync-launched.log"), ctx.path("sync-external.log"));
    let launched = rt
        .launch(
            &ctx.plugin,
            "synclaunched",
            "30",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (external, _) = ctx.external(
        &l,
        &plugin,
        "syncext",
        "40",
        &format!("log={}\n", log_e.display()),
    )?;
    for (h, log) in [(&launched, &log_l), (&external, &log_e)] {
        let es = read_log(log)?;
        check_preamble(&es, 0, 3, 5).map_err(|e| format!("{}: {e}", h.name()))?;
        ensure!(
            filter_event(&es, "Synchronize").len() == 1,
            "{}: more than one Synchronize: {}",
            h.name(),
            summarize(&es)
        );
        check_sync_updates(
            &format!("{} sync", h.name()),
            h.sync_updates(),
            &["ctr-1", "ctr-4"],
        )?;
    }
    Ok(())
}

fn sc_synchronize_chunked(ctx: &mut Ctx) -> R {
    const N_PODS: usize = 24;
    const N_CTRS: usize = 96;
    let rt = ctx.builder().build();
    let pod_pad = "p".repeat(16 << 10);
    let ctr_pad = "c".repeat(48 << 10);
    let pods: Vec<PodSandbox> = (0..N_PODS)
        .map(|i| mk_pod(&format!("pod-{i:02}"), &[("interop/pad", &pod_pad)]))
        .collect();
    let ctrs: Vec<Container> = (0..N_CTRS)
        .map(|i| {
            let mut ann = vec![("interop/pad", ctr_pad.as_str())];
            if i == 1 || i == N_CTRS - 2 {
                ann.push(("interop/sync-update", "yes"));
            }
            with_state(
                mk_ctr(&format!("ctr-{i:02}"), &pods[i % N_PODS].id, &ann),
                ContainerState::CONTAINER_RUNNING,
            )
        })
        .collect();
    rt.set_state(pods, ctrs);
    let last = format!("ctr-{:02}", N_CTRS - 2);
    let (log_e, log_l) = (ctx.path("chunked.log"), ctx.path("chunked-launched.log"));
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let mark = log_mark();
    let (external, _) = ctx.external(
        &l,
        &plugin,
        "chunked",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let runtime_log = log_since(mark);
    let launched = rt
        .launch(
            &ctx.plugin,
            "chunklaunched",
            "20",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    for (h, log) in [(&external, &log_e), (&launched, &log_l)] {
        let es = read_log(log)?;
        check_preamble(&es, 0, N_PODS, N_CTRS).map_err(|e| format!("{}: {e}", h.name()))?;
        let n = filter_event(&es, "Synchronize").len();
        ensure!(
            n == 1,
            "{}: {n} Synchronize lines, want 1: {}",
            h.name(),
            summarize(&es)
        );
        check_sync_updates(
            &format!("{} chunked sync", h.name()),
            h.sync_updates(),
            &["ctr-01", &last],
        )?;
        ensure!(
            h.is_connected(),
            "{} dropped after the chunked sync",
            h.name()
        );
    }
    // prove the runtime really split the state
    let said = |s: &str| runtime_log.iter().filter(|(_, m)| m.contains(s)).count();
    ensure!(
        said("is oversized; retrying with chunks") > 0,
        "the runtime did not split the Synchronize request (state not over 4 MiB?)"
    );
    let chunks = said("sending Synchronize chunk to plugin 10-chunked");
    ensure!(
        chunks >= 2,
        "the runtime sent {chunks} Synchronize chunks, want >= 2"
    );
    ensure!(
        runtime_log
            .iter()
            .any(|(_, m)| m == &format!("plugin 10-chunked synchronized in {chunks} chunks")),
        "no \"synchronized in {chunks} chunks\" line in the runtime's log"
    );
    Ok(())
}

fn sc_lifecycle_events(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("life.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "life",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;

    // one plugin: its own replies, unmerged
    let pod = mk_pod("pod-life", &[]);
    let (res, mut want) = lifecycle(&Target::One(&h), &pod, &|| {
        mk_ctr("ctr-life", "pod-life", &[])
    })?;
    check_adjust("CreateContainer", &ContainerAdjustment::new(), &res.create)?;
    ensure!(
        res.update.update.is_empty(),
        "UpdateContainer: unexpected updates {:?}",
        update_ids(&res.update.update)
    );
    ensure!(
        res.stop.update.is_empty(),
        "StopContainer: unexpected updates {:?}",
        update_ids(&res.stop.update)
    );

    // the same through a set: replies collected like the reference's
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    let pod2 = mk_pod("pod-life2", &[]);
    let (res, want2) = lifecycle(&Target::Set(&set), &pod2, &|| {
        mk_ctr("ctr-life2", "pod-life2", &[])
    })?;
    check_adjust("CreateContainer (set)", &empty_adjustment(), &res.create)?;
    ensure!(
        res.update.update.is_empty() && res.stop.update.is_empty(),
        "set: unexpected updates {:?} / {:?}",
        update_ids(&res.update.update),
        update_ids(&res.stop.update)
    );
    want.extend(want2);
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 0, 0)?;
    check_event_seq(&es, &want)?;
    ensure!(set.len() == 1, "plugin left the set: {:?}", set.names());
    Ok(())
}

fn sc_event_subscription(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let (log_a, log_b) = (ctx.path("sub.log"), ctx.path("podsub.log"));
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (a, _) = ctx.external(
        &l,
        &plugin,
        "sub",
        "10",
        &format!(
            "log={}\nevents=createcontainer,stopcontainer\n",
            log_a.display()
        ),
    )?;
    let (b, _) = ctx.external(
        &l,
        &plugin,
        "podsub",
        "11",
        &format!("log={}\nevents=pod,RemoveContainer\n", log_b.display()),
    )?;
    let mask = |s: &str| s.parse::<EventMask>().map_err(|e| e.to_string());
    let want_a = mask("createcontainer,stopcontainer")?;
    let want_b = mask("runpodsandbox,stoppodsandbox,removepodsandbox,removecontainer")?;
    ensure!(
        a.events() == want_a,
        "10-sub subscribed to {}, want {want_a}",
        a.events()
    );
    ensure!(
        b.events() == want_b,
        "11-podsub subscribed to {}, want {want_b}",
        b.events()
    );
    ensure!(
        !a.is_subscribed(Event::RUN_POD_SANDBOX) && a.is_subscribed(Event::STOP_CONTAINER),
        "10-sub: is_subscribed disagrees with its mask"
    );
    // an unsubscribed event is not sent, even to the plugin alone
    let pod = mk_pod("pod-sub", &[]);
    a.run_pod_sandbox(&pod)
        .map_err(|e| format!("unsubscribed RunPodSandbox: {e}"))?;
    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    set.add(b).map_err(|e| e.to_string())?;
    lifecycle(&Target::Set(&set), &pod, &|| {
        mk_ctr("ctr-sub", "pod-sub", &[])
    })?;
    check_event_seq(
        &read_log(&log_a)?,
        &[
            ex("CreateContainer", "pod-sub", "ctr-sub"),
            ex("StopContainer", "pod-sub", "ctr-sub"),
        ],
    )
    .map_err(|e| format!("10-sub: {e}"))?;
    check_event_seq(
        &read_log(&log_b)?,
        &[
            ex("RunPodSandbox", "pod-sub", "-"),
            ex("RemoveContainer", "pod-sub", "ctr-sub"),
            ex("StopPodSandbox", "pod-sub", "-"),
            ex("RemovePodSandbox", "pod-sub", "-"),
        ],
    )
    .map_err(|e| format!("11-podsub: {e}"))
}

fn sc_create_full_adjustment(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("adj.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    // no tag in the config: the tag defaults to the plugin name
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "adj",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let t = "adj";
    let pod = mk_pod("pod-adj", &[]);
    let mut ctr = mk_ctr(
        "ctr-adj",
        &pod.id,
        &[("interop/adjust", "full"), ("interop/remove-me", "please")],
    );
    ctr.mounts.push(mount(
        "/mnt/remove-me",
        "bind",
        "/tmp/remove-me",
        &["rbind"],
    ));
    ctr.env.push("REMOVE_ME=1".into());
    ctr.linux
        .mut_or_insert_default()
        .devices
        .push(device("/dev/remove-me", 1, 5, false));

    // the plugin's own reply
    let raw = h
        .create_container(&pod, &ctr)
        .map_err(|e| format!("CreateContainer: {e}"))?;
    check_adjust("plugin reply", &full_adjustment(t, true), &raw)?;
    // collected by a set, as the reference collects it
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    let merged = set
        .create_container(&pod, &ctr)
        .map_err(|e| format!("CreateContainer (set): {e}"))?;
    check_adjust("collected reply", &full_adjustment(t, false), &merged)?;
    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("CreateContainer", "pod-adj", "ctr-adj"),
            ex("CreateContainer", "pod-adj", "ctr-adj"),
        ],
    )
}

fn sc_update_and_stop_replies(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("upd.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "upd",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    let h = set.get("10-upd").ok_or("10-upd not in the set")?;
    let running = ContainerState::CONTAINER_RUNNING;
    let pod = mk_pod("pod-u", &[]);
    let res = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(1 << 30),
            ..Default::default()
        }),
        cpu: MessageField::some(LinuxCPU {
            shares: optional(1024),
            cpus: "2-3".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ctr = |id: &str, ann: &[(&str, &str)]| with_state(mk_ctr(id, "pod-u", ann), running);

    // (a) UpdateContainer(c1) asks to update another container c2
    let r1 = set
        .update_container(&pod, &ctr("c1", &[("interop/update", "c2")]), &res)
        .map_err(|e| format!("UpdateContainer(c1): {e}"))?;
    ensure!(
        r1.update.len() == 1,
        "UpdateContainer(c1): updates {:?}, want [c2]",
        update_ids(&r1.update)
    );
    check_update("UpdateContainer(c1)", r1.update.first(), "c2", 256, false)?;
    check_shape(
        "UpdateContainer(c1)",
        &r1.update[0],
        &shaped_update("c2", 256, false, false, None),
    )?;

    // (b) UpdateContainer(c3) updates c3 itself: the plugin's reply alone,
    // then collected (merged over the requested resources)
    let c3 = ctr("c3", &[("interop/update", "c3")]);
    let raw = h
        .update_container(&pod, &c3, &res)
        .map_err(|e| format!("UpdateContainer(c3), plugin alone: {e}"))?;
    ensure!(
        raw.update.len() == 1,
        "UpdateContainer(c3) plugin reply: updates {:?}",
        update_ids(&raw.update)
    );
    check_update(
        "UpdateContainer(c3) plugin reply",
        raw.update.first(),
        "c3",
        256,
        false,
    )?;
    let r3 = set
        .update_container(&pod, &c3, &res)
        .map_err(|e| format!("UpdateContainer(c3): {e}"))?;
    ensure!(
        r3.update.len() == 1,
        "UpdateContainer(c3): updates {:?}, want [c3]",
        update_ids(&r3.update)
    );
    check_update("UpdateContainer(c3)", r3.update.first(), "c3", 256, false)?;
    check_shape(
        "UpdateContainer(c3) plugin reply",
        &raw.update[0],
        &shaped_update("c3", 256, false, true, None),
    )?;
    check_shape(
        "UpdateContainer(c3)",
        &r3.update[0],
        &shaped_update("c3", 256, false, false, Some(&res)),
    )?;
    let merged = r3.update[0]
        .linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .cloned()
        .unwrap_or_default();
    let limit = merged
        .memory
        .as_ref()
        .and_then(|m| m.limit.as_ref())
        .map(|v| v.value);
    let cpus = merged
        .cpu
        .as_ref()
        .map(|c| c.cpus.clone())
        .unwrap_or_default();
    ensure!(
        limit == Some(1 << 30) && cpus == "2-3",
        "UpdateContainer(c3): merged resources lost the requested values: memory limit {limit:?} cpus {cpus:?}"
    );

    // (c) StopContainer(c4) in a pod whose annotations ask to update c2,
    // ignoring failures
    let pod2 = mk_pod(
        "pod-s",
        &[("interop/update", "c2"), ("interop/ignore-failure", "yes")],
    );
    let r4 = set
        .stop_container(&pod2, &with_state(mk_ctr("c4", "pod-s", &[]), running))
        .map_err(|e| format!("StopContainer(c4): {e}"))?;
    ensure!(
        r4.update.len() == 1,
        "StopContainer(c4): updates {:?}, want [c2]",
        update_ids(&r4.update)
    );
    check_update("StopContainer(c4)", r4.update.first(), "c2", 256, true)?;
    check_shape(
        "StopContainer(c4)",
        &r4.update[0],
        &shaped_update("c2", 256, true, false, None),
    )?;

    // (d) StopContainer(c5) with nothing asked: no updates
    let r5 = set
        .stop_container(&pod, &ctr("c5", &[]))
        .map_err(|e| format!("StopContainer(c5): {e}"))?;
    ensure!(
        r5.update.is_empty(),
        "StopContainer(c5): unexpected updates {:?}",
        update_ids(&r5.update)
    );

    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("UpdateContainer", "pod-u", "c1"),
            ex("UpdateContainer", "pod-u", "c3"),
            ex("UpdateContainer", "pod-u", "c3"),
            ex("StopContainer", "pod-s", "c4"),
            ex("StopContainer", "pod-u", "c5"),
        ],
    )
}

const MESSAGE_SIZES: &[usize] = &[
    0,
    1,
    4000,
    4096,
    4097,
    65536,
    1 << 20,
    (4 << 20) - (64 << 10),
    (4 << 20) - 4096,
];

fn sc_message_sizes(ctx: &mut Ctx) -> R {
    ctx.allowed.push("exceeds the 4194304-byte limit");
    let rt = ctx.builder().build();
    let log_e = ctx.path("size.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "size",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-size", &[]);
    let mut want = Vec::new();
    let blob = |r: &CreateContainerResponse| {
        r.adjust
            .as_ref()
            .and_then(|a| a.annotations.get("size.interop/blob"))
            .cloned()
    };
    // replies
    for &n in MESSAGE_SIZES {
        let id = format!("reply-{n}");
        let resp = h
            .create_container(
                &pod,
                &mk_ctr(&id, &pod.id, &[("interop/reply-bytes", &n.to_string())]),
            )
            .map_err(|e| format!("reply of {n} bytes: CreateContainer: {e}"))?;
        let v = blob(&resp);
        ensure!(
            v.as_ref()
                .is_some_and(|v| v.len() == n && v.bytes().all(|b| b == b'x')),
            "reply of {n} bytes: got annotation present={} with {} bytes",
            v.is_some(),
            v.as_ref().map_or(0, |v| v.len())
        );
        want.push(ex("CreateContainer", &pod.id, &id));
    }
    // requests (CreateContainer and a StateChange event)
    for &n in MESSAGE_SIZES {
        let id = format!("request-{n}");
        let pad = "r".repeat(n);
        let c = mk_ctr(&id, &pod.id, &[("interop/pad", &pad)]);
        let resp = h
            .create_container(&pod, &c)
            .map_err(|e| format!("request of {n} bytes: CreateContainer: {e}"))?;
        check_adjust(
            &format!("request of {n} bytes"),
            &ContainerAdjustment::new(),
            &resp,
        )?;
        h.start_container(&pod, &c)
            .map_err(|e| format!("request of {n} bytes: StartContainer: {e}"))?;
        want.push(ex("CreateContainer", &pod.id, &id));
        want.push(ex("StartContainer", &pod.id, &id));
    }
    // both ways at once
    let pad = "r".repeat(1 << 20);
    let resp = h
        .create_container(
            &pod,
            &mk_ctr(
                "both-1MiB",
                &pod.id,
                &[
                    ("interop/pad", &pad),
                    ("interop/reply-bytes", &(1 << 20).to_string()),
                ],
            ),
        )
        .map_err(|e| format!("1 MiB request + 1 MiB reply: {e}"))?;
    ensure!(
        blob(&resp).map(|v| v.len()) == Some(1 << 20),
        "1 MiB request + 1 MiB reply: reply annotation has the wrong size"
    );
    want.push(ex("CreateContainer", &pod.id, "both-1MiB"));
    // an oversized request is refused before it is sent; the plugin stays
    let pad = "r".repeat(4 << 20);
    match h.create_container(
        &pod,
        &mk_ctr("over-4MiB", &pod.id, &[("interop/pad", &pad)]),
    ) {
        Err(nri::Error::MessageTooLarge { .. }) => {}
        other => {
            return Err(format!(
                "request over 4 MiB: {:?}, want MessageTooLarge",
                other.map(|_| "success")
            ))
        }
    }
    ensure!(h.is_connected(), "plugin dropped: {:?}", h.drop_reason());
    h.create_container(&pod, &mk_ctr("after", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after all sizes: {e}"))?;
    want.push(ex("CreateContainer", &pod.id, "after"));
    check_event_seq(&read_log(&log_e)?, &want)
}

/// Finds `n` such that `len(n)` (a message length growing by one byte per
/// unit of `n` in this range) is exactly `target`.
fn solve_len(target: usize, len: impl Fn(usize) -> usize) -> R<usize> {
    let mut n = target.saturating_sub(16 << 10);
    for _ in 0..8 {
        let l = len(n);
        if l == target {
            return Ok(n);
        }
        n = (n as i64 + target as i64 - l as i64).max(0) as usize;
    }
    Err(format!(
        "no padding gives a message of exactly {target} bytes"
    ))
}

/// The ttrpc limit exactly: a request whose ttrpc message is 4 MiB to the
/// byte is sent and served, one byte more is refused locally (plugin
/// kept); a reply of exactly 4 MiB (as the Go server frames it: no status
/// for OK, just the payload; or with an empty status, as the Rust stub
/// frames it) is received.
fn sc_message_size_limits(ctx: &mut Ctx) -> R {
    const LIMIT: usize = 4 << 20;
    ctx.allowed.push("exceeds the 4194304-byte limit");
    let rt = ctx.builder().build();
    let log_e = ctx.path("limit.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "limit",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-lim", &[]);
    let timeout_nano = h.request_timeout().as_nanos() as i64;
    let request_ctr = |n: usize| mk_ctr("at-limit", "pod-lim", &[("interop/pad", &"r".repeat(n))]);
    let request_len = |n: usize| {
        let payload = nri::api::CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(request_ctr(n)),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default();
        nri::ttrpc::Request {
            service: nri::api::PLUGIN_SERVICE.into(),
            method: "CreateContainer".into(),
            payload,
            timeout_nano,
            ..Default::default()
        }
        .compute_size() as usize
    };
    let n = solve_len(LIMIT, request_len)?;
    h.create_container(&pod, &request_ctr(n))
        .map_err(|e| format!("request of exactly {LIMIT} bytes: {e}"))?;
    match h.create_container(&pod, &request_ctr(n + 1)) {
        Err(nri::Error::MessageTooLarge { len, .. }) if len == LIMIT as u64 + 1 => {}
        other => {
            return Err(format!(
                "request of {LIMIT} + 1 bytes: {:?}, want MessageTooLarge of {} bytes",
                other.map(|_| "success"),
                LIMIT + 1
            ))
        }
    }
    ensure!(h.is_connected(), "plugin dropped: {:?}", h.drop_reason());

    // The Go ttrpc server sends no status with an OK reply; a server that
    // sends an empty one (the Rust stub) needs two bytes more.
    let reply_len = |n: usize, with_status: bool| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("limit.interop/blob".into(), "x".repeat(n));
        let payload = CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default();
        let mut resp = nri::ttrpc::Response {
            payload,
            ..Default::default()
        };
        if with_status {
            resp.status.mut_or_insert_default();
        }
        resp.compute_size() as usize
    };
    let mut want = vec![ex("CreateContainer", "pod-lim", "at-limit")];
    let mut outcome = Err(String::new());
    for with_status in [false, true] {
        let m = solve_len(LIMIT, |n| reply_len(n, with_status))?;
        let id = format!(
            "reply-at-limit-{}",
            if with_status { "status" } else { "plain" }
        );
        want.push(ex("CreateContainer", "pod-lim", &id));
        let r = h.create_container(
            &pod,
            &mk_ctr(&id, "pod-lim", &[("interop/reply-bytes", &m.to_string())]),
        );
        outcome = match r {
            Ok(resp) => {
                let got = resp
                    .adjust
                    .as_ref()
                    .and_then(|a| a.annotations.get("limit.interop/blob"))
                    .map_or(0, |v| v.len());
                ensure!(
                    got == m,
                    "reply of exactly {LIMIT} bytes: annotation of {got} bytes, want {m}"
                );
                Ok(())
            }
            // the server could not send it: try the other framing
            Err(nri::Error::Status {
                code: Code::ResourceExhausted,
                message,
                ..
            }) if !with_status => Err(message),
            Err(e) => Err(format!(
                "reply of exactly {LIMIT} bytes ({m}-byte annotation): {e}"
            )),
        };
        if outcome.is_ok() {
            break;
        }
    }
    outcome?;
    ensure!(h.is_connected(), "plugin dropped: {:?}", h.drop_reason());
    check_event_seq(&read_log(&log_e)?, &want)
}

fn sc_unsolicited_update(ctx: &mut Ctx) -> R {
    let received: Arc<Mutex<Vec<Vec<ContainerUpdate>>>> = Arc::default();
    let fail_them = Arc::new(AtomicBool::new(true));
    let (rec, fail) = (received.clone(), fail_them.clone());
    let rt = ctx
        .builder()
        .on_update_containers(move |updates| {
            lock(&rec).push(updates.to_vec());
            if fail.load(Ordering::SeqCst) {
                updates.to_vec()
            } else {
                Vec::new()
            }
        })
        .build();
    let log_e = ctx.path("unsol.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "unsol",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-un", &[]);
    let resp = h
        .create_container(
            &pod,
            &mk_ctr("ctr-un", &pod.id, &[("interop/unsolicited", "ctr-other")]),
        )
        .map_err(|e| format!("CreateContainer: {e}"))?;
    ensure!(
        h.is_connected(),
        "plugin dropped during CreateContainer: {:?}",
        h.drop_reason()
    );
    check_adjust("CreateContainer", &ContainerAdjustment::new(), &resp)?;
    let got = h.wait_unsolicited_updates(1, Duration::from_secs(3));
    ensure!(
        got.len() == 1,
        "plugin handle recorded {} unsolicited updates {:?}, want 1",
        got.len(),
        update_ids(&got)
    );
    check_update("unsolicited update", got.first(), "ctr-other", 128, false)?;
    {
        let calls = lock(&received);
        ensure!(
            calls.len() == 1 && calls[0].len() == 1,
            "on_update_containers calls: {:?}",
            calls.iter().map(|c| update_ids(c)).collect::<Vec<_>>()
        );
        check_update(
            "on_update_containers",
            calls[0].first(),
            "ctr-other",
            128,
            false,
        )?;
    }
    let es = wait_entries(&log_e, Duration::from_secs(3), "Unsolicited line", |es| {
        !filter_event(es, "Unsolicited").is_empty()
    })?;
    let u = &filter_event(&es, "Unsolicited")[0];
    ensure!(
        u.kv("ctr") == "ctr-other" && u.kv("failed") == "1" && u.kv("err") == "-",
        "plugin log {:?}, want \"Unsolicited ctr=ctr-other failed=1 err=-\"",
        u.raw
    );
    // now the callback accepts them
    fail_them.store(false, Ordering::SeqCst);
    h.create_container(
        &pod,
        &mk_ctr("ctr-un2", &pod.id, &[("interop/unsolicited", "ctr-other2")]),
    )
    .map_err(|e| format!("second CreateContainer: {e}"))?;
    let es = wait_entries(
        &log_e,
        Duration::from_secs(3),
        "second Unsolicited line",
        |es| filter_event(es, "Unsolicited").len() >= 2,
    )?;
    let u = &filter_event(&es, "Unsolicited")[1];
    ensure!(
        u.kv("ctr") == "ctr-other2" && u.kv("failed") == "0" && u.kv("err") == "-",
        "plugin log {:?}, want \"Unsolicited ctr=ctr-other2 failed=0 err=-\"",
        u.raw
    );
    let all = h.unsolicited_updates();
    ensure!(
        update_ids(&all) == ["ctr-other", "ctr-other2"],
        "unsolicited_updates() {:?}",
        update_ids(&all)
    );
    // still registered: a following CreateContainer reaches it
    h.create_container(&pod, &mk_ctr("ctr-after", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after the unsolicited updates: {e}"))?;
    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("CreateContainer", "pod-un", "ctr-un"),
            ex("CreateContainer", "pod-un", "ctr-un2"),
            ex("CreateContainer", "pod-un", "ctr-after"),
        ],
    )?;
    // a launched plugin's call arrives the same way (failed again)
    fail_them.store(true, Ordering::SeqCst);
    let log_l = ctx.path("unsol-launched.log");
    let hl = rt
        .launch(
            &ctx.plugin,
            "unsoll",
            "20",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    hl.create_container(
        &pod,
        &mk_ctr("ctr-unl", &pod.id, &[("interop/unsolicited", "ctr-l")]),
    )
    .map_err(|e| format!("CreateContainer (launched): {e}"))?;
    let got = hl.wait_unsolicited_updates(1, Duration::from_secs(3));
    ensure!(
        update_ids(&got) == ["ctr-l"],
        "launched plugin's unsolicited updates {:?}, want [ctr-l]",
        update_ids(&got)
    );
    check_update(
        "launched unsolicited update",
        got.first(),
        "ctr-l",
        128,
        false,
    )?;
    ensure!(
        h.unsolicited_updates().len() == 2,
        "the external plugin's handle recorded the launched plugin's update"
    );
    let es = wait_entries(&log_l, Duration::from_secs(3), "Unsolicited line", |es| {
        !filter_event(es, "Unsolicited").is_empty()
    })?;
    let u = &filter_event(&es, "Unsolicited")[0];
    ensure!(
        u.kv("ctr") == "ctr-l" && u.kv("failed") == "1" && u.kv("err") == "-",
        "launched plugin log {:?}, want \"Unsolicited ctr=ctr-l failed=1 err=-\"",
        u.raw
    );
    Ok(())
}

fn sc_handler_failure(ctx: &mut Ctx) -> R {
    ctx.allowed.push(FAIL_MSG);
    let rt = ctx.builder().build();
    let log_e = ctx.path("fail.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "fail",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let ok_pod = mk_pod("pod-ok", &[]);
    let fail_pod = mk_pod("pod-fail", &[("interop/fail", "yes")]);
    let fail_ctr = with_state(
        mk_ctr("ctr-fail", "pod-ok", &[("interop/fail", "yes")]),
        ContainerState::CONTAINER_RUNNING,
    );
    let mut want = Vec::new();
    expect_status_failure("CreateContainer", h.create_container(&ok_pod, &fail_ctr))?;
    want.push(ex("CreateContainer", "pod-ok", "ctr-fail"));
    for (ev, name) in [
        (Event::RUN_POD_SANDBOX, "RunPodSandbox"),
        (Event::STOP_POD_SANDBOX, "StopPodSandbox"),
        (Event::REMOVE_POD_SANDBOX, "RemovePodSandbox"),
    ] {
        expect_status_failure(name, h.state_change(ev, &fail_pod, None))?;
        want.push(ex(name, "pod-fail", "-"));
    }
    for (ev, name) in [
        (Event::POST_CREATE_CONTAINER, "PostCreateContainer"),
        (Event::START_CONTAINER, "StartContainer"),
        (Event::POST_START_CONTAINER, "PostStartContainer"),
        (Event::POST_UPDATE_CONTAINER, "PostUpdateContainer"),
        (Event::REMOVE_CONTAINER, "RemoveContainer"),
    ] {
        expect_status_failure(name, h.state_change(ev, &ok_pod, Some(&fail_ctr)))?;
        want.push(ex(name, "pod-ok", "ctr-fail"));
    }
    expect_status_failure(
        "UpdateContainer",
        h.update_container(&ok_pod, &fail_ctr, &LinuxResources::new()),
    )?;
    want.push(ex("UpdateContainer", "pod-ok", "ctr-fail"));
    expect_status_failure("StopContainer", h.stop_container(&ok_pod, &fail_ctr))?;
    want.push(ex("StopContainer", "pod-ok", "ctr-fail"));
    ensure!(
        h.is_connected(),
        "plugin dropped after handler errors: {:?}",
        h.drop_reason()
    );

    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    expect_status_failure(
        "CreateContainer (set)",
        set.create_container(&ok_pod, &fail_ctr),
    )?;
    want.push(ex("CreateContainer", "pod-ok", "ctr-fail"));
    ensure!(set.len() == 1, "the failing plugin left the set");
    let resp = set
        .create_container(
            &ok_pod,
            &mk_ctr("ctr-ok", "pod-ok", &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer after failures: {e}"))?;
    want.push(ex("CreateContainer", "pod-ok", "ctr-ok"));
    let added = resp
        .adjust
        .as_ref()
        .and_then(|a| a.annotations.get("fail.interop/added"));
    ensure!(
        added.map(String::as_str) == Some("yes"),
        "CreateContainer after failures: annotations {:?}",
        resp.adjust.as_ref().map(|a| &a.annotations)
    );
    check_event_seq(&read_log(&log_e)?, &want)
}

fn sc_slow_handler_dropped(ctx: &mut Ctx) -> R {
    const TIMEOUT: Duration = Duration::from_millis(500);
    ctx.expect_drops();
    let rt = ctx.builder().request_timeout(TIMEOUT).build();
    let (log_e, log_l) = (ctx.path("slow.log"), ctx.path("slow-launched.log"));
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, slot) = ctx.external(
        &l,
        &plugin,
        "slow",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-slow", &[]);
    let slow = mk_ctr(
        "ctr-slow",
        &pod.id,
        &[("interop/sleep-ms", "1500"), ("interop/adjust", "env")],
    );

    // (a) one external plugin: the call fails after the timeout, the plugin
    // is dropped (connection closed) and exits
    let start = Instant::now();
    let r = h.create_container(&pod, &slow);
    let elapsed = start.elapsed();
    ensure!(
        elapsed >= TIMEOUT - Duration::from_millis(50) && elapsed < Duration::from_millis(1400),
        "CreateContainer returned after {elapsed:?} with the {TIMEOUT:?} request timeout ({r:?})"
    );
    ensure!(
        matches!(r, Err(nri::Error::DeadlineExceeded { .. })),
        "CreateContainer: {:?}, want DeadlineExceeded",
        r.map(|_| "success")
    );
    ensure!(
        !h.is_connected(),
        "plugin still connected after the timeout"
    );
    let reason = h.drop_reason().unwrap_or_default();
    ensure!(reason.contains("CreateContainer"), "drop reason {reason:?}");
    let start = Instant::now();
    let r = h.create_container(&pod, &mk_ctr("ctr-next", &pod.id, &[]));
    ensure!(
        matches!(r, Err(nri::Error::ConnectionClosed(_)))
            && start.elapsed() < Duration::from_millis(100),
        "request to the dropped plugin: {:?} after {:?}, want ConnectionClosed at once",
        r.map(|_| "success"),
        start.elapsed()
    );
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "plugin process did not exit after the runtime closed its connection"
    );
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-slow", "ctr-slow")],
    )?;

    // (b) a launched plugin in a set: like v0.9.0, the set's call succeeds
    // as if the plugin had answered nothing, and the plugin is killed
    let hl = rt
        .launch(
            &ctx.plugin,
            "slowl",
            "20",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    let pid = hl.pid().ok_or("launched plugin without a pid")?;
    let set = PluginSet::new(&rt);
    set.add(hl).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let r = set.create_container(&pod, &slow);
    let elapsed = start.elapsed();
    ensure!(
        elapsed >= TIMEOUT - Duration::from_millis(50) && elapsed < Duration::from_millis(1400),
        "set CreateContainer returned after {elapsed:?} with the {TIMEOUT:?} request timeout"
    );
    let resp =
        r.map_err(|e| format!("set CreateContainer: {e} (v0.9.0 swallows fatal plugin errors)"))?;
    check_adjust(
        "set CreateContainer of the dropped plugin",
        &empty_adjustment(),
        &resp,
    )?;
    ensure!(
        set.is_empty(),
        "dropped plugin still in the set: {:?}",
        set.names()
    );
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "launched plugin {pid} not killed after the timeout"
    );
    check_event_seq(
        &read_log(&log_l)?,
        &[ex("CreateContainer", "pod-slow", "ctr-slow")],
    )?;
    let resp = set
        .create_container(&pod, &mk_ctr("ctr-next", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer without plugins: {e}"))?;
    check_adjust(
        "CreateContainer without plugins",
        &empty_adjustment(),
        &resp,
    )
}

fn sc_plugin_restart(ctx: &mut Ctx) -> R {
    ctx.expect_drops();
    let rt = ctx.builder().build();
    let pods = vec![mk_pod("pod-r0", &[]), mk_pod("pod-r1", &[])];
    let running = ContainerState::CONTAINER_RUNNING;
    rt.set_state(
        pods.clone(),
        vec![
            with_state(mk_ctr("ctr-r0", "pod-r0", &[]), running),
            with_state(mk_ctr("ctr-r1", "pod-r0", &[]), running),
            mk_ctr("ctr-r2", "pod-r1", &[]),
        ],
    );
    let log_e = ctx.path("restart.log");
    let cfg = format!("log={}\n", log_e.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h1, slot) = ctx.external(&l, &plugin, "restart", "10", &cfg)?;
    let set = PluginSet::new(&rt);
    set.add(h1).map_err(|e| e.to_string())?;
    ctx.procs[slot].kill();
    let old = set.get("10-restart").ok_or("10-restart not in the set")?;
    ensure!(
        old.wait_closed(Duration::from_secs(3)),
        "the runtime did not notice the killed plugin"
    );
    ensure!(!old.is_connected(), "killed plugin still connected");
    drop(old);
    let pod = &pods[1];
    let resp = set
        .create_container(pod, &mk_ctr("ctr-lost", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after the kill: {e}"))?;
    check_adjust("CreateContainer after the kill", &empty_adjustment(), &resp)?;
    ensure!(
        set.is_empty(),
        "killed plugin still in the set: {:?}",
        set.names()
    );

    let (h2, _) = ctx
        .external(&l, &plugin, "restart", "10", &cfg)
        .map_err(|e| format!("restarted plugin: {e}"))?;
    check_handle(&h2, "10-restart", false)?;
    set.add(h2).map_err(|e| e.to_string())?;
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 2, 3)?;
    check_preamble(&es, 2, 2, 3).map_err(|e| format!("after restart: {e}"))?;
    set.create_container(pod, &mk_ctr("ctr-new", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after restart: {e}"))?;
    ensure!(
        set.names() == ["10-restart"],
        "plugins {:?}, want [10-restart]",
        set.names()
    );
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-r1", "ctr-new")],
    )
}

fn sc_launched_plugin_killed(ctx: &mut Ctx) -> R {
    ctx.expect_drops();
    let rt = ctx.builder().build();
    let log_e = ctx.path("victim.log");
    let h = rt
        .launch(
            &ctx.plugin,
            "victim",
            "30",
            &format!("log={}\n", log_e.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    let pid = h.pid().ok_or("launched plugin without a pid")?;
    ensure!(pid != std::process::id(), "launched plugin has our pid");
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    sigkill(pid)?;
    let victim = set.get("30-victim").ok_or("30-victim not in the set")?;
    ensure!(
        victim.wait_closed(Duration::from_secs(3)),
        "the runtime did not notice the killed plugin"
    );
    ensure!(victim.pid().is_none(), "killed plugin still has a pid");
    drop(victim);
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "killed plugin {pid} not reaped"
    );
    let pod = mk_pod("pod-v", &[]);
    let resp = set
        .create_container(
            &pod,
            &mk_ctr("ctr-v", &pod.id, &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer after the kill: {e}"))?;
    check_adjust("CreateContainer after the kill", &empty_adjustment(), &resp)?;
    ensure!(
        set.is_empty(),
        "plugins {:?} after the kill, want none",
        set.names()
    );
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 0, 0)?;
    check_event_seq(&es, &[])
}

/// Shutdown (never sent by v0.9.0, sent by newer runtimes) is answered and
/// keeps the plugin; closing the connection makes an external plugin exit.
fn sc_shutdown(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("shut.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, slot) = ctx.external(
        &l,
        &plugin,
        "shut",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    h.shutdown().map_err(|e| format!("Shutdown: {e}"))?;
    ensure!(
        h.is_connected(),
        "plugin dropped after Shutdown: {:?}",
        h.drop_reason()
    );
    let pod = mk_pod("pod-sh", &[]);
    h.create_container(&pod, &mk_ctr("ctr-sh", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after Shutdown: {e}"))?;
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-sh", "ctr-sh")],
    )?;
    h.close();
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "external plugin did not exit when the runtime closed the connection"
    );
    let (h2, slot2) = ctx.external(&l, &plugin, "shut2", "11", "")?;
    drop(h2);
    ensure!(
        ctx.procs[slot2].wait_exit(Duration::from_secs(3)),
        "external plugin did not exit when its handle was dropped"
    );
    let hl = rt
        .launch(&ctx.plugin, "shutl", "20", "")
        .map_err(|e| format!("launch: {e}"))?;
    hl.shutdown()
        .map_err(|e| format!("Shutdown (launched): {e}"))?;
    ensure!(hl.is_connected(), "launched plugin dropped after Shutdown");
    Ok(())
}

/// An external plugin with a bad index is refused with an UNKNOWN status;
/// the runtime leaves the connection open and the plugin gives up by itself.
fn sc_registration_refused(ctx: &mut Ctx) -> R {
    ctx.allowed.push("refusing registration");
    let rt = ctx.builder().build();
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let slot = ctx.spawn_external(&l, &plugin, "badidx", "1", "")?;
    // A stub that checks the index itself (the Rust one) exits without
    // registering; the Go stub sends it and the runtime must refuse it.
    let gave_up_alone = ctx.procs[slot].wait_exit(Duration::from_millis(300));
    let start = Instant::now();
    let r = l.accept_timeout(if gave_up_alone {
        Duration::from_millis(100)
    } else {
        ACCEPT_TIMEOUT
    });
    match r {
        Err(nri::Error::RegistrationRefused { ref message, .. })
            if message.contains("invalid plugin index") => {}
        Err(_) if gave_up_alone => {}
        Err(e) => return Err(format!("bad index: {e}, want RegistrationRefused")),
        Ok(h) => return Err(format!("plugin with index \"1\" accepted as {}", h.name())),
    }
    ensure!(
        start.elapsed() < Duration::from_secs(2),
        "refusal took {:?}",
        start.elapsed()
    );
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "refused plugin did not give up{}",
        ctx.output_of(slot)
    );
    // the listener still serves the next plugin
    let (h, _) = ctx.external(&l, &plugin, "good", "10", "")?;
    check_handle(&h, "10-good", false)
}

/// A launched process that never registers is killed after the
/// registration timeout; an external connection that never registers is
/// closed.
fn sc_registration_timeout(ctx: &mut Ctx) -> R {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    ctx.allowed.push("did not register");
    const TIMEOUT: Duration = Duration::from_millis(300);
    let rt = ctx.builder().registration_timeout(TIMEOUT).build();
    let script = ctx.path("40-mute");
    fs::write(&script, "#!/bin/sh\nexec /bin/sleep 30\n").map_err(|e| e.to_string())?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let before = children();
    let start = Instant::now();
    let r = rt.launch(&script, "mute", "40", "");
    let elapsed = start.elapsed();
    match r {
        Err(nri::Error::DeadlineExceeded { ref method, .. }) if method == "RegisterPlugin" => {}
        other => {
            return Err(format!(
                "launching a mute process: {:?}, want DeadlineExceeded for RegisterPlugin",
                other.map(|h| h.name().to_string())
            ))
        }
    }
    ensure!(
        elapsed >= TIMEOUT - Duration::from_millis(20)
            && elapsed < TIMEOUT + Duration::from_secs(1),
        "registration timeout of {TIMEOUT:?} took {elapsed:?}"
    );
    let left: Vec<u32> = children().difference(&before).copied().collect();
    ensure!(
        left.is_empty(),
        "mute launched process not killed and reaped: {left:?}"
    );

    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let mut mute = std::os::unix::net::UnixStream::connect(l.path()).map_err(|e| e.to_string())?;
    match l.accept_timeout(Duration::from_secs(2)) {
        Err(nri::Error::DeadlineExceeded { ref method, .. }) if method == "RegisterPlugin" => {}
        other => {
            return Err(format!(
                "a mute external connection: {:?}, want DeadlineExceeded for RegisterPlugin",
                other.map(|h| h.name().to_string())
            ))
        }
    }
    mute.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match mute.read(&mut buf) {
        Ok(0) => Ok(()),
        other => Err(format!(
            "the mute connection was not closed by the runtime: read {other:?}"
        )),
    }
}

/// Our child processes (running or zombie).
fn children() -> BTreeSet<u32> {
    let me = std::process::id().to_string();
    let mut out = BTreeSet::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
                let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
                if fields.get(1) == Some(&me.as_str()) {
                    out.insert(pid);
                }
            }
        }
    }
    out
}

/// A configuration the plugin refuses fails Configure (a status from the
/// plugin): accepting or launching it fails, a launched plugin is killed
/// and reaped, an external one gives up.
fn sc_configure_failure(ctx: &mut Ctx) -> R {
    ctx.allowed.push("failed to configure plugin");
    let rt = ctx
        .builder()
        .plugin_config("badcfg", "this line has no equals sign\n")
        .build();
    let before = children();
    // The Go stub exits as soon as its Configure handler failed, racing its
    // own error reply: the runtime sees the status or the closed connection.
    let r = rt.launch(&ctx.plugin, "badcfgl", "20", "events=bogus\n");
    match r {
        Err(nri::Error::Status { code: Code::Unknown, ref message, .. }) if message.contains("bogus") => {}
        Err(nri::Error::ConnectionClosed(_)) => {}
        other => {
            return Err(format!(
                "launch with events=bogus: {:?}, want an UNKNOWN status naming the bad event, or the plugin gone",
                other.map(|h| h.name().to_string())
            ))
        }
    }
    let left: Vec<u32> = children().difference(&before).copied().collect();
    ensure!(
        left.is_empty(),
        "launched plugin not reaped after the failed Configure: {left:?}"
    );
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    match ctx.external(&l, &plugin, "badcfg", "10", "") {
        Err(e) if e.contains("missing '='") || e.contains("connection closed") => {}
        Err(e) => {
            return Err(format!(
                "external with a bad config: {e}, want the plugin's Configure error"
            ))
        }
        Ok((h, _)) => return Err(format!("{} accepted with a bad config", h.name())),
    }
    let slot = ctx.procs.len() - 1;
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "external plugin still running after its failed Configure{}",
        ctx.output_of(slot)
    );
    Ok(())
}

/// A reply over 4 MiB cannot be sent by the plugin's ttrpc server: the Go
/// one gives up on the connection, so the call fails fatally and the
/// plugin is dropped, as with the reference (closed or timed out).
fn sc_oversized_reply_dropped(ctx: &mut Ctx) -> R {
    ctx.expect_drops();
    let rt = ctx
        .builder()
        .request_timeout(Duration::from_secs(1))
        .build();
    let log_e = ctx.path("big.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, slot) = ctx.external(
        &l,
        &plugin,
        "big",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-big", &[]);
    let n = (4 << 20).to_string();
    let r = h.create_container(
        &pod,
        &mk_ctr("ctr-big", &pod.id, &[("interop/reply-bytes", &n)]),
    );
    match r {
        // the Go ttrpc server gives up on the connection (or never answers)
        Err(nri::Error::DeadlineExceeded { .. }) | Err(nri::Error::ConnectionClosed(_)) => {
            ensure!(
                !h.is_connected(),
                "plugin still connected after a fatal error"
            );
            ensure!(
                ctx.procs[slot].wait_exit(Duration::from_secs(3)),
                "plugin process did not exit after the runtime dropped it"
            );
        }
        // a server that reports the oversized reply as a status: not fatal
        Err(nri::Error::Status {
            code: Code::ResourceExhausted,
            ..
        }) => {
            ensure!(
                h.is_connected(),
                "plugin dropped for a status: {:?}",
                h.drop_reason()
            );
            h.create_container(&pod, &mk_ctr("ctr-next", &pod.id, &[]))
                .map_err(|e| format!("CreateContainer after the oversized reply: {e}"))?;
            return check_event_seq(
                &read_log(&log_e)?,
                &[
                    ex("CreateContainer", "pod-big", "ctr-big"),
                    ex("CreateContainer", "pod-big", "ctr-next"),
                ],
            );
        }
        other => {
            return Err(format!(
            "CreateContainer with a 4 MiB reply: {:?}, want a fatal error (or RESOURCE_EXHAUSTED)",
            other.map(|_| "success")
        ))
        }
    }
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-big", "ctr-big")],
    )
}

/// Requests from several threads to one plugin are sent one at a time.
fn sc_serialized_requests(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("serial.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "serial",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-ser", &[]);
    let start = Instant::now();
    let results: Vec<R> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (h, pod) = (&h, &pod);
                s.spawn(move || {
                    let c = mk_ctr(&format!("ctr-{i}"), &pod.id, &[("interop/sleep-ms", "150")]);
                    h.create_container(pod, &c)
                        .map(|_| ())
                        .map_err(|e| format!("ctr-{i}: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|j| j.join().unwrap_or_else(|_| Err("panic".into())))
            .collect()
    });
    let elapsed = start.elapsed();
    for r in results {
        r?;
    }
    ensure!(
        elapsed >= Duration::from_millis(4 * 150 - 20),
        "4 requests of 150 ms each took {elapsed:?}: they overlapped"
    );
    let es = read_log(&log_e)?;
    ensure!(
        filter_event(&es, "CreateContainer").len() == 4,
        "plugin log: {}",
        summarize(&es)
    );
    Ok(())
}

/// A plugin's UpdateContainers sent right after its reply waits while the
/// runtime still relays the event to later plugins (the v0.9.0 global
/// lock), then goes through; with `block_updates_during_events(false)` it
/// does not wait.
fn sc_unsolicited_during_relay(ctx: &mut Ctx) -> R {
    for block in [true, false] {
        let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let t2 = times.clone();
        let rt = ctx
            .builder()
            .block_updates_during_events(block)
            .on_update_containers(move |_| {
                lock(&t2).push(Instant::now());
                Vec::new()
            })
            .build();
        let shared = ctx.path(&format!("relay-{block}.log"));
        let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
        let l = rt
            .listen(ctx.path(&format!("nri-{block}.sock")))
            .map_err(|e| e.to_string())?;
        let plugin = ctx.plugin.clone();
        let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
        let (a, _) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
        let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
        let set = PluginSet::new(&rt);
        set.add(a).map_err(|e| e.to_string())?;
        set.add(b).map_err(|e| e.to_string())?;
        let pod = mk_pod("pod-rel", &[]);
        let c = mk_ctr(
            "ctr-rel",
            &pod.id,
            &[
                ("interop/unsolicited", "ctr-x"),
                ("interop/sleep-ms", "300"),
            ],
        );
        let start = Instant::now();
        set.create_container(&pod, &c)
            .map_err(|e| format!("CreateContainer (block={block}): {e}"))?;
        let es = wait_entries(
            &shared,
            Duration::from_secs(3),
            "two Unsolicited lines",
            |es| filter_event(es, "Unsolicited").len() >= 2,
        )?;
        for u in filter_event(&es, "Unsolicited") {
            ensure!(
                u.kv("ctr") == "ctr-x" && u.kv("failed") == "0" && u.kv("err") == "-",
                "block={block}: plugin log {:?}, want \"Unsolicited ctr=ctr-x failed=0 err=-\"",
                u.raw
            );
        }
        let times = lock(&times).clone();
        ensure!(
            times.len() == 2,
            "block={block}: {} callback calls, want 2",
            times.len()
        );
        let first = times
            .iter()
            .map(|t| t.duration_since(start))
            .min()
            .unwrap_or_default();
        if block {
            ensure!(
                first >= Duration::from_millis(550),
                "an update was served {first:?} after the relay started, while B (300 ms) was still handling the event"
            );
        } else {
            ensure!(
                first < Duration::from_millis(550),
                "with block_updates_during_events(false) A's update waited {first:?}"
            );
        }
        ensure!(
            set.len() == 2,
            "block={block}: plugins left the set: {:?}",
            set.names()
        );
    }
    Ok(())
}

fn sc_two_plugins_ordering(ctx: &mut Ctx) -> R {
    ctx.allowed.push(FAIL_MSG);
    let rt = ctx.builder().build();
    let shared = ctx.path("shared.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    // B (index 20) connects first, then A (10); C (05) is launched last
    let (b, _) = ctx
        .external(&l, &bin_b, "b", "20", &cfg("B"))
        .map_err(|e| format!("plugin B: {e}"))?;
    let (a, _) = ctx
        .external(&l, &plugin, "a", "10", &cfg("A"))
        .map_err(|e| format!("plugin A: {e}"))?;
    let c = rt
        .launch(&plugin, "c", "05", &cfg("C"))
        .map_err(|e| format!("plugin C: {e}"))?;
    let set = PluginSet::new(&rt);
    for h in [b, a, c] {
        set.add(h).map_err(|e| e.to_string())?;
    }
    ensure!(
        set.names() == ["05-c", "10-a", "20-b"],
        "invocation order {:?}, want [05-c 10-a 20-b]",
        set.names()
    );
    let order = ["C", "A", "B"];
    let pod = mk_pod("pod-abc", &[]);
    let (res, want) = lifecycle(&Target::Set(&set), &pod, &|| {
        mk_ctr("ctr-abc", "pod-abc", &[("interop/adjust", "env")])
    })?;
    let mut want_adj = empty_adjustment();
    for p in order {
        want_adj
            .annotations
            .insert(format!("{p}.interop/added"), "yes".into());
        want_adj.env.push(kv(&format!("INTEROP_{p}"), "yes"));
    }
    check_adjust("merged CreateContainer", &want_adj, &res.create)?;

    // conflicting adjustments fail the operation, later plugins not called
    let r = set.create_container(
        &pod,
        &mk_ctr("ctr-full", "pod-abc", &[("interop/adjust", "full")]),
    );
    match r {
        Err(nri::Error::Handler(m)) if m.contains("05-c") && m.contains("10-a") => {}
        other => {
            return Err(format!(
            "conflicting full adjustments of C and A: {:?}, want a conflict naming 05-c and 10-a",
            other.map(|_| "success")
        ))
        }
    }
    // a failing plugin stops the relay
    expect_status_failure(
        "CreateContainer failing in C",
        set.create_container(
            &pod,
            &mk_ctr("ctr-fail", "pod-abc", &[("interop/fail", "yes")]),
        ),
    )?;
    ensure!(set.len() == 3, "plugins left the set: {:?}", set.names());

    let es = read_log(&shared)?;
    for p in order {
        check_preamble(&with_prefix(&es, p), 0, 0, 0).map_err(|e| format!("plugin {p}: {e}"))?;
    }
    let mut expected: Vec<(&str, Expect)> = Vec::new();
    for w in &want {
        for p in order {
            expected.push((p, w.clone()));
        }
    }
    expected.push(("C", ex("CreateContainer", "pod-abc", "ctr-full")));
    expected.push(("A", ex("CreateContainer", "pod-abc", "ctr-full")));
    expected.push(("C", ex("CreateContainer", "pod-abc", "ctr-fail")));
    let got = event_lines(&es);
    ensure!(
        got.len() == expected.len(),
        "shared log has {} event lines, want {}: {}",
        got.len(),
        expected.len(),
        summarize(&got)
    );
    for (i, (g, (p, w))) in got.iter().zip(&expected).enumerate() {
        ensure!(
            g.prefix == *p && g.event == w.0 && g.kv("pod") == w.1 && g.kv("ctr") == w.2,
            "shared log line {} is {:?}, want \"{p} {} pod={} ctr={}\" (plugins in index order C, A, B; relay stops at a conflict or failure)",
            i + 1,
            g.raw,
            w.0,
            w.1,
            w.2
        );
    }
    Ok(())
}

/// Two plugins updating the same container, collected like the v0.9.0
/// reference: the second one's update of an item the first one set is a
/// conflict that fails the operation, unless the update asks to ignore
/// failures (then it is dropped and ignore_failure stays set only if both
/// asked); a CreateContainer reply updating the container being created
/// fails the creation.
fn sc_two_plugins_updates(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let shared = ctx.path("upd2.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (a, _) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
    let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    set.add(b).map_err(|e| e.to_string())?;
    let running = ContainerState::CONTAINER_RUNNING;
    let conflict = |what: &str, r: nri::Result<Vec<ContainerUpdate>>| match r {
        Err(nri::Error::Handler(m)) if m.contains("10-a") && m.contains("20-b") => Ok(()),
        other => Err(format!(
            "{what}: {:?}, want a conflict between 10-a and 20-b",
            other.map(|u| update_ids(&u))
        )),
    };

    // StopContainer: both update c2's CPU shares
    let pod_ign = mk_pod(
        "pod-ign",
        &[("interop/update", "c2"), ("interop/ignore-failure", "yes")],
    );
    let r = set
        .stop_container(&pod_ign, &with_state(mk_ctr("s1", "pod-ign", &[]), running))
        .map_err(|e| format!("StopContainer with ignore_failure updates: {e}"))?;
    ensure!(
        r.update.len() == 1,
        "StopContainer(s1): updates {:?}, want [c2]",
        update_ids(&r.update)
    );
    check_shape(
        "StopContainer(s1)",
        &r.update[0],
        &shaped_update("c2", 256, true, false, None),
    )?;
    let pod_upd = mk_pod("pod-upd", &[("interop/update", "c2")]);
    conflict(
        "StopContainer(s2) without ignore_failure",
        set.stop_container(&pod_upd, &with_state(mk_ctr("s2", "pod-upd", &[]), running))
            .map(|r| r.update),
    )?;
    // UpdateContainer of c3 updating c3 itself, from both
    let res = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(1 << 30),
            ..Default::default()
        }),
        ..Default::default()
    };
    conflict(
        "UpdateContainer(c3) updating itself from both plugins",
        set.update_container(
            &pod_upd,
            &with_state(
                mk_ctr("c3", "pod-upd", &[("interop/update", "c3")]),
                running,
            ),
            &res,
        )
        .map(|r| r.update),
    )?;
    let r = set
        .update_container(
            &pod_upd,
            &with_state(
                mk_ctr(
                    "c3i",
                    "pod-upd",
                    &[("interop/update", "c3i"), ("interop/ignore-failure", "yes")],
                ),
                running,
            ),
            &res,
        )
        .map_err(|e| format!("UpdateContainer(c3i) with ignore_failure: {e}"))?;
    ensure!(
        r.update.len() == 1,
        "UpdateContainer(c3i): updates {:?}",
        update_ids(&r.update)
    );
    check_shape(
        "UpdateContainer(c3i)",
        &r.update[0],
        &shaped_update("c3i", 256, true, false, Some(&res)),
    )?;
    // CreateContainer updating another container, from both
    conflict(
        "CreateContainer(k1) updating c7 from both plugins",
        set.create_container(
            &pod_upd,
            &mk_ctr("k1", "pod-upd", &[("interop/update", "c7")]),
        )
        .map(|r| r.update),
    )?;
    let r = set
        .create_container(
            &pod_upd,
            &mk_ctr(
                "k2",
                "pod-upd",
                &[("interop/update", "c7"), ("interop/ignore-failure", "yes")],
            ),
        )
        .map_err(|e| format!("CreateContainer(k2) with ignore_failure updates: {e}"))?;
    ensure!(
        r.update.len() == 1,
        "CreateContainer(k2): updates {:?}",
        update_ids(&r.update)
    );
    check_shape(
        "CreateContainer(k2)",
        &r.update[0],
        &shaped_update("c7", 256, true, false, None),
    )?;
    // CreateContainer updating the container being created
    match set.create_container(&pod_upd, &mk_ctr("k3", "pod-upd", &[("interop/update", "k3")])) {
        Err(nri::Error::Handler(m)) if m.contains("during creation") && m.contains("10-a") => {}
        other => {
            return Err(format!(
                "CreateContainer(k3) updating k3: {:?}, want a failure naming 10-a (update during creation)",
                other.map(|r| update_ids(&r.update))
            ))
        }
    }
    ensure!(set.len() == 2, "plugins left the set: {:?}", set.names());
    // who saw what: a conflict or a failure stops the relay
    let es = read_log(&shared)?;
    let got: Vec<String> = event_lines(&es)
        .iter()
        .map(|e| format!("{} {} {}", e.prefix, e.event, e.kv("ctr")))
        .collect();
    let want = [
        "A StopContainer s1",
        "B StopContainer s1",
        "A StopContainer s2",
        "B StopContainer s2",
        "A UpdateContainer c3",
        "B UpdateContainer c3",
        "A UpdateContainer c3i",
        "B UpdateContainer c3i",
        "A CreateContainer k1",
        "B CreateContainer k1",
        "A CreateContainer k2",
        "B CreateContainer k2",
        "A CreateContainer k3",
    ];
    ensure!(got == want, "shared log {got:?}, want {want:?}");
    Ok(())
}

/// A plugin that dies does not stop the relay: the operation succeeds with
/// the other plugins' replies, as with the reference.
fn sc_two_plugins_one_dies(ctx: &mut Ctx) -> R {
    ctx.expect_drops();
    let rt = ctx.builder().build();
    let shared = ctx.path("dies.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (a, slot_a) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
    let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    set.add(b).map_err(|e| e.to_string())?;
    // killed, and relayed to at once (whether or not the runtime noticed)
    ctx.procs[slot_a].kill();
    let pod = mk_pod("pod-dies", &[]);
    let resp = set
        .create_container(
            &pod,
            &mk_ctr("ctr-dies", "pod-dies", &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer with A dead: {e}"))?;
    let mut want = empty_adjustment();
    want.annotations
        .insert("B.interop/added".into(), "yes".into());
    want.env.push(kv("INTEROP_B", "yes"));
    check_adjust("CreateContainer with A dead", &want, &resp)?;
    ensure!(
        set.names() == ["20-b"],
        "plugins {:?}, want [20-b]",
        set.names()
    );
    let es = read_log(&shared)?;
    let got: Vec<String> = event_lines(&es)
        .iter()
        .map(|e| format!("{} {} {}", e.prefix, e.event, e.kv("ctr")))
        .collect();
    ensure!(got == ["B CreateContainer ctr-dies"], "shared log {got:?}");
    Ok(())
}

// ---------------------------------------------------------------------------
// Runner.

struct Opts {
    plugin: PathBuf,
    plugin2: Option<PathBuf>,
    run: Option<regex::Regex>,
    verbose: bool,
}

fn usage() -> ! {
    eprintln!("usage: interop-runtime -plugin PATH [-plugin2 PATH] [-run REGEX] [-v]");
    std::process::exit(2)
}

fn parse_args() -> Opts {
    let mut args = std::env::args().skip(1);
    let (mut plugin, mut plugin2, mut run, mut verbose) = (None, None, None, false);
    while let Some(a) = args.next() {
        match a.trim_start_matches('-') {
            "plugin" => plugin = args.next(),
            "plugin2" => plugin2 = args.next(),
            "run" => run = args.next(),
            "v" => verbose = true,
            _ => usage(),
        }
    }
    let abs = |p: String| {
        let p = PathBuf::from(p);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        if !p.is_file() {
            eprintln!("interop-runtime: {} is not an executable file", p.display());
            std::process::exit(2);
        }
        p
    };
    let run = run.map(|r| {
        regex::Regex::new(&r).unwrap_or_else(|e| {
            eprintln!("interop-runtime: bad -run: {e}");
            std::process::exit(2)
        })
    });
    Opts {
        plugin: abs(plugin.unwrap_or_else(|| usage())),
        plugin2: plugin2.map(abs),
        run,
        verbose,
    }
}

static DIR_SEQ: AtomicUsize = AtomicUsize::new(0);

fn run_scenario(opts: &Opts, f: Scenario, timeout: Duration) -> R {
    let dir = std::env::temp_dir().join(format!(
        "nri-rt-interop-{}-{}",
        std::process::id(),
        DIR_SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut ctx = Ctx {
        dir: dir.clone(),
        plugin: opts.plugin.clone(),
        plugin2: opts.plugin2.clone(),
        verbose: opts.verbose,
        procs: Vec::new(),
        allow_drops: false,
        allowed: Vec::new(),
    };
    let mark = log_mark();
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut ctx)))
            .unwrap_or_else(|p| {
                Err(format!(
                    "panic: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ))
            });
        // let a plugin that dies right after its last reply show in the log
        thread::sleep(Duration::from_millis(50));
        let _ = tx.send((r, ctx));
    });
    let (mut r, ctx) = match rx.recv_timeout(timeout) {
        Ok(x) => x,
        Err(_) => {
            return Err(format!(
                "scenario did not finish within {timeout:?} (left running; temp dir {})",
                dir.display()
            ))
        }
    };
    if r.is_ok() && !ctx.allow_drops {
        // the scenario's handles are gone by now: closes by the runtime
        // itself are not warnings, anything else is
        for (level, msg) in log_since(mark) {
            let suspicious =
                level <= log::Level::Warn || DROP_PATTERNS.iter().any(|p| msg.contains(p));
            if suspicious && !ctx.allowed.iter().any(|a| msg.contains(a)) {
                r = Err(format!(
                    "unexpected runtime log line: {level} {}",
                    trunc(&msg, 300)
                ));
                break;
            }
        }
    }
    if r.is_err() && ctx.verbose {
        ctx.dump_outputs();
    }
    let keep = ctx.verbose;
    drop(ctx); // kills the external plugins still running
    if keep {
        eprintln!("    (temp dir kept: {})", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    r
}

fn main() {
    let opts = parse_args();
    RECORDER.verbose.store(opts.verbose, Ordering::Relaxed);
    if log::set_logger(&RECORDER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let started = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in SCENARIOS {
        if opts.run.as_ref().is_some_and(|r| !r.is_match(name)) {
            continue;
        }
        if opts.verbose {
            eprintln!("=== {name}");
        }
        if started.elapsed() > RUN_BUDGET {
            failed += 1;
            println!("FAIL {name}: not run: the whole run went over {RUN_BUDGET:?}");
            continue;
        }
        let t = Instant::now();
        let timeout = SCENARIO_TIMEOUT.min(RUN_BUDGET.saturating_sub(started.elapsed()));
        match run_scenario(&opts, *f, timeout) {
            Ok(()) => {
                passed += 1;
                println!("PASS {name} ({}ms)", t.elapsed().as_millis());
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || (passed == 0 && opts.run.is_none()) {
        std::process::exit(1);
    }
}
