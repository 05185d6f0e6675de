//! What the wire cases share: counting a connection's threads and
//! descriptors and the process's memory, running a case in a process of
//! its own, a scripted runtime (for a stub) and a scripted plugin (for
//! `nri::runtime`), both driven byte by byte through a [`RawPeer`].
//!
//! Threads are counted by the name prefix of the connection under test and
//! descriptors by the inode of its socket, so that the other cases running
//! at the same time do not disturb the counts; memory is measured in a
//! process that runs nothing else ([`in_own_process`]).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::common::{request_envelope, response_envelope, ttrpc_frame, CloseProbe, Msg, RawPeer};
use nri::api::{
    ConfigureRequest, ConfigureResponse, Container, EventMask, PodSandbox, RegisterPluginRequest,
    SynchronizeRequest, SynchronizeResponse, PLUGIN_SERVICE, RUNTIME_SERVICE,
};
use nri::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use nri::ttrpc::codec::{TYPE_REQUEST, TYPE_RESPONSE};
use nri::ttrpc::{
    Code, Connection, ConnectionBuilder, ConnectionOptions, Framing, Request, Services,
};
use protobuf::Message;

/// Bound for one protocol step of a well-behaved party.
pub const STEP: Duration = Duration::from_secs(5);

/// Threads of this process whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.starts_with(prefix))
        .count()
}

/// How many times the thread named `name` was switched out (voluntary
/// and involuntary context switches), if there is one: a sleeping thread
/// that nobody wakes stays at its count.
pub fn thread_switches(name: &str) -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let task = tasks.filter_map(|t| t.ok()).find(|t| {
        std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
    })?;
    let status = std::fs::read_to_string(task.path().join("status")).ok()?;
    Some(
        status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum(),
    )
}

/// Waits up to `limit` for the threads named `prefix...` to number `n`;
/// returns the last count.
pub fn threads_settle(prefix: &str, n: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let now = threads_named(prefix);
        if now == n || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// How `/proc/self/fd` names the socket `s` is one end of (`socket:[N]`).
pub fn socket_id(s: &UnixStream) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", s.as_raw_fd()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Descriptors this process has open on socket `id`.
pub fn fds_on(id: &str) -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.filter_map(|f| f.ok())
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .filter(|target| target.to_string_lossy() == id)
        .count()
}

/// Waits up to `limit` for the descriptors on socket `id` to number `n`;
/// returns the last count.
pub fn fds_settle(id: &str, n: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let now = fds_on(id);
        if now == n || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The process's resident memory (`VmRSS`) in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Environment variable that marks the process [`in_own_process`] starts.
const OWN_PROCESS: &str = "NRI_ADVERSARIAL_OWN_PROCESS";

/// Runs test `name` (its path in this binary) again in a process of its
/// own, where no other case allocates at the same time: returns true in
/// that process, which does the work and asserts; in the first, waits for
/// it, fails if it failed, prints what it printed and returns false.
pub fn in_own_process(name: &str) -> bool {
    if std::env::var_os(OWN_PROCESS).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS, "1")
        .output()
        .expect("running the case in a process of its own");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed in its own process:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its own process:\n{stdout}"
    );
    for line in stdout.lines() {
        if let Some(i) = line.find("measured:") {
            println!("{}", &line[i..]);
        }
    }
    false
}

pub fn pod(id: &str) -> PodSandbox {
    PodSandbox {
        id: id.into(),
        name: format!("{id}-name"),
        namespace: "default".into(),
        ..Default::default()
    }
}

pub fn ctr(id: &str) -> Container {
    Container {
        id: id.into(),
        pod_sandbox_id: "p".into(),
        name: format!("{id}-name"),
        ..Default::default()
    }
}

/// A connection under test and what watches it.
pub struct Served {
    pub conn: Connection,
    /// The other end, driven by the case.
    pub peer: RawPeer,
    pub probe: CloseProbe,
    /// The connection's socket, as `/proc/self/fd` names it.
    pub socket: String,
}

/// Serves `services` on logical connection 1 (the whole socket with Raw
/// framing), with connection 2 open for calls, over a fresh socket pair.
pub fn serve(framing: Framing, options: ConnectionOptions, services: Arc<Services>) -> Served {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let socket = socket_id(&ours);
    let probe = CloseProbe::new();
    let mut b = ConnectionBuilder::new(ours, framing)
        .options(options)
        .serve(1, services)
        .on_close(probe.callback());
    if framing == Framing::Mux {
        b = b.open(2);
    }
    let conn = b.start().expect("starting the connection under test");
    Served {
        conn,
        peer: RawPeer::new(theirs, framing, 1),
        probe,
        socket,
    }
}

/// Encodes a protobuf message.
pub fn bytes(m: &impl Message) -> Vec<u8> {
    m.write_to_bytes().expect("encoding a test message")
}

/// A runtime side scripted step by step on a raw socket, for a stub:
/// requests to the plugin on logical connection 1, the plugin's calls on 2.
pub struct ScriptedRuntime {
    pub peer: RawPeer,
    next_id: u32,
}

impl ScriptedRuntime {
    pub fn new(stream: UnixStream) -> Self {
        ScriptedRuntime {
            peer: RawPeer::new(stream, Framing::Mux, PLUGIN_SERVICE_CONN),
            next_id: 1,
        }
    }

