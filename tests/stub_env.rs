//! Identity and connection settings taken from the environment. These
//! tests change process-wide environment variables, so they live in their
//! own test binary and run as one sequential test.

mod common;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;

use common::fake_runtime::{FakeRuntime, OnRegister};
use common::STEP as T;

use nri::api::{Event, EventMask};
use nri::stub::{Plugin, Stub};
use nri::Error;

struct P;
impl Plugin for P {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }
}

fn set(k: &str, v: Option<&str>) {
    match v {
        Some(v) => std::env::set_var(k, v),
        None => std::env::remove_var(k),
    }
}

#[test]
fn environment_identity_and_socket_rules() {
    // Identity from NRI_PLUGIN_NAME / NRI_PLUGIN_IDX; options win over them.
    set("NRI_PLUGIN_SOCKET", None);
    set("NRI_PLUGIN_NAME", Some("from-env"));
    set("NRI_PLUGIN_IDX", Some("33"));
    let stub = Stub::builder(P).build().unwrap();
    assert_eq!(stub.name(), "33-from-env");
    let stub = Stub::builder(P)
        .plugin_name("opt")
        .plugin_index("44")
        .build()
        .unwrap();
    assert_eq!(stub.name(), "44-opt");

    // Defaults apply only where the environment says nothing.
    let with_defaults = || {
        let stub = Stub::builder(P)
            .default_plugin_name("dflt")
            .default_plugin_index("90")
            .build()
            .unwrap();
        stub.name().to_string()
    };
    assert_eq!(with_defaults(), "33-from-env");
    set("NRI_PLUGIN_NAME", None);
    assert_eq!(with_defaults(), "33-dflt");
    set("NRI_PLUGIN_IDX", None);
    assert_eq!(with_defaults(), "90-dflt");
    set("NRI_PLUGIN_NAME", Some("from-env"));
    set("NRI_PLUGIN_IDX", Some("33"));

    // A bad index from the environment is refused with the value named.
    set("NRI_PLUGIN_IDX", Some("3x"));
    let err = Stub::builder(P).build().unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPluginIndex { index } if index == "3x"),
        "{err:?}"
    );

    // Without any index, the executable's name must be NN-name; the test
    // binary's is not, and the error says how to fix it.
    set("NRI_PLUGIN_IDX", None);
    set("NRI_PLUGIN_NAME", None);
    let err = Stub::builder(P).build().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("NN-name") && text.contains("plugin_index"),
        "{text}"
    );

    // With an index but no name, the name is the executable's base name.
    let stub = Stub::builder(P).plugin_index("05").build().unwrap();
    let exe = std::env::current_exe().unwrap();
    let base = exe.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(stub.name(), format!("05-{base}"));

    // NRI_PLUGIN_SOCKET: not a number, not open, not a socket, not connected.
    let stub = Stub::builder(P)
        .plugin_name("env")
        .plugin_index("01")
        .build()
        .unwrap();
    set("NRI_PLUGIN_SOCKET", Some("three"));
    let err = stub.start().unwrap_err().to_string();
    assert!(
        err.contains("NRI_PLUGIN_SOCKET") && err.contains("\"three\""),
        "{err}"
    );

    set("NRI_PLUGIN_SOCKET", Some("987654"));
    let err = stub.start().unwrap_err().to_string();
    assert!(err.contains("987654") && err.contains("not open"), "{err}");

    let file = std::fs::File::open("/proc/self/status").unwrap();
    let fd = file.as_raw_fd().to_string();
    set("NRI_PLUGIN_SOCKET", Some(&fd));
    let stub = Stub::builder(P)
        .plugin_name("env")
        .plugin_index("01")
        .build()
        .unwrap();
    let err = stub.start().unwrap_err().to_string();
    assert!(
        err.contains(&format!("{fd:?}")) && err.contains("not a socket"),
        "{err}"
    );
    drop(file);

    // A socket that is not connected is refused too.
    let listener_dir = std::env::temp_dir().join(format!("nri-env-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&listener_dir);
    let listener = std::os::unix::net::UnixListener::bind(listener_dir.join("l.sock")).unwrap();
    let lfd = listener.as_raw_fd().to_string();
    set("NRI_PLUGIN_SOCKET", Some(&lfd));
    let stub = Stub::builder(P)
        .plugin_name("env")
        .plugin_index("01")
        .build()
        .unwrap();
    let err = stub.start().unwrap_err().to_string();
    assert!(err.contains("not a connected Unix socket"), "{err}");
    drop(listener); // refused descriptors are left open and owned by the caller
    let _ = std::fs::remove_dir_all(&listener_dir);

    // An explicit connection wins over the environment.
    set("NRI_PLUGIN_SOCKET", Some("three"));
    let (a, b) = UnixStream::pair().unwrap();
    drop(b); // the "runtime" is gone at once: start fails on the connection, not on the variable
    let stub = Stub::builder(P)
        .plugin_name("env")
        .plugin_index("01")
        .connection(a)
        .build()
        .unwrap();
    let err = stub.start().unwrap_err().to_string();
    assert!(!err.contains("NRI_PLUGIN_SOCKET"), "{err}");

    // Dialing a missing socket path names the path and the OS error.
    set("NRI_PLUGIN_SOCKET", None);
    let stub = Stub::builder(P)
        .plugin_name("env")
        .plugin_index("01")
        .socket_path("/nonexistent/nri.sock")
        .build()
        .unwrap();
    let err = stub.start().unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/nri.sock") && err.contains("No such file"),
        "{err}"
    );

    launched_plugin_ends_normally_when_the_runtime_closes();
    external_plugin_reports_the_lost_connection();
}

