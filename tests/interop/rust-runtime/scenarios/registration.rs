//! Registration, Configure and the ends of a connection: external and launched plugins, refusals, timeouts, Shutdown.

use crate::*;

/// External plugins dial our socket, register, get their configuration
/// (from their `-config` file, or through Configure from the runtime's
/// `plugin_config`) and are synchronized; a set orders them by index.
pub(crate) fn sc_external_register(ctx: &mut Ctx) -> R {
    let (log_a, log_c, log_c_base) = (
        ctx.path("ext.log"),
        ctx.path("cfg.log"),
        ctx.path("cfg-base.log"),
    );
    let rt = ctx
        .builder()
        // the full NN-name wins over the base name
        .plugin_config("12-cfg", format!("log={}\n", log_c.display()))
        .plugin_config("cfg", format!("log={}\n", log_c_base.display()))
        .build();
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (a, _) = ctx.external(
        &l,
        &plugin,
        "ext",
        "10",
        &format!("log={}\n", log_a.display()),
    )?;
    // no configuration at all
    let (b, _) = ctx.external(&l, &plugin, "bare", "11", "")?;
    // configuration only through Configure
    let (c, _) = ctx.external(&l, &plugin, "cfg", "12", "")?;
    check_handle(&a, "10-ext", false)?;
    check_handle(&b, "11-bare", false)?;
    check_handle(&c, "12-cfg", false)?;
    for h in [&a, &b, &c] {
        ensure!(
            h.sync_updates().is_empty(),
            "{}: sync updates {:?}",
            h.name(),
            update_ids(h.sync_updates())
        );
    }
    let set = PluginSet::new(&rt);
    for h in [c, b, a] {
        set.add(h).map_err(|e| e.to_string())?;
    }
    let names = set.names();
    ensure!(
        names == ["10-ext", "11-bare", "12-cfg"],
        "plugin set order {names:?}, want [10-ext 11-bare 12-cfg]"
    );
    for log in [&log_a, &log_c] {
        let es = wait_entries(log, Duration::from_secs(2), "Configure+Synchronize", |es| {
            es.len() >= 2
        })?;
        check_preamble(&es, 0, 0, 0)?;
        ensure!(
            es.len() == 2,
            "plugin log: unexpected extra lines: {}",
            summarize(&es)
        );
    }
    ensure!(
        !log_c_base.exists(),
        "12-cfg got the configuration of \"cfg\" instead of \"12-cfg\""
    );
    Ok(())
}

