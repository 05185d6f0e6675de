//! The report (BENCHMARKS.md): how it was measured, the figure tables with
//! ratios, the goals, the commands, every sample and the hand-written
//! analysis.

use std::fmt::Write as _;

use crate::cli::Args;
use crate::format::{fmt_num, fmt_ratio, ratio};
use crate::goals;
use crate::procfs::machine;
use crate::stats::median;
use crate::suite::{Measured, Params};

/// The whole report.
pub fn write(p: &Params, r: &Measured, args: &Args) -> String {
    let Params {
        smoke,
        runs,
        calls,
        state_calls,
        warmup,
        req_b,
        resp_b,
        ref sync_sizes,
        ref static_target,
        ..
    } = *p;
    let (rust_size, go_size) = (r.rust_size, r.go_size);
    let (load_before, load_after, elapsed) = (&r.load_before, &r.load_after, r.elapsed);
    let s = &r.suite;
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
         v0.9.0 `pkg/stub` (under driver C: the same source on v0.12.5 `pkg/stub`). Request: pod with 10 labels and 10 annotations, container with 20 env vars, 6 mounts \
         and Linux resources ({req_b} bytes on the socket; reply {resp_b} bytes). {calls} CreateContainer calls \
         and {state_calls} StateChange (StartContainer) notifications per run after {warmup} warm-up calls, one at \
         a time. Driver A is our `nri::runtime` launching the plugin with its socket on fd 3 (light: it isolates \
         the plugin's cost); driver B is the Go `pkg/adaptation` v0.9.0 with the plugin connecting to its \
         socket (end to end); driver C is the same Go driver on `pkg/adaptation` v0.12.5, where StartContainer \
         travels as the per-event StartContainer RPC (the adaptation falls back to StateChange, for good, when \
         a plugin answers that RPC with UNIMPLEMENTED; see below which way each plugin was served) and the \
         Synchronize rows are not measured. Synchronize: one pod per 10 containers, a fresh plugin per size; time from the \
         runtime sending the state to the plugin's reply (chunked when over 4 MiB), peak RSS = the plugin's \
         VmHWM right after. Plugin CPU = utime+stime from /proc/<pid>/stat over the measured calls / calls. \
         The floor is a ping-pong of the same byte counts between two processes over a Unix socket (no \
         framing, no protobuf); its plugin CPU is the answering process's, what a plugin doing no work of \
         its own would cost.\n"
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
    for (d, drv) in [
        ("a", "A (nri::runtime)"),
        ("a1", "A, all on one CPU"),
        ("b", "B (Go adaptation v0.9.0)"),
        ("c", "C (Go adaptation v0.12.5)"),
    ] {
        let k = |lang: &str, key: &str| m(&format!("{d}_{lang}.{key}"));
        let floor = match d {
            "a1" => "floor1_create",
            _ => "floor_create",
        };
        let f = |key: &str| m(&format!("{floor}.{key}"));
        row(
            w,
            "CreateContainer p50 (µs)",
            drv,
            k("rust", "create_p50_us"),
            k("go", "create_p50_us"),
            f("floor_p50_us"),
        );
        row(
            w,
            "CreateContainer p99 (µs)",
            drv,
            k("rust", "create_p99_us"),
            k("go", "create_p99_us"),
            f("floor_p99_us"),
        );
        row(
            w,
            "CreateContainer calls/s",
            drv,
            k("rust", "create_calls_per_s"),
            k("go", "create_calls_per_s"),
            f("floor_calls_per_s"),
        );
        row(
            w,
            "plugin CPU per CreateContainer (µs)",
            drv,
            k("rust", "create_cpu_us_per_call"),
            k("go", "create_cpu_us_per_call"),
            if d.starts_with('a') {
                f("floor_server_cpu_us_per_call")
            } else {
                None
            },
        );
        row(
            w,
            "plugin context switches per CreateContainer",
            drv,
            k("rust", "create_plugin_ctxsw_per_call"),
            k("go", "create_plugin_ctxsw_per_call"),
            if d.starts_with('a') {
                f("floor_ctxsw_per_call")
            } else {
                None
            },
        );
        if d == "a1" {
            continue;
        }
        row(
            w,
            if d == "c" {
                "StartContainer notifications/s"
            } else {
                "StateChange notifications/s"
            },
            drv,
            k("rust", "state_per_s"),
            k("go", "state_per_s"),
            None,
        );
        if d == "c" {
            continue;
        }
        for n in sync_sizes {
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
    row(
        w,
        "stripped static binary, Go on `pkg/stub` v0.12.5 (bytes)",
        "—",
        rust_size,
        r.go_v012_size,
        None,
    );
    let _ = writeln!(
        w,
        "\n{}",
        transport(m("c_rust.start_fallback"), m("c_go.start_fallback"))
    );
    let _ = writeln!(
        w,
        "\nThe rows \"A, all on one CPU\" run driver A, the plugin and the floor under `taskset -c 0`{}. \
         A request then never waits for an idle CPU to wake up: what a call costs there is the software's \
         own work. Across two CPUs each of the two hand-overs of a call (the request to the plugin, the \
         reply to the runtime) may have to wake the other CPU first, which in a virtual machine whose \
         guest halts without polling takes tens of microseconds, and more than the work itself. \
         How often that happens depends on what else the threads do, not only on how fast they do it.",
        if m("a1_rust.create_p50_us").is_none() {
            " (not measured here: `taskset` is missing)"
        } else {
            ""
        }
    );

    let _ = writeln!(
        w,
        "\n## What request statistics cost (driver A, Rust plugin, medians)\n\n\
         The same plugin and workload back to back in each run, with `Stub::stats` counting \
         (the default) and with `StubBuilder::collect_stats(false)`.\n\n\
         | figure | statistics on | statistics off | on/off |\n|---|---:|---:|---:|"
    );
    for (name, key) in [
        ("CreateContainer p50 (µs)", "create_p50_us"),
        (
            "plugin CPU per CreateContainer (µs)",
            "create_cpu_us_per_call",
        ),
    ] {
        let on = m(&format!("a_rust_stats_on.{key}"));
        let off = m(&format!("a_rust_stats_off.{key}"));
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} |",
            fmt_num(on),
            fmt_num(off),
            fmt_ratio(ratio(on, off))
        );
    }
    if let Ok(text) = std::fs::read_to_string(crate::suite::stats_file()) {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                !l.starts_with('#')
                    && !l.contains("_bucket{")
                    && (l.contains("CreateContainer")
                        || l.contains("StartContainer")
                        || l.contains("Configure")
                        || !l.contains("request="))
            })
            .collect();
        let _ = writeln!(
            w,
            "\nThe statistics the plugin kept in the first stats-on run (`Stats::to_prometheus()`, \
             histogram buckets left out):\n\n```text\n{}\n```",
            lines.join("\n")
        );
        let _ = std::fs::remove_file(crate::suite::stats_file());
    }

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
            "… the same with a fresh decode of the request (µs)",
            "work.create_plugin_work_fresh_us",
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
            "allocations to decode one CreateContainerRequest (reused message, as the stub does)",
            "work.create_decode_allocs",
        ),
        (
            "… the same with a fresh decode (protobuf crate)",
            "work.create_decode_allocs_fresh",
        ),
        (
            "allocations to build and encode the reply",
            "work.create_handler_encode_allocs",
        ),
        ("… of which encoding it", "work.create_reply_encode_allocs"),
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
        (
            "Synchronize: bound of the decoded form charged per container (bytes)",
            "work.sync_decoded_bound_bytes_per_container",
        ),
        (
            "Synchronize: walk bounding the decoded forms of the whole state (ms)",
            "work.sync_bound_walk_ms",
        ),
        (
            "Synchronize, runtime side: size once and encode the chunks with the cached sizes (ms)",
            "work.sync_runtime_size_encode_ms",
        ),
        (
            "… the same, computing each size again as it is written (ms)",
            "work.sync_runtime_size_twice_encode_ms",
        ),
        (
            "Synchronize: the state's bytes through a Unix socket, copied out by the reader (ms)",
            "work.sync_socket_transfer_ms",
        ),
    ] {
        let _ = writeln!(w, "| {name} | {} |", fmt_num(m(key)));
    }

    goals::table(w, p, r);
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

    report
}

/// How driver C's StartContainer reached each plugin (the driver reports
/// `start_fallback` 1 when the adaptation recorded the StateChange
/// deprecation, 0 when the per-event RPC served it).
fn transport(rust: Option<f64>, go: Option<f64>) -> String {
    let way = |v: Option<f64>| {
        match v {
        Some(v) if v >= 0.5 => {
            "over the StateChange fallback: the plugin answered the per-event StartContainer RPC with \
             UNIMPLEMENTED once, and the adaptation recorded the StateChange deprecation"
        }
        Some(_) => "over the per-event StartContainer RPC",
        None => "not measured",
    }
    };
    format!(
        "Driver C served the Rust plugin's StartContainer {}; the Go plugin's {}.",
        way(rust),
        way(go)
    )
}
