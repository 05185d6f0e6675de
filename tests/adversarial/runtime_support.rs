//! What the runtime cases share: counting the process's threads,
//! descriptors and memory, running a case in a process of its own (so that
//! the cases running at the same time do not disturb the counts), and
//! hostile plugins driven byte by byte.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{request_envelope, response_envelope, ttrpc_frame, Msg, RawPeer, Silence};
use nri::api::{
    ConfigureRequest, ConfigureResponse, Container, EventMask, PodSandbox, RegisterPluginRequest,
    SynchronizeRequest, SynchronizeResponse, RUNTIME_SERVICE,
};
use nri::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use nri::ttrpc::codec::{TYPE_REQUEST, TYPE_RESPONSE};
use nri::ttrpc::{Framing, Request};
use protobuf::Message;

/// Bound for one protocol step of a well-behaved party.
pub const STEP: Duration = Duration::from_secs(5);

/// The environment variable that tells a re-executed test binary which
/// case to run for real.
const OWN_PROCESS: &str = "NRI_ADVERSARIAL_CASE";

/// Runs the test `name` (its path, `runtime_connections::...`) alone in a
/// new process of this test binary and waits for it; returns false in that
/// process, where the case then runs. Counting the threads, descriptors
/// and memory of the whole process is only meaningful there.
pub fn in_own_process(name: &str) -> bool {
    if std::env::var(OWN_PROCESS).is_ok_and(|n| n == name) {
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS, name)
        .output()
        .expect("re-running the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints the test's name and then its output on one line.
    for line in stdout.lines() {
        if let Some(at) = line.find("measured:") {
            println!("{}", &line[at..]);
        }
    }
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "case {name} failed in its own process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Open descriptors of this process.
pub fn fds() -> usize {
    // The directory handle itself is one of them.
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1))
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Waits up to `limit` for `f()` to come down to `target`; returns the
/// last value seen.
pub fn settles(limit: Duration, target: usize, f: impl Fn() -> usize) -> usize {
    let start = Instant::now();
    loop {
        let v = f();
        if v <= target || start.elapsed() > limit {
            return v;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh directory for a socket.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nri-adversarial-{tag}-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn pod(id: &str) -> PodSandbox {
    let mut p = PodSandbox::new();
    p.id = id.to_string();
    p.name = format!("{id}-name");
    p.namespace = "default".into();
    p
}

pub fn ctr(id: &str) -> Container {
    let mut c = Container::new();
    c.id = id.to_string();
    c.pod_sandbox_id = "pod".into();
    c.name = format!("{id}-name");
    c
}

/// A request to the runtime service, framed for the trunk.
pub fn runtime_request(stream_id: u32, method: &str, payload: &[u8]) -> Vec<u8> {
    let frame = ttrpc_frame(
        stream_id,
        TYPE_REQUEST,
        0,
        &request_envelope(RUNTIME_SERVICE, method, payload, 0),
    );
    let mut out = Vec::new();
    nri::mux::codec::encode_message(&mut out, RUNTIME_SERVICE_CONN, &frame).expect("framing");
    out
}

/// A RegisterPlugin request, framed for the trunk.
pub fn register_bytes(stream_id: u32, name: &str, idx: &str) -> Vec<u8> {
    let req = RegisterPluginRequest {
        plugin_name: name.into(),
        plugin_idx: idx.into(),
        NRI_version: "v0.12.5".into(),
        ..Default::default()
    };
    runtime_request(
        stream_id,
        "RegisterPlugin",
        &req.write_to_bytes().expect("encoding"),
    )
}

/// A plugin written byte by byte: it registers as told, then answers
/// Configure and Synchronize as told, then does what the case wants.
pub struct ScriptedPlugin {
    pub peer: RawPeer,
    next_id: u32,
}

impl ScriptedPlugin {
    pub fn new(stream: UnixStream) -> ScriptedPlugin {
        ScriptedPlugin {
            peer: RawPeer::new(stream, Framing::Mux, RUNTIME_SERVICE_CONN),
            next_id: 1,
        }
    }

    /// Dials `path`.
    pub fn dial(path: &std::path::Path) -> ScriptedPlugin {
        ScriptedPlugin::new(UnixStream::connect(path).expect("dial the runtime"))
    }

    fn stream_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        id
    }

    /// Sends RegisterPlugin, `pace` apart per byte (zero: at once).
    pub fn send_register(&mut self, name: &str, idx: &str, pace: Duration) {
        let id = self.stream_id();
        let bytes = register_bytes(id, name, idx);
        if pace.is_zero() {
            self.peer.send_bytes(&bytes);
        } else {
            for b in bytes {
                self.peer.send_bytes(&[b]);
                thread::sleep(pace);
            }
        }
    }

    /// Calls `method` of the runtime service without waiting for a reply.
    pub fn send_call(&mut self, method: &str, req: &impl Message) -> u32 {
        let id = self.stream_id();
        self.peer.send_bytes(&runtime_request(
            id,
            method,
            &req.write_to_bytes().expect("encoding"),
        ));
        id
    }

    /// The next request from the runtime on the plugin service.
    pub fn next_request(&mut self, what: &str) -> (Msg, Request) {
        loop {
            let msg = match self.peer.recv(STEP) {
                Ok(m) => m,
                Err(e) => panic!("{what}: {e:?}"),
            };
            if msg.conn == PLUGIN_SERVICE_CONN && msg.header.message_type == TYPE_REQUEST {
                let req = Request::parse_from_bytes(&msg.data).expect("a request");
                return (msg, req);
            }
        }
    }

    /// The next reply from the runtime on the runtime service: code and
    /// message.
    pub fn next_reply(&mut self, what: &str) -> (u32, nri::ttrpc::Code, String) {
        loop {
            let msg = match self.peer.recv(STEP) {
                Ok(m) => m,
                Err(e) => panic!("{what}: {e:?}"),
            };
            if msg.conn == RUNTIME_SERVICE_CONN && msg.header.message_type == TYPE_RESPONSE {
                let r = crate::common::decode_reply(&msg.data);
                return (msg.header.stream_id, r.code, r.message);
            }
        }
    }

    /// Answers a request of the runtime with `resp`.
    pub fn answer(&mut self, msg: &Msg, resp: &impl Message) {
        let data = response_envelope(0, "", &resp.write_to_bytes().expect("encoding"));
        let frame = ttrpc_frame(msg.header.stream_id, TYPE_RESPONSE, 0, &data);
        self.peer.send_message_on(PLUGIN_SERVICE_CONN, &frame);
    }

    /// Answers Configure with `reply` and Synchronize with nothing.
    pub fn serve_setup(&mut self, reply: &ConfigureResponse) -> ConfigureRequest {
        let (msg, req) = self.next_request("Configure");
        assert_eq!(req.method, "Configure");
        let cfg = ConfigureRequest::parse_from_bytes(&req.payload).expect("ConfigureRequest");
        self.answer(&msg, reply);
        let (msg, req) = self.next_request("Synchronize");
        assert_eq!(req.method, "Synchronize");
        let sync = SynchronizeRequest::parse_from_bytes(&req.payload).expect("SynchronizeRequest");
        self.answer(
            &msg,
            &SynchronizeResponse {
                more: sync.more,
                ..Default::default()
            },
        );
        cfg
    }

    /// Registers and answers Configure (subscribing to `events`) and
    /// Synchronize.
    pub fn register(&mut self, name: &str, idx: &str, events: EventMask) {
        self.send_register(name, idx, Duration::ZERO);
        self.serve_setup(&ConfigureResponse {
            events: events.bits(),
            ..Default::default()
        });
    }

    /// True once the runtime closed the connection (within `limit`).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            match self.peer.recv(limit.saturating_sub(start.elapsed())) {
                Err(Silence::Eof) => return true,
                Err(Silence::Timeout) => return false,
                Ok(_) => {}
            }
        }
    }
}

/// True when the other end of `s` closed it (read returns 0 within
/// `limit`); bytes it sent meanwhile are skipped.
pub fn closed_by_peer(s: &mut UnixStream, limit: Duration) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Writes all of `bytes`, ignoring a peer that has gone.
pub fn send_quietly(s: &mut UnixStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}
