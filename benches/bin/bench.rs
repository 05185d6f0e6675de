//! The `nri` benchmark program (run it through `benches/run.sh`).
//!
//! Subcommands (each prints `RESULT <key> <value>` lines):
//!
//! - `driver-a --plugin PATH [--calls N] [--state-calls N] [--warmup N] [--sync 1000,10000]`:
//!   driver A, our `nri::runtime`, launching the plugin binary as a
//!   pre-installed plugin (socket on fd 3) and measuring CreateContainer,
//!   StateChange, Synchronize, the idle plugin and its start-up;
//! - `floor --req BYTES --resp BYTES [--n N]`: ping-pong of raw bytes
//!   between two processes over a Unix socket (no framing, no protobuf);
//! - `ttrpc --impl ours|theirs [--req BYTES] [--resp BYTES] [--n N]`: raw
//!   ttrpc round trips between two processes, with our `nri::ttrpc` client
//!   and server or with the `ttrpc` crate's sync client and server;
//! - `wire-sizes`: the bytes one CreateContainer request and reply of the
//!   benchmark occupy on the socket (mux + ttrpc headers and envelopes);
//! - `suite ...`: runs all of the above (and Go driver B) several times,
//!   takes medians and writes the report (see `benches/run.sh`).

#[path = "common.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nri::api::{
    CreateContainerRequest, CreateContainerResponse, Event, SynchronizeRequest, PLUGIN_SERVICE,
};
use nri::runtime::Runtime;
use nri::ttrpc::{ConnectionBuilder, Framing, Request, Response, Services};
use protobuf::{Message, MessageField};

type Res<T> = std::result::Result<T, String>;

// ---------------------------------------------------------------------------
// Heap accounting for `alloc-profile` (off unless that subcommand runs)

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// In-process evidence for the report: what decoding the benchmark's
/// messages costs in heap bytes and allocations (the plugin does the same
/// decoding with the same generated code).
fn alloc_profile(args: &Args) {
    let n = args.num("n", 10_000);
    COUNTING.store(true, Ordering::SeqCst);
    let (pods, ctrs) = common::state(n);
    // What nri::runtime's Synchronize does before sending anything: clone
    // the whole state into one request and encode it (only to find it over
    // 4 MiB when it is large), as src/runtime/sync.rs does.
    let t = Instant::now();
    let req = SynchronizeRequest {
        pods: pods.to_vec(),
        containers: ctrs.to_vec(),
        ..Default::default()
    };
    let bytes = req.write_to_bytes().unwrap_or_else(|e| fail(e));
    result(
        "sync_runtime_clone_encode_all_ms",
        t.elapsed().as_secs_f64() * 1e3,
    );
    drop(req);
    drop((pods, ctrs));
    let (live0, allocs0) = (LIVE.load(Ordering::SeqCst), ALLOCS.load(Ordering::SeqCst));
    let t = Instant::now();
    let decoded = SynchronizeRequest::parse_from_bytes(&bytes).unwrap_or_else(|e| fail(e));
    let decode_time = t.elapsed();
    let (live1, allocs1) = (LIVE.load(Ordering::SeqCst), ALLOCS.load(Ordering::SeqCst));
    result("sync_decode_ms", decode_time.as_secs_f64() * 1e3);
    result(
        "sync_encoded_bytes_per_container",
        bytes.len() as f64 / n as f64,
    );
    result(
        "sync_decoded_heap_bytes_per_container",
        (live1 - live0) as f64 / n as f64,
    );
    result(
        "sync_decode_allocs_per_container",
        (allocs1 - allocs0) as f64 / n as f64,
    );
    result(
        "container_struct_bytes",
        std::mem::size_of::<nri::api::Container>() as f64,
    );
    let t = Instant::now();
    drop(decoded);
    result("sync_drop_ms", t.elapsed().as_secs_f64() * 1e3);

    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    let req = CreateContainerRequest {
        pod: MessageField::some(pod),
        container: MessageField::some(ctr),
        ..Default::default()
    };
    let bytes = req.write_to_bytes().unwrap_or_else(|e| fail(e));
    let allocs0 = ALLOCS.load(Ordering::SeqCst);
    let decoded = CreateContainerRequest::parse_from_bytes(&bytes).unwrap_or_else(|e| fail(e));
    let allocs1 = ALLOCS.load(Ordering::SeqCst);
    let reply = CreateContainerResponse {
        adjust: MessageField::some(common::adjust()),
        ..Default::default()
    };
    let out = reply.write_to_bytes().unwrap_or_else(|e| fail(e));
    let allocs2 = ALLOCS.load(Ordering::SeqCst);
    drop((decoded, out));
    result("create_decode_allocs", (allocs1 - allocs0) as f64);
    result("create_handler_encode_allocs", (allocs2 - allocs1) as f64);
    COUNTING.store(false, Ordering::SeqCst);

    // CPU work per CreateContainer with no I/O at all, one thread.
    let iters = args.num("iters", 20_000);
    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    // Plugin side: decode the envelope and the request, run the handler,
    // encode the reply and its envelope.
    let envelope = Request {
        service: PLUGIN_SERVICE.to_string(),
        method: "CreateContainer".to_string(),
        payload: bytes.clone(),
        timeout_nano: 2_000_000_000,
        ..Default::default()
    }
    .write_to_bytes()
    .unwrap_or_else(|e| fail(e));
    let mut sink = 0usize;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters / 5 {
            let env = Request::parse_from_bytes(&envelope).unwrap_or_else(|e| fail(e));
            let req =
                CreateContainerRequest::parse_from_bytes(&env.payload).unwrap_or_else(|e| fail(e));
            sink += req.container.env.len();
            let reply = CreateContainerResponse {
                adjust: MessageField::some(common::adjust()),
                ..Default::default()
            };
            let resp = Response {
                payload: reply.write_to_bytes().unwrap_or_else(|e| fail(e)),
                ..Default::default()
            };
            sink += resp.write_to_bytes().unwrap_or_else(|e| fail(e)).len();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / (iters / 5) as f64);
    }
    result("create_plugin_work_us", best);
    // Driver A side: clone the pod and container into the request (as
    // PluginHandle::create_container does), encode it and its envelope,
    // decode the reply.
    let reply_bytes = Response {
        payload: CreateContainerResponse {
            adjust: MessageField::some(common::adjust()),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_else(|e| fail(e)),
        ..Default::default()
    }
    .write_to_bytes()
    .unwrap_or_else(|e| fail(e));
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters / 5 {
            let req = CreateContainerRequest {
                pod: MessageField::some(pod.clone()),
                container: MessageField::some(ctr.clone()),
                ..Default::default()
            };
            let env = Request {
                service: PLUGIN_SERVICE.to_string(),
                method: "CreateContainer".to_string(),
                payload: req.write_to_bytes().unwrap_or_else(|e| fail(e)),
                timeout_nano: 2_000_000_000,
                ..Default::default()
            };
            sink += env.write_to_bytes().unwrap_or_else(|e| fail(e)).len();
            let resp = Response::parse_from_bytes(&reply_bytes).unwrap_or_else(|e| fail(e));
            let r = CreateContainerResponse::parse_from_bytes(&resp.payload)
                .unwrap_or_else(|e| fail(e));
            sink += r.adjust.env.len();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / (iters / 5) as f64);
    }
    result("create_driver_a_work_us", best);
    // Of which: the clone of the pod and the container.
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters / 5 {
            let req = CreateContainerRequest {
                pod: MessageField::some(pod.clone()),
                container: MessageField::some(ctr.clone()),
                ..Default::default()
            };
            sink += req.container.env.len();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / (iters / 5) as f64);
    }
    result("create_driver_a_clone_us", best);
    if sink == 0 {
        fail("nothing was decoded");
    }
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("nri-bench: {msg}");
    std::process::exit(1)
}

