//! Peer tests against containerd's Rust ttrpc implementation (the `ttrpc`
//! crate, sync API) over real Unix sockets, in both directions:
//!
//! - `ours_to_theirs_*`: our [`Client`] (plain framing) calls the ttrpc
//!   crate's server;
//! - `theirs_to_ours_*`: the ttrpc crate's client calls our [`Connection`]
//!   serving [`Services`].
//!
//! Every blocking wait is bounded: calls carry timeouts, and anything that
//! could block forever runs under [`common::bounded`].

mod common;

use std::collections::HashMap;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nri::api::{Empty, RegisterPluginRequest};
use nri::ttrpc::codec::MAX_MESSAGE_LEN;
use nri::ttrpc::{
    Client, Code, Connection, ConnectionBuilder, ConnectionOptions, DeadlineGuard, Framing,
    GuardReply, Status,
};
use nri::Error;
use protobuf::Message;

/// Timeout given to calls that are expected to succeed.
const CALL: Duration = Duration::from_secs(10);
const CALL_NANOS: i64 = 10_000_000_000;

// ---------------------------------------------------------------------------
// The ttrpc crate's server
// ---------------------------------------------------------------------------

type TheirFn = dyn Fn(&ttrpc::TtrpcContext, ttrpc::Request) -> ttrpc::Response + Send + Sync;

struct TheirHandler(Box<TheirFn>);

impl ttrpc::MethodHandler for TheirHandler {
    fn handler(&self, ctx: ttrpc::TtrpcContext, req: ttrpc::Request) -> ttrpc::Result<()> {
        let resp = (self.0)(&ctx, req);
        ctx.respond(ctx.mh.stream_id, resp)
    }
}

fn their_ok(payload: Vec<u8>) -> ttrpc::Response {
    let mut r = ttrpc::Response::new();
    r.set_status(ttrpc::get_status(ttrpc::Code::OK, ""));
    r.payload = payload;
    r
}

fn their_err(code: ttrpc::Code, message: String) -> ttrpc::Response {
    let mut r = ttrpc::Response::new();
    r.set_status(ttrpc::get_status(code, message));
    r
}

/// The ttrpc crate's server on a fresh socket, serving `test.Echo` with
/// Echo, Fail (NOT_FOUND), Deadline (echoes `timeout_nano`), Meta (sorted
/// metadata), Sleep (u64 BE ms) and Register (typed NRI request).
struct TheirServer {
    server: Option<ttrpc::Server>,
    path: PathBuf,
}

impl TheirServer {
    fn start() -> TheirServer {
        let path = sock_path("theirs");
        let mut methods: HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> =
            HashMap::new();
        let mut add = |name: &str, f: Box<TheirFn>| {
            methods.insert(format!("/{SVC}/{name}"), Box::new(TheirHandler(f)));
        };
        add("Echo", Box::new(|_ctx, req| their_ok(req.payload)));
        add(
            "Fail",
            Box::new(|_ctx, req| {
                their_err(
                    ttrpc::Code::NOT_FOUND,
                    format!("no such thing: {}", String::from_utf8_lossy(&req.payload)),
                )
            }),
        );
        add(
            "Deadline",
            Box::new(|ctx, req| {
                // The context and the envelope must agree.
                assert_eq!(ctx.timeout_nano, req.timeout_nano);
                their_ok(req.timeout_nano.to_be_bytes().to_vec())
            }),
        );
        add(
            "Meta",
            Box::new(|ctx, _req| {
                let mut lines: Vec<String> = ctx
                    .metadata
                    .iter()
                    .map(|(k, vs)| format!("{k}={}", vs.join(",")))
                    .collect();
                lines.sort();
                their_ok(lines.join("\n").into_bytes())
            }),
        );
        add(
            "Sleep",
            Box::new(|_ctx, req| {
                let ms = u64::from_be_bytes(req.payload[..8].try_into().unwrap_or_default());
                thread::sleep(Duration::from_millis(ms));
                their_ok(req.payload)
            }),
        );
        add(
            "Register",
            Box::new(
                |_ctx, req| match RegisterPluginRequest::parse_from_bytes(&req.payload) {
                    Ok(r) if r.plugin_idx == "07" => {
                        their_ok(Empty::new().write_to_bytes().unwrap_or_default())
                    }
                    Ok(r) => their_err(
                        ttrpc::Code::UNKNOWN,
                        format!("bad index {:?}", r.plugin_idx),
                    ),
                    Err(e) => their_err(ttrpc::Code::INTERNAL, e.to_string()),
                },
            ),
        );
        let mut server = ttrpc::Server::new()
            .bind(&format!("unix://{}", path.display()))
            .expect("ttrpc crate: bind")
            .register_service(methods);
        server.start().expect("ttrpc crate: start");
        TheirServer {
            server: Some(server),
            path,
        }
    }

