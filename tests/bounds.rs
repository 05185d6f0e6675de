//! Resource bounds: memory per connection follows the configured limits,
//! floods do not grow queues, and connect/disconnect cycles leak neither
//! file descriptors nor threads.
//!
//! Everything is measured process-wide (`/proc/self/status` VmRSS,
//! `/proc/self/fd`, `/proc/self/task`), so this file holds a single test
//! that runs its phases one after another: no other test of this binary
//! can open sockets, spawn threads or allocate while a phase counts. Each
//! phase bounds its own waits and says what it measured when it fails.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    envelope_len, mux_frame, request_envelope, test_services, ttrpc_frame, RawPeer, Silence, SVC,
};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::runtime::Runtime;
use nri::stub::{Backoff, Context, HandlerResult, Plugin, Stub};
use nri::ttrpc::codec::{FrameHeader, HEADER_LEN, MAX_MESSAGE_LEN, TYPE_REQUEST};
use nri::ttrpc::{Code, Connection, ConnectionBuilder, ConnectionOptions, Framing};

const STEP: Duration = Duration::from_secs(5);
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Process measurements
// ---------------------------------------------------------------------------

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn fds() -> usize {
    count_dir("/proc/self/fd")
}

fn threads() -> usize {
    count_dir("/proc/self/task")
}

