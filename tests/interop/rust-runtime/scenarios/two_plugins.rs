//! Several plugins behind one set: order, merging, conflicts, a plugin dying.

use crate::*;

pub(crate) fn sc_two_plugins_ordering(ctx: &mut Ctx) -> R {
    ctx.expect_log(&failed_line(
        "05-c",
        "CreateContainer",
        &fail_status("CreateContainer"),
    ));
    let rt = ctx.builder().build();
    let shared = ctx.path("shared.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    // B (index 20) connects first, then A (10); C (05) is launched last
    let (b, _) = ctx
        .external(&l, &bin_b, "b", "20", &cfg("B"))
        .map_err(|e| format!("plugin B: {e}"))?;
    let (a, _) = ctx
        .external(&l, &plugin, "a", "10", &cfg("A"))
        .map_err(|e| format!("plugin A: {e}"))?;
    let c = rt
        .launch(&plugin, "c", "05", &cfg("C"))
        .map_err(|e| format!("plugin C: {e}"))?;
    let set = PluginSet::new(&rt);
    for h in [b, a, c] {
        set.add(h).map_err(|e| e.to_string())?;
    }
    ensure!(
        set.names() == ["05-c", "10-a", "20-b"],
        "invocation order {:?}, want [05-c 10-a 20-b]",
        set.names()
    );
    let order = ["C", "A", "B"];
    let pod = mk_pod("pod-abc", &[]);
    let (res, want) = lifecycle(&Target::Set(&set), &pod, &|| {
        mk_ctr("ctr-abc", "pod-abc", &[("interop/adjust", "env")])
    })?;
    let mut want_adj = empty_adjustment();
    for p in order {
        want_adj
            .annotations
            .insert(format!("{p}.interop/added"), "yes".into());
        want_adj.env.push(kv(&format!("INTEROP_{p}"), "yes"));
    }
    check_adjust("merged CreateContainer", &want_adj, &res.create)?;

    // conflicting adjustments fail the operation, later plugins not called
    let r = set.create_container(
        &pod,
        &mk_ctr("ctr-full", "pod-abc", &[("interop/adjust", "full")]),
    );
    match r {
        Err(nri::Error::Conflict(m)) if m.contains("05-c") && m.contains("10-a") => {}
        other => {
            return Err(format!(
            "conflicting full adjustments of C and A: {:?}, want a conflict naming 05-c and 10-a",
            other.map(|_| "success")
        ))
        }
    }
    // a failing plugin stops the relay
    expect_status_failure(
        "CreateContainer failing in C",
        set.create_container(
            &pod,
            &mk_ctr("ctr-fail", "pod-abc", &[("interop/fail", "yes")]),
        ),
    )?;
    ensure!(set.len() == 3, "plugins left the set: {:?}", set.names());

    let es = read_log(&shared)?;
    for p in order {
        check_preamble(&with_prefix(&es, p), 0, 0, 0).map_err(|e| format!("plugin {p}: {e}"))?;
    }
    let mut expected: Vec<(&str, Expect)> = Vec::new();
    for w in &want {
        for p in order {
            expected.push((p, w.clone()));
        }
    }
    expected.push(("C", ex("CreateContainer", "pod-abc", "ctr-full")));
    expected.push(("A", ex("CreateContainer", "pod-abc", "ctr-full")));
    expected.push(("C", ex("CreateContainer", "pod-abc", "ctr-fail")));
    let got = event_lines(&es);
    ensure!(
        got.len() == expected.len(),
        "shared log has {} event lines, want {}: {}",
        got.len(),
        expected.len(),
        summarize(&got)
    );
    for (i, (g, (p, w))) in got.iter().zip(&expected).enumerate() {
        ensure!(
            g.prefix == *p && g.event == w.0 && g.kv("pod") == w.1 && g.kv("ctr") == w.2,
            "shared log line {} is {:?}, want \"{p} {} pod={} ctr={}\" (plugins in index order C, A, B; relay stops at a conflict or failure)",
            i + 1,
            g.raw,
            w.0,
            w.1,
            w.2
        );
    }
    Ok(())
}

/// Two plugins updating the same container, collected like the v0.9.0
/// reference: the second one's update of an item the first one set is a
/// conflict that fails the operation, unless the update asks to ignore
/// failures (then it is dropped and ignore_failure stays set only if both
/// asked); a CreateContainer reply updating the container being created
/// fails the creation.
pub(crate) fn sc_two_plugins_updates(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let shared = ctx.path("upd2.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (a, _) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
    let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    set.add(b).map_err(|e| e.to_string())?;
    let running = ContainerState::CONTAINER_RUNNING;
    let conflict = |what: &str, r: nri::Result<Vec<ContainerUpdate>>| match r {
        Err(nri::Error::Conflict(m)) if m.contains("10-a") && m.contains("20-b") => Ok(()),
        other => Err(format!(
            "{what}: {:?}, want a conflict between 10-a and 20-b",
            other.map(|u| update_ids(&u))
        )),
    };

    // StopContainer: both update c2's CPU shares
    let pod_ign = mk_pod(
        "pod-ign",
        &[("interop/update", "c2"), ("interop/ignore-failure", "yes")],
    );
    let r = set
        .stop_container(&pod_ign, &with_state(mk_ctr("s1", "pod-ign", &[]), running))
        .map_err(|e| format!("StopContainer with ignore_failure updates: {e}"))?;
    ensure!(
        r.update.len() == 1,
        "StopContainer(s1): updates {:?}, want [c2]",
        update_ids(&r.update)
    );
    check_shape(
        "StopContainer(s1)",
        &r.update[0],
        &shaped_update("c2", 256, true, false, None),
    )?;
    let pod_upd = mk_pod("pod-upd", &[("interop/update", "c2")]);
    conflict(
        "StopContainer(s2) without ignore_failure",
        set.stop_container(&pod_upd, &with_state(mk_ctr("s2", "pod-upd", &[]), running))
            .map(|r| r.update),
    )?;
    // UpdateContainer of c3 updating c3 itself, from both
    let res = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(1 << 30),
            ..Default::default()
        }),
        ..Default::default()
    };
    conflict(
        "UpdateContainer(c3) updating itself from both plugins",
        set.update_container(
            &pod_upd,
            &with_state(
                mk_ctr("c3", "pod-upd", &[("interop/update", "c3")]),
                running,
            ),
            &res,
        )
        .map(|r| r.update),
    )?;
    let r = set
        .update_container(
            &pod_upd,
            &with_state(
                mk_ctr(
                    "c3i",
                    "pod-upd",
                    &[("interop/update", "c3i"), ("interop/ignore-failure", "yes")],
                ),
                running,
            ),
            &res,
        )
        .map_err(|e| format!("UpdateContainer(c3i) with ignore_failure: {e}"))?;
    ensure!(
        r.update.len() == 1,
        "UpdateContainer(c3i): updates {:?}",
        update_ids(&r.update)
    );
    check_shape(
        "UpdateContainer(c3i)",
        &r.update[0],
        &shaped_update("c3i", 256, true, false, Some(&res)),
    )?;
    // CreateContainer updating another container, from both
    conflict(
        "CreateContainer(k1) updating c7 from both plugins",
        set.create_container(
            &pod_upd,
            &mk_ctr("k1", "pod-upd", &[("interop/update", "c7")]),
        )
        .map(|r| r.update),
    )?;
    let r = set
        .create_container(
            &pod_upd,
            &mk_ctr(
                "k2",
                "pod-upd",
                &[("interop/update", "c7"), ("interop/ignore-failure", "yes")],
            ),
        )
        .map_err(|e| format!("CreateContainer(k2) with ignore_failure updates: {e}"))?;
    ensure!(
        r.update.len() == 1,
        "CreateContainer(k2): updates {:?}",
        update_ids(&r.update)
    );
    check_shape(
        "CreateContainer(k2)",
        &r.update[0],
        &shaped_update("c7", 256, true, false, None),
    )?;
    // CreateContainer updating the container being created
    match set.create_container(&pod_upd, &mk_ctr("k3", "pod-upd", &[("interop/update", "k3")])) {
        Err(nri::Error::Handler(m)) if m.contains("during creation") && m.contains("10-a") => {}
        other => {
            return Err(format!(
                "CreateContainer(k3) updating k3: {:?}, want a failure naming 10-a (update during creation)",
                other.map(|r| update_ids(&r.update))
            ))
        }
    }
    ensure!(set.len() == 2, "plugins left the set: {:?}", set.names());
    // who saw what: a conflict or a failure stops the relay
    let es = read_log(&shared)?;
    let got: Vec<String> = event_lines(&es)
        .iter()
        .map(|e| format!("{} {} {}", e.prefix, e.event, e.kv("ctr")))
        .collect();
    let want = [
        "A StopContainer s1",
        "B StopContainer s1",
        "A StopContainer s2",
        "B StopContainer s2",
        "A UpdateContainer c3",
        "B UpdateContainer c3",
        "A UpdateContainer c3i",
        "B UpdateContainer c3i",
        "A CreateContainer k1",
        "B CreateContainer k1",
        "A CreateContainer k2",
        "B CreateContainer k2",
        "A CreateContainer k3",
    ];
    ensure!(got == want, "shared log {got:?}, want {want:?}");
    Ok(())
}

