//! Synchronize against a plugin with a small `max_sync_state_bytes`: with
//! items of every size, tiny ones included, the plugin's peak RSS stays
//! under twice the bound over its baseline, also when its handler decodes
//! the whole state while it still holds the received chunks
//! (`SyncState::decode`). The plugin runs in a child process (this test
//! binary, run as the `child_plugin` test), so that its peak RSS is its
//! own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nri::api::{Container, Event, EventMask, Mount, PodSandbox};
use nri::runtime::Runtime;
use nri::stub::{Context, HandlerResult, Plugin, Stub, SyncState};

const SOCKET_ENV: &str = "NRI_ADVERSARIAL_SYNC_SOCKET";
const BUDGET_ENV: &str = "NRI_ADVERSARIAL_SYNC_BUDGET";
/// The plugin's `max_sync_state_bytes`.
const BUDGET: usize = 12 << 20;

/// Decodes everything and keeps it, with the chunks, until it replies.
struct Hoarder;

impl Plugin for Hoarder {
    fn events(&self) -> EventMask {
        EventMask::from_events(&[Event::START_CONTAINER])
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<nri::api::ContainerUpdate>> {
        let (pods, containers) = state.decode()?;
        assert_eq!(pods.len(), state.pod_count());
        assert_eq!(containers.len(), state.container_count());
        drop((pods, containers, state));
        Ok(Vec::new())
    }
}

/// The plugin side, when run as a child by the tests below.
#[test]
fn child_plugin() {
    let Ok(socket) = std::env::var(SOCKET_ENV) else {
        return;
    };
    let budget: usize = std::env::var(BUDGET_ENV)
        .ok()
        .and_then(|b| b.parse().ok())
        .expect("a budget");
    let stub = Stub::builder(Hoarder)
        .plugin_name("hoarder")
        .plugin_index("10")
        .socket_path(socket)
        .max_sync_state_bytes(budget)
        .build()
        .expect("stub");
    let _ = stub.run();
    // Stay until the test has read the peak RSS and kills us (bounded).
    std::thread::sleep(Duration::from_secs(60));
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Outcome {
    synchronized: bool,
    hwm_kb: u64,
}

/// Synchronizes a child plugin with `pods` and `containers`; returns
/// whether it took the state and its peak RSS.
fn synchronize(name: &str, pods: Vec<PodSandbox>, containers: Vec<Container>) -> Outcome {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("nri-adv-sync-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("nri.sock");
    let rt = Runtime::builder()
        .name("adversary")
        .version("v0.12.5")
        .registration_timeout(Duration::from_secs(20))
        .request_timeout(Duration::from_secs(20))
        .build();
    rt.set_state(pods, containers);
    let listener = rt.listen(&socket).expect("listen");
    let mut child: Child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "synchronize_memory::child_plugin",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SOCKET_ENV, &socket)
        .env(BUDGET_ENV, BUDGET.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("child plugin");
    let synchronized = match listener.accept_timeout(Duration::from_secs(60)) {
        Ok(h) => {
            let ok = h.is_connected();
            std::mem::forget(h);
            ok
        }
        Err(_) => false,
    };
    let hwm_kb = status_kb(child.id(), "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    Outcome {
        synchronized,
        hwm_kb,
    }
}

fn pod(i: usize) -> PodSandbox {
    PodSandbox {
        id: format!("pod-{i}"),
        name: format!("pod-{i}"),
        namespace: "default".into(),
        ..Default::default()
    }
}

/// `n` containers from `make`, on one pod per 10.
fn state(n: usize, make: impl Fn(usize) -> Container) -> (Vec<PodSandbox>, Vec<Container>) {
    let pods = (0..n.div_ceil(10)).map(pod).collect();
    let containers = (0..n)
        .map(|i| Container {
            pod_sandbox_id: format!("pod-{}", i / 10),
            ..make(i)
        })
        .collect();
    (pods, containers)
}

fn tiny(i: usize) -> Container {
    Container {
        id: format!("{i:x}"),
        ..Default::default()
    }
}

fn typical(i: usize) -> Container {
    Container {
        id: format!("{i:064x}"),
        name: format!("ctr-{i}"),
        args: vec!["/bin/sh".into(), "-c".into(), "sleep infinity".into()],
        env: (0..20)
            .map(|k| format!("ENV_{k}=value-{k}-abcdefghij"))
            .collect(),
        mounts: (0..6)
            .map(|k| Mount {
                destination: format!("/mnt/{k}"),
                source: format!("/var/lib/kubelet/pods/{i}/volumes/{k}"),
                type_: "bind".into(),
                options: vec!["rbind".into(), "rw".into()],
                ..Default::default()
            })
            .collect(),
        labels: (0..4)
            .map(|k| (format!("label-{k}"), format!("v{k}")))
            .collect(),
        ..Default::default()
    }
}

fn large(i: usize) -> Container {
    Container {
        id: format!("{i:x}"),
        env: vec![format!("BLOB={}", "x".repeat(256 << 10))],
        ..Default::default()
    }
}

/// Empty mounts: the largest decoded form per wire byte an item can have.
fn empty_mounts(i: usize) -> Container {
    Container {
        id: format!("{i:x}"),
        mounts: vec![Mount::default(); 2000],
        ..Default::default()
    }
}

/// A state: its name, how many containers, how each is made, and whether
/// the plugin takes it.
type Case = (&'static str, usize, fn(usize) -> Container, bool);

#[test]
fn peak_rss_stays_under_twice_the_bound_whatever_the_item_sizes() {
    let baseline = synchronize("empty", Vec::new(), Vec::new());
    assert!(baseline.synchronized, "an empty state must be taken");
    let limit_kb = 2 * (BUDGET as u64 >> 10) + baseline.hwm_kb;
    // Each kind of item, in a state the plugin can take and in one that
    // would decode to far more than the bound.
    // The "near" states are sized to about 80 % of the bound, by what
    // one item can hold decoded (its encoding, its index entry and its
    // decoded form, as the stub charges them); the "huge" ones encode to
    // less than the bound but decode to far more.
    let near = |make: fn(usize) -> Container| {
        let c = make(7);
        let bytes = protobuf::Message::write_to_bytes(&c).expect("encodes");
        let decoded = nri::ttrpc::decoded_size_bound::<Container>(&bytes).expect("bound");
        let per_item =
            bytes.len() as u64 + 3 * (12 + std::mem::size_of::<Container>() as u64) + decoded;
        ((BUDGET as u64 * 8 / 10) / per_item) as usize
    };
    let cases: Vec<Case> = vec![
        ("tiny-near", near(tiny), tiny, true),
        ("tiny-huge", 200_000, tiny, false),
        ("typical-near", near(typical), typical, true),
        ("typical-huge", 12_000, typical, false),
        ("large-near", near(large), large, true),
        ("large-huge", 60, large, false),
        ("empty-mounts-near", near(empty_mounts), empty_mounts, true),
        ("empty-mounts-huge", 300, empty_mounts, false),
    ];
    let mut report = Vec::new();
    for (name, n, make, taken) in cases {
        let (pods, containers) = state(n, make);
        let got = synchronize(name, pods, containers);
        report.push(format!(
            "{name}: {n} containers, synchronized {}, peak RSS {} kB (baseline {} kB, limit {limit_kb} kB)",
            got.synchronized, got.hwm_kb, baseline.hwm_kb
        ));
        assert!(got.hwm_kb > 0, "{name}: no peak RSS read");
        assert!(
            got.hwm_kb <= limit_kb,
            "{name}: peak RSS {} kB over {limit_kb} kB\n{}",
            got.hwm_kb,
            report.join("\n")
        );
        assert_eq!(got.synchronized, taken, "{name}\n{}", report.join("\n"));
    }
    eprintln!("{}", report.join("\n"));
}
