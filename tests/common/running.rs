//! A plugin served by its stub on a thread and connected to an
//! `nri::runtime::Runtime` over a socket pair: the harness of the tests
//! that drive the examples in process (`tests/examples.rs`,
//! `tests/example_ports.rs`) and of `tests/runtime.rs`, included by each
//! with `#[path]`.

use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};

use nri::runtime::{PluginHandle, Runtime};
use nri::stub::{Plugin, Stub};

/// A plugin served by its stub on a thread, connected to a runtime.
pub struct Running {
    handle: PluginHandle,
    /// The stub serving the plugin (tests may query or stop it).
    pub stub: Stub,
    thread: Option<JoinHandle<nri::Result<()>>>,
}

impl Running {
    /// Stops the stub and returns what its `run()` returned.
    #[allow(dead_code)]
    pub fn stop(mut self) -> nri::Result<()> {
        self.stub.stop();
        self.thread
            .take()
            .map_or(Ok(()), |t| t.join().expect("stub thread panicked"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stub.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::ops::Deref for Running {
    type Target = PluginHandle;
    fn deref(&self) -> &PluginHandle {
        &self.handle
    }
}

/// Connects `plugin` as `idx-name` to `runtime` over a socket pair.
pub fn connect(runtime: &Runtime, plugin: impl Plugin, name: &str, idx: &str) -> Running {
    let (handle, stub, thread) = serve_pair(runtime, plugin, name, idx);
    Running {
        handle,
        stub,
        thread: Some(thread),
    }
}

/// Serves `plugin` as `idx-name` on a thread, connected to `runtime` over a
/// socket pair: the runtime's handle, the stub, and the thread serving it
/// (for tests that need the handle itself, e.g. to add it to a set).
pub fn serve_pair(
    runtime: &Runtime,
    plugin: impl Plugin,
    name: &str,
    idx: &str,
) -> (PluginHandle, Stub, JoinHandle<nri::Result<()>>) {
    let (runtime_end, plugin_end) = UnixStream::pair().expect("socket pair");
    let stub = Stub::builder(plugin)
        .plugin_name(name)
        .plugin_index(idx)
        .connection(plugin_end)
        .build()
        .expect("stub builds");
    let serving = stub.clone();
    let thread = thread::spawn(move || serving.run());
    let handle = runtime
        .accept_stream(runtime_end)
        .expect("plugin registers, configures and synchronizes");
    (handle, stub, thread)
}
