//! Peers that stop reading: every write has a deadline, a caller's timeout
//! covers its wait for the writer, and a peer that takes nothing for the
//! write timeout is cut off with a reason naming it.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use super::wire_support::*;
use crate::common::plugin::{Spec, TestPlugin};
use crate::common::{request_frame, test_services, SVC};
use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, EventMask, PodSandbox, UpdateContainersRequest,
};
use nri::runtime::{PluginSet, Runtime};
use nri::stub::{Context, HandlerResult, Plugin, Stub};
use nri::ttrpc::{Code, ConnectionOptions, Framing};
use nri::Error;
use protobuf::MessageField;

fn options(name: &str, write_timeout: Duration) -> ConnectionOptions {
    ConnectionOptions {
        name: name.into(),
        peer: format!("peer {name:?}"),
        write_timeout,
        ..Default::default()
    }
}

/// A reply just under the 4 MiB message limit.
const BIG: u32 = (4 << 20) - 64;

/// The payload of a `Gen` request for a reply of `n` bytes.
fn gen(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Writes `wire` in a thread, ignoring failures (the other side may close
/// or stop reading): a peer flooding without reading.
fn flood(stream: &UnixStream, wire: Vec<u8>) -> thread::JoinHandle<()> {
    let mut s = stream.try_clone().expect("clone of the peer's socket");
    thread::spawn(move || {
        let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
        let _ = s.write_all(&wire);
    })
}

#[test]
fn a_call_waiting_for_a_stalled_writer_gives_up_at_its_deadline_and_the_connection_stays_up() {
    let mut s = serve(
        Framing::Raw,
        options("wA", Duration::from_secs(20)),
        test_services(),
    );
    // A 4 MiB reply the peer does not read holds the writer.
    s.peer.send_request(1, "Gen", &gen(BIG));
    thread::sleep(Duration::from_millis(200));
    let client = s.conn.client(2).expect("client");
    let started = Instant::now();
    let r = client.call_raw(
        SVC,
        "Echo",
        b"hello".to_vec(),
        Some(Duration::from_millis(300)),
        Vec::new(),
    );
    let took = started.elapsed();
    match r {
        Err(Error::DeadlineExceeded { peer, timeout, .. }) => {
            assert_eq!(peer, "peer \"wA\"");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1300), "{took:?}");
    assert!(
        !s.conn.is_closed(),
        "nothing of the call was written: the connection stays up"
    );
    // The peer reads again: the big reply arrives whole, and a new call
    // goes through (the timed-out one never reached the wire).
    let (id, reply) = s.peer.expect_reply("the 4 MiB reply");
    assert_eq!(
        (id, reply.code, reply.payload.len()),
        (1, Code::Ok, BIG as usize)
    );
    let caller = thread::spawn(move || {
        client.call_raw(SVC, "Echo", b"again".to_vec(), Some(STEP), Vec::new())
    });
    let m = s.peer.expect_msg("the next call");
    let req = <nri::ttrpc::Request as protobuf::Message>::parse_from_bytes(&m.data)
        .expect("our request decodes");
    assert_eq!(req.method, "Echo");
    assert_eq!(
        m.header.stream_id, 1,
        "the timed-out call used no stream id"
    );
    s.peer.send_response(m.header.stream_id, 0, "", b"pong");
    assert_eq!(caller.join().expect("caller").expect("call"), b"pong");
    s.conn.close();
}

#[test]
fn a_peer_that_stops_reading_mid_frame_is_cut_off_at_the_write_timeout() {
    let mut s = serve(
        Framing::Mux,
        options("wB", Duration::from_millis(300)),
        test_services(),
    );
    assert_eq!(threads_settle("wB-", 4, STEP), 4);
    assert_eq!(fds_on(&s.socket), 3, "the stream and its two clones");
    let sent = Instant::now();
    s.peer.send_request(1, "Gen", &gen(BIG));
    let reason = s.probe.wait(STEP).expect("the connection closes");
    let took = sent.elapsed();
    assert!(
        reason.starts_with("peer \"wB\" stopped reading: writing a reply of 4194")
            && reason.contains("was cut short after")
            && reason.ends_with("bytes by the 300ms write timeout; the frame stream is broken"),
        "{reason}"
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1800), "{took:?}");
    assert_eq!(threads_settle("wB-", 0, STEP), 0, "threads left behind");
    drop(s.conn);
    assert_eq!(fds_settle(&s.socket, 0, STEP), 0, "descriptors left open");
}

#[test]
fn a_peer_that_stops_reading_at_a_message_boundary_is_cut_off_at_the_write_timeout() {
    let s = serve(
        Framing::Raw,
        options("wC", Duration::from_millis(300)),
        test_services(),
    );
    // Small requests, whose small replies fill the socket one whole
    // message at a time, until a reply cannot start.
    let mut wire = Vec::new();
    for i in 0..20_000u32 {
        wire.extend(request_frame(2 * i + 1, "Echo", &[7u8; 100]));
    }
    let flooder = flood(&s.peer.stream, wire);
    let reason = s.probe.wait(STEP).expect("the connection closes");
    assert_eq!(
        reason, "peer \"wC\" stopped reading: writing a reply made no progress for 300ms",
        "a small reply is written whole or not at all"
    );
    assert_eq!(threads_settle("wC-", 0, STEP), 0, "threads left behind");
    drop(s.peer);
    flooder.join().expect("flooder");
}

#[test]
fn a_flood_whose_replies_are_never_read_is_cut_off_and_leaves_nothing_behind() {
    const NAME: &str =
        "wire_writes::a_flood_whose_replies_are_never_read_is_cut_off_and_leaves_nothing_behind";
    if !in_own_process(NAME) {
        return;
    }
    let rss_before = rss_kib();
    let options = ConnectionOptions {
        deadline_guard: Some(Default::default()),
        ..options("wD", Duration::from_millis(500))
    };
    let s = serve(Framing::Mux, options, test_services());
    assert_eq!(threads_settle("wD-", 5, STEP), 5, "4 workers and the guard");
    // 40 MiB of requests of 1 KiB, with far deadlines.
    let mut wire = Vec::new();
    for i in 0..40_000u32 {
        let env = crate::common::request_envelope(SVC, "Echo", &[1u8; 1024], i64::MAX);
        let f = crate::common::ttrpc_frame(2 * i + 1, nri::ttrpc::codec::TYPE_REQUEST, 0, &env);
        wire.extend(crate::common::mux_frame(1, &f));
    }
    let flooder = flood(&s.peer.stream, wire);
    let started = Instant::now();
    let reason = s.probe.wait(STEP).expect("the connection closes");
    let took = started.elapsed();
    assert!(
        reason.starts_with("peer \"wD\" stopped reading: writing a reply"),
        "{reason}"
    );
    assert_eq!(threads_settle("wD-", 0, STEP), 0, "threads left behind");
    drop(s.conn);
    assert_eq!(fds_settle(&s.socket, 0, STEP), 0, "descriptors left open");
    // The flooder's own 40 MiB of wire are freed when its write fails at
    // the closed socket: wait for that before measuring, or the test's
    // own buffer would count as the connection's.
    flooder.join().expect("flooder");
    let grew = rss_kib().saturating_sub(rss_before);
    println!(
        "measured: flood of 40,000 requests never read: closed after {took:?}, RSS +{grew} KiB"
    );
    // The flood's 40 MiB were pushed back by the socket, not buffered.
    assert!(grew < 16 * 1024, "RSS grew by {grew} KiB");
    drop(s.peer);
}

/// A plugin whose CreateContainer reply is 1 MiB: one such reply the
/// runtime does not read fills the socket.
struct BigReplies;

impl Plugin for BigReplies {
    fn events(&self) -> EventMask {
        EventMask::ALL
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let mut adjust = ContainerAdjustment::new();
        adjust.add_annotation("big", "x".repeat(1 << 20));
        Ok((adjust, Vec::new()))
    }
}

#[test]
fn update_containers_returns_within_its_timeout_while_the_runtime_does_not_read() {
    let timeout = std::env::var("NRI_WIRE_UPDATE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis);
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    let socket = socket_id(&stub_end);
    let stub = Stub::builder(BigReplies)
        .plugin_name("wire")
        .plugin_index("10")
        .connection(stub_end)
        .build()
        .expect("stub");
    let mut runtime = ScriptedRuntime::new(rt_end);
    let s = stub.clone();
    let run = thread::spawn(move || s.run());
    runtime.handshake();
    // A CreateContainer whose 1 MiB reply the runtime never reads.
    let req = CreateContainerRequest {
        pod: MessageField::some(pod("p")),
        container: MessageField::some(ctr("c")),
        ..Default::default()
    };
    runtime.send("CreateContainer", &req, Duration::from_secs(30));
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = stub.update_containers_with_timeout(vec![ContainerUpdate::for_container("c")], timeout);
    let took = started.elapsed();
    println!("measured: update_containers with a {timeout:?} timeout, runtime not reading: {took:?} ({r:?})");
    match &r {
        Err(Error::DeadlineExceeded {
            peer,
            timeout: t,
            method,
            ..
        }) if timeout < Duration::from_millis(1800) => {
            assert_eq!(method, "UpdateContainers");
            assert_eq!(peer, "the runtime of plugin \"10-wire\"");
            assert_eq!(*t, timeout);
        }
        // With 1.8 s or more, the reply's 2 s write timeout may close the
        // connection first.
        Err(Error::DeadlineExceeded { .. }) | Err(Error::NotConnected) => {}
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert!(took >= timeout.min(Duration::from_millis(1800)), "{took:?}");
    assert!(took < timeout + timeout / 2, "{took:?}");
    // The runtime still does not read: the reply's write timeout (2 s)
    // cuts it off, and run() says why.
    let ended = run.join().expect("run");
    println!("measured: run() ended with {ended:?}");
    match ended {
        Err(Error::ConnectionClosed(reason)) => assert!(
            reason
                .starts_with("the runtime of plugin \"10-wire\" stopped reading: writing a reply"),
            "{reason}"
        ),
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    assert_eq!(threads_settle("nri-10-wire", 0, STEP), 0);
    drop(stub);
    assert_eq!(fds_settle(&socket, 0, STEP), 0, "descriptors left open");
}

#[test]
fn a_stubs_write_timeout_is_its_own_to_set() {
    let (rt_end, stub_end) = UnixStream::pair().expect("socketpair");
    let stub = Stub::builder(BigReplies)
        .plugin_name("wire")
        .plugin_index("11")
        .connection(stub_end)
        .write_timeout(Duration::from_millis(300))
        .build()
        .expect("stub");
    let mut runtime = ScriptedRuntime::new(rt_end);
    let s = stub.clone();
    let run = thread::spawn(move || s.run());
    runtime.handshake();
    let req = CreateContainerRequest {
        pod: MessageField::some(pod("p")),
        container: MessageField::some(ctr("c")),
        ..Default::default()
    };
    let sent = Instant::now();
    runtime.send("CreateContainer", &req, Duration::from_secs(30));
    let ended = run.join().expect("run");
    let took = sent.elapsed();
    println!("measured: a 1 MiB reply never read, write timeout 300ms: run() ended after {took:?}");
    match ended {
        Err(Error::ConnectionClosed(reason)) => assert!(
            reason
                .starts_with("the runtime of plugin \"11-wire\" stopped reading: writing a reply"),
            "{reason}"
        ),
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    // Not the default 2 s: the stub's own 300 ms (plus the socket's slack).
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

fn annotating(name: &str, idx: &str) -> Spec {
    let key = format!("from-{name}");
    Spec::new(name, idx, EventMask::ALL).on_create(move |_, req| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert(key.clone(), req.container.id.clone());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    })
}

#[test]
fn a_runtime_call_returns_within_its_timeout_while_a_flooding_plugin_does_not_read() {
    let request_timeout = Duration::from_secs(1);
    let rt = Runtime::builder()
        .name("wire")
        .version("0")
        .registration_timeout(STEP)
        .request_timeout(request_timeout)
        .build();
    let set = PluginSet::new(&rt);
    // A plugin that floods UpdateContainers and never reads a reply.
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let socket = socket_id(&rt_end);
    let mut flooding = ScriptedPlugin::new(plugin_end);
    let rt2 = rt.clone();
    let accepted = thread::spawn(move || rt2.accept_stream(rt_end));
    flooding.register("flood", "10", EventMask::ALL);
    set.add(accepted.join().expect("accept").expect("accepted"))
        .expect("added");
    // And a well-behaved one after it.
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let good = TestPlugin::start(plugin_end, annotating("good", "20"));
    set.add(rt.accept_stream(rt_end).expect("accepted"))
        .expect("added");
    assert_eq!(set.names(), ["10-flood", "20-good"]);

    let update = UpdateContainersRequest {
        update: vec![ContainerUpdate::for_container("c".repeat(512))],
        ..Default::default()
    };
    let mut wire = Vec::new();
    for _ in 0..20_000 {
        wire.extend(flooding.call_frame("UpdateContainers", &update));
    }
    let flooder = flood(&flooding.peer.stream, wire);
    thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let reply = set.create_container(&pod("p"), &ctr("c"));
    let took = started.elapsed();
    println!("measured: PluginSet CreateContainer with a {request_timeout:?} request timeout, one plugin flooding and not reading: {took:?}");
    let reply = reply.expect("the request proceeds without the flooding plugin");
    assert_eq!(
        reply
            .adjust
            .annotations
            .get("from-good")
            .map(String::as_str),
        Some("c"),
        "the other plugin's adjustment arrives"
    );
    assert!(took < request_timeout + request_timeout / 2, "{took:?}");
    assert_eq!(set.names(), ["20-good"], "the flooding plugin is dropped");
    drop(set);
    drop(good);
    drop(rt);
    assert_eq!(fds_settle(&socket, 0, STEP), 0, "descriptors left open");
    drop(flooding);
    flooder.join().expect("flooder");
}
