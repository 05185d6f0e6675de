//! What NRI v0.10 to v0.12.5 added, against plugins built on the same
//! version: versions both ways, per-event RPCs, the pod update events,
//! the new adjustments, validation and failure policies.

use crate::*;

/// The NRI version a plugin built on the emulated version registers with.
fn plugin_version() -> Option<&'static str> {
    nri().has_per_event_rpcs().then(|| nri().as_str())
}

/// Versions both ways and per-event RPCs: Configure carries the emulated
/// version (the plugin logs it), the plugin's registration carries its
/// own, and from v0.12 every notification arrives as its own RPC (the
/// plugin never needs the StateChange fallback).
pub(crate) fn sc_versions_and_per_event_rpcs(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("ver.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "ver",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    ensure!(
        h.plugin_nri_version() == plugin_version(),
        "plugin NRI version {:?}, want {:?}",
        h.plugin_nri_version(),
        plugin_version()
    );
    let pod = mk_pod("pod-ver", &[]);
    let (_, want) = lifecycle(&Target::One(&h), &pod, &|| {
        mk_ctr("ctr-ver", "pod-ver", &[])
    })?;
    ensure!(
        !h.state_change_fallback(),
        "the plugin was switched to StateChange"
    );
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 0, 0)?;
    let nri_logged = es[0].kv("nri");
    let want_logged = if nri().has_per_event_rpcs() {
        nri().as_str()
    } else {
        "-"
    };
    ensure!(
        nri_logged == want_logged,
        "Configure line {:?}: runtime NRI version {nri_logged:?}, want {want_logged:?}",
        es[0].raw
    );
    check_event_seq(&es, &want)
}

/// A plugin built on NRI v0.9.0 (`-old-plugin`) against this version:
/// the first notification is answered UNIMPLEMENTED, the rest of the
/// connection uses StateChange, and every event arrives once.
pub(crate) fn sc_old_plugin_falls_back_to_state_change(ctx: &mut Ctx) -> R {
    ctx.expect_log(
        r"plugin 10-old uses deprecated StateChange instead of a dedicated \w+ RPC call",
    );
    let Some(old) = ctx.old_plugin.clone() else {
        return Err("no -old-plugin given".into());
    };
    let rt = ctx.builder().build();
    let log_e = ctx.path("old.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let (h, _) = ctx.external(&l, &old, "old", "10", &format!("log={}\n", log_e.display()))?;
    ensure!(
        h.events() == EventMask::V0_9_EVENTS,
        "a v0.9.0 plugin subscribed to {} (0x{:x})",
        h.events(),
        h.events().bits()
    );
    ensure!(
        h.plugin_nri_version().is_none(),
        "a v0.9.0 plugin sent NRI version {:?}",
        h.plugin_nri_version()
    );
    let pod = mk_pod("pod-old", &[]);
    let ctr = mk_ctr("ctr-old", "pod-old", &[]);
    h.run_pod_sandbox(&pod)
        .map_err(|e| format!("RunPodSandbox: {e}"))?;
    ensure!(
        h.state_change_fallback(),
        "no fallback after the first notification"
    );
    h.start_container(&pod, &ctr)
        .map_err(|e| format!("StartContainer: {e}"))?;
    h.remove_container(&pod, &ctr)
        .map_err(|e| format!("RemoveContainer: {e}"))?;
    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("RunPodSandbox", "pod-old", "-"),
            ex("StartContainer", "pod-old", "ctr-old"),
            ex("RemoveContainer", "pod-old", "ctr-old"),
        ],
    )?;
    let warnings: Vec<String> = log_since(0)
        .into_iter()
        .filter(|(_, m)| m.contains("10-old uses deprecated StateChange"))
        .map(|(_, m)| m)
        .collect();
    ensure!(
        warnings.len() == 3,
        "want one deprecation warning per event, got {warnings:?}"
    );
    Ok(())
}

