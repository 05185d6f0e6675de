//! `floor` and `floor-server`: the raw-socket floor, a ping-pong of the
//! same byte counts between two processes (no framing, no protobuf), plus
//! variants with the thread structures of our ttrpc client and server.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cli::{fail, result, Args};
use crate::helper::{connect_retry, temp_sock, Helper};
use crate::procfs::{clk_tck, cpu_ticks, ctx_switches};
use crate::stats::report_latencies;

pub fn floor(args: &Args) {
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
    let server = _child.0.id();
    let cs0 = ctx_switches(me) + ctx_switches(server);
    let cpu0 = cpu_ticks(server);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        once(&mut s);
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let cpu1 = cpu_ticks(server);
    let cs1 = ctx_switches(me) + ctx_switches(server);
    report_latencies("floor", lat, total);
    result("floor_ctxsw_per_call", (cs1 - cs0) / n as f64);
    // The answering side's CPU: what a plugin that did no work of its own
    // would cost per call.
    result(
        "floor_server_cpu_us_per_call",
        (cpu1 - cpu0) / clk_tck() * 1e6 / n as f64,
    );
}

pub fn floor_server(args: &Args) {
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
