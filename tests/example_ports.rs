//! The ports of upstream's network-device-injector, network-logger, rdt,
//! writable-cgroups and differ samples, driven through `nri::runtime` as a
//! runtime would: annotations, configuration and pods in; adjustments,
//! moved network devices and log lines out.
//!
//! Each example keeps its plugin in `examples/<name>/plugin.rs` (and the
//! modules beside it); this file includes them and runs each plugin
//! in-process over a socket pair, or launches the built example binary.

#[path = "common/example_bins.rs"]
mod example_bins;
#[path = "common/running.rs"]
mod running;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use nri::runtime::Runtime;
use nri::stub::{Plugin, Stub};
use nri::Error;
use running::connect;

// The examples' modules, at the crate root as in each example's main.rs
// (their plugin.rs finds its siblings through `super::`).
#[allow(dead_code)]
#[path = "../examples/differ/plugin.rs"]
mod differ;
#[allow(dead_code)]
#[path = "../examples/differ/godiff.rs"]
mod godiff;
#[allow(dead_code)]
#[path = "../examples/differ/gotree.rs"]
mod gotree;
#[allow(dead_code)]
#[path = "../examples/network-device-injector/hostdev.rs"]
mod hostdev;
#[allow(dead_code)]
#[path = "../examples/writable-cgroups/mountinfo.rs"]
mod mountinfo;
#[allow(dead_code)]
#[path = "../examples/network-device-injector/netlink.rs"]
mod netlink;
#[allow(dead_code)]
#[path = "../examples/network-device-injector/plugin.rs"]
mod network_device_injector;
#[allow(dead_code)]
#[path = "../examples/network-logger/plugin.rs"]
mod network_logger;
#[allow(dead_code)]
#[path = "../examples/differ/prototext.rs"]
mod prototext;
#[allow(dead_code)]
#[path = "../examples/rdt/plugin.rs"]
mod rdt;
#[allow(dead_code)]
#[path = "../examples/writable-cgroups/plugin.rs"]
mod writable_cgroups;
#[allow(dead_code)]
#[path = "../examples/differ/yamldiff.rs"]
mod yamldiff;

#[path = "example_ports/deploy_tests.rs"]
mod deploy_tests;
#[path = "example_ports/differ_tests.rs"]
mod differ_tests;
#[path = "example_ports/netns.rs"]
mod netns;
#[path = "example_ports/network_device_injector_tests.rs"]
mod network_device_injector_tests;
#[path = "example_ports/network_logger_tests.rs"]
mod network_logger_tests;
#[path = "example_ports/rdt_tests.rs"]
mod rdt_tests;
#[path = "example_ports/writable_cgroups_tests.rs"]
mod writable_cgroups_tests;

/// Upper bound of any wait in these tests.
const STEP: Duration = Duration::from_secs(5);

/// The message of a plugin's error status.
fn status_message(err: Error) -> String {
    match err {
        Error::Status { message, .. } => message,
        other => panic!("expected an error status from the plugin, got {other}"),
    }
}

/// Lines collected from a plugin.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn push(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A fresh temporary directory.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nri-example-ports-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The path of example `name`, built for these tests
/// (`tests/common/example_bins.rs`).
fn example_binary(name: &str) -> PathBuf {
    example_bins::example_binary(name, &PROCESS_EXAMPLES)
}

/// The examples these tests run as processes.
const PROCESS_EXAMPLES: [&str; 3] = ["network-logger", "writable-cgroups", "differ"];
