//! `ttrpc` and `ttrpc-server`: raw ttrpc round trips between two
//! processes, our `nri::ttrpc` against the `ttrpc` crate's sync client and
//! server.

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nri::ttrpc::{ConnectionBuilder, Framing, Services};

use crate::cli::{fail, result, Args};
use crate::helper::{connect_retry, temp_sock, Helper};
use crate::procfs::ctx_switches;
use crate::stats::report_latencies;

const SVC: &str = "bench.Echo";

pub fn ttrpc_bench(args: &Args) {
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
    let (lat, total, cs);
    let payload = vec![7u8; req];
    let timeout = Duration::from_secs(10);
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
            (lat, total, cs) = measure(call, warmup, n, server_pid);
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
            (lat, total, cs) = measure(call, warmup, n, server_pid);
        }
        other => fail(format!("--impl must be ours or theirs, not {other:?}")),
    }
    let _ = std::fs::remove_file(&path);
    report_latencies("ttrpc", lat, total);
    result("ttrpc_client_ctxsw_per_call", cs.0 / n as f64);
    result("ttrpc_server_ctxsw_per_call", cs.1 / n as f64);
}

/// Runs `call` `warmup` times, then `n` times timed: the latencies, the
/// total time, and the context switches of this process and the server's.
fn measure(
    call: impl Fn(),
    warmup: usize,
    n: usize,
    server_pid: u32,
) -> (Vec<Duration>, Duration, (f64, f64)) {
    let me = std::process::id();
    for _ in 0..warmup {
        call();
    }
    let mut lat = Vec::with_capacity(n);
    let c0 = (ctx_switches(me), ctx_switches(server_pid));
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let cs = (ctx_switches(me) - c0.0, ctx_switches(server_pid) - c0.1);
    (lat, total, cs)
}

type TheirFn = dyn Fn(&ttrpc::TtrpcContext, ttrpc::Request) -> ttrpc::Response + Send + Sync;

struct TheirHandler(Box<TheirFn>);

impl ttrpc::MethodHandler for TheirHandler {
    fn handler(&self, ctx: ttrpc::TtrpcContext, req: ttrpc::Request) -> ttrpc::Result<()> {
        let resp = (self.0)(&ctx, req);
        ctx.respond(ctx.mh.stream_id, resp)
    }
}

pub fn ttrpc_server(args: &Args) {
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
