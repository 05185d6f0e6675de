//! Private network namespaces for the network-device-injector tests, so
//! that they never touch the host's network: a thread that enters a new
//! network namespace of its own ([`PrivateNs`]) stands for a pod, and the
//! test body runs on another such thread that stands for the host
//! ([`as_host`]); threads it starts (a plugin's stub and workers) inherit
//! its namespace. `ip` (iproute2) and `nsenter` (util-linux) look into them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

/// A network namespace kept alive by a parked thread.
pub struct PrivateNs {
    path: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PrivateNs {
    /// A new, empty network namespace (only `lo`, down); `None` where this
    /// process may not create one (not root).
    pub fn new() -> Option<PrivateNs> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            // SAFETY: unshare(2) of the network namespace affects only this
            // thread; gettid(2) has no preconditions.
            let entered = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
            let tid = unsafe { libc::gettid() };
            let _ = ready_tx.send(entered.then_some(tid));
            let _ = stop_rx.recv();
        });
        let tid = ready_rx.recv().ok().flatten();
        let path =
            tid.map(|tid| PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id())));
        let ns = PrivateNs {
            path: path.clone().unwrap_or_default(),
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        path.map(|_| ns)
    }

    /// The namespace's path, as a runtime gives a pod's.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateNs {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `body` on a thread in a new network namespace of its own, handing it
/// that namespace's path; `None` (with a note on stderr) where this process
/// may not create namespaces.
pub fn as_host<R: Send + 'static>(body: impl FnOnce(&Path) -> R + Send + 'static) -> Option<R> {
    let outcome = thread::spawn(move || {
        // SAFETY: as in PrivateNs::new.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return None;
        }
        let tid = unsafe { libc::gettid() };
        let path = PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id()));
        Some(body(&path))
    })
    .join();
    match outcome {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            eprintln!("NOTE: cannot create network namespaces (not root?): network device moves not tested here");
            None
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// `ip ARGS` in the namespace at `ns`; its output, or a panic with its
/// error output.
pub fn ip(ns: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("ip")
        .args(args)
        .output()
        .expect("nsenter and ip (util-linux, iproute2) are installed");
    assert!(
        out.status.success(),
        "ip {args:?} in {}: {}",
        ns.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds a link named `name` in the namespace at `ns`: a dummy device, or
/// where the kernel has none (no `dummy` module), one end of a veth pair
/// whose other end is `<name>p`.
pub fn add_link(ns: &Path, name: &str) {
    let dummy = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["ip", "link", "add", name, "type", "dummy"])
        .output()
        .expect("nsenter and ip (util-linux, iproute2) are installed");
    if !dummy.status.success() {
        let peer = format!("{name}p");
        ip(
            ns,
            &["link", "add", name, "type", "veth", "peer", "name", &peer],
        );
    }
}

/// The links of the namespace at `ns`: `(name, up, alias)` each.
pub fn links(ns: &Path) -> Vec<(String, bool, String)> {
    let text = ip(ns, &["-o", "link", "show"]);
    text.lines()
        .map(|line| {
            // "2: eth1: <BROADCAST,NOARP,UP,LOWER_UP> mtu ... \    alias dummy0"
            let mut parts = line.splitn(3, ": ");
            parts.next();
            let name = parts.next().unwrap_or("").to_string();
            let name = name.split('@').next().unwrap_or("").to_string();
            let rest = parts.next().unwrap_or("");
            let flags = rest.split('>').next().unwrap_or("");
            let up = flags.trim_start_matches('<').split(',').any(|f| f == "UP");
            let alias = rest
                .split("alias ")
                .nth(1)
                .map(|a| a.trim().to_string())
                .unwrap_or_default();
            (name, up, alias)
        })
        .collect()
}

/// The link named `name` in the namespace at `ns`, if there is one.
pub fn link(ns: &Path, name: &str) -> Option<(String, bool, String)> {
    links(ns).into_iter().find(|(n, _, _)| n == name)
}
