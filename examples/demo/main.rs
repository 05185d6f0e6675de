//! `demo`: NRI end to end with nothing installed.
//!
//! ```text
//! cargo run --example demo              # what the plugins changed
//! cargo run --example demo -- -verbose  # and the plugins' own logs
//! ```
//!
//! An in-process runtime ([`nri::runtime`]) plays containerd's part; five of
//! the example plugins run in this process too, each on its own stub and
//! socket pair, exactly as they would against a real runtime. The runtime
//! synchronizes them with a running container, then walks a pod and a
//! container through their lifecycle, calling the plugins in index order
//! like containerd does, and prints what each plugin adjusted and updated.

// The plugins of the other examples; the demo does not use all they offer.
#[allow(dead_code)]
#[path = "../cpu-rebalancer/plugin.rs"]
mod cpu_rebalancer;
#[allow(dead_code)]
#[path = "../device-injector/plugin.rs"]
mod device_injector;
#[allow(dead_code)]
#[path = "../hook-injector/plugin.rs"]
mod hook_injector;
#[allow(dead_code)]
#[path = "../template/plugin.rs"]
mod template;
#[allow(dead_code)]
#[path = "../ulimit-adjuster/plugin.rs"]
mod ulimit_adjuster;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nri::api::{
    Container, ContainerAdjustment, ContainerState, ContainerUpdate, Event, EventMask, Hook,
    LinuxResources, OptionalExt, PodSandbox,
};
use nri::cli::{Cli, Flag};
use nri::runtime::{PluginHandle, Runtime};
use nri::stub::{Plugin, Stub};

type DemoResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// One plugin under the demo's runtime.
struct Running {
    handle: PluginHandle,
    stub: Stub,
    thread: Option<JoinHandle<nri::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stub.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts `plugin` on a stub of its own, connected to `runtime` through a
/// socket pair, and lets the runtime register, configure and synchronize it.
fn connect(runtime: &Runtime, plugin: impl Plugin, name: &str, idx: &str) -> DemoResult<Running> {
    let (runtime_end, plugin_end) = UnixStream::pair()?;
    let stub = Stub::builder(plugin)
        .plugin_name(name)
        .plugin_index(idx)
        .connection(plugin_end)
        .build()?;
    let serving = stub.clone();
    let thread = std::thread::spawn(move || serving.run());
    let handle = runtime.accept_stream(runtime_end)?;
    Ok(Running {
        handle,
        stub,
        thread: Some(thread),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse(
        "demo",
        "Runs example NRI plugins against an in-process runtime and shows what they change.",
        &[] as &[Flag],
    );
    if cli.verbose {
        let _ = nri::logging::init("plugins");
    }
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> DemoResult {
    println!("NRI demo: an in-process runtime (nri::runtime) and five example plugins,");
    println!("each served by its own nri::stub::Stub over a socket pair.\n");

    // A hook file for the hook injector, in a scratch directory.
    let hooks_dir = std::env::temp_dir().join(format!("nri-demo-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&hooks_dir)?;
    let _cleanup = RemoveOnDrop(hooks_dir.clone());
    std::fs::write(
        hooks_dir.join("50-nginx.json"),
        r#"{ "version": "1.0.0",
             "hook": { "path": "/bin/sh", "args": ["sh", "-c", "echo started >/dev/kmsg"] },
             "when": { "commands": ["nginx$"] },
             "stages": ["poststart"] }"#,
    )?;

    // The node as the runtime knows it: one pod with one running container.
    let monitoring = pod("pod-mon", "monitoring", &[]);
    let agent = running(container(
        "ctr-agent",
        &monitoring,
        "agent",
        &["/bin/agent"],
    ));
    let runtime = Runtime::builder()
        .name("nri-demo")
        .version(env!("CARGO_PKG_VERSION"))
        .request_timeout(Duration::from_secs(2))
        .plugin_config("cpu-rebalancer", "cpus: 0-3")
        .build();
    runtime.set_state(vec![monitoring.clone()], vec![agent.clone()]);
    println!(
        "runtime {} {}: pod {}/{} with container {} running\n",
        runtime.name(),
        runtime.version(),
        monitoring.namespace,
        monitoring.name,
        agent.name
    );

    // Plugins, in index order, the order the runtime calls them in. The
    // template plugin changes nothing; it records every event it sees.
    let journal = Arc::new(template::Template::with_journal(256 << 10));
    let plugins = [
        connect(
            &runtime,
            device_injector::DeviceInjector,
            "device-injector",
            "10",
        )?,
        connect(
            &runtime,
            ulimit_adjuster::UlimitAdjuster,
            "ulimit-adjuster",
            "20",
        )?,
        connect(
            &runtime,
            hook_injector::HookInjector::new(vec![hooks_dir.clone()])?,
            "hook-injector",
            "30",
        )?,
        connect(
            &runtime,
            Arc::new(cpu_rebalancer::CpuRebalancer::new(vec![0], false)),
            "cpu-rebalancer",
            "50",
        )?,
        connect(&runtime, Arc::clone(&journal), "template", "90")?,
    ];
    println!("Registered, configured and synchronized:");
    for p in &plugins {
        let events = p.handle.events();
        let events = if events == EventMask::ALL {
            "every event".to_string()
        } else {
            events.to_string()
        };
        println!("  {:<20} subscribed to {events}", p.handle.name());
        print_updates(
            "    Synchronize reply:",
            p.handle.sync_updates(),
            std::slice::from_ref(&agent),
        );
    }

    // A pod whose annotations ask for devices, a mount and rlimits.
    let web = pod(
        "pod-web",
        "web",
        &[
            (
                "devices.noderesource.dev/container.nginx",
                "- path: /dev/nri-null\n  type: c\n  major: 1\n  minor: 3\n  file_mode: 0666\n",
            ),
            (
                "mounts.noderesource.dev/container.nginx",
                "- source: /srv/www\n  destination: /usr/share/nginx/html\n  type: bind\n  options: [rbind, ro]\n",
            ),
            (
                "ulimits.noderesource.dev/container.nginx",
                "- type: nofile\n  hard: 4096\n  soft: 1024\n",
            ),
        ],
    );
    let nginx = container(
        "ctr-nginx",
        &web,
        "nginx",
        &["/usr/sbin/nginx", "-g", "daemon off;"],
    );
    let known = [agent.clone(), nginx.clone()];

    step("RunPodSandbox", &format!("{}/{}", web.namespace, web.name));
    for p in subscribed(&plugins, Event::RUN_POD_SANDBOX) {
        p.handle.run_pod_sandbox(&web)?;
    }
    print_notified(&plugins, Event::RUN_POD_SANDBOX);

    step("CreateContainer", &format!("{}/{}", web.name, nginx.name));
    print!("  annotations of pod {}:", web.name);
    let mut annotations: Vec<_> = web.annotations.iter().collect();
    annotations.sort();
    for (k, v) in annotations {
        print!(
            "\n    {k}:\n      {}",
            v.trim_end().replace('\n', "\n      ")
        );
    }
    println!();
    for p in subscribed(&plugins, Event::CREATE_CONTAINER) {
        let reply = p.handle.create_container(&web, &nginx)?;
        let changes = describe_adjustment(&reply.adjust);
        println!("  {}:", p.handle.name());
        if changes.is_empty() {
            println!("    (no changes)");
        }
        for line in changes {
            println!("    {line}");
        }
        print_updates("    updates to other containers:", &reply.update, &known);
    }

    for (event, what) in [
        (Event::POST_CREATE_CONTAINER, "PostCreateContainer"),
        (Event::START_CONTAINER, "StartContainer"),
        (Event::POST_START_CONTAINER, "PostStartContainer"),
    ] {
        step(what, &format!("{}/{}", web.name, nginx.name));
        for p in subscribed(&plugins, event) {
            p.handle.state_change(event, &web, Some(&nginx))?;
        }
        print_notified(&plugins, event);
    }
    let nginx = running(nginx);

    step(
        "UpdateContainer",
        &format!("{}/{} (memory limit 512 MiB)", web.name, nginx.name),
    );
    let mut resources = LinuxResources::new();
    resources
        .memory
        .mut_or_insert_default()
        .limit
        .set_value(Some(512 << 20));
    for p in subscribed(&plugins, Event::UPDATE_CONTAINER) {
        let reply = p.handle.update_container(&web, &nginx, &resources)?;
        print_updates(&format!("  {}:", p.handle.name()), &reply.update, &known);
    }
    print_notified(&plugins, Event::UPDATE_CONTAINER);

    step(
        "PostUpdateContainer",
        &format!("{}/{}", web.name, nginx.name),
    );
    for p in subscribed(&plugins, Event::POST_UPDATE_CONTAINER) {
        p.handle.post_update_container(&web, &nginx)?;
    }
    print_notified(&plugins, Event::POST_UPDATE_CONTAINER);

    step(
        "RemoveContainer",
        &format!("{}/{} (it exited on its own)", monitoring.name, agent.name),
    );
    for p in subscribed(&plugins, Event::REMOVE_CONTAINER) {
        let before = p.handle.unsolicited_updates().len();
        p.handle.remove_container(&monitoring, &agent)?;
        if p.handle.name() != "50-cpu-rebalancer" {
            println!("  {}: notified", p.handle.name());
            continue;
        }
        println!(
            "  {}: notified; after its reply it calls UpdateContainers:",
            p.handle.name()
        );
        let updates = p
            .handle
            .wait_unsolicited_updates(before + 1, Duration::from_secs(2));
        print_updates("    unsolicited updates:", &updates[before..], &known);
    }

    step("StopContainer", &format!("{}/{}", web.name, nginx.name));
    for p in subscribed(&plugins, Event::STOP_CONTAINER) {
        let reply = p.handle.stop_container(&web, &nginx)?;
        println!("  {}: {} updates", p.handle.name(), reply.update.len());
    }

    step("RemoveContainer", &format!("{}/{}", web.name, nginx.name));
    for p in subscribed(&plugins, Event::REMOVE_CONTAINER) {
        p.handle.remove_container(&web, &nginx)?;
    }
    print_notified(&plugins, Event::REMOVE_CONTAINER);

    for (event, what) in [
        (Event::STOP_POD_SANDBOX, "StopPodSandbox"),
        (Event::REMOVE_POD_SANDBOX, "RemovePodSandbox"),
    ] {
        step(what, &format!("{}/{}", web.namespace, web.name));
        for p in subscribed(&plugins, event) {
            p.handle.state_change(event, &web, None)?;
        }
        print_notified(&plugins, event);
    }

    println!("\nWhat 90-template saw, in order:");
    for line in journal.seen() {
        println!("  {line}");
    }
    println!(
        "\nAll plugins still connected: {}",
        plugins.iter().all(|p| p.handle.is_connected())
    );
    println!(
        "Next: README.md (writing and deploying a plugin), examples/*/plugin.rs (the plugins)."
    );
    Ok(())
}

fn step(event: &str, subject: &str) {
    println!("\n== {event} {subject}");
}

fn subscribed(plugins: &[Running], event: Event) -> impl Iterator<Item = &Running> {
    plugins
        .iter()
        .filter(move |p| p.handle.is_subscribed(event))
}

fn print_notified(plugins: &[Running], event: Event) {
    let names: Vec<&str> = subscribed(plugins, event)
        .map(|p| p.handle.name())
        .collect();
    if names.is_empty() {
        println!("  (no plugin subscribed to this event)");
    } else {
        println!("  notified: {}", names.join(", "));
    }
}

fn print_updates(title: &str, updates: &[ContainerUpdate], known: &[Container]) {
    if updates.is_empty() {
        return;
    }
    println!("{title}");
    let indent = " ".repeat(title.len() - title.trim_start().len() + 2);
    for u in updates {
        let name = known
            .iter()
            .find(|c| c.id == u.container_id)
            .map_or(u.container_id.as_str(), |c| c.name.as_str());
        let changes = describe_resources(&u.linux.resources);
        println!(
            "{indent}{name} ({}): {}",
            u.container_id,
            changes.join(", ")
        );
    }
}

/// One line per change an adjustment asks for.
fn describe_adjustment(a: &ContainerAdjustment) -> Vec<String> {
    let mut lines = Vec::new();
    for (k, v) in &a.annotations {
        match k.strip_prefix('-') {
            Some(key) => lines.push(format!("- annotation {key}")),
            None => lines.push(format!("+ annotation {k}={v}")),
        }
    }
    for kv in &a.env {
        match kv.key.strip_prefix('-') {
            Some(key) => lines.push(format!("- env {key}")),
            None => lines.push(format!("+ env {}={}", kv.key, kv.value)),
        }
    }
    for m in &a.mounts {
        lines.push(format!(
            "+ mount {} -> {} ({}{}{})",
            m.source,
            m.destination,
            m.type_,
            if m.options.is_empty() { "" } else { "; " },
            m.options.join(",")
        ));
    }
    for d in &a.linux.devices {
        let mut line = format!("+ device {} ({} {}:{}", d.path, d.type_, d.major, d.minor);
        if let Some(mode) = d.file_mode.value() {
            line.push_str(&format!(", mode {mode:04o}"));
        }
        if let Some(uid) = d.uid.value() {
            line.push_str(&format!(", uid {uid}"));
        }
        if let Some(gid) = d.gid.value() {
            line.push_str(&format!(", gid {gid}"));
        }
        line.push(')');
        lines.push(line);
    }
    for d in &a.CDI_devices {
        lines.push(format!("+ CDI device {}", d.name));
    }
    for r in &a.rlimits {
        lines.push(format!(
            "+ rlimit {} hard {} soft {}",
            r.type_, r.hard, r.soft
        ));
    }
    let hooks = &a.hooks;
    let stages: [(&str, &Vec<Hook>); 6] = [
        ("prestart", &hooks.prestart),
        ("createRuntime", &hooks.create_runtime),
        ("createContainer", &hooks.create_container),
        ("startContainer", &hooks.start_container),
        ("poststart", &hooks.poststart),
        ("poststop", &hooks.poststop),
    ];
    for (stage, list) in stages {
        for h in list {
            lines.push(format!("+ {stage} hook {} {:?}", h.path, h.args));
        }
    }
    for change in describe_resources(&a.linux.resources) {
        lines.push(format!("+ {change}"));
    }
    if !a.linux.cgroups_path.is_empty() {
        lines.push(format!("+ cgroups path {}", a.linux.cgroups_path));
    }
    if let Some(adj) = a.linux.oom_score_adj.value() {
        lines.push(format!("+ OOM score adjustment {adj}"));
    }
    lines
}

/// The resource settings present in `r`.
fn describe_resources(r: &LinuxResources) -> Vec<String> {
    let mut out = Vec::new();
    let mem = &r.memory;
    if let Some(v) = mem.limit.value() {
        out.push(format!("memory limit {v}"));
    }
    if let Some(v) = mem.reservation.value() {
        out.push(format!("memory reservation {v}"));
    }
    if let Some(v) = mem.swap.value() {
        out.push(format!("memory+swap limit {v}"));
    }
    let cpu = &r.cpu;
    if let Some(v) = cpu.shares.value() {
        out.push(format!("CPU shares {v}"));
    }
    if let Some(v) = cpu.quota.value() {
        out.push(format!("CPU quota {v}"));
    }
    if let Some(v) = cpu.period.value() {
        out.push(format!("CPU period {v}"));
    }
    if !cpu.cpus.is_empty() {
        out.push(format!("cpuset {}", cpu.cpus));
    }
    if !cpu.mems.is_empty() {
        out.push(format!("memory nodes {}", cpu.mems));
    }
    if r.pids.is_some() {
        out.push(format!("pids limit {}", r.pids.limit));
    }
    for h in &r.hugepage_limits {
        out.push(format!("hugepages {} limit {}", h.page_size, h.limit));
    }
    if let Some(class) = r.blockio_class.value() {
        out.push(format!("block I/O class {class}"));
    }
    if let Some(class) = r.rdt_class.value() {
        out.push(format!("RDT class {class}"));
    }
    for (k, v) in &r.unified {
        out.push(format!("cgroup v2 {k}={v}"));
    }
    out
}

fn pod(id: &str, name: &str, annotations: &[(&str, &str)]) -> PodSandbox {
    let mut pod = PodSandbox::new();
    pod.id = id.into();
    pod.name = name.into();
    pod.namespace = "default".into();
    pod.uid = format!("{id}-uid");
    pod.annotations = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pod
}

fn container(id: &str, pod: &PodSandbox, name: &str, args: &[&str]) -> Container {
    let mut ctr = Container::new();
    ctr.id = id.into();
    ctr.pod_sandbox_id = pod.id.clone();
    ctr.name = name.into();
    ctr.args = args.iter().map(|a| a.to_string()).collect();
    ctr.state = ContainerState::CONTAINER_CREATED.into();
    ctr
}

fn running(mut ctr: Container) -> Container {
    ctr.state = ContainerState::CONTAINER_RUNNING.into();
    ctr
}

/// Removes a scratch directory when the demo ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
