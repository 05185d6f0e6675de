//! Peer-supplied text in log lines: a plugin named with a newline and an
//! escape sequence, failing a request with a status message that forges a
//! log line, cannot break a line of the runtime's log.

use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use crate::common::plugin::{Spec, TestPlugin};
use crate::runtime_support::*;
use nri::api::EventMask;
use nri::runtime::{PluginSet, Runtime};
use nri::ttrpc::{Code, Status};

/// Every log message of this process.
struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

#[test]
fn control_characters_from_a_plugin_never_reach_the_log_raw() {
    if in_own_process("runtime_logs::control_characters_from_a_plugin_never_reach_the_log_raw") {
        return;
    }
    log::set_logger(&RECORDER).expect("the only logger of this process");
    log::set_max_level(log::LevelFilter::Trace);

    let evil = "evil\n2024-01-01T00:00:00Z INFO forged \u{1b}[2J\u{202e}";
    let rt = Runtime::builder().request_timeout(STEP).build();
    // Refused with a bad index, then registered with a good one.
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let _refused = TestPlugin::start(plugin_end, Spec::new(evil, "7", EventMask::ALL));
    assert!(rt.accept_stream(rt_end).is_err());
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let spec = Spec::new(evil, "10", EventMask::ALL).on_create(|_, _| {
        Err(Status::new(
            Code::Unknown,
            "denied\r\n2024-01-01T00:00:00Z ERROR forged by the plugin",
        ))
    });
    let _plugin = TestPlugin::start(plugin_end, spec);
    let handle = rt.accept_stream(rt_end).expect("registered");
    let set = PluginSet::new(&rt);
    set.add(handle).expect("added");
    assert!(set.create_container(&pod("p"), &ctr("c")).is_err());
    drop(set);

    let lines = RECORDER.0.lock().expect("lines").clone();
    let about_it: Vec<&String> = lines.iter().filter(|l| l.contains("evil")).collect();
    assert!(about_it.len() >= 3, "{lines:#?}");
    for l in &lines {
        assert!(
            !l.contains(['\n', '\r', '\u{1b}', '\u{202e}']),
            "a log line holds a raw control character: {l:?}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains(
            "plugin 10-evil\\n2024-01-01T00:00:00Z INFO forged \\u{1b}[2J\\u{202e} registered"
        )),
        "{about_it:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("denied\\r\\n2024-01-01T00:00:00Z ERROR forged")),
        "{about_it:#?}"
    );
}