/// Polls `f` until it is at most `target` (threads and sockets of a closed
/// connection go away asynchronously); returns the last value.
fn settle_to(target: usize, f: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + STEP;
    loop {
        let v = f();
        if v <= target || Instant::now() >= deadline {
            return v;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn recv_within<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(STEP)
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}"))
}

fn spawn_result<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (tx, rx) = bounded(1);
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn mib(b: usize) -> f64 {
    b as f64 / MIB as f64
}

// ---------------------------------------------------------------------------
// The single test
// ---------------------------------------------------------------------------

#[test]
fn resources_stay_bounded() {
    // Memory phases first, while the heap is young.
    partial_large_messages_hold_at_most_their_declared_size();
    request_flood_with_a_slow_handler_keeps_memory_flat();
    connection_cycles_leak_no_fd_and_no_thread();
    stub_cycles_against_the_runtime_leak_no_fd_and_no_thread();
    supervised_restarts_leak_no_thread();
}

/// Serving connections over socket pairs, each with a raw peer.
fn serving(n: usize) -> Vec<(Connection, RawPeer)> {
    (0..n)
        .map(|i| {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let conn = ConnectionBuilder::new(ours, Framing::Mux)
                .options(ConnectionOptions {
                    name: format!("nri-bounds-{i}"),
                    ..Default::default()
                })
                .serve(1, test_services())
                .open(2)
                .start()
                .expect("start");
            (conn, RawPeer::new(theirs, Framing::Mux, 1))
        })
        .collect()
}

/// Peers that declare 4 MiB messages (and one that declares 4 GiB) and send
/// their bytes slowly, then stall: each connection holds at most the bytes
/// received of one message per logical connection, never the declared
/// size of an oversized one.
fn partial_large_messages_hold_at_most_their_declared_size() {
    const CONNS: usize = 4;
    const SENT: usize = 3 * MIB + MIB / 2;
    let mut conns = serving(CONNS + 1);
    // The payload of a request whose envelope is exactly 4 MiB.
    let payload_len = common::max_request_payload(SVC, "Echo", 0);
    let total = envelope_len(SVC, "Echo", payload_len, 0);
    assert!(total <= MAX_MESSAGE_LEN);
    let header = FrameHeader {
        length: total as u32,
        stream_id: 1,
        message_type: TYPE_REQUEST,
        flags: 0,
    }
    .to_bytes();
    // The whole 4 MiB + 10 message declared in one mux frame (the largest
    // the decoder accepts), of which only SENT bytes ever arrive, 64 KiB
    // every 2 ms.
    let envelope = request_envelope(SVC, "Echo", &vec![0x5a; payload_len], 0);
    let junk = vec![0xa5u8; MIB];
    let chunk = 64 * 1024;
    let before = rss_bytes();
    for (_, peer) in conns.iter_mut().take(CONNS) {
        let mut first = Vec::new();
        first.extend_from_slice(&1u32.to_be_bytes());
        first.extend_from_slice(&((HEADER_LEN + total) as u32).to_be_bytes());
        first.extend_from_slice(&header);
        peer.send_bytes(&first);
    }
    for off in (0..SENT).step_by(chunk) {
        for (_, peer) in conns.iter_mut().take(CONNS) {
            peer.send_bytes(&envelope[off..(off + chunk).min(SENT)]);
        }
        thread::sleep(Duration::from_millis(2));
    }
    // The last peer declares a 4 GiB ttrpc message inside ordinary mux
    // frames and sends 16 MiB of it: skipped, never buffered.
    {
        let (_, peer) = &mut conns[CONNS];
        let huge = FrameHeader {
            length: u32::MAX,
            stream_id: 1,
            message_type: TYPE_REQUEST,
            flags: 0,
        }
        .to_bytes();
        peer.send_bytes(&mux_frame(1, &huge));
        for _ in 0..16 {
            peer.send_bytes(&mux_frame(1, &junk));
            thread::sleep(Duration::from_millis(2));
        }
    }
    // Let the readers take everything in.
    thread::sleep(Duration::from_millis(200));
    let during = rss_bytes();
    let growth = during.saturating_sub(before);
    let limit = CONNS * MAX_MESSAGE_LEN + 16 * MIB;
    eprintln!(
        "bounds: {CONNS} stalled 4 MiB messages ({} MiB sent each) + one 4 GiB declaration \
         (16 MiB sent): RSS {:.1} -> {:.1} MiB (+{:.1} MiB, bound {:.1} MiB)",
        mib(SENT),
        mib(before),
        mib(during),
        mib(growth),
        mib(limit)
    );
    assert!(
        growth <= limit,
        "RSS grew by {:.1} MiB with {CONNS} partial 4 MiB messages (bound {:.1} MiB)",
        mib(growth),
        mib(limit)
    );
    // Every connection is still alive (stalled, not broken) and closes cleanly.
    for (conn, peer) in conns.iter_mut() {
        assert!(!conn.is_closed(), "a slow peer is not an error");
        assert_eq!(
            peer.recv(Duration::from_millis(1)).err(),
            Some(Silence::Timeout)
        );
    }
    for (conn, _) in &conns {
        conn.close();
        assert!(conn.wait_timeout(STEP));
    }
}

/// A writer floods 10,000 requests of 4 KiB (40 MiB in all) at a
/// connection with 2 workers, a queue of 16, a 1 MiB read buffer and a
/// handler that sleeps 1 ms: every request is answered or refused with
/// RESOURCE_EXHAUSTED, and memory stays within a few queues' worth instead
/// of following the flood. (Workers read only when the queue is empty, so
/// the socket itself pushes back on the writer; the queue bound matters
/// when one read brings more requests than it holds, as a socket buffer
/// full of 4 KiB requests does.)
fn request_flood_with_a_slow_handler_keeps_memory_flat() {
    const REQUESTS: usize = 10_000;
    const PAYLOAD: usize = 4 * 1024;
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let conn = ConnectionBuilder::new(ours, Framing::Mux)
        .options(ConnectionOptions {
            workers: 2,
            max_queued_requests: 16,
            // One read can bring 32 requests: more than the queue takes.
            read_buffer: MIB,
            name: "nri-flood".into(),
            ..Default::default()
        })
        .serve(1, test_services())
        .open(2)
        .start()
        .expect("start");
    let mut writer = theirs.try_clone().expect("clone");
    let mut peer = RawPeer::new(theirs, Framing::Mux, 1);
    let before = rss_bytes();
    let peak = Arc::new(AtomicUsize::new(before));
    let wrote = spawn_result(move || -> std::io::Result<()> {
        let mut payload = vec![0x33u8; PAYLOAD];
        payload[..8].copy_from_slice(&1u64.to_be_bytes());
        for i in 0..REQUESTS {
            let env = request_envelope(SVC, "Sleep", &payload, 0);
            let frame = ttrpc_frame(2 * i as u32 + 1, TYPE_REQUEST, 0, &env);
            let mut out = Vec::with_capacity(frame.len() + 16);
            for piece in frame.chunks(1 << 20) {
                out.extend(mux_frame(1, piece));
            }
            writer.write_all(&out)?;
        }
        Ok(())
    });
    let (mut ok, mut refused) = (0usize, 0usize);
    for n in 0..REQUESTS {
        let (_, reply) = peer.expect_reply("flood reply");
        match reply.code {
            Code::Ok => ok += 1,
            Code::ResourceExhausted => refused += 1,
            other => panic!("unexpected reply {other:?}: {}", reply.message),
        }
        if n % 256 == 0 {
            peak.fetch_max(rss_bytes(), Ordering::Relaxed);
        }
    }
    recv_within(&wrote, "the flood writer").expect("the flood is written");
    let peak = peak.load(Ordering::Relaxed).max(rss_bytes());
    let growth = peak.saturating_sub(before);
    // Queue + workers hold 18 requests; the read buffer, a reply and
    // decoder copies a few more: 16 MiB is ample, 40 MiB went through.
    let limit = 16 * MIB;
    eprintln!(
        "bounds: flood of {REQUESTS} x {} KiB, {ok} served, {refused} refused: \
         RSS peak +{:.1} MiB (bound {:.1} MiB)",
        PAYLOAD / 1024,
        mib(growth),
        mib(limit)
    );
    assert_eq!(ok + refused, REQUESTS);
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    assert!(
        growth <= limit,
        "RSS grew by {:.1} MiB under the flood (bound {:.1} MiB)",
        mib(growth),
        mib(limit)
    );
    conn.close();
    assert!(conn.wait_timeout(STEP));
}

/// 1,000 pairs of our own Connection (one serving, one calling), each
/// making a call and closing from either end: fd and thread counts come
/// back to where they were.
fn connection_cycles_leak_no_fd_and_no_thread() {
    const CYCLES: usize = 1_000;
    let services = test_services();
    let (fd0, th0) = (fds(), threads());
    let t0 = Instant::now();
    for i in 0..CYCLES {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let opts = |name: &str| ConnectionOptions {
            workers: 2,
            name: name.into(),
            ..Default::default()
        };
        let server = ConnectionBuilder::new(a, Framing::Mux)
            .options(opts("nri-cyc-s"))
            .serve(1, services.clone())
            .open(2)
            .start()
            .expect("start server");
        let client = ConnectionBuilder::new(b, Framing::Mux)
            .options(opts("nri-cyc-c"))
            .open(1)
            .start()
            .expect("start client");
        let body = vec![i as u8; 1 + i % 700];
        let out = client
            .client(1)
            .expect("client")
            .call_raw(SVC, "Echo", body.clone(), Some(STEP), Vec::new())
            .expect("echo");
        assert_eq!(out, body);
        match i % 3 {
            0 => server.close(),
            1 => client.close(),
            _ => {
                client.close();
                server.close();
            }
        }
        assert!(server.wait_timeout(STEP) && client.wait_timeout(STEP));
        assert!(server.is_closed() && client.is_closed());
    }
    let took = t0.elapsed();
    let fd1 = settle_to(fd0, fds);
    let th1 = settle_to(th0, threads);
    eprintln!(
        "bounds: {CYCLES} connection pairs in {took:?}: fds {fd0} -> {fd1}, threads {th0} -> {th1}"
    );
    assert_eq!(
        fd1, fd0,
        "file descriptors leaked over {CYCLES} connections"
    );
    assert_eq!(th1, th0, "threads leaked over {CYCLES} connections");
}

#[derive(Default)]
struct Counter {
    creates: AtomicUsize,
}

impl Plugin for Counter {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.mask()
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        self.creates.fetch_add(1, Ordering::Relaxed);
        let mut a = ContainerAdjustment::new();
        a.add_env("ID", c.id.as_str());
        Ok((a, Vec::new()))
    }
}

