//! The example plugins, driven through `nri::runtime` as a runtime would:
//! annotations and configuration in, adjustments and updates out.
//!
//! Each example keeps its plugin type in `examples/<name>/plugin.rs`; this
//! file includes those modules and runs each plugin in-process over a
//! socket pair. One test launches a built example binary the way a runtime
//! launches pre-installed plugins.

#[path = "common/example_bins.rs"]
mod example_bins;
#[path = "common/running.rs"]
mod running;

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nri::api::{
    Container, ContainerState, ContainerUpdate, Event, EventMask, LinuxResources, OptionalExt,
    PodSandbox,
};
use nri::runtime::Runtime;
use nri::stub::Stub;
use nri::Error;
use running::{connect, Running};

#[allow(dead_code)]
#[path = "../examples/cpu-rebalancer/plugin.rs"]
mod cpu_rebalancer;
#[allow(dead_code)]
#[path = "../examples/device-injector/plugin.rs"]
mod device_injector;
#[allow(dead_code)]
#[path = "../examples/hook-injector/plugin.rs"]
mod hook_injector;
#[allow(dead_code)]
#[path = "../examples/logger/plugin.rs"]
mod logger;
#[allow(dead_code)]
#[path = "../examples/template/plugin.rs"]
mod template;
#[allow(dead_code)]
#[path = "../examples/ulimit-adjuster/plugin.rs"]
mod ulimit_adjuster;

#[path = "examples/cpu_rebalancer_tests.rs"]
mod cpu_rebalancer_tests;
#[path = "examples/deploy_tests.rs"]
mod deploy_tests;
#[path = "examples/device_injector_linux_tests.rs"]
mod device_injector_linux_tests;
#[path = "examples/device_injector_tests.rs"]
mod device_injector_tests;
#[path = "examples/hook_injector_tests.rs"]
mod hook_injector_tests;
#[path = "examples/logger_tests.rs"]
mod logger_tests;
#[path = "examples/template_tests.rs"]
mod template_tests;
#[path = "examples/ulimit_adjuster_tests.rs"]
mod ulimit_adjuster_tests;

/// Upper bound of any wait in these tests.
const STEP: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

fn runtime_with_config(name: &str, config: &str) -> Runtime {
    Runtime::builder()
        .name("examples-test")
        .version("1.0")
        .plugin_config(name, config)
        .build()
}

fn pod(id: &str, name: &str, annotations: &[(&str, &str)]) -> PodSandbox {
    let mut pod = PodSandbox::new();
    pod.id = id.into();
    pod.name = name.into();
    pod.namespace = "default".into();
    pod.uid = format!("uid-{id}");
    pod.annotations = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pod
}

fn container(id: &str, pod: &PodSandbox, name: &str) -> Container {
    let mut ctr = Container::new();
    ctr.id = id.into();
    ctr.pod_sandbox_id = pod.id.clone();
    ctr.name = name.into();
    ctr.state = ContainerState::CONTAINER_CREATED.into();
    ctr
}

fn running(mut ctr: Container) -> Container {
    ctr.state = ContainerState::CONTAINER_RUNNING.into();
    ctr
}

/// A fresh temporary directory.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nri-examples-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn status_message(err: Error) -> String {
    match err {
        Error::Status { message, .. } => message,
        other => panic!("expected an error status from the plugin, got {other}"),
    }
}

fn cpuset(update: &ContainerUpdate) -> &str {
    &update.linux.resources.cpu.cpus
}

fn cpusets(updates: &[ContainerUpdate]) -> HashMap<String, String> {
    updates
        .iter()
        .map(|u| (u.container_id.clone(), cpuset(u).to_string()))
        .collect()
}

/// The path of example `name`, built for these tests
/// (`tests/common/example_bins.rs`).
fn example_binary(name: &str) -> PathBuf {
    example_bins::example_binary(name, &PROCESS_EXAMPLES)
}

/// The examples the tests run as processes.
const PROCESS_EXAMPLES: [&str; 3] = ["logger", "memory-defaulter", "device-injector"];