    /// Our Connection (plain framing) dialled to this server.
    fn dial(&self) -> (Connection, Client) {
        let stream = UnixStream::connect(&self.path).expect("connect to the ttrpc crate's server");
        let conn = ConnectionBuilder::new(stream, Framing::Raw)
            .options(opts("ours-client"))
            .open(0)
            .start()
            .expect("start our connection");
        let client = conn.client(0).expect("client on the plain connection");
        (conn, client)
    }
}

impl Drop for TheirServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Their shutdown joins threads; never let it hang the test.
            let (tx, rx) = std::sync::mpsc::channel();
            thread::spawn(move || {
                server.shutdown();
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn echo(client: &Client, payload: Vec<u8>) -> nri::Result<Vec<u8>> {
    client.call_raw(SVC, "Echo", payload, Some(CALL), Vec::new())
}

// ---------------------------------------------------------------------------
// Our server, the ttrpc crate's client
// ---------------------------------------------------------------------------

struct OurServer {
    conn: Connection,
    client: Option<ttrpc::Client>,
    probe: CloseProbe,
    path: PathBuf,
}

impl OurServer {
    fn start() -> OurServer {
        Self::start_with(opts("ours-server"))
    }

    fn start_with(options: ConnectionOptions) -> OurServer {
        let path = sock_path("ours");
        let listener = UnixListener::bind(&path).expect("bind our listener");
        let client = ttrpc::Client::connect(&format!("unix://{}", path.display()))
            .expect("ttrpc crate: connect");
        let (stream, _) = listener.accept().expect("accept the ttrpc crate's client");
        let probe = CloseProbe::new();
        let conn = ConnectionBuilder::new(stream, Framing::Raw)
            .options(options)
            .serve(0, test_services())
            .on_close(probe.callback())
            .start()
            .expect("start our serving connection");
        OurServer {
            conn,
            client: Some(client),
            probe,
            path,
        }
    }

    fn call(&self, method: &str, payload: Vec<u8>) -> ttrpc::Result<ttrpc::Response> {
        self.call_with(method, payload, CALL_NANOS, Vec::new())
    }

    fn call_with(
        &self,
        method: &str,
        payload: Vec<u8>,
        timeout_nano: i64,
        metadata: Vec<(&str, &str)>,
    ) -> ttrpc::Result<ttrpc::Response> {
        self.call_service(SVC, method, payload, timeout_nano, metadata)
    }

    fn call_service(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        timeout_nano: i64,
        metadata: Vec<(&str, &str)>,
    ) -> ttrpc::Result<ttrpc::Response> {
        let req = ttrpc::Request {
            service: service.to_string(),
            method: method.to_string(),
            payload,
            timeout_nano,
            metadata: metadata
                .into_iter()
                .map(|(k, v)| ttrpc::proto::KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        match &self.client {
            Some(c) => c.request(req),
            None => Err(ttrpc::Error::Others("client dropped".into())),
        }
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        self.conn.close();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn their_status(r: ttrpc::Result<ttrpc::Response>) -> (ttrpc::Code, String) {
    match r {
        Err(ttrpc::Error::RpcStatus(st)) => (st.code(), st.message.clone()),
        Err(e) => panic!("expected an RPC status, got error {e:?}"),
        Ok(resp) => panic!(
            "expected an RPC status, got success ({} bytes)",
            resp.payload.len()
        ),
    }
}

// ---------------------------------------------------------------------------
// Our client → their server
// ---------------------------------------------------------------------------

#[test]
fn ours_to_theirs_unary_echo_round_trips() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    let got = echo(&client, b"hello ttrpc".to_vec()).expect("echo call");
    assert_eq!(got, b"hello ttrpc");
    // Typed call with an NRI message, decoded by their side.
    let req = RegisterPluginRequest {
        plugin_name: "peer".into(),
        plugin_idx: "07".into(),
        ..Default::default()
    };
    let _: Empty = client
        .call(SVC, "Register", &req, Some(CALL))
        .expect("typed call to their server");
    assert!(!conn.is_closed());
    conn.close();
}

#[test]
fn ours_to_theirs_error_status_keeps_code_and_message() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    match client.call_raw(SVC, "Fail", b"widget".to_vec(), Some(CALL), Vec::new()) {
        Err(Error::Status {
            service,
            method,
            code,
            message,
        }) => {
            assert_eq!(service, SVC);
            assert_eq!(method, "Fail");
            assert_eq!(code, Code::NotFound);
            assert_eq!(message, "no such thing: widget");
        }
        other => panic!("expected NOT_FOUND status, got {other:?}"),
    }
    // A typed call whose handler refuses the argument: UNKNOWN with its text.
    let bad = RegisterPluginRequest {
        plugin_name: "peer".into(),
        plugin_idx: "x".into(),
        ..Default::default()
    };
    match client.call::<_, Empty>(SVC, "Register", &bad, Some(CALL)) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unknown);
            assert_eq!(message, "bad index \"x\"");
        }
        other => panic!("expected UNKNOWN status, got {other:?}"),
    }
    // The connection survives error replies.
    assert_eq!(
        echo(&client, b"still here".to_vec()).expect("echo after errors"),
        b"still here"
    );
    conn.close();
}

#[test]
fn ours_to_theirs_unknown_service_and_method_are_status_errors() {
    // The ttrpc crate answers unknown paths with INVALID_ARGUMENT (Go uses
    // UNIMPLEMENTED); our client must surface whatever code it gets.
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    for (service, method) in [("no.Such", "Echo"), (SVC, "NoSuchMethod")] {
        match client.call_raw(service, method, Vec::new(), Some(CALL), Vec::new()) {
            Err(Error::Status {
                service: s,
                method: m,
                code,
                message,
            }) => {
                assert_eq!((s.as_str(), m.as_str()), (service, method));
                assert_eq!(code, Code::InvalidArgument);
                assert!(
                    message.contains(&format!("/{service}/{method}")),
                    "message {message:?} should name the path"
                );
            }
            other => panic!("expected a status error for {service}/{method}, got {other:?}"),
        }
    }
    assert_eq!(echo(&client, b"ok".to_vec()).expect("echo"), b"ok");
    conn.close();
}

#[test]
fn ours_to_theirs_concurrent_calls_from_8_threads_each_get_their_own_reply() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    let started = Instant::now();
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let client = client.clone();
            thread::spawn(move || {
                for i in 0..200u64 {
                    let p = pattern(((t * 31 + i * 7) % 300) as usize + 1, t * 1000 + i);
                    let got = echo(&client, p.clone())
                        .unwrap_or_else(|e| panic!("thread {t} call {i}: {e}"));
                    assert_eq!(got, p, "thread {t} call {i} got someone else's reply");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("caller thread panicked");
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(!conn.is_closed());
    conn.close();
}

#[test]
fn ours_to_theirs_payload_sizes_up_to_the_4_mib_limit() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    let max = max_request_payload(SVC, "Echo", CALL_NANOS);
    assert_eq!(envelope_len(SVC, "Echo", max, CALL_NANOS), MAX_MESSAGE_LEN);
    for (i, len) in [0usize, 1, 4095, 4096, 4097, 1 << 20, max]
        .into_iter()
        .enumerate()
    {
        let p = pattern(len, i as u64);
        let got = echo(&client, p.clone()).unwrap_or_else(|e| panic!("echo of {len} bytes: {e}"));
        assert_eq!(got.len(), len);
        assert!(got == p, "echo of {len} bytes came back different");
    }
    // One byte more does not fit: refused locally, nothing sent.
    match echo(&client, vec![0; max + 1]) {
        Err(Error::MessageTooLarge { len, limit }) => {
            assert_eq!(len, MAX_MESSAGE_LEN as u64 + 1);
            assert_eq!(limit, MAX_MESSAGE_LEN as u64);
        }
        other => panic!("expected MessageTooLarge, got {:?}", other.map(|v| v.len())),
    }
    assert_eq!(
        echo(&client, b"after".to_vec()).expect("echo after refusal"),
        b"after"
    );
    conn.close();
}

#[test]
fn ours_to_theirs_timeout_is_sent_as_timeout_nano() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    let t = Duration::from_millis(2500);
    let got = client
        .call_raw(SVC, "Deadline", Vec::new(), Some(t), Vec::new())
        .expect("deadline call");
    let nanos = i64::from_be_bytes(got[..8].try_into().expect("8 bytes"));
    assert!(
        nanos > 0 && nanos <= t.as_nanos() as i64,
        "timeout_nano {nanos}"
    );
    assert!(
        nanos >= Duration::from_secs(2).as_nanos() as i64,
        "timeout_nano {nanos}"
    );
    // No timeout: timeout_nano 0.
    let got = bounded(STEP, "call without timeout", move || {
        client.call_raw(SVC, "Deadline", Vec::new(), None, Vec::new())
    })
    .expect("deadline call without timeout");
    assert_eq!(i64::from_be_bytes(got[..8].try_into().expect("8 bytes")), 0);
    conn.close();
}

#[test]
fn ours_to_theirs_client_timeout_is_deadline_exceeded_and_late_reply_is_dropped() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    let started = Instant::now();
    let r = client.call_raw(
        SVC,
        "Sleep",
        800u64.to_be_bytes().to_vec(),
        Some(Duration::from_millis(100)),
        Vec::new(),
    );
    let took = started.elapsed();
    match r {
        Err(Error::DeadlineExceeded {
            service,
            method,
            peer,
            timeout,
        }) => {
            assert_eq!((service.as_str(), method.as_str()), (SVC, "Sleep"));
            assert_eq!(timeout, Duration::from_millis(100));
            // Unnamed, the peer is named after the connection.
            assert_eq!(peer, "the peer of ours-client");
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(100),
        "gave up early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(700),
        "did not give up in time: {took:?}"
    );
    // Let the late reply arrive; it must be dropped, not handed to the next call.
    thread::sleep(Duration::from_millis(900));
    assert!(
        !conn.is_closed(),
        "a late reply must not close the connection"
    );
    for i in 0..3u8 {
        assert_eq!(
            echo(&client, vec![i; 3]).expect("echo after timeout"),
            vec![i; 3]
        );
    }
    conn.close();
}

#[test]
fn ours_to_theirs_metadata_reaches_their_context() {
    let srv = TheirServer::start();
    let (conn, client) = srv.dial();
    let got = client
        .call_raw(
            SVC,
            "Meta",
            Vec::new(),
            Some(CALL),
            vec![kv("b", "2"), kv("a", "1"), kv("a", "3")],
        )
        .expect("metadata call");
    assert_eq!(String::from_utf8_lossy(&got), "a=1,3\nb=2");
    conn.close();
}

#[test]
fn ours_to_theirs_server_shutdown_closes_our_connection_and_later_calls_fail() {
    let srv = TheirServer::start();
    let stream = UnixStream::connect(&srv.path).expect("connect to the ttrpc crate's server");
    let probe = CloseProbe::new();
    let conn = ConnectionBuilder::new(stream, Framing::Raw)
        .options(opts("ours-client"))
        .open(0)
        .on_close(probe.callback())
        .start()
        .expect("start our connection");
    let client = conn.client(0).expect("client");
    assert_eq!(echo(&client, b"x".to_vec()).expect("echo"), b"x");
    drop(srv); // their shutdown closes the accepted connection
    let reason = probe
        .wait(STEP)
        .expect("on-close callback must run when the server goes away");
    assert!(reason.contains("closed"), "reason {reason:?}");
    assert!(conn.wait_timeout(STEP));
    assert_eq!(probe.count(), 1);
    assert!(matches!(
        echo(&client, b"y".to_vec()),
        Err(Error::ConnectionClosed(_))
    ));
}

// ---------------------------------------------------------------------------
// Their client → our server
// ---------------------------------------------------------------------------

#[test]
fn theirs_to_ours_unary_echo_round_trips() {
    let srv = OurServer::start();
    let resp = srv
        .call("Echo", b"hello from ttrpc-rust".to_vec())
        .expect("echo");
    assert_eq!(resp.payload, b"hello from ttrpc-rust");
    let st = resp
        .status
        .as_ref()
        .map(|s| s.code())
        .unwrap_or(ttrpc::Code::OK);
    assert_eq!(st, ttrpc::Code::OK);
    // Typed handler (add_unary) with an NRI message.
    let req = RegisterPluginRequest {
        plugin_name: "peer".into(),
        plugin_idx: "01".into(),
        ..Default::default()
    };
    let resp = srv
        .call("Register", req.write_to_bytes().expect("encode"))
        .expect("typed call");
    assert!(Empty::parse_from_bytes(&resp.payload).is_ok());
    assert!(!srv.conn.is_closed());
}

#[test]
fn theirs_to_ours_error_status_keeps_code_and_message() {
    let srv = OurServer::start();
    let (code, message) = their_status(srv.call("Fail", b"gadget".to_vec()));
    assert_eq!(code, ttrpc::Code::PERMISSION_DENIED);
    assert_eq!(message, "denied: gadget");
    // Typed handler refusing its argument.
    let (code, message) = their_status(
        srv.call(
            "Register",
            RegisterPluginRequest::new()
                .write_to_bytes()
                .unwrap_or_default(),
        ),
    );
    assert_eq!(code, ttrpc::Code::INVALID_ARGUMENT);
    assert_eq!(message, "empty plugin name");
    // Error replies carry no payload (Go clients decode it first).
    let resp = srv
        .call("Echo", b"after".to_vec())
        .expect("echo after errors");
    assert_eq!(resp.payload, b"after");
}

#[test]
fn theirs_to_ours_unknown_service_and_method_are_unimplemented() {
    let srv = OurServer::start();
    let (code, message) =
        their_status(srv.call_service("no.Such", "Echo", Vec::new(), CALL_NANOS, Vec::new()));
    assert_eq!(code, ttrpc::Code::UNIMPLEMENTED);
    assert!(message.contains("no.Such"), "message {message:?}");
    let (code, message) = their_status(srv.call("NoSuchMethod", Vec::new()));
    assert_eq!(code, ttrpc::Code::UNIMPLEMENTED);
    assert!(
        message.contains("NoSuchMethod") && message.contains(SVC),
        "message {message:?}"
    );
    assert_eq!(
        srv.call("Echo", b"ok".to_vec()).expect("echo").payload,
        b"ok"
    );
}

#[test]
fn theirs_to_ours_concurrent_calls_from_8_threads_each_get_their_own_reply() {
    let srv = Arc::new(OurServer::start());
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let srv = srv.clone();
            thread::spawn(move || {
                for i in 0..200u64 {
                    let p = pattern(((t * 17 + i * 13) % 500) as usize + 1, t * 7919 + i);
                    let resp = srv
                        .call("Echo", p.clone())
                        .unwrap_or_else(|e| panic!("thread {t} call {i}: {e:?}"));
                    assert_eq!(
                        resp.payload, p,
                        "thread {t} call {i} got someone else's reply"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("caller thread panicked");
    }
    assert!(!srv.conn.is_closed());
    assert_eq!(srv.probe.count(), 0);
}

#[test]
fn theirs_to_ours_payload_sizes_up_to_the_4_mib_limit() {
    let srv = OurServer::start();
    let max = max_request_payload(SVC, "Echo", CALL_NANOS);
    for (i, len) in [0usize, 1, 4095, 4096, 4097, 1 << 20, max]
        .into_iter()
        .enumerate()
    {
        let p = pattern(len, 100 + i as u64);
        let resp = srv
            .call("Echo", p.clone())
            .unwrap_or_else(|e| panic!("echo of {len} bytes: {e:?}"));
        assert_eq!(resp.payload.len(), len);
        assert!(resp.payload == p, "echo of {len} bytes came back different");
    }
    // Their client refuses one byte more before sending.
    match srv.call("Echo", vec![0; max + 1]) {
        Err(ttrpc::Error::Others(m)) => assert!(m.contains("exceed maximum"), "{m}"),
        other => panic!(
            "expected a local refusal, got {:?}",
            other.map(|r| r.payload.len())
        ),
    }
    assert_eq!(
        srv.call("Echo", b"after".to_vec()).expect("echo").payload,
        b"after"
    );
}

#[test]
fn theirs_to_ours_largest_reply_fits_and_one_byte_more_is_resource_exhausted() {
    // An OK reply costs 7 bytes of envelope for a payload of 2..256 MiB:
    // status (2 bytes: tag, empty message) + payload tag (1) + length (4).
    let srv = OurServer::start();
    let fits = (MAX_MESSAGE_LEN - 7) as u32;
    let resp = srv
        .call("Gen", fits.to_be_bytes().to_vec())
        .expect("largest reply");
    assert_eq!(resp.payload.len(), fits as usize);
    let (code, message) = their_status(srv.call("Gen", (fits + 1).to_be_bytes().to_vec()));
    assert_eq!(code, ttrpc::Code::RESOURCE_EXHAUSTED);
    assert!(
        message.contains("4194305") && message.contains("4194304"),
        "{message}"
    );
    assert_eq!(
        srv.call("Echo", b"after".to_vec()).expect("echo").payload,
        b"after"
    );
    assert!(!srv.conn.is_closed());
}

#[test]
fn theirs_to_ours_timeout_nano_becomes_handler_deadline() {
    let srv = OurServer::start();
    let resp = srv
        .call_with("Deadline", Vec::new(), 1_500_000_000, Vec::new())
        .expect("deadline call");
    let nanos = i64::from_be_bytes(resp.payload[..8].try_into().expect("8 bytes"));
    assert_eq!(
        nanos, 1_500_000_000,
        "the handler must see the caller's timeout"
    );
    // Without timeout_nano the handler has no deadline.
    let srv = Arc::new(srv);
    let s2 = srv.clone();
    let resp = bounded(STEP, "call without timeout", move || {
        s2.call_with("Deadline", Vec::new(), 0, Vec::new())
    })
    .expect("deadline call without timeout");
    assert_eq!(
        i64::from_be_bytes(resp.payload[..8].try_into().expect("8 bytes")),
        -1
    );
}

#[test]
fn theirs_to_ours_metadata_is_visible_in_request_context() {
    let srv = OurServer::start();
    let resp = srv
        .call_with(
            "Meta",
            Vec::new(),
            CALL_NANOS,
            vec![("b", "2"), ("a", "1"), ("a", "3")],
        )
        .expect("metadata call");
    // Their client groups metadata by key (a HashMap) before sending, so the
    // order between keys is theirs to choose; values of one key keep theirs.
    let text = String::from_utf8(resp.payload).expect("utf-8");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["a=1", "a=3", "b=2"]);
    let a_values: Vec<&str> = text.lines().filter(|l| l.starts_with("a=")).collect();
    assert_eq!(a_values, vec!["a=1", "a=3"]);
}

#[test]
fn theirs_to_ours_their_timeout_then_late_reply_keeps_connection() {
    let srv = OurServer::start();
    let r = srv.call_with(
        "Sleep",
        300u64.to_be_bytes().to_vec(),
        50_000_000,
        Vec::new(),
    );
    assert!(r.is_err(), "their client must time out");
    thread::sleep(Duration::from_millis(400));
    assert_eq!(
        srv.call("Echo", b"later".to_vec()).expect("echo").payload,
        b"later"
    );
    assert!(!srv.conn.is_closed());
}

#[test]
fn theirs_to_ours_client_going_away_closes_our_connection_once() {
    let mut srv = OurServer::start();
    assert_eq!(srv.call("Echo", b"x".to_vec()).expect("echo").payload, b"x");
    drop(srv.client.take());
    let reason = srv
        .probe
        .wait(STEP)
        .expect("on-close callback must run when the peer goes away");
    assert!(srv.conn.wait_timeout(STEP));
    assert!(srv.conn.is_closed());
    assert_eq!(srv.probe.count(), 1);
    assert!(reason.contains("closed"), "reason {reason:?}");
}

#[test]
fn theirs_to_ours_deadline_guard_answers_before_their_timeout_exactly_once() {
    for reply in [
        GuardReply::Empty,
        GuardReply::Error(Status::new(Code::Unavailable, "plugin too slow")),
    ] {
        let srv = OurServer::start_with(ConnectionOptions {
            deadline_guard: Some(DeadlineGuard {
                margin: Duration::from_millis(200),
                reply: reply.clone(),
            }),
            ..opts("guarded")
        });
        let started = Instant::now();
        // Their client gives up after 800 ms, the handler needs 1200 ms,
        // the guard answers at 600 ms.
        let r = srv.call_with(
            "Sleep",
            1200u64.to_be_bytes().to_vec(),
            800_000_000,
            Vec::new(),
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(790),
            "the guard must answer before the deadline ({took:?})"
        );
        assert!(
            took >= Duration::from_millis(550),
            "the guard answered too early ({took:?})"
        );
        match &reply {
            GuardReply::Empty => {
                let resp = r.expect("the guard answers OK");
                assert!(resp.payload.is_empty());
            }
            GuardReply::Error(_) => {
                let (code, message) = their_status(r);
                assert_eq!(
                    (code, message.as_str()),
                    (ttrpc::Code::UNAVAILABLE, "plugin too slow")
                );
            }
        }
        // The handler's late result is discarded: the next reply their
        // client reads belongs to the next call.
        thread::sleep(Duration::from_millis(700));
        for i in 0..3u8 {
            let resp = srv
                .call("Echo", vec![i; 5])
                .expect("echo after a guarded call");
            assert_eq!(resp.payload, vec![i; 5]);
        }
        // Requests that finish in time are answered by the handler.
        let resp = srv
            .call_with(
                "Sleep",
                10u64.to_be_bytes().to_vec(),
                600_000_000,
                Vec::new(),
            )
            .expect("fast guarded call");
        assert_eq!(resp.payload, 10u64.to_be_bytes());
    }
}

#[test]
fn ours_to_ours_metadata_reaches_request_context_in_wire_order() {
    // Their client groups metadata by key; our client sends it as given,
    // and our server must hand it to the handler in wire order.
    let (a, b) = UnixStream::pair().expect("socketpair");
    let server = ConnectionBuilder::new(a, Framing::Raw)
        .options(opts("md-server"))
        .serve(0, test_services())
        .start()
        .expect("server");
    let caller = ConnectionBuilder::new(b, Framing::Raw)
        .options(opts("md-client"))
        .open(0)
        .start()
        .expect("client");
    let client = caller.client(0).expect("client");
    let got = client
        .call_raw(
            SVC,
            "Meta",
            Vec::new(),
            Some(CALL),
            vec![kv("b", "2"), kv("a", "1"), kv("a", "3"), kv("", "")],
        )
        .expect("metadata call");
    assert_eq!(String::from_utf8_lossy(&got), "b=2\na=1\na=3\n=\n");
    caller.close();
    assert!(server.wait_timeout(STEP));
}
