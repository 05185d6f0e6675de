//! `alloc-profile`: in-process CPU work and heap cost of the benchmark's
//! messages, with no I/O (a counting global allocator, off unless this
//! subcommand runs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use nri::api::{
    CreateContainerRequest, CreateContainerResponse, ReusedMessage, SynchronizeRequest,
    PLUGIN_SERVICE,
};
use nri::ttrpc::{Request, Response};
use protobuf::{Message, MessageField};

use crate::cli::{fail, result, Args};
use crate::common;

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
pub fn alloc_profile(args: &Args) {
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
    // What the stub charges against max_sync_state_bytes beyond the bytes
    // it received: the bound of every item's decoded form, computed from
    // its bytes (the walk the stub makes as each chunk arrives).
    let (pods, ctrs) = common::state(n);
    let items: Vec<Vec<u8>> = ctrs
        .iter()
        .map(|c| c.write_to_bytes().unwrap_or_else(|e| fail(e)))
        .collect();
    let pod_items: Vec<Vec<u8>> = pods
        .iter()
        .map(|p| p.write_to_bytes().unwrap_or_else(|e| fail(e)))
        .collect();
    let t = Instant::now();
    let mut bound = 0u64;
    for b in &items {
        bound +=
            nri::ttrpc::decoded_size_bound::<nri::api::Container>(b).unwrap_or_else(|e| fail(e));
    }
    for b in &pod_items {
        bound +=
            nri::ttrpc::decoded_size_bound::<nri::api::PodSandbox>(b).unwrap_or_else(|e| fail(e));
    }
    result("sync_bound_walk_ms", t.elapsed().as_secs_f64() * 1e3);
    // Where the time of a Synchronize goes besides the plugin: what
    // nri::runtime does to send the state (size every object once, then
    // write chunks of at most 4 MiB with the cached sizes), and moving the
    // bytes through a Unix socket to a reader that copies them out.
    let t = Instant::now();
    let sizes: Vec<u32> = ctrs.iter().map(|c| c.compute_size() as u32).collect();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(4 << 20);
    for (c, &size) in ctrs.iter().zip(&sizes) {
        if out.len() + size as usize + 8 > (4 << 20) - 100 {
            chunks.push(std::mem::replace(&mut out, Vec::with_capacity(4 << 20)));
        }
        let mut os = protobuf::CodedOutputStream::vec(&mut out);
        os.write_tag(2, protobuf::rt::WireType::LengthDelimited)
            .and_then(|()| os.write_raw_varint32(size))
            .and_then(|()| c.write_to_with_cached_sizes(&mut os))
            .and_then(|()| os.flush())
            .unwrap_or_else(|e| fail(e));
    }
    chunks.push(out);
    result(
        "sync_runtime_size_encode_ms",
        t.elapsed().as_secs_f64() * 1e3,
    );
    // The same with each object's size computed again as it is written
    // (what nri::runtime did before it reused the sizes it cut chunks by).
    let t = Instant::now();
    let _sizes: Vec<u32> = ctrs.iter().map(|c| c.compute_size() as u32).collect();
    let mut again: Vec<Vec<u8>> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(4 << 20);
    for c in ctrs.iter() {
        if out.len() + c.cached_size() as usize + 8 > (4 << 20) - 100 {
            again.push(std::mem::replace(&mut out, Vec::with_capacity(4 << 20)));
        }
        let mut os = protobuf::CodedOutputStream::vec(&mut out);
        os.write_tag(2, protobuf::rt::WireType::LengthDelimited)
            .and_then(|()| os.write_message_no_tag(c))
            .and_then(|()| os.flush())
            .unwrap_or_else(|e| fail(e));
    }
    again.push(out);
    result(
        "sync_runtime_size_twice_encode_ms",
        t.elapsed().as_secs_f64() * 1e3,
    );
    if again != chunks {
        fail("the two encodings differ");
    }
    drop(again);
    let total: usize = chunks.iter().map(Vec::len).sum();
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap_or_else(|e| fail(e));
    let t = Instant::now();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 64 << 10];
        let mut frame = Vec::with_capacity(4 << 20);
        let mut got = 0usize;
        while got < total {
            let n = b.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            frame.extend_from_slice(&buf[..n]);
            if frame.len() >= 4 << 20 {
                frame.clear();
            }
            got += n;
        }
        got
    });
    for c in &chunks {
        use std::io::Write;
        a.write_all(c).unwrap_or_else(|e| fail(e));
    }
    let got = reader.join().unwrap_or(0);
    if got != total {
        fail("the socket lost bytes");
    }
    result("sync_socket_transfer_ms", t.elapsed().as_secs_f64() * 1e3);
    result(
        "sync_decoded_bound_bytes_per_container",
        bound as f64 / n as f64,
    );

    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    let req = CreateContainerRequest {
        pod: MessageField::some(pod),
        container: MessageField::some(ctr),
        ..Default::default()
    };
    let bytes = req.write_to_bytes().unwrap_or_else(|e| fail(e));
    // What the stub does: decode into the message the previous request of
    // the same type left on the worker thread. Steady state: a few decodes
    // of the same bytes first, then the count per decode.
    let mut kept = ReusedMessage::<CreateContainerRequest>::new();
    for _ in 0..3 {
        kept.decode(&bytes).unwrap_or_else(|e| fail(e));
    }
    const DECODES: usize = 10;
    let allocs0 = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..DECODES {
        kept.decode(&bytes).unwrap_or_else(|e| fail(e));
    }
    let reused = (ALLOCS.load(Ordering::SeqCst) - allocs0) as f64 / DECODES as f64;
    if kept.message() != &req {
        fail("the reused decode differs from the request");
    }
    // A fresh decode with the protobuf crate's generated code.
    let allocs0 = ALLOCS.load(Ordering::SeqCst);
    let decoded = CreateContainerRequest::parse_from_bytes(&bytes).unwrap_or_else(|e| fail(e));
    let allocs1 = ALLOCS.load(Ordering::SeqCst);
    let reply = CreateContainerResponse {
        adjust: MessageField::some(common::adjust()),
        ..Default::default()
    };
    let allocs_built = ALLOCS.load(Ordering::SeqCst);
    let out = reply.write_to_bytes().unwrap_or_else(|e| fail(e));
    let allocs2 = ALLOCS.load(Ordering::SeqCst);
    drop((decoded, out));
    result("create_decode_allocs", reused);
    result("create_decode_allocs_fresh", (allocs1 - allocs0) as f64);
    result("create_handler_encode_allocs", (allocs2 - allocs1) as f64);
    // Of which the encoding alone (the rest is the handler building its
    // adjustment).
    result(
        "create_reply_encode_allocs",
        (allocs2 - allocs_built) as f64,
    );
    COUNTING.store(false, Ordering::SeqCst);

    // CPU work per CreateContainer with no I/O at all, one thread.
    let iters = args.num("iters", 20_000);
    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    // Plugin side: decode the envelope and the request (into the message
    // the previous request left, as the stub does), run the handler, encode
    // the reply and its envelope.
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
    let mut kept = ReusedMessage::<CreateContainerRequest>::new();
    let best = best_of_5(iters, || {
        let env = Request::parse_from_bytes(&envelope).unwrap_or_else(|e| fail(e));
        // The stub decodes into the kept message and keeps it while its
        // retained bound (counted as it grew) is small.
        let req = kept.decode(&env.payload).unwrap_or_else(|e| fail(e));
        sink += req.container.env.len() + encode_reply();
        sink += kept.retained_bound() as usize;
    });
    result("create_plugin_work_us", best);
    // The same with a fresh decode of the request (before the stub reused
    // its messages).
    let best = best_of_5(iters, || {
        let env = Request::parse_from_bytes(&envelope).unwrap_or_else(|e| fail(e));
        let req =
            CreateContainerRequest::parse_from_bytes(&env.payload).unwrap_or_else(|e| fail(e));
        sink += req.container.env.len() + encode_reply();
    });
    result("create_plugin_work_fresh_us", best);
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
    let best = best_of_5(iters, || {
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
        let r =
            CreateContainerResponse::parse_from_bytes(&resp.payload).unwrap_or_else(|e| fail(e));
        sink += r.adjust.env.len();
    });
    result("create_driver_a_work_us", best);
    // Of which: the clone of the pod and the container.
    let best = best_of_5(iters, || {
        let req = CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            ..Default::default()
        };
        sink += req.container.env.len();
    });
    result("create_driver_a_clone_us", best);
    if sink == 0 {
        fail("nothing was decoded");
    }
}

/// Microseconds per call of `f`: `iters` calls in 5 batches, the fastest
/// batch (the least disturbed by other work on the machine).
/// The plugin's reply to the benchmark's CreateContainer, built and
/// encoded with its envelope; returns the bytes written.
fn encode_reply() -> usize {
    let reply = CreateContainerResponse {
        adjust: MessageField::some(common::adjust()),
        ..Default::default()
    };
    let resp = Response {
        payload: reply.write_to_bytes().unwrap_or_else(|e| fail(e)),
        ..Default::default()
    };
    resp.write_to_bytes().unwrap_or_else(|e| fail(e)).len()
}

fn best_of_5(iters: usize, mut f: impl FnMut()) -> f64 {
    let batch = (iters / 5).max(1);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
    }
    best
}
