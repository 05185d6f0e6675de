//! The turn to read: a worker that read a request serves it and goes back
//! to reading, and another worker takes the reading over only when more
//! work waits or a handler runs long. These tests check that requests
//! arriving during a slow handler are still served promptly, with one
//! worker busy and with every worker but one busy.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nri::ttrpc::{
    Client, Connection, ConnectionBuilder, ConnectionOptions, Framing, Services, Status,
};

const SVC: &str = "test.Turn";

/// The milliseconds a payload names (a decimal number).
fn millis(payload: &[u8]) -> Result<u64, Status> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Status::new(nri::ttrpc::Code::InvalidArgument, "bad payload"))
}

/// Services: `Slow` sleeps for as many milliseconds as its payload says
/// (a decimal number), `Fast` echoes its payload, `SlowAfter` answers at
/// once and then sleeps that long in a post-reply action.
fn services(slow_running: Arc<AtomicUsize>) -> Arc<Services> {
    let mut s = Services::new();
    s.add_method(
        SVC,
        "SlowAfter",
        Box::new(move |ctx, payload| {
            let ms = millis(payload)?;
            ctx.after_reply(move || thread::sleep(Duration::from_millis(ms)));
            Ok(b"later".to_vec())
        }),
    );
    s.add_method(
        SVC,
        "Slow",
        Box::new(move |_ctx, payload| {
            let ms = millis(payload)?;
            slow_running.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(ms));
            slow_running.fetch_sub(1, Ordering::SeqCst);
            Ok(b"slept".to_vec())
        }),
    );
    s.add_method(SVC, "Fast", Box::new(|_ctx, payload| Ok(payload.to_vec())));
    Arc::new(s)
}

struct Pair {
    _server: Connection,
    _client_conn: Connection,
    client: Client,
    slow_running: Arc<AtomicUsize>,
}

fn pair(framing: Framing, workers: usize) -> Pair {
    pair_with(
        framing,
        workers,
        ConnectionOptions::default().takeover_after,
    )
}

fn pair_with(framing: Framing, workers: usize, takeover_after: Duration) -> Pair {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let slow_running = Arc::new(AtomicUsize::new(0));
    let server = ConnectionBuilder::new(a, framing)
        .options(ConnectionOptions {
            name: "turn-server".into(),
            workers,
            takeover_after,
            ..Default::default()
        })
        .serve(1, services(slow_running.clone()))
        .start()
        .expect("server");
    let client_conn = ConnectionBuilder::new(b, framing)
        .options(ConnectionOptions {
            name: "turn-client".into(),
            workers: 2,
            ..Default::default()
        })
        .open(1)
        .start()
        .expect("client");
    let client = client_conn.client(1).expect("client");
    Pair {
        _server: server,
        _client_conn: client_conn,
        client,
        slow_running,
    }
}

fn call(client: &Client, method: &str, payload: &[u8]) -> nri::Result<Vec<u8>> {
    client.call_raw(
        SVC,
        method,
        payload.to_vec(),
        Some(Duration::from_secs(10)),
        Vec::new(),
    )
}

/// Starts `n` slow calls of `ms` milliseconds each and waits until every
/// one of them is running in its handler.
fn start_slow(p: &Pair, n: usize, ms: u64) -> Vec<thread::JoinHandle<nri::Result<Vec<u8>>>> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let c = p.client.clone();
            thread::spawn(move || call(&c, "Slow", ms.to_string().as_bytes()))
        })
        .collect();
    let t = Instant::now();
    while p.slow_running.load(Ordering::SeqCst) < n {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the slow handlers did not start"
        );
        thread::sleep(Duration::from_millis(1));
    }
    handles
}

/// Fast calls made one after another while slow handlers run: each is
/// answered well before the slow ones finish. The bound is generous (the
/// machine may be busy); the slow handlers take 3 s.
fn fast_calls_are_served_during_slow_handlers(framing: Framing, workers: usize, slow: usize) {
    let p = pair(framing, workers);
    let started = Instant::now();
    let slow_calls = start_slow(&p, slow, 3000);
    let mut worst = Duration::ZERO;
    for i in 0..200u32 {
        let t = Instant::now();
        let got = call(&p.client, "Fast", &i.to_be_bytes()).expect("fast call");
        assert_eq!(got, i.to_be_bytes());
        worst = worst.max(t.elapsed());
    }
    assert_eq!(
        p.slow_running.load(Ordering::SeqCst),
        slow,
        "the fast calls must all finish while the slow handlers still run"
    );
    assert!(
        worst < Duration::from_millis(250),
        "slowest fast call took {worst:?} ({workers} workers, {slow} slow handlers)"
    );
    for h in slow_calls {
        assert_eq!(h.join().expect("slow caller").expect("slow call"), b"slept");
    }
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn fast_requests_are_served_while_one_handler_is_slow() {
    fast_calls_are_served_during_slow_handlers(Framing::Raw, 4, 1);
    fast_calls_are_served_during_slow_handlers(Framing::Mux, 4, 1);
}

#[test]
fn fast_requests_are_served_while_every_worker_but_one_is_slow() {
    fast_calls_are_served_during_slow_handlers(Framing::Mux, 3, 2);
}

/// A request that arrives right after a slow one, before its handler has
/// run long, waits for a reader only until an idle worker takes over.
#[test]
fn a_request_right_behind_a_slow_one_is_served_promptly() {
    let p = pair(Framing::Mux, 2);
    for _ in 0..20 {
        let slow = start_slow(&p, 1, 400);
        let t = Instant::now();
        call(&p.client, "Fast", b"x").expect("fast call");
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(200),
            "a request behind a slow handler took {took:?}"
        );
        for h in slow {
            h.join().expect("slow caller").expect("slow call");
        }
    }
}