/// `Runtime::launch`: no arguments, a bare environment, the socket as fd 3;
/// the configuration arrives through Configure; closing kills the plugin.
pub(crate) fn sc_launched_config(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_l = ctx.path("launched.log");
    // sockets of ours that must not leak into the launched plugin
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (other, _) = ctx.external(&l, &plugin, "other", "10", "")?;
    let h = rt
        .launch(
            &ctx.plugin,
            "launched",
            "20",
            &format!("log={}\ntag=launched\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    check_handle(&h, "20-launched", true)?;
    let pid = h.pid().unwrap_or_default();
    ensure!(pid_alive(pid), "launched plugin pid {pid} is not running");
    // what the process got
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| e.to_string())?;
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    ensure!(
        args.len() == 1,
        "launched plugin has arguments: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let environ = fs::read(format!("/proc/{pid}/environ")).map_err(|e| e.to_string())?;
    let mut env: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    env.sort();
    ensure!(
        env == [
            "NRI_PLUGIN_IDX=20",
            "NRI_PLUGIN_NAME=launched",
            "NRI_PLUGIN_SOCKET=3"
        ],
        "launched plugin environment {env:?}"
    );
    let ours = socket_inodes("self");
    let theirs = socket_inodes(&pid.to_string());
    let leaked: Vec<String> = theirs.intersection(&ours).cloned().collect();
    ensure!(
        leaked.is_empty() && !ours.is_empty() && !theirs.is_empty(),
        "the launched plugin holds sockets of the runtime process: {leaked:?}"
    );
    ensure!(other.is_connected(), "10-other dropped");
    let es = read_log(&log_l)?;
    check_preamble(&es, 0, 0, 0)
        .map_err(|e| format!("{e} (config not delivered through Configure?)"))?;
    let pod = mk_pod("pod-l", &[]);
    let resp = h
        .create_container(
            &pod,
            &mk_ctr("ctr-l", &pod.id, &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer: {e}"))?;
    let want = ContainerAdjustment {
        annotations: smap(&[("launched.interop/added", "yes")]),
        env: vec![kv("INTEROP_launched", "yes")],
        ..Default::default()
    };
    check_adjust("CreateContainer (tag from the configuration)", &want, &resp)?;
    check_event_seq(
        &read_log(&log_l)?,
        &[ex("CreateContainer", "pod-l", "ctr-l")],
    )?;

    h.close();
    ensure!(!h.is_connected(), "plugin still connected after close");
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "launched plugin {pid} still running after close"
    );
    ensure!(h.pid().is_none(), "closed plugin still has a pid");
    match h.create_container(&pod, &mk_ctr("ctr-after", &pod.id, &[])) {
        Err(nri::Error::ConnectionClosed(_)) => Ok(()),
        other => Err(format!(
            "CreateContainer after close: {other:?}, want ConnectionClosed"
        )),
    }
}

/// Shutdown (never sent by v0.9.0, sent by newer runtimes) is answered and
/// keeps the plugin; closing the connection makes an external plugin exit.
pub(crate) fn sc_shutdown(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("shut.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, slot) = ctx.external(
        &l,
        &plugin,
        "shut",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    h.shutdown().map_err(|e| format!("Shutdown: {e}"))?;
    ensure!(
        h.is_connected(),
        "plugin dropped after Shutdown: {:?}",
        h.drop_reason()
    );
    let pod = mk_pod("pod-sh", &[]);
    h.create_container(&pod, &mk_ctr("ctr-sh", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after Shutdown: {e}"))?;
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-sh", "ctr-sh")],
    )?;
    h.close();
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "external plugin did not exit when the runtime closed the connection"
    );
    let (h2, slot2) = ctx.external(&l, &plugin, "shut2", "11", "")?;
    drop(h2);
    ensure!(
        ctx.procs[slot2].wait_exit(Duration::from_secs(3)),
        "external plugin did not exit when its handle was dropped"
    );
    let hl = rt
        .launch(&ctx.plugin, "shutl", "20", "")
        .map_err(|e| format!("launch: {e}"))?;
    hl.shutdown()
        .map_err(|e| format!("Shutdown (launched): {e}"))?;
    ensure!(hl.is_connected(), "launched plugin dropped after Shutdown");
    Ok(())
}

/// An external plugin with a bad index is refused with an UNKNOWN status;
/// the runtime leaves the connection open and the plugin gives up by itself.
pub(crate) fn sc_registration_refused(ctx: &mut Ctx) -> R {
    // (a plugin refusing the index itself never registers)
    ctx.allow_log(r#"refusing registration of plugin "badidx" with index "1": .*"#);
    let rt = ctx.builder().build();
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let slot = ctx.spawn_external(&l, &plugin, "badidx", "1", "")?;
    // A stub that checks the index itself (the Rust one) exits without
    // registering; the Go stub sends it and the runtime must refuse it.
    let gave_up_alone = ctx.procs[slot].wait_exit(Duration::from_millis(300));
    let start = Instant::now();
    let r = l.accept_timeout(if gave_up_alone {
        Duration::from_millis(100)
    } else {
        ACCEPT_TIMEOUT
    });
    match r {
        Err(nri::Error::RegistrationRefused { ref message, .. })
            if message.contains("invalid plugin index") => {}
        Err(_) if gave_up_alone => {}
        Err(e) => return Err(format!("bad index: {e}, want RegistrationRefused")),
        Ok(h) => return Err(format!("plugin with index \"1\" accepted as {}", h.name())),
    }
    ensure!(
        start.elapsed() < Duration::from_secs(2),
        "refusal took {:?}",
        start.elapsed()
    );
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "refused plugin did not give up{}",
        ctx.output_of(slot)
    );
    // the listener still serves the next plugin
    let (h, _) = ctx.external(&l, &plugin, "good", "10", "")?;
    check_handle(&h, "10-good", false)
}

/// A launched process that never registers is killed after the
/// registration timeout; an external connection that never registers is
/// closed.
pub(crate) fn sc_registration_timeout(ctx: &mut Ctx) -> R {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    ctx.expect_log(r"plugin 40-mute did not register within 300ms");
    ctx.expect_log(r"plugin connection on .*/nri\.sock did not register within 300ms; closing it");
    const TIMEOUT: Duration = Duration::from_millis(300);
    let rt = ctx.builder().registration_timeout(TIMEOUT).build();
    let script = ctx.path("40-mute");
    fs::write(&script, "#!/bin/sh\nexec /bin/sleep 30\n").map_err(|e| e.to_string())?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let before = children();
    let start = Instant::now();
    let r = rt.launch(&script, "mute", "40", "");
    let elapsed = start.elapsed();
    match r {
        Err(nri::Error::DeadlineExceeded { ref method, .. }) if method == "RegisterPlugin" => {}
        other => {
            return Err(format!(
                "launching a mute process: {:?}, want DeadlineExceeded for RegisterPlugin",
                other.map(|h| h.name().to_string())
            ))
        }
    }
    ensure!(
        elapsed >= TIMEOUT - Duration::from_millis(20)
            && elapsed < TIMEOUT + Duration::from_secs(1),
        "registration timeout of {TIMEOUT:?} took {elapsed:?}"
    );
    let left: Vec<u32> = children().difference(&before).copied().collect();
    ensure!(
        left.is_empty(),
        "mute launched process not killed and reaped: {left:?}"
    );

    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let mut mute = std::os::unix::net::UnixStream::connect(l.path()).map_err(|e| e.to_string())?;
    match l.accept_timeout(Duration::from_secs(2)) {
        Err(nri::Error::DeadlineExceeded { ref method, .. }) if method == "RegisterPlugin" => {}
        other => {
            return Err(format!(
                "a mute external connection: {:?}, want DeadlineExceeded for RegisterPlugin",
                other.map(|h| h.name().to_string())
            ))
        }
    }
    mute.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match mute.read(&mut buf) {
        Ok(0) => Ok(()),
        other => Err(format!(
            "the mute connection was not closed by the runtime: read {other:?}"
        )),
    }
}

/// Our child processes (running or zombie).
pub(crate) fn children() -> BTreeSet<u32> {
    let me = std::process::id().to_string();
    let mut out = BTreeSet::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
                let fields: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
                if fields.get(1) == Some(&me.as_str()) {
                    out.insert(pid);
                }
            }
        }
    }
    out
}

/// A configuration the plugin refuses fails Configure (a status from the
/// plugin): accepting or launching it fails, a launched plugin is killed
/// and reaped, an external one gives up.
pub(crate) fn sc_configure_failure(ctx: &mut Ctx) -> R {
    // the plugin's status, or its connection closing first (see below)
    let refused = |plugin: &str, why: &str| {
        format!("failed to configure plugin {plugin}: (?:.*{why}.*|{CONNECTION_CLOSED})")
    };
    ctx.expect_log(&refused(
        "10-badcfg",
        r#"missing '=' in "this line has no equals sign""#,
    ));
    ctx.expect_log(&refused("20-badcfgl", r#"unknown event "bogus""#));
    let rt = ctx
        .builder()
        .plugin_config("badcfg", "this line has no equals sign\n")
        .build();
    let before = children();
    // The Go stub exits as soon as its Configure handler failed, racing its
    // own error reply: the runtime sees the status or the closed connection.
    let r = rt.launch(&ctx.plugin, "badcfgl", "20", "events=bogus\n");
    match r {
        Err(nri::Error::Status { code: Code::Unknown, ref message, .. }) if message.contains("bogus") => {}
        Err(nri::Error::ConnectionClosed(_)) => {}
        other => {
            return Err(format!(
                "launch with events=bogus: {:?}, want an UNKNOWN status naming the bad event, or the plugin gone",
                other.map(|h| h.name().to_string())
            ))
        }
    }
    let left: Vec<u32> = children().difference(&before).copied().collect();
    ensure!(
        left.is_empty(),
        "launched plugin not reaped after the failed Configure: {left:?}"
    );
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    match ctx.external(&l, &plugin, "badcfg", "10", "") {
        Err(e) if e.contains("missing '='") || e.contains("connection closed") => {}
        Err(e) => {
            return Err(format!(
                "external with a bad config: {e}, want the plugin's Configure error"
            ))
        }
        Ok((h, _)) => return Err(format!("{} accepted with a bad config", h.name())),
    }
    let slot = ctx.procs.len() - 1;
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "external plugin still running after its failed Configure{}",
        ctx.output_of(slot)
    );
    Ok(())
}