fn result(key: &str, v: f64) {
    println!("RESULT {key} {v:.3}");
}

// ---------------------------------------------------------------------------
// Arguments

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> Option<String> {
        let flag = format!("--{name}");
        self.0
            .iter()
            .position(|a| *a == flag)
            .and_then(|i| self.0.get(i + 1).cloned())
    }
    fn has(&self, name: &str) -> bool {
        let flag = format!("--{name}");
        self.0.contains(&flag)
    }
    fn num(&self, name: &str, default: usize) -> usize {
        self.get(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| fail(format!("--{name}: not a number: {v}")))
        })
    }
    fn req(&self, name: &str) -> String {
        self.get(name)
            .unwrap_or_else(|| fail(format!("--{name} is required")))
    }
}

fn sizes_arg(s: &str) -> Vec<usize> {
    s.split(',')
        .filter(|x| !x.trim().is_empty() && x.trim() != "none")
        .map(|x| {
            x.trim()
                .parse()
                .unwrap_or_else(|_| fail(format!("bad size {x:?}")))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// /proc

fn clk_tck() -> f64 {
    std::env::var("NRI_BENCH_CLK_TCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v: &f64| *v > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| fail(format!("/proc/{pid}/stat: {e}")));
    let rest = &s[s.rfind(')').unwrap_or(0) + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    num(11) + num(12)
}

/// A numeric field of /proc/<pid>/status (kB for memory fields).
fn status_field(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| fail(format!("/proc/{pid}/status: {e}")));
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| fail(format!("no {key} in /proc/{pid}/status")))
}

/// Context switches (voluntary + involuntary) of every thread of `pid`.
fn ctx_switches(pid: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut total = 0.0;
    for t in dir.flatten() {
        if let Ok(st) = std::fs::read_to_string(t.path().join("status")) {
            for l in st.lines() {
                if let Some(v) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    total += v.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
        }
    }
    total
}

// ---------------------------------------------------------------------------
// Latency statistics

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = (p * (sorted.len() - 1) as f64) as usize;
    sorted[i].as_nanos() as f64 / 1e3
}

fn report_latencies(prefix: &str, mut lat: Vec<Duration>, total: Duration) {
    let n = lat.len();
    lat.sort_unstable();
    result(&format!("{prefix}_p50_us"), pct(&lat, 0.50));
    result(&format!("{prefix}_p99_us"), pct(&lat, 0.99));
    result(
        &format!("{prefix}_calls_per_s"),
        n as f64 / total.as_secs_f64(),
    );
}

// ---------------------------------------------------------------------------
// Driver A: our nri::runtime

/// Records when the runtime logs that a plugin was configured and when it
/// was synchronized (the two log lines frame Synchronize).
struct Marks;

static MARKS: Mutex<(Option<Instant>, Option<Instant>)> = Mutex::new((None, None));

impl log::Log for Marks {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.level() <= log::Level::Warn {
            eprintln!("nri-bench: runtime {}: {}", r.level(), r.args());
            return;
        }
        let now = Instant::now();
        let msg = r.args().to_string();
        let mut m = MARKS.lock().unwrap_or_else(|e| e.into_inner());
        if msg.contains(" configured, subscribed to ") {
            m.0 = Some(now);
        } else if msg.contains("connected and synchronized") {
            m.1 = Some(now);
        }
    }
    fn flush(&self) {}
}

fn marks() -> (Instant, Instant) {
    let m = MARKS.lock().unwrap_or_else(|e| e.into_inner());
    match *m {
        (Some(c), Some(s)) => (c, s),
        _ => fail("the runtime did not log configuration and synchronization"),
    }
}

fn reset_marks() {
    *MARKS.lock().unwrap_or_else(|e| e.into_inner()) = (None, None);
}

fn create_ok(r: &nri::runtime::CreateContainerReply) -> bool {
    r.adjust.env.len() == 2 && r.adjust.mounts.len() == 1
}

fn driver_a(args: &Args) {
    let plugin = args.req("plugin");
    let syncs = sizes_arg(&args.get("sync").unwrap_or_else(|| "1000,10000".into()));
    log::set_logger(&Marks).unwrap_or_else(|e| fail(e));
    log::set_max_level(log::LevelFilter::Info);
    let tck = clk_tck();
    let sync_only = args.has("sync-only");

    let runtime = Runtime::builder()
        .name("nri-bench")
        .version("v0.9.0")
        .registration_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_secs(30))
        .build();

    if !sync_only {
        startup_and_calls(args, &runtime, &plugin, tck);
    }
    let config = args.get("plugin-config").unwrap_or_default();
    synchronize_sizes(&runtime, &plugin, &config, &syncs, tck);
}

/// Start-up, idle footprint, CreateContainer and StateChange of one plugin.
fn startup_and_calls(args: &Args, runtime: &Runtime, plugin: &str, tck: f64) {
    let calls = args.num("calls", 20_000);
    let state_calls = args.num("state-calls", 20_000);
    let warmup = args.num("warmup", 1000);
    // Start-up and idle footprint.
    reset_marks();
    let t0 = Instant::now();
    let h = runtime
        .launch(plugin, "bench", "10", "")
        .unwrap_or_else(|e| fail(format!("launch {plugin}: {e}")));
    let (configured, _) = marks();
    let pid = h
        .pid()
        .unwrap_or_else(|| fail("no pid for a launched plugin"));
    result(
        "start_to_configured_ms",
        (configured - t0).as_secs_f64() * 1e3,
    );
    std::thread::sleep(Duration::from_millis(300));
    result("idle_rss_kb", status_field(pid, "VmRSS"));
    result("idle_threads", status_field(pid, "Threads"));
    if args.has("idle-only") {
        return;
    }

    // CreateContainer.
    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    for _ in 0..warmup {
        let r = h
            .create_container(&pod, &ctr)
            .unwrap_or_else(|e| fail(format!("CreateContainer: {e}")));
        if !create_ok(&r) {
            fail("CreateContainer: reply without the adjustment");
        }
    }
    let mut lat = Vec::with_capacity(calls);
    let me = std::process::id();
    let (cs0, my_cs0) = (ctx_switches(pid), ctx_switches(me));
    let cpu0 = cpu_ticks(pid);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        let r = h
            .create_container(&pod, &ctr)
            .unwrap_or_else(|e| fail(format!("CreateContainer: {e}")));
        lat.push(t.elapsed());
        if !create_ok(&r) {
            fail("CreateContainer: reply without the adjustment");
        }
    }
    let total = start.elapsed();
    let cpu1 = cpu_ticks(pid);
    let (cs1, my_cs1) = (ctx_switches(pid), ctx_switches(me));
    report_latencies("create", lat, total);
    result("create_plugin_ctxsw_per_call", (cs1 - cs0) / calls as f64);
    result(
        "create_driver_ctxsw_per_call",
        (my_cs1 - my_cs0) / calls as f64,
    );
    result(
        "create_cpu_us_per_call",
        (cpu1 - cpu0) / tck * 1e6 / calls as f64,
    );

    // StateChange notifications.
    for _ in 0..warmup {
        h.state_change(Event::START_CONTAINER, &pod, Some(&ctr))
            .unwrap_or_else(|e| fail(format!("StateChange: {e}")));
    }
    let start = Instant::now();
    for _ in 0..state_calls {
        h.state_change(Event::START_CONTAINER, &pod, Some(&ctr))
            .unwrap_or_else(|e| fail(format!("StateChange: {e}")));
    }
    result(
        "state_per_s",
        state_calls as f64 / start.elapsed().as_secs_f64(),
    );
    drop(h);
}