fn pod() -> PodSandbox {
    PodSandbox {
        id: "p".into(),
        ..Default::default()
    }
}

fn ctr(id: String) -> Container {
    Container {
        id,
        pod_sandbox_id: "p".into(),
        ..Default::default()
    }
}

/// A stub that dials sockets handed to it through a queue.
fn queued_stub(plugin: Arc<Counter>, closes: Arc<AtomicUsize>) -> (Stub, Sender<UnixStream>) {
    let (tx, rx) = unbounded::<UnixStream>();
    let stub = Stub::builder(plugin)
        .plugin_name("bounds")
        .plugin_index("30")
        .socket_path("/nonexistent/bounds.sock")
        .dialer(move |_| {
            rx.try_recv().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no socket prepared")
            })
        })
        .on_close(move || {
            closes.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("build");
    (stub, tx)
}

/// 200 full stub sessions against `nri::runtime`: register, Configure,
/// Synchronize, one CreateContainer, then the end from either side.
fn stub_cycles_against_the_runtime_leak_no_fd_and_no_thread() {
    const CYCLES: usize = 200;
    let plugin = Arc::new(Counter::default());
    let closes = Arc::new(AtomicUsize::new(0));
    let (stub, sockets) = queued_stub(plugin.clone(), closes.clone());
    let rt = Runtime::new();
    let (fd0, th0) = (fds(), threads());
    let t0 = Instant::now();
    let mut fd_half = 0;
    for i in 0..CYCLES {
        if i == CYCLES / 2 {
            fd_half = settle_to(fd0 + 3, fds);
        }
        let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
        sockets.send(stub_end).expect("queue");
        let s = stub.clone();
        let started = spawn_result(move || s.start());
        let handle = rt.accept_stream(rt_end).expect("accept");
        recv_within(&started, "start").expect("start");
        let reply = handle
            .create_container(&pod(), &ctr(format!("c{i}")))
            .expect("create");
        assert_eq!(reply.adjust.env[0].value, format!("c{i}"));
        if i % 2 == 0 {
            // The plugin stops.
            stub.stop();
            assert!(handle.wait_closed(STEP));
        } else {
            // The runtime drops the plugin.
            handle.close();
            let s = stub.clone();
            recv_within(
                &spawn_result(move || s.wait()),
                "stub wait after runtime close",
            );
        }
        drop(handle);
        assert!(!stub.is_connected());
    }
    let took = t0.elapsed();
    // A stub keeps the connection it lost to the runtime (its socket: 3
    // descriptors) until it starts again or is dropped; the last cycle
    // ended that way, as did cycle CYCLES/2 - 1. So the count with the stub
    // alive is the same at half-time and at the end: no growth per cycle.
    let fd_alive = settle_to(fd0 + 3, fds);
    let th1 = settle_to(th0, threads);
    drop(stub);
    let fd1 = settle_to(fd0, fds);
    eprintln!(
        "bounds: {CYCLES} stub sessions against nri::runtime in {took:?}: fds {fd0} -> \
         {fd_half} (half-time) -> {fd_alive} (end, stub alive) -> {fd1} (stub dropped), \
         threads {th0} -> {th1}"
    );
    assert_eq!(plugin.creates.load(Ordering::Relaxed), CYCLES);
    assert_eq!(
        closes.load(Ordering::SeqCst),
        CYCLES,
        "one on-close per session"
    );
    assert_eq!(
        fd_alive, fd_half,
        "file descriptors grew over {CYCLES} stub sessions"
    );
    assert_eq!(
        fd1, fd0,
        "file descriptors leaked over {CYCLES} stub sessions"
    );
    assert_eq!(th1, th0, "threads leaked over {CYCLES} stub sessions");
}

/// A supervised stub whose runtime goes away 50 times reconnects each time;
/// its thread count does not grow with the restarts.
fn supervised_restarts_leak_no_thread() {
    const RESTARTS: usize = 50;
    let plugin = Arc::new(Counter::default());
    let closes = Arc::new(AtomicUsize::new(0));
    let (stub, sockets) = queued_stub(plugin.clone(), closes.clone());
    let rt = Runtime::new();
    let (fd0, th0) = (fds(), threads());
    let s = stub.clone();
    let sup = spawn_result(move || {
        s.run_supervised(Backoff {
            initial: Duration::from_millis(2),
            max: Duration::from_millis(10),
            max_attempts: None,
        })
    });
    let mut connected_counts = Vec::new();
    for i in 0..RESTARTS {
        let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
        sockets.send(stub_end).expect("queue");
        let handle = rt.accept_stream(rt_end).expect("accept after restart");
        handle
            .create_container(&pod(), &ctr(format!("r{i}")))
            .expect("create");
        connected_counts.push(threads());
        // The runtime restarts: the connection goes away.
        handle.close();
        assert!(handle.wait_closed(STEP));
        drop(handle);
        let deadline = Instant::now() + STEP;
        while closes.load(Ordering::SeqCst) < i + 1 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(closes.load(Ordering::SeqCst), i + 1, "restart {i} noticed");
    }
    stub.stop();
    recv_within(&sup, "run_supervised after stop").expect("supervised run ends");
    drop(stub);
    let fd1 = settle_to(fd0, fds);
    let th1 = settle_to(th0, threads);
    let (lo, hi) = (
        connected_counts.iter().min().copied().unwrap_or(0),
        connected_counts.iter().max().copied().unwrap_or(0),
    );
    eprintln!(
        "bounds: {RESTARTS} supervised restarts: threads while connected {lo}..={hi}, \
         at rest {th0} -> {th1}; fds {fd0} -> {fd1}"
    );
    assert_eq!(plugin.creates.load(Ordering::Relaxed), RESTARTS);
    // While connected: the supervisor, the stub's and the runtime's workers,
    // plus threads of the previous session still exiting. A leak of one
    // thread per restart would show as a spread of 50.
    assert!(
        hi - lo <= 8,
        "thread count while connected ranged {lo}..={hi}"
    );
    assert_eq!(
        th1, th0,
        "threads leaked over {RESTARTS} supervised restarts"
    );
    assert_eq!(fd1, fd0, "file descriptors leaked over {RESTARTS} restarts");
}