/// A worker about to run a long post-reply action hands the read side on
/// first: the next request is served at once, not after the action, even
/// when the watcher would take a parked read side over only after a minute.
#[test]
fn a_request_after_a_reply_with_a_long_post_reply_action_is_served_promptly() {
    for framing in [Framing::Mux, Framing::Raw] {
        let p = pair_with(framing, 2, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(
                call(&p.client, "SlowAfter", b"1500").expect("call"),
                b"later"
            );
            let t = Instant::now();
            call(&p.client, "Fast", b"x").expect("fast call");
            let took = t.elapsed();
            assert!(
                took < Duration::from_millis(500),
                "{framing:?}: a request behind a 1.5 s post-reply action took {took:?}"
            );
            // Let the action end before the next round.
            thread::sleep(Duration::from_millis(1600));
        }
    }
}

/// Many callers at once, fast handlers: every call is answered (the read
/// turn is handed on whenever a read brought several requests).
#[test]
fn concurrent_fast_callers_are_all_answered() {
    let p = pair(Framing::Mux, 4);
    let handles: Vec<_> = (0..8)
        .map(|k| {
            let c = p.client.clone();
            thread::spawn(move || {
                for i in 0..500u32 {
                    let v = (k << 16 | i).to_be_bytes();
                    assert_eq!(call(&c, "Fast", &v).expect("fast call"), v);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("caller");
    }
}

/// A caller on our side that reads the socket for its own reply while a
/// worker serves a request (taking over that worker's parked read side),
/// and the worker finishing meanwhile: afterwards the peer's requests are
/// still read and served.
#[test]
fn requests_are_served_after_a_caller_read_during_a_handler() {
    let (a, b) = UnixStream::pair().expect("socketpair");
    // Ours: serves Quick (20 ms) on 1, calls the peer on 2.
    let mut ours = Services::new();
    ours.add_method(
        SVC,
        "Quick",
        Box::new(|_ctx, payload| {
            thread::sleep(Duration::from_millis(20));
            Ok(payload.to_vec())
        }),
    );
    // No takeover by an idle worker within the test: only our caller
    // reads while our worker serves Quick.
    let ours = ConnectionBuilder::new(a, Framing::Mux)
        .options(ConnectionOptions {
            name: "turn-ours".into(),
            workers: 2,
            takeover_after: Duration::from_secs(30),
            ..Default::default()
        })
        .serve(1, Arc::new(ours))
        .open(2)
        .start()
        .expect("ours");
    // The peer: serves Slow (60 ms) on 2, calls us on 1.
    let mut theirs = Services::new();
    theirs.add_method(
        SVC,
        "Slow",
        Box::new(|_ctx, payload| {
            thread::sleep(Duration::from_millis(60));
            Ok(payload.to_vec())
        }),
    );
    let theirs = ConnectionBuilder::new(b, Framing::Mux)
        .options(ConnectionOptions {
            name: "turn-theirs".into(),
            workers: 2,
            ..Default::default()
        })
        .serve(2, Arc::new(theirs))
        .open(1)
        .start()
        .expect("theirs");
    let to_theirs = ours.client(2).expect("client");
    let to_ours = theirs.client(1).expect("client");
    for _ in 0..10 {
        let c = to_ours.clone();
        let peer = thread::spawn(move || call(&c, "Quick", b"q"));
        // Our call starts while our worker serves Quick.
        thread::sleep(Duration::from_millis(5));
        call(&to_theirs, "Slow", b"s").expect("our call");
        peer.join().expect("peer").expect("their call");
        // Nothing is in flight now; their next request must be read.
        let t = Instant::now();
        to_ours
            .call_raw(
                SVC,
                "Quick",
                b"again".to_vec(),
                Some(Duration::from_secs(2)),
                Vec::new(),
            )
            .expect("a request after our call is served");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "took {:?}",
            t.elapsed()
        );
    }
}