/// Synchronize of each size, with a fresh plugin per size.
fn synchronize_sizes(runtime: &Runtime, plugin: &str, config: &str, syncs: &[usize], tck: f64) {
    for &n in syncs {
        let (pods, ctrs) = common::state(n);
        runtime.set_state(pods, ctrs);
        reset_marks();
        let h = runtime
            .launch(plugin, "bench", "10", config)
            .unwrap_or_else(|e| fail(format!("launch {plugin} (sync {n}): {e}")));
        let (configured, synced) = marks();
        let pid = h.pid().unwrap_or_else(|| fail("no pid"));
        result(
            &format!("sync_{n}_ms"),
            (synced - configured).as_secs_f64() * 1e3,
        );
        result(&format!("sync_{n}_hwm_kb"), status_field(pid, "VmHWM"));
        // All the CPU the fresh plugin used: start-up, Configure, Synchronize
        // and whatever it did right after replying (freeing the state, GC).
        std::thread::sleep(Duration::from_millis(300));
        result(
            &format!("sync_{n}_plugin_cpu_ms"),
            cpu_ticks(pid) / tck * 1e3,
        );
        drop(h);
        runtime.set_state(Vec::new(), Vec::new());
    }
}

// ---------------------------------------------------------------------------
// Helper processes

fn temp_sock(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "nri-bench-{tag}-{}-{nanos}.sock",
        std::process::id()
    ))
}

/// This program run with `args`, as a child killed when dropped.
struct Helper(Child);

impl Helper {
    fn spawn(args: &[&str]) -> Helper {
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(format!("spawn helper: {e}")));
        Helper(child)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to `path`, retrying while the server starts.
fn connect_retry(path: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => fail(format!("connect {}: {e}", path.display())),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

// ---------------------------------------------------------------------------
// The floor: raw bytes over a Unix socket

fn floor(args: &Args) {
    let req = args.num("req", 3000);
    let resp = args.num("resp", 300);
    let n = args.num("n", 20_000);
    let warmup = args.num("warmup", 1000);
    let path = temp_sock("floor");
    let listener = UnixListener::bind(&path).unwrap_or_else(|e| fail(e));
    let _child = Helper::spawn(&[
        "floor-server",
        "--sock",
        path.to_str().unwrap_or_default(),
        "--req",
        &req.to_string(),
        "--resp",
        &resp.to_string(),
        "--workers",
        &args.num("server-workers", 1).to_string(),
    ]);
    let (mut s, _) = listener.accept().unwrap_or_else(|e| fail(e));
    let _ = std::fs::remove_file(&path);
    let out = vec![7u8; req];
    let mut back = vec![0u8; resp];
    // With --client-hop, a reader thread reads each reply and hands it to
    // the caller over a channel: the floor plus one thread hop, the shape of
    // a client whose caller waits while another thread reads.
    let hop = args.has("client-hop").then(|| {
        let mut rd = s.try_clone().unwrap_or_else(|e| fail(e));
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; resp];
            if rd.read_exact(&mut buf).is_err() || tx.send(buf).is_err() {
                break;
            }
        });
        rx
    });
    let mut once = |s: &mut UnixStream| {
        s.write_all(&out).unwrap_or_else(|e| fail(e));
        match &hop {
            Some(rx) => back = rx.recv().unwrap_or_else(|e| fail(e)),
            None => s.read_exact(&mut back).unwrap_or_else(|e| fail(e)),
        }
    };
    for _ in 0..warmup {
        once(&mut s);
    }
    let mut lat = Vec::with_capacity(n);
    let me = std::process::id();
    let cs0 = ctx_switches(me) + ctx_switches(_child.0.id());
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        once(&mut s);
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let cs1 = ctx_switches(me) + ctx_switches(_child.0.id());
    report_latencies("floor", lat, total);
    result("floor_ctxsw_per_call", (cs1 - cs0) / n as f64);
}

