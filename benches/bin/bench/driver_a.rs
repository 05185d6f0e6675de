//! `driver-a`: driver A, our `nri::runtime`, launching the plugin binary
//! as a pre-installed plugin (socket on fd 3) and measuring its start-up,
//! idle footprint, CreateContainer, StateChange and Synchronize.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use nri::api::Event;
use nri::runtime::Runtime;

use crate::cli::{fail, result, sizes_arg, Args};
use crate::common;
use crate::procfs::{clk_tck, cpu_ticks, ctx_switches, status_field};
use crate::stats::report_latencies;

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

pub fn driver_a(args: &Args) {
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
    let name = args.get("name").unwrap_or_else(|| "bench".into());
    let h = runtime
        .launch(
            plugin,
            &name,
            "10",
            &args.get("plugin-config").unwrap_or_default(),
        )
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
    // A plugin asked to leave its statistics writes them on Shutdown, before
    // the handle goes (which kills it).
    let config = args.get("plugin-config").unwrap_or_default();
    if config.contains("stats-file=") {
        h.shutdown()
            .unwrap_or_else(|e| fail(format!("Shutdown: {e}")));
    }
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
