//! `suite`: every measurement, several runs each, their medians, the
//! report, and the check that every figure was produced.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{fail, sizes_arg, Args};
use crate::procfs::loadavg;
use crate::report;
use crate::stats::median;
use crate::wire::wire_sizes;

type Res<T> = std::result::Result<T, String>;

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

pub struct Suite {
    pub samples: Samples,
    pub commands: Vec<String>,
    pub errors: Vec<String>,
}

impl Suite {
    pub fn run(&mut self, group: &str, what: &str, cmd: &mut Command, record: bool) {
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

    pub fn med(&self, key: &str) -> Option<f64> {
        self.samples.get(key).and_then(|v| median(v))
    }
}

/// What the suite measures and with which binaries (from its arguments).
pub struct Params {
    pub smoke: bool,
    pub runs: usize,
    pub calls: usize,
    pub state_calls: usize,
    pub warmup: usize,
    pub sync: String,
    pub sync_sizes: Vec<usize>,
    pub rust_plugin: String,
    pub go_plugin: String,
    pub go_driver: String,
    /// Driver C (pkg/adaptation v0.12.5) and the Go plugin on pkg/stub
    /// v0.12.5 it runs.
    pub go_driver_v012: String,
    pub go_plugin_v012: String,
    pub rust_static: Option<String>,
    pub static_target: String,
    pub exe: PathBuf,
    /// Bytes of one CreateContainer request and reply on the socket.
    pub req_b: usize,
    pub resp_b: usize,
}

impl Params {
    fn from_args(args: &Args) -> Params {
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
        let go_driver_v012 = args.req("go-driver-v012");
        let go_plugin_v012 = args.req("go-plugin-v012");
        let rust_static = args.get("rust-static-plugin");
        let static_target = args.get("static-target").unwrap_or_default();
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        let (req_b, resp_b) = wire_sizes();
        Params {
            smoke,
            runs,
            calls,
            state_calls,
            warmup,
            sync,
            sync_sizes,
            rust_plugin,
            go_plugin,
            go_driver,
            go_driver_v012,
            go_plugin_v012,
            rust_static,
            static_target,
            exe,
            req_b,
            resp_b,
        }
    }
}

/// Everything the runs produced.
pub struct Measured {
    pub suite: Suite,
    pub elapsed: Duration,
    pub load_before: String,
    pub load_after: String,
    /// Stripped static binary sizes (bytes).
    pub rust_size: Option<f64>,
    pub go_size: Option<f64>,
    pub go_v012_size: Option<f64>,
}

/// Runs every measurement `p.runs` times.
fn measure(p: &Params, args: &Args) -> Measured {
    let Params {
        smoke,
        runs,
        calls,
        state_calls,
        warmup,
        ref sync,
        ref rust_plugin,
        ref go_plugin,
        ref go_driver,
        ref go_driver_v012,
        ref go_plugin_v012,
        ref rust_static,
        ref exe,
        req_b,
        resp_b,
        ..
    } = *p;
    let mut s = Suite {
        samples: Samples::new(),
        commands: Vec::new(),
        errors: Vec::new(),
    };
    let have_taskset = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|st| st.success());
    let load_before = loadavg();
    let started = Instant::now();
    let (c, sc, w) = (
        calls.to_string(),
        state_calls.to_string(),
        warmup.to_string(),
    );
    let (req_s, resp_s) = (req_b.to_string(), resp_b.to_string());
    let driver_a = |plugin: &str, sync: &str| {
        [
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
            sync,
        ]
        .map(String::from)
    };
    let floor_create = [
        "floor", "--req", &req_s, "--resp", &resp_s, "--n", &c, "--warmup", &w,
    ];
    // The driver and everything it starts on one CPU (see the report).
    let one_cpu = || {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(exe);
        cmd
    };
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        let first = run == 0;
        for (group, plugin) in [("a_rust", &rust_plugin), ("a_go", &go_plugin)] {
            s.run(
                group,
                "driver A",
                Command::new(exe).args(driver_a(plugin, sync)),
                first,
            );
        }
        // The Rust plugin with request statistics on and off, the same
        // workload back to back, to see what counting costs; the first
        // stats-on run leaves the plugin's statistics for the report.
        for (group, name) in [
            ("a_rust_stats_on", "bench"),
            ("a_rust_stats_off", "bench-nostats"),
        ] {
            let config = if first && group == "a_rust_stats_on" {
                format!("stats-file={}", stats_file().display())
            } else {
                String::new()
            };
            s.run(
                group,
                "driver A (statistics on/off)",
                Command::new(exe).args(driver_a(rust_plugin, "none")).args([
                    "--name",
                    name,
                    "--plugin-config",
                    &config,
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
                Command::new(exe).args([
                    "driver-a",
                    "--plugin",
                    rust_plugin,
                    "--sync-only",
                    "--plugin-config",
                    mode,
                    "--sync",
                    sync,
                ]),
                first,
            );
        }
        if let Some(p) = &rust_static {
            s.run(
                "a_rust_static",
                "driver A (idle, static binary)",
                Command::new(exe).args(["driver-a", "--plugin", p, "--idle-only"]),
                first,
            );
        }
        // Driver A again with the driver and the plugin on one CPU
        // (`taskset`, when the machine has it), and the floor likewise: no
        // wake-up of an idle CPU on the way, so what is left is software.
        if have_taskset {
            for (group, plugin) in [("a1_rust", &rust_plugin), ("a1_go", &go_plugin)] {
                s.run(
                    group,
                    "driver A on one CPU",
                    one_cpu().args(driver_a(plugin, "none")),
                    first,
                );
            }
            s.run(
                "floor1_create",
                "floor on one CPU (CreateContainer bytes)",
                one_cpu().args(floor_create),
                first,
            );
        }
        for (group, plugin) in [("b_rust", &rust_plugin), ("b_go", &go_plugin)] {
            s.run(
                group,
                "driver B",
                Command::new(go_driver).args([
                    "-plugin",
                    plugin,
                    "-calls",
                    &c,
                    "-state-calls",
                    &sc,
                    "-warmup",
                    &w,
                    "-sync",
                    sync,
                ]),
                first,
            );
        }
        // Driver C: CreateContainer and StartContainer only (Synchronize is
        // measured under A and B).
        for (group, plugin) in [("c_rust", rust_plugin), ("c_go", go_plugin_v012)] {
            s.run(
                group,
                "driver C",
                Command::new(go_driver_v012).args([
                    "-plugin",
                    plugin,
                    "-calls",
                    &c,
                    "-state-calls",
                    &sc,
                    "-warmup",
                    &w,
                    "-sync",
                    "none",
                ]),
                first,
            );
        }
        s.run(
            "work",
            "in-process work per call",
            Command::new(exe).args(["alloc-profile", "--n", if smoke { "1000" } else { "10000" }]),
            first,
        );
        s.run(
            "floor_create",
            "floor (CreateContainer bytes)",
            Command::new(exe).args(floor_create),
            first,
        );
        // The raw floor and the same ping-pong with the thread hops a ttrpc
        // connection adds, one at a time, on the 3000/300-byte exchange.
        for (group, what, extra) in [
            (
                "floor_hop",
                "floor + one client-side thread hop (3000/300 bytes)",
                &["--client-hop"][..],
            ),
            (
                "floor_handoff",
                "floor + server-side leader/follower hand-off (3000/300 bytes)",
                &["--server-workers", "4"][..],
            ),
            (
                "floor_hop_handoff",
                "floor + client hop + server hand-off (3000/300 bytes)",
                &["--client-hop", "--server-workers", "4"][..],
            ),
            ("floor_raw", "floor (3000/300 bytes)", &[][..]),
        ] {
            s.run(
                group,
                what,
                Command::new(exe)
                    .args([
                        "floor", "--req", "3000", "--resp", "300", "--n", &c, "--warmup", &w,
                    ])
                    .args(extra),
                first,
            );
        }
        for (group, which) in [("ttrpc_ours", "ours"), ("ttrpc_theirs", "theirs")] {
            s.run(
                group,
                "raw ttrpc",
                Command::new(exe).args([
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
    let go_v012_size = size(args.get("go-v012-size-bin"));
    Measured {
        suite: s,
        elapsed,
        load_before,
        load_after,
        rust_size,
        go_size,
        go_v012_size,
    }
}

/// The figures that must be in every report; the keys of those missing.
fn missing_figures(p: &Params, r: &Measured) -> Vec<String> {
    let Params {
        runs,
        ref sync_sizes,
        ..
    } = *p;
    let s = &r.suite;
    let (rust_size, go_size) = (r.rust_size, r.go_size);
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
        for n in sync_sizes {
            need.push(format!("{g}.sync_{n}_ms"));
            need.push(format!("{g}.sync_{n}_hwm_kb"));
        }
    }
    for g in ["c_rust", "c_go"] {
        for k in [
            "create_p50_us",
            "create_p99_us",
            "create_calls_per_s",
            "create_cpu_us_per_call",
            "state_per_s",
            "start_fallback",
        ] {
            need.push(format!("{g}.{k}"));
        }
    }
    for g in ["a_rust_stats_on", "a_rust_stats_off"] {
        for k in ["create_p50_us", "create_cpu_us_per_call"] {
            need.push(format!("{g}.{k}"));
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
        for n in sync_sizes {
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

    missing
}

pub fn suite(args: &Args) {
    let p = Params::from_args(args);
    let r = measure(&p, args);
    let report = report::write(&p, &r, args);
    let missing = missing_figures(&p, &r);
    let out_path = args.get("out");
    let s = &r.suite;
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

/// Where the bench plugin leaves its statistics for the report.
pub fn stats_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("nri-bench-stats-{}.prom", std::process::id()))
}