fn floor_server(args: &Args) {
    let req = args.num("req", 3000);
    let resp = args.num("resp", 300);
    let mut s = connect_retry(Path::new(&args.req("sock")));
    let workers = args.num("workers", 1);
    if workers > 1 {
        // Leader/follower, shaped like nri::ttrpc's worker_main: workers
        // take turns holding the read side (a mutex); the one that read a
        // request releases it to a follower, then replies itself.
        let rd = Arc::new(Mutex::new(s.try_clone().unwrap_or_else(|e| fail(e))));
        let wr = Arc::new(Mutex::new(s));
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                let (rd, wr) = (rd.clone(), wr.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; req];
                    let out = vec![9u8; resp];
                    loop {
                        {
                            let mut r = rd.lock().unwrap_or_else(|e| e.into_inner());
                            if r.read_exact(&mut buf).is_err() {
                                std::process::exit(0);
                            }
                        }
                        let mut w = wr.lock().unwrap_or_else(|e| e.into_inner());
                        if w.write_all(&out).is_err() {
                            std::process::exit(0);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        return;
    }
    let mut buf = vec![0u8; req];
    let out = vec![9u8; resp];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&out).is_err() {
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Raw ttrpc: ours vs the ttrpc crate

const SVC: &str = "bench.Echo";

fn ttrpc_bench(args: &Args) {
    let which = args.req("impl");
    let req = args.num("req", 3000);
    let resp = args.num("resp", 300);
    let n = args.num("n", 20_000);
    let warmup = args.num("warmup", 1000);
    let path = temp_sock("ttrpc");
    let _child = Helper::spawn(&[
        "ttrpc-server",
        "--impl",
        &which,
        "--sock",
        path.to_str().unwrap_or_default(),
        "--resp",
        &resp.to_string(),
    ]);
    let server_pid = _child.0.id();
    let me = std::process::id();
    let cs: (f64, f64);
    let payload = vec![7u8; req];
    let timeout = Duration::from_secs(10);
    let mut lat = Vec::with_capacity(n);
    let total;
    match which.as_str() {
        "ours" => {
            let stream = connect_retry(&path);
            let conn = ConnectionBuilder::new(stream, Framing::Raw)
                .open(0)
                .start()
                .unwrap_or_else(|e| fail(e));
            let client = conn.client(0).unwrap_or_else(|e| fail(e));
            let call = || {
                let out = client
                    .call_raw(SVC, "Call", payload.clone(), Some(timeout), Vec::new())
                    .unwrap_or_else(|e| fail(format!("ttrpc call: {e}")));
                if out.len() != resp {
                    fail("ttrpc: short reply");
                }
            };
            for _ in 0..warmup {
                call();
            }
            let c0 = (ctx_switches(me), ctx_switches(server_pid));
            let start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                call();
                lat.push(t.elapsed());
            }
            total = start.elapsed();
            cs = (ctx_switches(me) - c0.0, ctx_switches(server_pid) - c0.1);
            conn.close();
        }
        "theirs" => {
            // Wait for the server's socket, then let their client dial it.
            drop(connect_retry(&path));
            let client = ttrpc::Client::connect(&format!("unix://{}", path.display()))
                .unwrap_or_else(|e| fail(format!("ttrpc crate: connect: {e}")));
            let call = || {
                let r = ttrpc::Request {
                    service: SVC.to_string(),
                    method: "Call".to_string(),
                    payload: payload.clone(),
                    timeout_nano: timeout.as_nanos() as i64,
                    ..Default::default()
                };
                let out = client
                    .request(r)
                    .unwrap_or_else(|e| fail(format!("ttrpc crate call: {e}")));
                if out.payload.len() != resp {
                    fail("ttrpc crate: short reply");
                }
            };
            for _ in 0..warmup {
                call();
            }
            let c0 = (ctx_switches(me), ctx_switches(server_pid));
            let start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                call();
                lat.push(t.elapsed());
            }
            total = start.elapsed();
            cs = (ctx_switches(me) - c0.0, ctx_switches(server_pid) - c0.1);
        }
        other => fail(format!("--impl must be ours or theirs, not {other:?}")),
    }
    let _ = std::fs::remove_file(&path);
    report_latencies("ttrpc", lat, total);
    result("ttrpc_client_ctxsw_per_call", cs.0 / n as f64);
    result("ttrpc_server_ctxsw_per_call", cs.1 / n as f64);
}

type TheirFn = dyn Fn(&ttrpc::TtrpcContext, ttrpc::Request) -> ttrpc::Response + Send + Sync;

struct TheirHandler(Box<TheirFn>);

impl ttrpc::MethodHandler for TheirHandler {
    fn handler(&self, ctx: ttrpc::TtrpcContext, req: ttrpc::Request) -> ttrpc::Result<()> {
        let resp = (self.0)(&ctx, req);
        ctx.respond(ctx.mh.stream_id, resp)
    }
}

fn ttrpc_server(args: &Args) {
    let which = args.req("impl");
    let path = PathBuf::from(args.req("sock"));
    let resp = args.num("resp", 300);
    match which.as_str() {
        "ours" => {
            let listener = UnixListener::bind(&path).unwrap_or_else(|e| fail(e));
            let mut services = Services::new();
            services.add_method(SVC, "Call", Box::new(move |_ctx, _req| Ok(vec![9u8; resp])));
            let services = Arc::new(services);
            // The first connection is the readiness probe of `theirs`; serve
            // every connection until killed.
            for stream in listener.incoming() {
                let stream = stream.unwrap_or_else(|e| fail(e));
                let _conn = ConnectionBuilder::new(stream, Framing::Raw)
                    .serve(0, services.clone())
                    .start()
                    .unwrap_or_else(|e| fail(e));
                std::mem::forget(_conn);
            }
        }
        "theirs" => {
            let mut methods: std::collections::HashMap<
                String,
                Box<dyn ttrpc::MethodHandler + Send + Sync>,
            > = std::collections::HashMap::new();
            methods.insert(
                format!("/{SVC}/Call"),
                Box::new(TheirHandler(Box::new(move |_ctx, _req| {
                    let mut r = ttrpc::Response::new();
                    r.set_status(ttrpc::get_status(ttrpc::Code::OK, ""));
                    r.payload = vec![9u8; resp];
                    r
                }))),
            );
            let mut server = ttrpc::Server::new()
                .bind(&format!("unix://{}", path.display()))
                .unwrap_or_else(|e| fail(format!("ttrpc crate: bind: {e}")))
                .register_service(methods);
            server
                .start()
                .unwrap_or_else(|e| fail(format!("ttrpc crate: start: {e}")));
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        other => fail(format!("--impl must be ours or theirs, not {other:?}")),
    }
}

// ---------------------------------------------------------------------------
// Wire sizes of one CreateContainer round trip

/// Bytes of one ttrpc message on the NRI trunk: mux header(s), ttrpc
/// header, envelope. Messages over 4096 bytes travel as two mux frames.
fn on_trunk(envelope: usize) -> usize {
    let msg = 10 + envelope;
    if msg <= 4096 {
        msg + 8
    } else {
        msg + 16
    }
}

fn wire_sizes() -> (usize, usize) {
    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    let req = CreateContainerRequest {
        pod: MessageField::some(pod),
        container: MessageField::some(ctr),
        ..Default::default()
    };
    let envelope = Request {
        service: PLUGIN_SERVICE.to_string(),
        method: "CreateContainer".to_string(),
        payload: req.write_to_bytes().unwrap_or_default(),
        timeout_nano: 2_000_000_000,
        ..Default::default()
    };
    let reply = CreateContainerResponse {
        adjust: MessageField::some(common::adjust()),
        ..Default::default()
    };
    let mut resp = Response {
        payload: reply.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    };
    resp.status = MessageField::some(Default::default());
    (
        on_trunk(envelope.compute_size() as usize),
        on_trunk(resp.compute_size() as usize),
    )
}

// ---------------------------------------------------------------------------
// The suite: every figure, several runs, medians, the report

/// Results of one measurement kind, one value list per key (one per run).
type Samples = BTreeMap<String, Vec<f64>>;

fn run_capture(what: &str, cmd: &mut Command, timeout: Duration) -> Res<Vec<(String, f64)>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{what}: spawn: {e}"))?;
    let mut out = String::new();
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what}: timed out after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().map_err(|_| "reader panicked")?;
    if !status.success() {
        return Err(format!("{what}: exited with {status}"));
    }
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            if f.next()? != "RESULT" {
                return None;
            }
            let k = f.next()?.to_string();
            let v = f.next()?.parse().ok()?;
            Some((k, v))
        })
        .collect())
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

struct Suite {
    samples: Samples,
    commands: Vec<String>,
    errors: Vec<String>,
}

