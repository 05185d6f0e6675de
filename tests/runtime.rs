//! Tests of `nri::runtime`: the runtime side driving a plugin through
//! registration, Configure, Synchronize, events and UpdateContainers, and
//! judging it like the reference runtime of the emulated NRI version
//! (v0.12.5 unless a test says otherwise).
//!
//! The plugin side is the hand-rolled test plugin of `common::plugin` (on
//! `nri::ttrpc` only), so these tests do not depend on the stub. Every wait
//! is bounded. The tests are grouped in `tests/runtime/`.

mod common;
// Only its `serve_pair` is used here.
#[allow(dead_code)]
#[path = "common/running.rs"]
mod running;

#[path = "runtime/judging.rs"]
mod judging;
#[path = "runtime/launch.rs"]
mod launch;
#[path = "runtime/policy.rs"]
mod policy;
#[path = "runtime/registration.rs"]
mod registration;
#[path = "runtime/set.rs"]
mod set;
#[path = "runtime/stub_plugin.rs"]
mod stub_plugin;
#[path = "runtime/sync.rs"]
mod sync;
#[path = "runtime/updates.rs"]
mod updates;
#[path = "runtime/v012.rs"]
mod v012;
#[path = "runtime/validation.rs"]
mod validation;

use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::plugin::{Spec, TestPlugin};
use nri::api::{
    ConfigureResponse, Container, ContainerAdjustment, ContainerUpdate, CreateContainerResponse,
    Event, EventMask, LinuxResources, PodSandbox, SynchronizeResponse, UpdateContainersRequest,
    UpdateContainersResponse, RUNTIME_SERVICE,
};
use nri::runtime::{Emulation, PluginHandle, PluginSet, Runtime};
use nri::ttrpc::{Code, Status};
use nri::Error;
use protobuf::MessageField;

/// Upper bound for one blocking wait.
const STEP: Duration = Duration::from_secs(5);

/// Starts a test plugin on one end of a socket pair and lets `rt` accept it
/// on the other.
fn accept_pair(rt: &Runtime, spec: Spec) -> (nri::Result<PluginHandle>, TestPlugin) {
    let (rt_end, plugin_end) = UnixStream::pair().expect("socket pair");
    let plugin = TestPlugin::start(plugin_end, spec);
    (rt.accept_stream(rt_end), plugin)
}

fn test_runtime() -> nri::runtime::RuntimeBuilder {
    Runtime::builder()
        .name("test-runtime")
        .version("9.9.9")
        .registration_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(2))
}

fn pod(id: &str) -> PodSandbox {
    let mut p = PodSandbox::new();
    p.id = id.to_string();
    p.name = format!("{id}-name");
    p.namespace = "default".into();
    p
}

fn ctr(id: &str, pod: &str) -> Container {
    let mut c = Container::new();
    c.id = id.to_string();
    c.pod_sandbox_id = pod.to_string();
    c.name = format!("{id}-name");
    c
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nri-runtime-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
