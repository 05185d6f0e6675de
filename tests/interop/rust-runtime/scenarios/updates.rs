//! Unsolicited UpdateContainers calls.

use crate::*;

pub(crate) fn sc_unsolicited_update(ctx: &mut Ctx) -> R {
    let received: Arc<Mutex<Vec<Vec<ContainerUpdate>>>> = Arc::default();
    let fail_them = Arc::new(AtomicBool::new(true));
    let (rec, fail) = (received.clone(), fail_them.clone());
    let rt = ctx
        .builder()
        .on_update_containers(move |updates| {
            lock(&rec).push(updates.to_vec());
            if fail.load(Ordering::SeqCst) {
                updates.to_vec()
            } else {
                Vec::new()
            }
        })
        .build();
    let log_e = ctx.path("unsol.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "unsol",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-un", &[]);
    let resp = h
        .create_container(
            &pod,
            &mk_ctr("ctr-un", &pod.id, &[("interop/unsolicited", "ctr-other")]),
        )
        .map_err(|e| format!("CreateContainer: {e}"))?;
    ensure!(
        h.is_connected(),
        "plugin dropped during CreateContainer: {:?}",
        h.drop_reason()
    );
    check_adjust("CreateContainer", &ContainerAdjustment::new(), &resp)?;
    let got = h.wait_unsolicited_updates(1, Duration::from_secs(3));
    ensure!(
        got.len() == 1,
        "plugin handle recorded {} unsolicited updates {:?}, want 1",
        got.len(),
        update_ids(&got)
    );
    check_update("unsolicited update", got.first(), "ctr-other", 128, false)?;
    {
        let calls = lock(&received);
        ensure!(
            calls.len() == 1 && calls[0].len() == 1,
            "on_update_containers calls: {:?}",
            calls.iter().map(|c| update_ids(c)).collect::<Vec<_>>()
        );
        check_update(
            "on_update_containers",
            calls[0].first(),
            "ctr-other",
            128,
            false,
        )?;
    }
    let es = wait_entries(&log_e, Duration::from_secs(3), "Unsolicited line", |es| {
        !filter_event(es, "Unsolicited").is_empty()
    })?;
    let u = &filter_event(&es, "Unsolicited")[0];
    ensure!(
        u.kv("ctr") == "ctr-other" && u.kv("failed") == "1" && u.kv("err") == "-",
        "plugin log {:?}, want \"Unsolicited ctr=ctr-other failed=1 err=-\"",
        u.raw
    );
    // now the callback accepts them
    fail_them.store(false, Ordering::SeqCst);
    h.create_container(
        &pod,
        &mk_ctr("ctr-un2", &pod.id, &[("interop/unsolicited", "ctr-other2")]),
    )
    .map_err(|e| format!("second CreateContainer: {e}"))?;
    let es = wait_entries(
        &log_e,
        Duration::from_secs(3),
        "second Unsolicited line",
        |es| filter_event(es, "Unsolicited").len() >= 2,
    )?;
    let u = &filter_event(&es, "Unsolicited")[1];
    ensure!(
        u.kv("ctr") == "ctr-other2" && u.kv("failed") == "0" && u.kv("err") == "-",
        "plugin log {:?}, want \"Unsolicited ctr=ctr-other2 failed=0 err=-\"",
        u.raw
    );
    let all = h.unsolicited_updates();
    ensure!(
        update_ids(&all) == ["ctr-other", "ctr-other2"],
        "unsolicited_updates() {:?}",
        update_ids(&all)
    );
    // still registered: a following CreateContainer reaches it
    h.create_container(&pod, &mk_ctr("ctr-after", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after the unsolicited updates: {e}"))?;
    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("CreateContainer", "pod-un", "ctr-un"),
            ex("CreateContainer", "pod-un", "ctr-un2"),
            ex("CreateContainer", "pod-un", "ctr-after"),
        ],
    )?;
    // a launched plugin's call arrives the same way (failed again)
    fail_them.store(true, Ordering::SeqCst);
    let log_l = ctx.path("unsol-launched.log");
    let hl = rt
        .launch(
            &ctx.plugin,
            "unsoll",
            "20",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    hl.create_container(
        &pod,
        &mk_ctr("ctr-unl", &pod.id, &[("interop/unsolicited", "ctr-l")]),
    )
    .map_err(|e| format!("CreateContainer (launched): {e}"))?;
    let got = hl.wait_unsolicited_updates(1, Duration::from_secs(3));
    ensure!(
        update_ids(&got) == ["ctr-l"],
        "launched plugin's unsolicited updates {:?}, want [ctr-l]",
        update_ids(&got)
    );
    check_update(
        "launched unsolicited update",
        got.first(),
        "ctr-l",
        128,
        false,
    )?;
    ensure!(
        h.unsolicited_updates().len() == 2,
        "the external plugin's handle recorded the launched plugin's update"
    );
    let es = wait_entries(&log_l, Duration::from_secs(3), "Unsolicited line", |es| {
        !filter_event(es, "Unsolicited").is_empty()
    })?;
    let u = &filter_event(&es, "Unsolicited")[0];
    ensure!(
        u.kv("ctr") == "ctr-l" && u.kv("failed") == "1" && u.kv("err") == "-",
        "launched plugin log {:?}, want \"Unsolicited ctr=ctr-l failed=1 err=-\"",
        u.raw
    );
    Ok(())
}

/// A plugin's UpdateContainers sent right after its reply waits while the
/// runtime still relays the event to later plugins (the v0.9.0 global
/// lock), then goes through; with `block_updates_during_events(false)` it
/// does not wait.
pub(crate) fn sc_unsolicited_during_relay(ctx: &mut Ctx) -> R {
    for block in [true, false] {
        let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let t2 = times.clone();
        let rt = ctx
            .builder()
            .block_updates_during_events(block)
            .on_update_containers(move |_| {
                lock(&t2).push(Instant::now());
                Vec::new()
            })
            .build();
        let shared = ctx.path(&format!("relay-{block}.log"));
        let cfg = |p: &str| format!("log={}\nlog-prefix={p}\ntag={p}\n", shared.display());
        let l = rt
            .listen(ctx.path(&format!("nri-{block}.sock")))
            .map_err(|e| e.to_string())?;
        let plugin = ctx.plugin.clone();
        let bin_b = ctx.plugin2.clone().unwrap_or_else(|| plugin.clone());
        let (a, _) = ctx.external(&l, &plugin, "a", "10", &cfg("A"))?;
        let (b, _) = ctx.external(&l, &bin_b, "b", "20", &cfg("B"))?;
        let set = PluginSet::new(&rt);
        set.add(a).map_err(|e| e.to_string())?;
        set.add(b).map_err(|e| e.to_string())?;
        let pod = mk_pod("pod-rel", &[]);
        let c = mk_ctr(
            "ctr-rel",
            &pod.id,
            &[
                ("interop/unsolicited", "ctr-x"),
                ("interop/sleep-ms", "300"),
            ],
        );
        let start = Instant::now();
        set.create_container(&pod, &c)
            .map_err(|e| format!("CreateContainer (block={block}): {e}"))?;
        let es = wait_entries(
            &shared,
            Duration::from_secs(3),
            "two Unsolicited lines",
            |es| filter_event(es, "Unsolicited").len() >= 2,
        )?;
        for u in filter_event(&es, "Unsolicited") {
            ensure!(
                u.kv("ctr") == "ctr-x" && u.kv("failed") == "0" && u.kv("err") == "-",
                "block={block}: plugin log {:?}, want \"Unsolicited ctr=ctr-x failed=0 err=-\"",
                u.raw
            );
        }
        let times = lock(&times).clone();
        ensure!(
            times.len() == 2,
            "block={block}: {} callback calls, want 2",
            times.len()
        );
        let first = times
            .iter()
            .map(|t| t.duration_since(start))
            .min()
            .unwrap_or_default();
        if block {
            ensure!(
                first >= Duration::from_millis(550),
                "an update was served {first:?} after the relay started, while B (300 ms) was still handling the event"
            );
        } else {
            ensure!(
                first < Duration::from_millis(550),
                "with block_updates_during_events(false) A's update waited {first:?}"
            );
        }
        ensure!(
            set.len() == 2,
            "block={block}: plugins left the set: {:?}",
            set.names()
        );
    }
    Ok(())
}