impl Suite {
    fn run(&mut self, group: &str, what: &str, cmd: &mut Command, record: bool) {
        let line = format!(
            "{} {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        if record {
            let line = match std::env::current_dir() {
                Ok(d) => line.replace(&format!("{}/", d.display()), ""),
                Err(_) => line,
            };
            self.commands.push(format!("{group}: {line}"));
        }
        eprintln!("  {group} ...");
        match run_capture(what, cmd, Duration::from_secs(300)) {
            Ok(rs) => {
                for (k, v) in rs {
                    self.samples
                        .entry(format!("{group}.{k}"))
                        .or_default()
                        .push(v);
                }
            }
            Err(e) => {
                eprintln!("nri-bench: {e}");
                self.errors.push(e);
            }
        }
    }

    fn med(&self, key: &str) -> Option<f64> {
        self.samples.get(key).and_then(|v| median(v))
    }
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v.abs() >= 1000.0 => {
            let s = format!("{:.0}", v);
            // thousands separators
            let mut out = String::new();
            let digits: Vec<char> = s.chars().collect();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 && *c != '-' {
                    out.push(',');
                }
                out.push(*c);
            }
            out
        }
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}×"))
}

/// Three decimals, for goal checks close to their limit.
fn fmt_ratio3(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.3}×"))
}