/// A plugin that dies does not stop the relay: the operation succeeds with
/// the other plugins' replies, as with the reference (v0.10 to v0.12.4:
/// the first creation fails, since the dead plugin is still asked to
/// validate it; the next one succeeds without it).
pub(crate) fn sc_two_plugins_one_dies(ctx: &mut Ctx) -> R {
    // relayed to before or after the runtime noticed the death
    ctx.expect_log(&removing_line("10-a"));
    ctx.allow_log(&dropping_line("10-a", "CreateContainer", CONNECTION_CLOSED));
    ctx.allow_log(&proceeding_line(
        "10-a",
        "CreateContainer",
        CONNECTION_CLOSED,
    ));
    let rt = ctx.builder().build();
    let shared = ctx.path("dies.log");
    let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
    let (a, slot_a) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
    let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    set.add(b).map_err(|e| e.to_string())?;
    // killed, and relayed to at once (whether or not the runtime noticed)
    ctx.procs[slot_a].kill();
    let pod = mk_pod("pod-dies", &[]);
    let mut want_log = vec!["B CreateContainer ctr-dies"];
    if dead_validator_fails() {
        let r = set.create_container(
            &pod,
            &mk_ctr("ctr-first", "pod-dies", &[("interop/adjust", "env")]),
        );
        expect_dead_validator("first CreateContainer with A dead", "10-a", r)?;
        want_log.insert(0, "B CreateContainer ctr-first");
    }
    let resp = set
        .create_container(
            &pod,
            &mk_ctr("ctr-dies", "pod-dies", &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer with A dead: {e}"))?;
    let mut want = empty_adjustment();
    want.annotations
        .insert("B.interop/added".into(), "yes".into());
    want.env.push(kv("INTEROP_B", "yes"));
    check_adjust("CreateContainer with A dead", &want, &resp)?;
    ensure!(
        set.names() == ["20-b"],
        "plugins {:?}, want [20-b]",
        set.names()
    );
    let es = read_log(&shared)?;
    let got: Vec<String> = event_lines(&es)
        .iter()
        .map(|e| format!("{} {} {}", e.prefix, e.event, e.kv("ctr")))
        .collect();
    ensure!(got == want_log, "shared log {got:?}, want {want_log:?}");
    Ok(())
}