/// A plugin the runtime launched (`NRI_PLUGIN_SOCKET`): the runtime closing
/// the connection is its normal end, so `run()` returns `Ok`.
fn launched_plugin_ends_normally_when_the_runtime_closes() {
    let (plugin_end, runtime_end) = UnixStream::pair().unwrap();
    set(
        "NRI_PLUGIN_SOCKET",
        Some(&plugin_end.into_raw_fd().to_string()),
    );
    set("NRI_PLUGIN_NAME", Some("launched"));
    set("NRI_PLUGIN_IDX", Some("20"));
    let stub = Stub::builder(P).build().unwrap();
    let running = std::thread::spawn({
        let stub = stub.clone();
        move || stub.run()
    });
    let rt = FakeRuntime::new(runtime_end, OnRegister::Accept, false);
    rt.registered
        .recv_timeout(T)
        .expect("RegisterPlugin arrives");
    rt.configure("").unwrap();
    assert!(wait_connected(&stub));
    rt.conn.close();
    let result = running.join().unwrap();
    assert!(result.is_ok(), "a launched plugin ends with Ok: {result:?}");
    set("NRI_PLUGIN_SOCKET", None);
    set("NRI_PLUGIN_NAME", None);
    set("NRI_PLUGIN_IDX", None);
}

/// An external plugin losing its runtime gets `Err(ConnectionClosed)`,
/// whose text says it once.
fn external_plugin_reports_the_lost_connection() {
    set("NRI_PLUGIN_SOCKET", None);
    let (plugin_end, runtime_end) = UnixStream::pair().unwrap();
    let stub = Stub::builder(P)
        .plugin_name("ext")
        .plugin_index("10")
        .connection(plugin_end)
        .build()
        .unwrap();
    let running = std::thread::spawn({
        let stub = stub.clone();
        move || stub.run()
    });
    let rt = FakeRuntime::new(runtime_end, OnRegister::Accept, false);
    rt.registered
        .recv_timeout(T)
        .expect("RegisterPlugin arrives");
    rt.configure("").unwrap();
    assert!(wait_connected(&stub));
    rt.conn.close();
    let err = running.join().unwrap().unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed(_)), "{err}");
    let text = err.to_string();
    assert_eq!(text.matches("connection closed").count(), 1, "{text}");
    assert_eq!(err.exit_code(), 1);
}

fn wait_connected(stub: &Stub) -> bool {
    let until = std::time::Instant::now() + T;
    while std::time::Instant::now() < until {
        // Ready: start() has returned (Configure answered and its reply
        // written); a close before that is a failed start, not an end.
        if stub.is_connected() && stub.stats().is_ready() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}