fn machine() -> String {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_default();
    format!("nproc {nproc}; CPU: {cpu}; kernel {kernel}; MemTotal {mem} kB")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Goal {
    text: String,
    met: Option<bool>,
    detail: String,
}

fn suite(args: &Args) {
    let smoke = args.has("smoke");
    let runs = args.num("runs", if smoke { 1 } else { 5 });
    let calls = args.num("calls", if smoke { 300 } else { 20_000 });
    let state_calls = args.num("state-calls", if smoke { 300 } else { 20_000 });
    let warmup = args.num("warmup", if smoke { 30 } else { 1000 });
    let sync = args.get("sync").unwrap_or_else(|| "1000,10000".into());
    let sync_sizes = sizes_arg(&sync);
    let rust_plugin = args.req("rust-plugin");
    let go_plugin = args.req("go-plugin");
    let go_driver = args.req("go-driver");
    let rust_static = args.get("rust-static-plugin");
    let static_target = args.get("static-target").unwrap_or_default();
    let out_path = args.get("out");
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let (req_b, resp_b) = wire_sizes();

    let mut s = Suite {
        samples: Samples::new(),
        commands: Vec::new(),
        errors: Vec::new(),
    };
    let load_before = loadavg();
    let started = Instant::now();
    let (c, sc, w) = (
        calls.to_string(),
        state_calls.to_string(),
        warmup.to_string(),
    );
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        let first = run == 0;
        for (group, plugin) in [("a_rust", &rust_plugin), ("a_go", &go_plugin)] {
            s.run(
                group,
                "driver A",
                Command::new(&exe).args([
                    "driver-a",
                    "--plugin",
                    plugin,
                    "--calls",
                    &c,
                    "--state-calls",
                    &sc,
                    "--warmup",
                    &w,
                    "--sync",
                    &sync,
                ]),
                first,
            );
        }
        for (group, mode) in [
            ("a_rust_walk", "sync=walk"),
            ("a_rust_decode", "sync=decode"),
        ] {
            s.run(
                group,
                "driver A (Synchronize only)",
                Command::new(&exe).args([
                    "driver-a",
                    "--plugin",
                    &rust_plugin,
                    "--sync-only",
                    "--plugin-config",
                    mode,
                    "--sync",
                    &sync,
                ]),
                first,
            );
        }
        if let Some(p) = &rust_static {
            s.run(
                "a_rust_static",
                "driver A (idle, static binary)",
                Command::new(&exe).args(["driver-a", "--plugin", p, "--idle-only"]),
                first,
            );
        }
        for (group, plugin) in [("b_rust", &rust_plugin), ("b_go", &go_plugin)] {
            s.run(
                group,
                "driver B",
                Command::new(&go_driver).args([
                    "-plugin",
                    plugin,
                    "-calls",
                    &c,
                    "-state-calls",
                    &sc,
                    "-warmup",
                    &w,
                    "-sync",
                    &sync,
                ]),
                first,
            );
        }
        s.run(
            "work",
            "in-process work per call",
            Command::new(&exe).args(["alloc-profile", "--n", if smoke { "1000" } else { "10000" }]),
            first,
        );
        s.run(
            "floor_create",
            "floor (CreateContainer bytes)",
            Command::new(&exe).args([
                "floor",
                "--req",
                &req_b.to_string(),
                "--resp",
                &resp_b.to_string(),
                "--n",
                &c,
                "--warmup",
                &w,
            ]),
            first,
        );
        s.run(
            "floor_hop",
            "floor + one client-side thread hop (3000/300 bytes)",
            Command::new(&exe).args([
                "floor",
                "--req",
                "3000",
                "--resp",
                "300",
                "--n",
                &c,
                "--warmup",
                &w,
                "--client-hop",
            ]),
            first,
        );
        s.run(
            "floor_handoff",
            "floor + server-side leader/follower hand-off (3000/300 bytes)",
            Command::new(&exe).args([
                "floor",
                "--req",
                "3000",
                "--resp",
                "300",
                "--n",
                &c,
                "--warmup",
                &w,
                "--server-workers",
                "4",
            ]),
            first,
        );
        s.run(
            "floor_hop_handoff",
            "floor + client hop + server hand-off (3000/300 bytes)",
            Command::new(&exe).args([
                "floor",
                "--req",
                "3000",
                "--resp",
                "300",
                "--n",
                &c,
                "--warmup",
                &w,
                "--client-hop",
                "--server-workers",
                "4",
            ]),
            first,
        );
        s.run(
            "floor_raw",
            "floor (3000/300 bytes)",
            Command::new(&exe).args([
                "floor", "--req", "3000", "--resp", "300", "--n", &c, "--warmup", &w,
            ]),
            first,
        );
        for (group, which) in [("ttrpc_ours", "ours"), ("ttrpc_theirs", "theirs")] {
            s.run(
                group,
                "raw ttrpc",
                Command::new(&exe).args([
                    "ttrpc", "--impl", which, "--req", "3000", "--resp", "300", "--n", &c,
                    "--warmup", &w,
                ]),
                first,
            );
        }
    }
    let elapsed = started.elapsed();
    let load_after = loadavg();

    // Binary sizes (stat'ed, once: they do not vary between runs).
    let size =
        |p: Option<String>| -> Option<f64> { std::fs::metadata(p?).ok().map(|m| m.len() as f64) };
    let rust_size = size(args.get("rust-size-bin"));
    let go_size = size(args.get("go-size-bin"));

    let m = |k: &str| s.med(k);
    let mut report = String::new();
    let w = &mut report;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Written by `benches/run.sh{}` on {}; {} run(s) per figure, each figure the median of the runs; \
         the whole measurement took {:.0} s.\n",
        if smoke { " --smoke" } else { "" },
        args.get("date").unwrap_or_default(),
        runs,
        elapsed.as_secs_f64()
    );
    if smoke {
        let _ = writeln!(
            w,
            "**Smoke run: tiny counts, one run. These numbers say the benchmark works, not how fast anything is.**\n"
        );
    }
    let _ = writeln!(
        w,
        "Machine: {}. Load average (1, 5, 15 min) before the runs: {load_before}; after: {load_after} \
         (the machine is shared: other jobs' load shows up in the spread of the samples below).\n",
        machine()
    );
    let _ = writeln!(
        w,
        "Workload: the same trivial plugin logic in both plugins (CreateContainer adds 2 env vars, 1 mount and \
         sets CPU shares; StartContainer and Synchronize do nothing), each a separate release-built process. \
         Rust: `benches/bin/plugin.rs` on `nri::stub`; Go: `benches/go/plugin` on `github.com/containerd/nri` \
         v0.9.0 `pkg/stub`. Request: pod with 10 labels and 10 annotations, container with 20 env vars, 6 mounts \
         and Linux resources ({req_b} bytes on the socket; reply {resp_b} bytes). {calls} CreateContainer calls \
         and {state_calls} StateChange (StartContainer) notifications per run after {warmup} warm-up calls, one at \
         a time. Driver A is our `nri::runtime` launching the plugin with its socket on fd 3 (light: it isolates \
         the plugin's cost); driver B is the Go `pkg/adaptation` v0.9.0 with the plugin connecting to its \
         socket (end to end). Synchronize: one pod per 10 containers, a fresh plugin per size; time from the \
         runtime sending the state to the plugin's reply (chunked when over 4 MiB), peak RSS = the plugin's \
         VmHWM right after. Plugin CPU = utime+stime from /proc/<pid>/stat over the measured calls / calls. \
         The floor is a ping-pong of the same byte counts between two processes over a Unix socket (no \
         framing, no protobuf).\n"
    );

    let _ = writeln!(w, "## Plugin figures (medians)\n");
    let _ = writeln!(
        w,
        "| figure | driver | Rust | Go | Rust/Go | floor | Rust/floor |\n|---|---|---:|---:|---:|---:|---:|"
    );
    let row =
        |w: &mut String, name: &str, drv: &str, r: Option<f64>, g: Option<f64>, f: Option<f64>| {
            let _ = writeln!(
                w,
                "| {name} | {drv} | {} | {} | {} | {} | {} |",
                fmt_num(r),
                fmt_num(g),
                fmt_ratio(ratio(r, g)),
                fmt_num(f),
                fmt_ratio(ratio(r, f))
            );
        };
    for (d, drv) in [("a", "A (nri::runtime)"), ("b", "B (Go adaptation)")] {
        let k = |lang: &str, key: &str| m(&format!("{d}_{lang}.{key}"));
        row(
            w,
            "CreateContainer p50 (µs)",
            drv,
            k("rust", "create_p50_us"),
            k("go", "create_p50_us"),
            m("floor_create.floor_p50_us"),
        );
        row(
            w,
            "CreateContainer p99 (µs)",
            drv,
            k("rust", "create_p99_us"),
            k("go", "create_p99_us"),
            m("floor_create.floor_p99_us"),
        );
        row(
            w,
            "CreateContainer calls/s",
            drv,
            k("rust", "create_calls_per_s"),
            k("go", "create_calls_per_s"),
            m("floor_create.floor_calls_per_s"),
        );
        row(
            w,
            "plugin CPU per CreateContainer (µs)",
            drv,
            k("rust", "create_cpu_us_per_call"),
            k("go", "create_cpu_us_per_call"),
            None,
        );
        row(
            w,
            "plugin context switches per CreateContainer",
            drv,
            k("rust", "create_plugin_ctxsw_per_call"),
            k("go", "create_plugin_ctxsw_per_call"),
            if d == "a" {
                m("floor_create.floor_ctxsw_per_call")
            } else {
                None
            },
        );
        row(
            w,
            "StateChange notifications/s",
            drv,
            k("rust", "state_per_s"),
            k("go", "state_per_s"),
            None,
        );
        for n in &sync_sizes {
            row(
                w,
                &format!("Synchronize {n} containers (ms)"),
                drv,
                k("rust", &format!("sync_{n}_ms")),
                k("go", &format!("sync_{n}_ms")),
                None,
            );
            row(
                w,
                &format!("plugin CPU, start-up to synchronized with {n} (ms)"),
                drv,
                k("rust", &format!("sync_{n}_plugin_cpu_ms")),
                k("go", &format!("sync_{n}_plugin_cpu_ms")),
                None,
            );
            let kib = |v: Option<f64>| v.map(|v| v / 1024.0);
            row(
                w,
                &format!("peak RSS after Synchronize {n} (MiB)"),
                drv,
                kib(k("rust", &format!("sync_{n}_hwm_kb"))),
                kib(k("go", &format!("sync_{n}_hwm_kb"))),
                None,
            );
            if d != "a" {
                continue;
            }
            for (variant, what) in [
                ("walk", "Rust plugin decodes every item, one at a time"),
                ("decode", "Rust plugin decodes the whole state into vectors"),
            ] {
                row(
                    w,
                    &format!("Synchronize {n} containers (ms), {what}"),
                    drv,
                    k(&format!("rust_{variant}"), &format!("sync_{n}_ms")),
                    k("go", &format!("sync_{n}_ms")),
                    None,
                );
                row(
                    w,
                    &format!("peak RSS after Synchronize {n} (MiB), {what}"),
                    drv,
                    kib(k(&format!("rust_{variant}"), &format!("sync_{n}_hwm_kb"))),
                    kib(k("go", &format!("sync_{n}_hwm_kb"))),
                    None,
                );
            }
        }
    }
    row(
        w,
        "idle RSS after configuration (KiB)",
        "A",
        m("a_rust.idle_rss_kb"),
        m("a_go.idle_rss_kb"),
        None,
    );
    row(
        w,
        &format!("idle RSS, static {static_target} build (KiB)"),
        "A",
        m("a_rust_static.idle_rss_kb"),
        m("a_go.idle_rss_kb"),
        None,
    );
    row(
        w,
        "idle threads",
        "A",
        m("a_rust.idle_threads"),
        m("a_go.idle_threads"),
        None,
    );
    row(
        w,
        "process start → configured (ms)",
        "A",
        m("a_rust.start_to_configured_ms"),
        m("a_go.start_to_configured_ms"),
        None,
    );
    row(
        w,
        "stripped static binary (bytes)",
        "—",
        rust_size,
        go_size,
        None,
    );

    let _ = writeln!(
        w,
        "\n## Raw ttrpc round trip (3000-byte request, 300-byte reply, medians)\n"
    );
    let _ = writeln!(
        w,
        "| figure | ours (`nri::ttrpc`) | `ttrpc` crate 0.10 (sync) | ours/crate | floor | ours/floor |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, key) in [
        ("p50 (µs)", "p50_us"),
        ("p99 (µs)", "p99_us"),
        ("round trips/s", "calls_per_s"),
    ] {
        let o = m(&format!("ttrpc_ours.ttrpc_{key}"));
        let t = m(&format!("ttrpc_theirs.ttrpc_{key}"));
        let f = m(&format!("floor_raw.floor_{key}"));
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} | {} |",
            fmt_num(o),
            fmt_num(t),
            fmt_ratio(ratio(o, t)),
            fmt_num(f),
            fmt_ratio(ratio(o, f))
        );
    }

    let _ = writeln!(
        w,
        "| floor + one client-side thread hop: p50 (µs), context switches | — | — | — | {}, {} | — |",
        fmt_num(m("floor_hop.floor_p50_us")),
        fmt_num(m("floor_hop.floor_ctxsw_per_call")),
    );
    let _ = writeln!(
        w,
        "| floor + server-side leader/follower hand-off (4 threads): p50 (µs), context switches | — | — | — | {}, {} | — |",
        fmt_num(m("floor_handoff.floor_p50_us")),
        fmt_num(m("floor_handoff.floor_ctxsw_per_call")),
    );
    let _ = writeln!(
        w,
        "| floor + both: p50 (µs), context switches | — | — | — | {}, {} | — |",
        fmt_num(m("floor_hop_handoff.floor_p50_us")),
        fmt_num(m("floor_hop_handoff.floor_ctxsw_per_call")),
    );
    let _ = writeln!(
        w,
        "| context switches per round trip (client, server) | {}, {} | {}, {} | — | {} (both ends) | — |",
        fmt_num(m("ttrpc_ours.ttrpc_client_ctxsw_per_call")),
        fmt_num(m("ttrpc_ours.ttrpc_server_ctxsw_per_call")),
        fmt_num(m("ttrpc_theirs.ttrpc_client_ctxsw_per_call")),
        fmt_num(m("ttrpc_theirs.ttrpc_server_ctxsw_per_call")),
        fmt_num(m("floor_raw.floor_ctxsw_per_call")),
    );

    let _ = writeln!(
        w,
        "\n## Where a CreateContainer goes (medians)\n\n\
         In-process CPU work with no I/O, one thread, best of 5 batches (`nri-bench alloc-profile`), \
         next to driver A's measured round trip. Plugin side: decode the ttrpc envelope and the \
         CreateContainerRequest, run the handler, encode the reply and its envelope. Driver A side: \
         clone the pod and container into the request (as `PluginHandle::create_container` does), \
         encode it, decode the reply.\n\n| item | value |\n|---|---:|"
    );
    for (name, key) in [
        (
            "plugin-side work per call (µs)",
            "work.create_plugin_work_us",
        ),
        (
            "driver-A-side work per call (µs)",
            "work.create_driver_a_work_us",
        ),
        (
            "… of which cloning the pod and container (µs)",
            "work.create_driver_a_clone_us",
        ),
        (
            "floor round trip, same bytes (µs)",
            "floor_create.floor_p50_us",
        ),
        (
            "measured driver A round trip, Rust plugin, p50 (µs)",
            "a_rust.create_p50_us",
        ),
        (
            "plugin context switches per call (driver A, Rust)",
            "a_rust.create_plugin_ctxsw_per_call",
        ),
        (
            "driver A context switches per call (Rust plugin)",
            "a_rust.create_driver_ctxsw_per_call",
        ),
        (
            "floor context switches per round trip (both ends)",
            "floor_create.floor_ctxsw_per_call",
        ),
        (
            "allocations to decode one CreateContainerRequest",
            "work.create_decode_allocs",
        ),
        (
            "allocations to build and encode the reply",
            "work.create_handler_encode_allocs",
        ),
        (
            "Synchronize: encoded bytes per container",
            "work.sync_encoded_bytes_per_container",
        ),
        (
            "Synchronize: decoded heap bytes per container",
            "work.sync_decoded_heap_bytes_per_container",
        ),
        (
            "Synchronize: allocations per decoded container",
            "work.sync_decode_allocs_per_container",
        ),
        (
            "Synchronize: in-process decode of the whole state (ms)",
            "work.sync_decode_ms",
        ),
        (
            "Synchronize, runtime side: clone + encode the whole state once (ms)",
            "work.sync_runtime_clone_encode_all_ms",
        ),
        (
            "Synchronize: in-process drop of the decoded state (ms)",
            "work.sync_drop_ms",
        ),
    ] {
        let _ = writeln!(w, "| {name} | {} |", fmt_num(m(key)));
    }

    // Goals.
    let mut goals: Vec<Goal> = Vec::new();
    let mut goal = |text: &str, checks: Vec<(Option<f64>, f64, bool)>, detail: String| {
        // (value, limit, lower_is_better)
        let met = checks
            .iter()
            .map(|(v, lim, low)| v.map(|v| if *low { v <= *lim } else { v >= *lim }))
            .try_fold(true, |acc, x| x.map(|x| acc && x));
        goals.push(Goal {
            text: text.to_string(),
            met,
            detail,
        });
    };
    let ar = |k: &str| m(&format!("a_rust.{k}"));
    let ag = |k: &str| m(&format!("a_go.{k}"));
    let p50r = ratio(ar("create_p50_us"), ag("create_p50_us"));
    let p50f = ratio(ar("create_p50_us"), m("floor_create.floor_p50_us"));
    goal(
        "A: CreateContainer p50 ≤ 0.5× Go's",
        vec![(p50r, 0.5, true)],
        format!("{} of Go", fmt_ratio3(p50r)),
    );
    goal(
        "A: CreateContainer p50 ≤ 2× the floor",
        vec![(p50f, 2.0, true)],
        format!("{} of the floor", fmt_ratio3(p50f)),
    );
    let cr = ratio(ar("create_calls_per_s"), ag("create_calls_per_s"));
    goal("A: calls/s ≥ 2× Go", vec![(cr, 2.0, false)], fmt_ratio3(cr));
    let cpu = ratio(ar("create_cpu_us_per_call"), ag("create_cpu_us_per_call"));
    goal(
        "A: plugin CPU per call ≤ 0.3× Go",
        vec![(cpu, 0.3, true)],
        fmt_ratio3(cpu),
    );
    let tr = ratio(m("ttrpc_ours.ttrpc_p50_us"), m("ttrpc_theirs.ttrpc_p50_us"));
    goal(
        "raw ttrpc round trip (p50) ≤ 0.2× the ttrpc crate's",
        vec![(tr, 0.2, true)],
        fmt_ratio3(tr),
    );
    let rss = ar("idle_rss_kb");
    let rssr = ratio(rss, ag("idle_rss_kb"));
    goal(
        "idle RSS ≤ 2 MiB and ≤ 1/4 of Go's (default glibc release build)",
        vec![(rss, 2048.0, true), (rssr, 0.25, true)],
        format!("{} KiB, {} of Go", fmt_num(rss), fmt_ratio3(rssr)),
    );
    if rust_static.is_some() {
        let rss = m("a_rust_static.idle_rss_kb");
        let rssr = ratio(rss, ag("idle_rss_kb"));
        goal(
            &format!("idle RSS ≤ 2 MiB and ≤ 1/4 of Go's (static {static_target} build)"),
            vec![(rss, 2048.0, true), (rssr, 0.25, true)],
            format!("{} KiB, {} of Go", fmt_num(rss), fmt_ratio3(rssr)),
        );
    }
    let sr = ratio(rust_size, go_size);
    goal(
        "stripped static binary ≤ 2 MiB and ≤ 1/4 of Go's",
        vec![(rust_size, 2.0 * 1024.0 * 1024.0, true), (sr, 0.25, true)],
        format!("{} bytes, {} of Go", fmt_num(rust_size), fmt_ratio3(sr)),
    );
    if let Some(n) = sync_sizes.iter().max() {
        let t = ratio(ar(&format!("sync_{n}_ms")), ag(&format!("sync_{n}_ms")));
        let h = ratio(
            ar(&format!("sync_{n}_hwm_kb")),
            ag(&format!("sync_{n}_hwm_kb")),
        );
        goal(
            &format!("A: Synchronize of {n} containers ≤ 0.5× Go's time"),
            vec![(t, 0.5, true)],
            format!("{} of Go", fmt_ratio3(t)),
        );
        goal(
            &format!("A: Synchronize of {n} containers at ≤ 0.5× Go's peak RSS"),
            vec![(h, 0.5, true)],
            format!("{} of Go", fmt_ratio3(h)),
        );
        // The same goals when the Rust plugin does read the state (Go's
        // plugin always pays for decoding it).
        for (variant, what) in [
            ("walk", "decoding every item one at a time"),
            ("decode", "decoding the whole state into vectors"),
        ] {
            let vr = |k: &str| m(&format!("a_rust_{variant}.{k}"));
            let t = ratio(vr(&format!("sync_{n}_ms")), ag(&format!("sync_{n}_ms")));
            let h = ratio(
                vr(&format!("sync_{n}_hwm_kb")),
                ag(&format!("sync_{n}_hwm_kb")),
            );
            goal(
                &format!("A: Synchronize of {n} containers ≤ 0.5× Go's time, Rust {what}"),
                vec![(t, 0.5, true)],
                format!("{} of Go", fmt_ratio3(t)),
            );
            goal(
                &format!("A: Synchronize of {n} containers at ≤ 0.5× Go's peak RSS, Rust {what}"),
                vec![(h, 0.5, true)],
                format!("{} of Go", fmt_ratio3(h)),
            );
        }
    }
    let _ = writeln!(w, "\n## Goals\n\n| goal | measured | met |\n|---|---|---|");
    for g in &goals {
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            g.text,
            g.detail,
            match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            }
        );
    }

    let _ = writeln!(w, "\n## Commands\n\n```sh");
    if let Some(cmdline) = args.get("cmdline") {
        let _ = writeln!(w, "# this report:\n{cmdline}");
    }
    if let Some(builds) = args.get("builds") {
        let _ = writeln!(w, "# builds:\n{builds}");
    }
    let _ = writeln!(w, "# each run ({runs}×):");
    for c in &s.commands {
        let _ = writeln!(w, "{c}");
    }
    let _ = writeln!(w, "```");

    // Raw samples.
    let _ = writeln!(
        w,
        "\n## All samples\n\n| key | runs | median |\n|---|---|---:|"
    );
    for (k, v) in &s.samples {
        let vals: Vec<String> = v.iter().map(|x| fmt_num(Some(*x))).collect();
        let _ = writeln!(w, "| {k} | {} | {} |", vals.join(", "), fmt_num(median(v)));
    }
    if let Some(notes) = args.get("notes") {
        if let Ok(text) = std::fs::read_to_string(notes) {
            let _ = writeln!(w, "\n{text}");
        }
    }

    // Every figure must be there.
    let mut missing = Vec::new();
    let mut need = vec![
        "floor_create.floor_p50_us".to_string(),
        "floor_raw.floor_p50_us".into(),
        "floor_hop.floor_p50_us".into(),
        "floor_handoff.floor_p50_us".into(),
        "floor_hop_handoff.floor_p50_us".into(),
        "ttrpc_ours.ttrpc_p50_us".into(),
        "ttrpc_theirs.ttrpc_p50_us".into(),
        "work.create_plugin_work_us".into(),
        "work.sync_decoded_heap_bytes_per_container".into(),
        "a_rust.idle_rss_kb".into(),
        "a_go.idle_rss_kb".into(),
        "a_rust.idle_threads".into(),
        "a_go.idle_threads".into(),
        "a_rust.start_to_configured_ms".into(),
        "a_rust_static.idle_rss_kb".into(),
        "a_go.start_to_configured_ms".into(),
    ];
    for g in ["a_rust_walk", "a_rust_decode"] {
        for n in &sync_sizes {
            need.push(format!("{g}.sync_{n}_ms"));
            need.push(format!("{g}.sync_{n}_hwm_kb"));
        }
    }
    for g in ["a_rust", "a_go", "b_rust", "b_go"] {
        for k in [
            "create_p50_us",
            "create_p99_us",
            "create_calls_per_s",
            "create_cpu_us_per_call",
            "state_per_s",
        ] {
            need.push(format!("{g}.{k}"));
        }
        for n in &sync_sizes {
            need.push(format!("{g}.sync_{n}_ms"));
            need.push(format!("{g}.sync_{n}_hwm_kb"));
            need.push(format!("{g}.sync_{n}_plugin_cpu_ms"));
        }
    }
    for k in &need {
        if s.samples.get(k).map_or(0, |v| v.len()) < runs {
            missing.push(k.clone());
        }
    }
    if rust_size.is_none() {
        missing.push("rust binary size".into());
    }
    if go_size.is_none() {
        missing.push("go binary size".into());
    }

    print!("{report}");
    if let Some(p) = out_path {
        std::fs::write(&p, &report).unwrap_or_else(|e| fail(format!("{p}: {e}")));
        eprintln!("wrote {p}");
    }
    if !missing.is_empty() || !s.errors.is_empty() {
        for e in &s.errors {
            eprintln!("nri-bench: error: {e}");
        }
        for k in &missing {
            eprintln!("nri-bench: figure not produced: {k}");
        }
        std::process::exit(1);
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        fail(
            "usage: nri-bench driver-a|floor|ttrpc|wire-sizes|suite [options] (see benches/run.sh)",
        )
    };
    let args = Args(argv[1..].to_vec());
    match cmd.as_str() {
        "driver-a" => driver_a(&args),
        "floor" => floor(&args),
        "floor-server" => floor_server(&args),
        "ttrpc" => ttrpc_bench(&args),
        "ttrpc-server" => ttrpc_server(&args),
        "wire-sizes" => {
            let (q, r) = wire_sizes();
            result("create_request_bytes", q as f64);
            result("create_reply_bytes", r as f64);
        }
        "suite" => suite(&args),
        "alloc-profile" => alloc_profile(&args),
        other => fail(format!("unknown subcommand {other:?}")),
    }
}
