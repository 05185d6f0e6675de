//! Fuzzes the whole serving path: socket reads, trunk and ttrpc decoding,
//! request queueing, dispatch to typed handlers and reply writing.
//!
//! One end of a `UnixStream::pair()` is served by a real
//! `nri::ttrpc::Connection` (plugin service on logical connection 1,
//! connection 2 opened for calls); a helper thread writes the fuzz input
//! into the other end and shuts its write side, and this thread reads the
//! replies until EOF. Then the connection is closed and waited for.
//!
//! Set `NRI_FUZZ_DEBUG=1` to print, per input, the requests sent and the
//! replies read (useful when replaying an artifact).
//!
//! Input layout: byte 0 chooses the setup (bit 0: plain framing instead of
//! the trunk; bit 1: a deadline guard; bit 2: two workers instead of one;
//! bits 3-4: 1 to 4 queued requests); the rest is what the peer sends.
//!
//! Checked: nothing panics (a panic anywhere, even a caught one, aborts
//! under libFuzzer); the server closes within 1 s of our EOF, its
//! workers end within 1 s of `close` and every thread it started (the
//! deadline guard included) is gone 1 s later; everything it wrote is well formed:
//! trunk frames only on connections 1 and 2, a message never shares a
//! frame with another and is split only as 4096 bytes plus the rest; every
//! ttrpc frame is a decodable `Response`, and there are no more replies
//! than request frames sent.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use nri::api::{
    ConfigureRequest, ConfigureResponse, Empty, EventMask, SynchronizeRequest, SynchronizeResponse,
    PLUGIN_SERVICE,
};
use nri::mux::codec::{MuxDecoder, GO_READ_BUFFER, MUX_HEADER_LEN};
use nri::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use nri::ttrpc::codec::{Decoded, FrameDecoder, MAX_MESSAGE_LEN, TYPE_REQUEST, TYPE_RESPONSE};
use nri::ttrpc::{
    Code, ConnectionBuilder, ConnectionOptions, DeadlineGuard, Framing, Response, Services, Status,
};
use protobuf::Message;

/// How long the server may take to close after our EOF, and its workers
/// to end after `close`.
const BOUND: Duration = Duration::from_secs(1);

fn services() -> Arc<Services> {
    static SERVICES: OnceLock<Arc<Services>> = OnceLock::new();
    SERVICES
        .get_or_init(|| {
            let mut s = Services::new();
            s.add_unary(
                PLUGIN_SERVICE,
                "Configure",
                |_ctx, req: ConfigureRequest| {
                    let mut resp = ConfigureResponse::new();
                    resp.events = if req.config.is_empty() {
                        EventMask::ALL.bits()
                    } else {
                        EventMask::parse(&req.config).map_or(0, |m| m.bits())
                    };
                    Ok(resp)
                },
            );
            s.add_unary(
                PLUGIN_SERVICE,
                "Synchronize",
                |_ctx, req: SynchronizeRequest| {
                    let mut resp = SynchronizeResponse::new();
                    resp.more = req.more;
                    Ok(resp)
                },
            );
            s.add_unary(PLUGIN_SERVICE, "Shutdown", |_ctx, _req: Empty| {
                Err::<Empty, _>(Status::new(Code::Unavailable, "shutting down"))
            });
            Arc::new(s)
        })
        .clone()
}

/// Threads of this process, from `/proc/self/task` (Linux).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Waits (bounded) until the process is back to `baseline` threads. The
/// connection does not join its threads: `wait` returns once the last
/// worker has signalled, and the deadline-guard thread is not waited for
/// at all, so a thread may still be exiting. Waiting here keeps libFuzzer's
/// per-input leak check from seeing a half-exited thread's thread-locals,
/// and proves no thread outlives its connection by more than `BOUND`.
fn settle_threads(baseline: usize) {
    let started = Instant::now();
    loop {
        let now = threads();
        if now <= baseline {
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "{} connection threads still alive {BOUND:?} after close",
            now - baseline
        );
        thread::sleep(Duration::from_micros(50));
    }
}

/// Counts the request frames (complete or oversized) the server can see
/// in `input`, by the same rules it reads them.
fn requests_in(input: &[u8], framing: Framing) -> usize {
    let mut count = 0;
    let mut feed = |dec: &mut FrameDecoder, mut piece: &[u8]| {
        while let Some(d) = dec.decode(&mut piece) {
            let ty = match d {
                Decoded::Frame { header, .. } | Decoded::Oversized { header, .. } => {
                    header.message_type
                }
            };
            if ty == TYPE_REQUEST {
                count += 1;
            }
        }
    };
    match framing {
        Framing::Raw => feed(&mut FrameDecoder::new(), input),
        Framing::Mux => {
            let mut mux = MuxDecoder::new();
            let mut decs = [FrameDecoder::new(), FrameDecoder::new()];
            let mut rest = input;
            while let Ok(Some((id, piece))) = mux.decode(&mut rest) {
                if id == PLUGIN_SERVICE_CONN || id == RUNTIME_SERVICE_CONN {
                    feed(&mut decs[id as usize - 1], piece);
                }
            }
        }
    }
    count
}