    /// Reads the plugin's next call and checks its method.
    pub fn expect_call(&mut self, method: &str) -> (u32, Request) {
        let m: Msg = self.peer.expect_msg(method);
        assert_eq!(m.conn, RUNTIME_SERVICE_CONN, "{method} arrives on conn 2");
        assert_eq!(m.header.message_type, TYPE_REQUEST, "{method}");
        let req = Request::parse_from_bytes(&m.data).expect("the stub's request decodes");
        assert_eq!(req.method, method);
        (m.header.stream_id, req)
    }

    /// Sends a request to the plugin with `timeout`; returns its id.
    pub fn send(&mut self, method: &str, msg: &impl Message, timeout: Duration) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let env = request_envelope(
            PLUGIN_SERVICE,
            method,
            &bytes(msg),
            timeout.as_nanos() as i64,
        );
        self.peer
            .send_message_on(PLUGIN_SERVICE_CONN, &ttrpc_frame(id, TYPE_REQUEST, 0, &env));
        id
    }

    /// Reads the plugin's reply to request `id`.
    pub fn reply<M: Message>(&mut self, id: u32, what: &str) -> M {
        let m = self.peer.expect_msg(what);
        assert_eq!(m.conn, PLUGIN_SERVICE_CONN, "{what}: reply on conn 1");
        assert_eq!(m.header.message_type, TYPE_RESPONSE, "{what}");
        assert_eq!(m.header.stream_id, id, "{what}: stream id");
        let r = crate::common::decode_reply(&m.data);
        assert_eq!(r.code, Code::Ok, "{what}: {}", r.message);
        M::parse_from_bytes(&r.payload).expect("reply payload decodes")
    }

    /// RegisterPlugin answered, Configure and a one-chunk Synchronize sent
    /// and answered.
    pub fn handshake(&mut self) {
        let (id, _) = self.expect_call("RegisterPlugin");
        let ok = ttrpc_frame(id, TYPE_RESPONSE, 0, &response_envelope(0, "", &[]));
        self.peer.send_message_on(RUNTIME_SERVICE_CONN, &ok);
        let configure = ConfigureRequest {
            runtime_name: "scripted".into(),
            runtime_version: "0".into(),
            registration_timeout: 5000,
            request_timeout: 2000,
            ..Default::default()
        };
        let id = self.send("Configure", &configure, STEP);
        let r: ConfigureResponse = self.reply(id, "Configure reply");
        assert_ne!(r.events, 0);
        let sync = SynchronizeRequest {
            pods: vec![pod("p")],
            ..Default::default()
        };
        let id = self.send("Synchronize", &sync, STEP);
        let r: SynchronizeResponse = self.reply(id, "Synchronize reply");
        assert!(!r.more);
    }
}

/// A plugin side scripted step by step on a raw socket, for
/// `nri::runtime`: it registers, answers Configure and Synchronize, and
/// then does whatever the case makes it do.
pub struct ScriptedPlugin {
    pub peer: RawPeer,
    next_id: u32,
}

impl ScriptedPlugin {
    pub fn new(stream: UnixStream) -> Self {
        ScriptedPlugin {
            peer: RawPeer::new(stream, Framing::Mux, RUNTIME_SERVICE_CONN),
            next_id: 1,
        }
    }

    /// Registers as `idx`-`name` subscribed to `events` and answers
    /// Configure and Synchronize.
    pub fn register(&mut self, name: &str, idx: &str, events: EventMask) {
        let reg = RegisterPluginRequest {
            plugin_name: name.into(),
            plugin_idx: idx.into(),
            ..Default::default()
        };
        self.call("RegisterPlugin", &reg);
        let (id, reply) = self.peer.expect_reply("RegisterPlugin reply");
        assert_eq!((id, reply.code), (1, Code::Ok), "{}", reply.message);
        for method in ["Configure", "Synchronize"] {
            let m = self.peer.expect_msg(method);
            let req = Request::parse_from_bytes(&m.data).expect("request decodes");
            assert_eq!((m.conn, req.method.as_str()), (PLUGIN_SERVICE_CONN, method));
            let payload = match method {
                "Configure" => bytes(&ConfigureResponse {
                    events: events.bits(),
                    ..Default::default()
                }),
                _ => bytes(&SynchronizeResponse::new()),
            };
            let f = ttrpc_frame(
                m.header.stream_id,
                TYPE_RESPONSE,
                0,
                &response_envelope(0, "", &payload),
            );
            self.peer.send_message_on(PLUGIN_SERVICE_CONN, &f);
        }
    }

    /// The frame of a call to the runtime service, with the next id.
    pub fn call_frame(&mut self, method: &str, msg: &impl Message) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 2;
        let env = request_envelope(RUNTIME_SERVICE, method, &bytes(msg), 0);
        crate::common::mux_frame(
            RUNTIME_SERVICE_CONN,
            &ttrpc_frame(id, TYPE_REQUEST, 0, &env),
        )
    }

    /// Calls the runtime service.
    pub fn call(&mut self, method: &str, msg: &impl Message) {
        let f = self.call_frame(method, msg);
        self.peer.send_bytes(&f);
    }
}
