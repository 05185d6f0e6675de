//! Plugins the runtime launches itself.

use super::*;

/// Writes an executable shell script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn process_gone(pid: u32) -> bool {
    let deadline = Instant::now() + STEP;
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Not a test of its own: the body of the plugin that
/// `launched_plugin_gets_socket_on_fd_3_and_a_bare_environment` launches
/// (this test binary, run through a script). Without `NRI_PLUGIN_SOCKET` it
/// does nothing.
#[test]
fn launched_plugin_child_process() {
    if std::env::var_os("NRI_PLUGIN_SOCKET").is_none() {
        return;
    }
    let mut problems = Vec::new();
    for (var, want) in [
        ("NRI_PLUGIN_NAME", "launched"),
        ("NRI_PLUGIN_IDX", "42"),
        ("NRI_PLUGIN_SOCKET", "3"),
    ] {
        let got = std::env::var(var).unwrap_or_default();
        if got != want {
            problems.push(format!("{var}={got:?}, want {want:?}"));
        }
    }
    for var in [
        "HOME",
        "CARGO_MANIFEST_DIR",
        "RUST_TEST_THREADS_FROM_PARENT",
    ] {
        if std::env::var_os(var).is_some() {
            problems.push(format!("{var} is set"));
        }
    }
    // SAFETY: the runtime passed a connected socket as fd 3 and nothing else
    // in this process owns that descriptor.
    let stream = unsafe { UnixStream::from_raw_fd(3) };
    let config = Arc::new(Mutex::new(String::new()));
    let cfg = config.clone();
    let spec = Spec::new(
        "ignored",
        "99",
        EventMask::from_events(&[Event::CREATE_CONTAINER]),
    )
    .on_configure(move |_, req| {
        if !problems.is_empty() {
            return Err(Status::new(Code::FailedPrecondition, problems.join("; ")));
        }
        *cfg.lock().unwrap() = req.config;
        Ok(ConfigureResponse {
            events: Event::CREATE_CONTAINER.mask().bits(),
            ..Default::default()
        })
    })
    .on_create(move |_, _| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("config".into(), config.lock().unwrap().clone());
        adjust
            .annotations
            .insert("pid".into(), std::process::id().to_string());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    });
    let plugin = TestPlugin::start(stream, spec);
    // Stay until the runtime closes the connection (or kills us).
    plugin.conn.wait_timeout(Duration::from_secs(10));
}

#[test]
fn launched_plugin_gets_socket_on_fd_3_and_a_bare_environment() {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = temp_dir("launch");
    let bin = script(
        &dir,
        "42-launched",
        &format!(
            "exec '{}' --exact launch::launched_plugin_child_process --test-threads=1 --nocapture -q",
            exe.display()
        ),
    );
    let rt = test_runtime().build();
    let handle = rt
        .launch(&bin, "launched", "42", "launch config")
        .expect("launched plugin registered");
    assert_eq!(
        handle.name(),
        "42-launched",
        "the request's name and index are ignored"
    );
    assert!(handle.is_launched());
    assert_eq!(handle.events(), Event::CREATE_CONTAINER.mask());
    let pid = handle.pid().expect("child running");
    let reply = handle
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("CreateContainer");
    assert_eq!(
        reply.adjust.annotations.get("config").map(String::as_str),
        Some("launch config")
    );
    assert_eq!(reply.adjust.annotations.get("pid"), Some(&pid.to_string()));

    handle.close();
    assert!(process_gone(pid), "the launched plugin is killed on close");
    assert_eq!(handle.pid(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn launched_plugin_that_never_registers_is_killed() {
    let dir = temp_dir("mute");
    let pidfile = dir.join("pid");
    let bin = script(
        &dir,
        "10-mute",
        &format!("echo $$ > '{}'\nexec /bin/sleep 30", pidfile.display()),
    );
    let rt = test_runtime()
        .registration_timeout(Duration::from_millis(300))
        .build();
    match rt.launch(&bin, "mute", "10", "") {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "RegisterPlugin"),
        other => panic!("expected a registration timeout, got {other:?}"),
    }
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("script wrote its pid")
        .trim()
        .parse()
        .unwrap();
    assert!(process_gone(pid), "the launched plugin is killed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn launch_refuses_a_bad_index() {
    let rt = test_runtime().build();
    assert!(matches!(
        rt.launch("/bin/true", "x", "1", ""),
        Err(Error::InvalidPluginIndex { .. })
    ));
}