/// Checks one ttrpc frame the server wrote; returns 1 for a reply.
fn check_reply(d: Decoded) -> usize {
    match d {
        Decoded::Frame { header, data } => {
            assert_eq!(
                header.message_type, TYPE_RESPONSE,
                "server wrote a non-response"
            );
            assert!(data.len() <= MAX_MESSAGE_LEN);
            if let Err(e) = Response::parse_from_bytes(&data) {
                panic!(
                    "server wrote an undecodable response on stream {}: {e}",
                    header.stream_id
                );
            }
            1
        }
        Decoded::Oversized { header, .. } => {
            panic!("server wrote an oversized frame: {header:?}")
        }
    }
}

/// Checks everything the server wrote; returns the number of replies.
fn check_output(out: &[u8], framing: Framing) -> usize {
    let mut replies = 0;
    match framing {
        Framing::Raw => {
            let mut dec = FrameDecoder::new();
            let mut input = out;
            while let Some(d) = dec.decode(&mut input) {
                replies += check_reply(d);
            }
        }
        Framing::Mux => {
            // Walk complete trunk frames by hand, so frame borders are seen.
            let mut decs = [FrameDecoder::new(), FrameDecoder::new()];
            let mut rest = out;
            while rest.len() >= MUX_HEADER_LEN {
                let id = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
                if rest.len() - MUX_HEADER_LEN < len {
                    break; // cut short by the close; nothing to judge
                }
                let mut piece = &rest[MUX_HEADER_LEN..MUX_HEADER_LEN + len];
                rest = &rest[MUX_HEADER_LEN + len..];
                assert!(
                    id == PLUGIN_SERVICE_CONN || id == RUNTIME_SERVICE_CONN,
                    "server wrote on logical connection {id}"
                );
                assert!(len > 0, "server wrote an empty trunk frame");
                let dec = &mut decs[id as usize - 1];
                let starts_message = dec.at_boundary();
                let mut frames = 0;
                while let Some(d) = dec.decode(&mut piece) {
                    replies += check_reply(d);
                    frames += 1;
                }
                assert!(frames <= 1, "one trunk frame carried {frames} messages");
                if starts_message {
                    assert!(
                        len <= GO_READ_BUFFER,
                        "first frame of a message is {len} bytes"
                    );
                    if !dec.at_boundary() {
                        assert_eq!(len, GO_READ_BUFFER, "message split at {len}, not 4096");
                    }
                } else {
                    assert!(dec.at_boundary(), "message split into more than two frames");
                }
            }
        }
    }
    replies
}

fuzz_target!(
    init: {
        // Rust's own `main` ignores SIGPIPE; libFuzzer's does not, and a
        // write to a socket the server already shut would kill the run.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    },
    |data: &[u8]| {
        let [setup, input @ ..] = data else {
            return;
        };
        let framing = if setup & 1 != 0 { Framing::Raw } else { Framing::Mux };
        let options = ConnectionOptions {
            workers: if setup & 4 != 0 { 2 } else { 1 },
            max_queued_requests: 1 + usize::from((setup >> 3) & 3),
            read_buffer: 4096,
            deadline_guard: (setup & 2 != 0).then(|| DeadlineGuard {
                margin: Duration::from_millis(1),
                ..DeadlineGuard::default()
            }),
            name: "fuzz".to_string(),
            ..ConnectionOptions::default()
        };
        let baseline = threads();
        let (server_end, mut peer) = UnixStream::pair().expect("socketpair");
        let conn = ConnectionBuilder::new(server_end, framing)
            .options(options)
            .serve(PLUGIN_SERVICE_CONN, services())
            .open(RUNTIME_SERVICE_CONN)
            .start()
            .expect("connection starts");

        let mut writer = peer.try_clone().expect("clone peer socket");
        let bytes = input.to_vec();
        let write = thread::spawn(move || {
            // The server may close first (fatal trunk error): ignore EPIPE.
            let _ = writer.write_all(&bytes);
            let _ = writer.shutdown(Shutdown::Write);
        });

        peer.set_read_timeout(Some(BOUND)).expect("set read timeout");
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("server neither replied nor closed within {BOUND:?} of our EOF")
                }
                Err(_) => break, // reset by the server's shutdown
            }
        }
        write.join().expect("writer thread");

        conn.close();
        let started = Instant::now();
        conn.wait_timeout(BOUND);
        assert!(
            started.elapsed() < BOUND,
            "workers did not end within {BOUND:?} of close"
        );
        settle_threads(baseline);

        let replies = check_output(&out, framing);
        let requests = requests_in(input, framing);
        if std::env::var_os("NRI_FUZZ_DEBUG").is_some() {
            eprintln!("{framing:?}: {requests} requests, {replies} replies, {} bytes back", out.len());
        }
        assert!(replies <= requests, "{replies} replies to {requests} requests");
    }
);