/// UpdatePodSandbox and PostUpdatePodSandbox reach the plugins of a set in
/// index order, and a plugin failing UpdatePodSandbox fails it.
pub(crate) fn sc_pod_update_events(ctx: &mut Ctx) -> R {
    ctx.expect_log(&failed_line(
        "10-a",
        "UpdatePodSandbox",
        &fail_status("UpdatePodSandbox"),
    ));
    let rt = ctx.builder().build();
    let shared = ctx.path("podupd.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
    let (a, _) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
    let set = PluginSet::new(&rt);
    set.add(b).map_err(|e| e.to_string())?;
    set.add(a).map_err(|e| e.to_string())?;
    let pod = mk_pod("pod-upd", &[]);
    let mut res = LinuxResources::new();
    res.cpu.mut_or_insert_default().cpus = "0-1".into();
    set.update_pod_sandbox(&pod, &LinuxResources::new(), &res)
        .map_err(|e| format!("UpdatePodSandbox: {e}"))?;
    set.post_update_pod_sandbox(&pod)
        .map_err(|e| format!("PostUpdatePodSandbox: {e}"))?;
    let got: Vec<String> = event_lines(&read_log(&shared)?)
        .iter()
        .map(|e| format!("{} {} {}", e.prefix, e.event, e.kv("pod")))
        .collect();
    ensure!(
        got == [
            "A UpdatePodSandbox pod-upd",
            "B UpdatePodSandbox pod-upd",
            "A PostUpdatePodSandbox pod-upd",
            "B PostUpdatePodSandbox pod-upd",
        ],
        "shared log {got:?}"
    );
    // a failing plugin fails UpdatePodSandbox and stays
    let failing = mk_pod("pod-updfail", &[("interop/fail", "yes")]);
    match set.update_pod_sandbox(&failing, &LinuxResources::new(), &res) {
        Err(nri::Error::Status { code, message, .. })
            if code == Code::Unknown && message.contains(FAIL_MSG) => {}
        other => return Err(format!("failing UpdatePodSandbox: {other:?}")),
    }
    ensure!(set.len() == 2, "a plugin left the set: {:?}", set.names());
    Ok(())
}

/// The contract's v012 adjustment: the plugin's own reply has every
/// adjustment added since v0.9; collected, the request's container and the
/// merged reply carry them; two plugins setting them conflict on the first.
pub(crate) fn sc_v012_adjustments(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (a, _) = ctx.external(&l, &plugin, "a", "10", "tag=a\n")?;
    let pod = mk_pod("pod-v12", &[]);
    let ctr = mk_ctr("ctr-v12", "pod-v12", &[("interop/adjust", "v012")]);
    let own = a
        .create_container(&pod, &ctr)
        .map_err(|e| format!("CreateContainer: {e}"))?;
    let d = diff("adjust", &v012_adjustment("a", false), &own.adjust);
    ensure!(d.is_empty(), "plugin reply differs: {}", join_diffs(&d));

    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    if nri_since(0, 11, 0) && !nri_since(0, 12, 0) {
        // A v0.11 runtime crashes on a sysctl adjustment: emulated as a
        // failed creation naming the plugin. (v0.10 has no sysctl
        // adjustment; v0.12 merges it.)
        return match set.create_container(&pod, &ctr) {
            Err(nri::Error::Handler(m)) if m.contains("\"10-a\" adjusted sysctl") => Ok(()),
            other => Err(format!("sysctl under v0.11: {other:?}")),
        };
    }
    let merged = set
        .create_container(&pod, &ctr)
        .map_err(|e| format!("CreateContainer (set): {e}"))?;
    let d = diff(
        "adjust",
        &v012_adjustment("a", true),
        merged.adjust.get_or_default(),
    );
    ensure!(d.is_empty(), "collected reply differs: {}", join_diffs(&d));

    let (b, _) = ctx.external(&l, &bin_b, "b", "20", "tag=b\n")?;
    set.add(b).map_err(|e| e.to_string())?;
    match set.create_container(&pod, &ctr) {
        Err(nri::Error::Conflict(m))
            if m == "plugins \"20-b\" and \"10-a\" both tried to set Args " => {}
        other => return Err(format!("two v012 adjustments: {other:?}")),
    }
    Ok(())
}

/// Validation: a validator gets the merged result of the creation with the
/// plugins that took part; accept lets it through, a rejection (short,
/// long) fails it with the reason, a failing validator fails it too.
pub(crate) fn sc_validation(ctx: &mut Ctx) -> R {
    ctx.expect_log(&failed_line(
        "30-v",
        "ValidateContainerAdjustment",
        &fail_status("ValidateContainerAdjustment"),
    ));
    let rt = ctx.builder().build();
    let log_v = ctx.path("validator.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (a, _) = ctx.external(&l, &bin_b, "a", "10", "tag=a\nevents=createcontainer\n")?;
    let (v, _) = ctx.external(
        &l,
        &plugin,
        "v",
        "30",
        &format!(
            "log={}\ntag=v\nevents=validatecontaineradjustment\n",
            log_v.display()
        ),
    )?;
    let set = PluginSet::new(&rt);
    set.add(v).map_err(|e| e.to_string())?;
    set.add(a).map_err(|e| e.to_string())?;
    ensure!(
        set.validators() == ["30-v"],
        "validators {:?}",
        set.validators()
    );
    let pod = mk_pod("pod-val", &[]);
    let mk = |id: &str, verdict: &str| {
        mk_ctr(
            id,
            "pod-val",
            &[("interop/adjust", "env"), ("interop/validate", verdict)],
        )
    };
    let accepted = set
        .create_container(&pod, &mk("ctr-accept", "accept"))
        .map_err(|e| format!("accepted creation: {e}"))?;
    ensure!(
        accepted.adjust.env.len() == 1,
        "accepted creation lost the adjustment: {:?}",
        accepted.adjust.env
    );
    let rejection = |id: &str, verdict: &str| match set.create_container(&pod, &mk(id, verdict)) {
        Err(nri::Error::Rejected(m)) => Ok(m),
        other => Err(format!("{verdict}: {other:?}, want a rejection")),
    };
    let m = rejection("ctr-reject", "reject")?;
    ensure!(
        m == "validator \"30-v\" rejected container adjustment, reason: interop: v rejects",
        "rejection {m:?}"
    );
    let m = rejection("ctr-long", "reject-long")?;
    let prefix = "validator \"30-v\" rejected container adjustment, reason: ";
    let reason = m.strip_prefix(prefix).unwrap_or_default();
    ensure!(
        reason.len() == 16384
            && reason.starts_with("interop: v rejects x")
            && reason.ends_with("xxx"),
        "long rejection of {} bytes: {:?}",
        reason.len(),
        trunc(&m, 120)
    );
    ensure!(
        set.len() == 2,
        "a rejection dropped a plugin: {:?}",
        set.names()
    );
    // what the validator saw: the plugins that took part, in order
    let es = read_log(&log_v)?;
    let seen: Vec<String> = filter_event(&es, "ValidateContainerAdjustment")
        .iter()
        .map(|e| format!("{} {}", e.kv("ctr"), e.kv("plugins")))
        .collect();
    ensure!(
        seen == [
            "ctr-accept 10-a,30-v",
            "ctr-reject 10-a,30-v",
            "ctr-long 10-a,30-v"
        ],
        "validator log {seen:?}"
    );
    // a validator failing with an error status fails the creation, alone
    drop(set.remove("10-a"));
    let failing = mk_ctr("ctr-vfail", "pod-val", &[("interop/fail", "yes")]);
    match set.create_container(&pod, &failing) {
        Err(nri::Error::Handler(m))
            if m.starts_with("validator plugin 30-v failed") && m.contains(FAIL_MSG) => {}
        other => return Err(format!("failing validator: {other:?}")),
    }
    ensure!(set.len() == 1, "the failing validator left the set");
    Ok(())
}

/// Failure policies (v0.12.5, the contract's `-failure-policy` flag), each
/// combination with a plugin that does not
/// answer RunPodSandbox in time (frozen with SIGSTOP, request timeout
/// 500 ms) and one that dies while handling it (SIGKILL), and a second
/// plugin after it: whether the request fails, whether the plugin stays,
/// whether the second plugin is called.
pub(crate) fn sc_failure_policy(ctx: &mut Ctx) -> R {
    // 00-x times out (frozen) or dies (killed) in RunPodSandbox under each
    // policy: dropped unless kept, the request going on without it unless
    // it fails
    let cause = format!("(?:{}|{CONNECTION_CLOSED})", no_reply("RunPodSandbox"));
    ctx.expect_log(&dropping_line("00-x", "RunPodSandbox", &cause));
    ctx.expect_log(&proceeding_line("00-x", "RunPodSandbox", &cause));
    ctx.expect_log(&removing_line("00-x"));
    ctx.expect_log(&format!(
        "plugin 00-x did not handle RunPodSandbox in time; its failure policy keeps it connected: {}",
        no_reply("RunPodSandbox")
    ));
    ctx.expect_log(
        "plugin 00-x: keep_connected only covers timeouts, and RunPodSandbox failed otherwise",
    );
    for (policy, fail, keep) in [
        ("none", false, false),
        ("fail-request", true, false),
        ("keep-connected", false, true),
        ("fail-request,keep-connected", true, true),
    ] {
        for kill in [false, true] {
            let what = format!(
                "failure-policy={policy}, {}",
                if kill { "killed" } else { "timeout" }
            );
            policy_case(ctx, policy, fail, keep, kill).map_err(|e| format!("{what}: {e}"))?;
        }
    }
    Ok(())
}

fn policy_case(ctx: &mut Ctx, policy: &str, fail: bool, keep: bool, kill: bool) -> R {
    let rt = ctx
        .builder()
        .request_timeout(Duration::from_millis(500))
        .build();
    let tag = format!("{}-{kill}", policy.replace(',', "+"));
    let shared = ctx.path(&format!("policy-{tag}.log"));
    let l = rt
        .listen(ctx.path(&format!("policy-{tag}.sock")))
        .map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (x, slot) = ctx.external_with(
        &l,
        &plugin,
        "x",
        "00",
        &format!("log={}\nlog-prefix=X\n", shared.display()),
        &["-failure-policy", policy],
    )?;
    let (n, _) = ctx.external(
        &l,
        &plugin,
        "next",
        "10",
        &format!("log={}\nlog-prefix=N\n", shared.display()),
    )?;
    ensure!(
        x.failure_policy().fail_request == fail && x.failure_policy().keep_connected == keep,
        "the runtime applies {:?}",
        x.failure_policy()
    );
    let set = PluginSet::new(&rt);
    set.add(x).map_err(|e| e.to_string())?;
    set.add(n).map_err(|e| e.to_string())?;
    let pid = ctx.procs[slot].child.id();
    sigstop(pid)?;
    let killer = kill.then(|| {
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            sigkill(pid)
        })
    });
    let started = Instant::now();
    let r = set.run_pod_sandbox(&mk_pod("pod-policy", &[]));
    let took = started.elapsed();
    if let Some(k) = killer {
        k.join()
            .map_err(|_| "killer thread panicked".to_string())??;
    } else {
        sigcont(pid)?;
    }
    ensure!(took < Duration::from_secs(2), "the relay took {took:?}");
    match (&r, fail) {
        (Err(nri::Error::Handler(m)), true) => ensure!(
            m.contains("plugin 00-x failed to handle RunPodSandbox request"),
            "error {m:?}"
        ),
        (Ok(()), false) => {}
        _ => return Err(format!("RunPodSandbox: {r:?}, want failure={fail}")),
    }
    let es = read_log(&shared)?;
    let next_called = with_prefix(&es, "N")
        .iter()
        .any(|e| e.event == "RunPodSandbox");
    ensure!(
        next_called != fail,
        "next plugin called: {next_called} (request failed: {fail})"
    );
    let stays = keep && !kill;
    let names = set.names();
    ensure!(
        names.contains(&"00-x".to_string()) == stays,
        "plugins after the failure {names:?}, the failing one should stay: {stays}"
    );
    ensure!(
        names.contains(&"10-next".to_string()),
        "the next plugin left the set: {names:?}"
    );
    if stays {
        set.stop_pod_sandbox(&mk_pod("pod-next", &[]))
            .map_err(|e| format!("next request: {e}"))?;
        let es = read_log(&shared)?;
        ensure!(
            with_prefix(&es, "X")
                .iter()
                .any(|e| e.event == "StopPodSandbox"),
            "the kept plugin did not get the next request"
        );
    } else {
        ensure!(
            ctx.procs[slot].wait_exit(Duration::from_secs(5)),
            "the dropped plugin did not exit"
        );
    }
    Ok(())
}
