//! Events in lifecycle order, subscriptions, handler failures and request serialization.

use crate::*;

pub(crate) fn sc_lifecycle_events(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("life.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "life",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;

    // one plugin: its own replies, unmerged
    let pod = mk_pod("pod-life", &[]);
    let (res, mut want) = lifecycle(&Target::One(&h), &pod, &|| {
        mk_ctr("ctr-life", "pod-life", &[])
    })?;
    check_adjust("CreateContainer", &ContainerAdjustment::new(), &res.create)?;
    ensure!(
        res.update.update.is_empty(),
        "UpdateContainer: unexpected updates {:?}",
        update_ids(&res.update.update)
    );
    ensure!(
        res.stop.update.is_empty(),
        "StopContainer: unexpected updates {:?}",
        update_ids(&res.stop.update)
    );

    // the same through a set: replies collected like the reference's
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    let pod2 = mk_pod("pod-life2", &[]);
    let (res, want2) = lifecycle(&Target::Set(&set), &pod2, &|| {
        mk_ctr("ctr-life2", "pod-life2", &[])
    })?;
    check_adjust("CreateContainer (set)", &empty_adjustment(), &res.create)?;
    ensure!(
        res.update.update.is_empty() && res.stop.update.is_empty(),
        "set: unexpected updates {:?} / {:?}",
        update_ids(&res.update.update),
        update_ids(&res.stop.update)
    );
    want.extend(want2);
    let es = read_log(&log_e)?;
    check_preamble(&es, 0, 0, 0)?;
    check_event_seq(&es, &want)?;
    ensure!(set.len() == 1, "plugin left the set: {:?}", set.names());
    Ok(())
}

pub(crate) fn sc_event_subscription(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let (log_a, log_b) = (ctx.path("sub.log"), ctx.path("podsub.log"));
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (a, _) = ctx.external(
        &l,
        &plugin,
        "sub",
        "10",
        &format!(
            "log={}\nevents=createcontainer,stopcontainer\n",
            log_a.display()
        ),
    )?;
    let (b, _) = ctx.external(
        &l,
        &plugin,
        "podsub",
        "11",
        &format!("log={}\nevents=pod,RemoveContainer\n", log_b.display()),
    )?;
    let mask = |s: &str| s.parse::<EventMask>().map_err(|e| e.to_string());
    let want_a = mask("createcontainer,stopcontainer")?;
    // `pod` holds the pod update events too where the version has them.
    let want_b = mask("pod,removecontainer")? & nri().valid_events();
    ensure!(
        a.events() == want_a,
        "10-sub subscribed to {}, want {want_a}",
        a.events()
    );
    ensure!(
        b.events() == want_b,
        "11-podsub subscribed to {}, want {want_b}",
        b.events()
    );
    ensure!(
        !a.is_subscribed(Event::RUN_POD_SANDBOX) && a.is_subscribed(Event::STOP_CONTAINER),
        "10-sub: is_subscribed disagrees with its mask"
    );
    // an unsubscribed event is not sent, even to the plugin alone: the
    // handle says so
    let pod = mk_pod("pod-sub", &[]);
    match a.run_pod_sandbox(&pod) {
        Err(nri::Error::State(m)) if m.contains("not subscribed to RunPodSandbox") => {}
        other => return Err(format!("unsubscribed RunPodSandbox: {other:?}")),
    }
    let set = PluginSet::new(&rt);
    set.add(a).map_err(|e| e.to_string())?;
    set.add(b).map_err(|e| e.to_string())?;
    lifecycle(&Target::Set(&set), &pod, &|| {
        mk_ctr("ctr-sub", "pod-sub", &[])
    })?;
    let mut podsub_want = vec![ex("RunPodSandbox", "pod-sub", "-")];
    if pod_updates() {
        podsub_want.push(ex("UpdatePodSandbox", "pod-sub", "-"));
        podsub_want.push(ex("PostUpdatePodSandbox", "pod-sub", "-"));
    }
    podsub_want.extend([
        ex("RemoveContainer", "pod-sub", "ctr-sub"),
        ex("StopPodSandbox", "pod-sub", "-"),
        ex("RemovePodSandbox", "pod-sub", "-"),
    ]);
    check_event_seq(
        &read_log(&log_a)?,
        &[
            ex("CreateContainer", "pod-sub", "ctr-sub"),
            ex("StopContainer", "pod-sub", "ctr-sub"),
        ],
    )
    .map_err(|e| format!("10-sub: {e}"))?;
    check_event_seq(&read_log(&log_b)?, &podsub_want).map_err(|e| format!("11-podsub: {e}"))
}

pub(crate) fn sc_handler_failure(ctx: &mut Ctx) -> R {
    ctx.expect_log(&failed_line("10-fail", r"\w+", &fail_status(r"\w+")));
    let rt = ctx.builder().build();
    let log_e = ctx.path("fail.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "fail",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let ok_pod = mk_pod("pod-ok", &[]);
    let fail_pod = mk_pod("pod-fail", &[("interop/fail", "yes")]);
    let fail_ctr = with_state(
        mk_ctr("ctr-fail", "pod-ok", &[("interop/fail", "yes")]),
        ContainerState::CONTAINER_RUNNING,
    );
    let mut want = Vec::new();
    expect_status_failure("CreateContainer", h.create_container(&ok_pod, &fail_ctr))?;
    want.push(ex("CreateContainer", "pod-ok", "ctr-fail"));
    for (ev, name) in [
        (Event::RUN_POD_SANDBOX, "RunPodSandbox"),
        (Event::STOP_POD_SANDBOX, "StopPodSandbox"),
        (Event::REMOVE_POD_SANDBOX, "RemovePodSandbox"),
    ] {
        expect_status_failure(name, h.state_change(ev, &fail_pod, None))?;
        want.push(ex(name, "pod-fail", "-"));
    }
    for (ev, name) in [
        (Event::POST_CREATE_CONTAINER, "PostCreateContainer"),
        (Event::START_CONTAINER, "StartContainer"),
        (Event::POST_START_CONTAINER, "PostStartContainer"),
        (Event::POST_UPDATE_CONTAINER, "PostUpdateContainer"),
        (Event::REMOVE_CONTAINER, "RemoveContainer"),
    ] {
        expect_status_failure(name, h.state_change(ev, &ok_pod, Some(&fail_ctr)))?;
        want.push(ex(name, "pod-ok", "ctr-fail"));
    }
    expect_status_failure(
        "UpdateContainer",
        h.update_container(&ok_pod, &fail_ctr, &LinuxResources::new()),
    )?;
    want.push(ex("UpdateContainer", "pod-ok", "ctr-fail"));
    expect_status_failure("StopContainer", h.stop_container(&ok_pod, &fail_ctr))?;
    want.push(ex("StopContainer", "pod-ok", "ctr-fail"));
    ensure!(
        h.is_connected(),
        "plugin dropped after handler errors: {:?}",
        h.drop_reason()
    );

    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    expect_status_failure(
        "CreateContainer (set)",
        set.create_container(&ok_pod, &fail_ctr),
    )?;
    want.push(ex("CreateContainer", "pod-ok", "ctr-fail"));
    ensure!(set.len() == 1, "the failing plugin left the set");
    let resp = set
        .create_container(
            &ok_pod,
            &mk_ctr("ctr-ok", "pod-ok", &[("interop/adjust", "env")]),
        )
        .map_err(|e| format!("CreateContainer after failures: {e}"))?;
    want.push(ex("CreateContainer", "pod-ok", "ctr-ok"));
    let added = resp
        .adjust
        .as_ref()
        .and_then(|a| a.annotations.get("fail.interop/added"));
    ensure!(
        added.map(String::as_str) == Some("yes"),
        "CreateContainer after failures: annotations {:?}",
        resp.adjust.as_ref().map(|a| &a.annotations)
    );
    check_event_seq(&read_log(&log_e)?, &want)
}

/// Requests from several threads to one plugin are sent one at a time.
pub(crate) fn sc_serialized_requests(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("serial.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "serial",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-ser", &[]);
    let start = Instant::now();
    let results: Vec<R> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (h, pod) = (&h, &pod);
                s.spawn(move || {
                    let c = mk_ctr(&format!("ctr-{i}"), &pod.id, &[("interop/sleep-ms", "150")]);
                    h.create_container(pod, &c)
                        .map(|_| ())
                        .map_err(|e| format!("ctr-{i}: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|j| j.join().unwrap_or_else(|_| Err("panic".into())))
            .collect()
    });
    let elapsed = start.elapsed();
    for r in results {
        r?;
    }
    ensure!(
        elapsed >= Duration::from_millis(4 * 150 - 20),
        "4 requests of 150 ms each took {elapsed:?}: they overlapped"
    );
    let es = read_log(&log_e)?;
    ensure!(
        filter_event(&es, "CreateContainer").len() == 4,
        "plugin log: {}",
        summarize(&es)
    );
    Ok(())
}
