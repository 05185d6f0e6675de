//! Plugins that time out, die or get killed.

use crate::*;

pub(crate) fn sc_slow_handler_dropped(ctx: &mut Ctx) -> R {
    const TIMEOUT: Duration = Duration::from_millis(500);
    let cause = no_reply("CreateContainer");
    ctx.expect_log(&dropping_line("10-slow", "CreateContainer", &cause));
    ctx.expect_log(&dropping_line("20-slowl", "CreateContainer", &cause));
    ctx.expect_log(&proceeding_line("20-slowl", "CreateContainer", &cause));
    ctx.expect_log(&removing_line("20-slowl"));
    let dead_validator = dead_validator_fails();
    let rt = ctx.builder().request_timeout(TIMEOUT).build();
    let (log_e, log_l) = (ctx.path("slow.log"), ctx.path("slow-launched.log"));
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, slot) = ctx.external(
        &l,
        &plugin,
        "slow",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-slow", &[]);
    let slow = mk_ctr(
        "ctr-slow",
        &pod.id,
        &[("interop/sleep-ms", "1500"), ("interop/adjust", "env")],
    );

    // (a) one external plugin: the call fails after the timeout, the plugin
    // is dropped (connection closed) and exits
    let start = Instant::now();
    let r = h.create_container(&pod, &slow);
    let elapsed = start.elapsed();
    ensure!(
        elapsed >= TIMEOUT - Duration::from_millis(50) && elapsed < Duration::from_millis(1400),
        "CreateContainer returned after {elapsed:?} with the {TIMEOUT:?} request timeout ({r:?})"
    );
    ensure!(
        matches!(r, Err(nri::Error::DeadlineExceeded { .. })),
        "CreateContainer: {:?}, want DeadlineExceeded",
        r.map(|_| "success")
    );
    ensure!(
        !h.is_connected(),
        "plugin still connected after the timeout"
    );
    let reason = h.drop_reason().unwrap_or_default();
    ensure!(reason.contains("CreateContainer"), "drop reason {reason:?}");
    let start = Instant::now();
    let r = h.create_container(&pod, &mk_ctr("ctr-next", &pod.id, &[]));
    ensure!(
        matches!(r, Err(nri::Error::ConnectionClosed(_)))
            && start.elapsed() < Duration::from_millis(100),
        "request to the dropped plugin: {:?} after {:?}, want ConnectionClosed at once",
        r.map(|_| "success"),
        start.elapsed()
    );
    ensure!(
        ctx.procs[slot].wait_exit(Duration::from_secs(3)),
        "plugin process did not exit after the runtime closed its connection"
    );
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-slow", "ctr-slow")],
    )?;

    // (b) a launched plugin in a set: like v0.9.0, the set's call succeeds
    // as if the plugin had answered nothing (v0.10 to v0.12.4: fails,
    // since the dropped plugin is still asked to validate), and the plugin
    // is killed
    let hl = rt
        .launch(
            &ctx.plugin,
            "slowl",
            "20",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    let pid = hl.pid().ok_or("launched plugin without a pid")?;
    let set = PluginSet::new(&rt);
    set.add(hl).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let r = set.create_container(&pod, &slow);
    let elapsed = start.elapsed();
    ensure!(
        elapsed >= TIMEOUT - Duration::from_millis(50) && elapsed < Duration::from_millis(1400),
        "set CreateContainer returned after {elapsed:?} with the {TIMEOUT:?} request timeout"
    );
    if dead_validator {
        expect_dead_validator("set CreateContainer", "20-slowl", r)?;
    } else {
        let resp = r.map_err(|e| {
            format!("set CreateContainer: {e} (v0.9.0 swallows fatal plugin errors)")
        })?;
        check_adjust(
            "set CreateContainer of the dropped plugin",
            &empty_adjustment(),
            &resp,
        )?;
    }
    ensure!(
        set.is_empty(),
        "dropped plugin still in the set: {:?}",
        set.names()
    );
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "launched plugin {pid} not killed after the timeout"
    );
    check_event_seq(
        &read_log(&log_l)?,
        &[ex("CreateContainer", "pod-slow", "ctr-slow")],
    )?;
    let resp = set
        .create_container(&pod, &mk_ctr("ctr-next", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer without plugins: {e}"))?;
    check_adjust(
        "CreateContainer without plugins",
        &empty_adjustment(),
        &resp,
    )
}

pub(crate) fn sc_plugin_restart(ctx: &mut Ctx) -> R {
    ctx.expect_log(&removing_line("10-restart"));
    if relays_to_closed_plugins() {
        ctx.expect_log(&proceeding_line(
            "10-restart",
            "CreateContainer",
            CONNECTION_CLOSED,
        ));
    }
    let rt = ctx.builder().build();
    let pods = vec![mk_pod("pod-r0", &[]), mk_pod("pod-r1", &[])];
    let running = ContainerState::CONTAINER_RUNNING;
    rt.set_state(
        pods.clone(),
        vec![
            with_state(mk_ctr("ctr-r0", "pod-r0", &[]), running),
            with_state(mk_ctr("ctr-r1", "pod-r0", &[]), running),
            mk_ctr("ctr-r2", "pod-r1", &[]),
        ],
    );
    let log_e = ctx.path("restart.log");
    let cfg = format!("log={}\n", log_e.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h1, slot) = ctx.external(&l, &plugin, "restart", "10", &cfg)?;
    let set = PluginSet::new(&rt);
    set.add(h1).map_err(|e| e.to_string())?;
    ctx.procs[slot].kill();
    let old = set.get("10-restart").ok_or("10-restart not in the set")?;
    ensure!(
        old.wait_closed(Duration::from_secs(3)),
        "the runtime did not notice the killed plugin"
    );
    ensure!(!old.is_connected(), "killed plugin still connected");
    drop(old);
    let pod = &pods[1];
    let r = set.create_container(pod, &mk_ctr("ctr-lost", &pod.id, &[]));
    if dead_validator_fails() {
        expect_dead_validator("CreateContainer after the kill", "10-restart", r)?;
    } else {
        let resp = r.map_err(|e| format!("CreateContainer after the kill: {e}"))?;
        check_adjust("CreateContainer after the kill", &empty_adjustment(), &resp)?;
    }
    ensure!(
        set.is_empty(),
        "killed plugin still in the set: {:?}",
        set.names()
    );

    let (h2, _) = ctx
        .external(&l, &plugin, "restart", "10", &cfg)
        .map_err(|e| format!("restarted plugin: {e}"))?;
    check_handle(&h2, "10-restart", false)?;
    set.add(h2).map_err(|e| e.to_string())?;
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 2, 3)?;
    check_preamble(&es, 2, 2, 3).map_err(|e| format!("after restart: {e}"))?;
    set.create_container(pod, &mk_ctr("ctr-new", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after restart: {e}"))?;
    ensure!(
        set.names() == ["10-restart"],
        "plugins {:?}, want [10-restart]",
        set.names()
    );
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-r1", "ctr-new")],
    )
}

pub(crate) fn sc_launched_plugin_killed(ctx: &mut Ctx) -> R {
    ctx.expect_log(&removing_line("30-victim"));
    if relays_to_closed_plugins() {
        ctx.expect_log(&proceeding_line(
            "30-victim",
            "CreateContainer",
            CONNECTION_CLOSED,
        ));
    }
    let rt = ctx.builder().build();
    let log_e = ctx.path("victim.log");
    let h = rt
        .launch(
            &ctx.plugin,
            "victim",
            "30",
            &format!("log={}\n", log_e.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    let pid = h.pid().ok_or("launched plugin without a pid")?;
    ensure!(pid != std::process::id(), "launched plugin has our pid");
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    sigkill(pid)?;
    let victim = set.get("30-victim").ok_or("30-victim not in the set")?;
    ensure!(
        victim.wait_closed(Duration::from_secs(3)),
        "the runtime did not notice the killed plugin"
    );
    ensure!(victim.pid().is_none(), "killed plugin still has a pid");
    drop(victim);
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "killed plugin {pid} not reaped"
    );
    let pod = mk_pod("pod-v", &[]);
    let r = set.create_container(
        &pod,
        &mk_ctr("ctr-v", &pod.id, &[("interop/adjust", "env")]),
    );
    if dead_validator_fails() {
        expect_dead_validator("CreateContainer after the kill", "30-victim", r)?;
    } else {
        let resp = r.map_err(|e| format!("CreateContainer after the kill: {e}"))?;
        check_adjust("CreateContainer after the kill", &empty_adjustment(), &resp)?;
    }
    ensure!(
        set.is_empty(),
        "plugins {:?} after the kill, want none",
        set.names()
    );
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 0, 0)?;
    check_event_seq(&es, &[])
}
