//! CreateContainer adjustments and UpdateContainer/StopContainer updates, alone and collected.

use crate::*;

pub(crate) fn sc_create_full_adjustment(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("adj.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    // no tag in the config: the tag defaults to the plugin name
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "adj",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let t = "adj";
    let pod = mk_pod("pod-adj", &[]);
    let mut ctr = mk_ctr(
        "ctr-adj",
        &pod.id,
        &[("interop/adjust", "full"), ("interop/remove-me", "please")],
    );
    ctr.mounts.push(mount(
        "/mnt/remove-me",
        "bind",
        "/tmp/remove-me",
        &["rbind"],
    ));
    ctr.env.push("REMOVE_ME=1".into());
    ctr.linux
        .mut_or_insert_default()
        .devices
        .push(device("/dev/remove-me", 1, 5, false));

    // the plugin's own reply
    let raw = h
        .create_container(&pod, &ctr)
        .map_err(|e| format!("CreateContainer: {e}"))?;
    check_adjust("plugin reply", &full_adjustment(t, true), &raw)?;
    // collected by a set, as the reference collects it
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    let merged = set
        .create_container(&pod, &ctr)
        .map_err(|e| format!("CreateContainer (set): {e}"))?;
    check_adjust("collected reply", &full_adjustment(t, false), &merged)?;
    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("CreateContainer", "pod-adj", "ctr-adj"),
            ex("CreateContainer", "pod-adj", "ctr-adj"),
        ],
    )
}

pub(crate) fn sc_update_and_stop_replies(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let log_e = ctx.path("upd.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "upd",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let set = PluginSet::new(&rt);
    set.add(h).map_err(|e| e.to_string())?;
    let h = set.get("10-upd").ok_or("10-upd not in the set")?;
    let running = ContainerState::CONTAINER_RUNNING;
    let pod = mk_pod("pod-u", &[]);
    let res = LinuxResources {
        memory: MessageField::some(LinuxMemory {
            limit: optional(1 << 30),
            ..Default::default()
        }),
        cpu: MessageField::some(LinuxCPU {
            shares: optional(1024),
            cpus: "2-3".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ctr = |id: &str, ann: &[(&str, &str)]| with_state(mk_ctr(id, "pod-u", ann), running);

    // (a) UpdateContainer(c1) asks to update another container c2
    let r1 = set
        .update_container(&pod, &ctr("c1", &[("interop/update", "c2")]), &res)
        .map_err(|e| format!("UpdateContainer(c1): {e}"))?;
    ensure!(
        r1.update.len() == 1,
        "UpdateContainer(c1): updates {:?}, want [c2]",
        update_ids(&r1.update)
    );
    check_update("UpdateContainer(c1)", r1.update.first(), "c2", 256, false)?;
    check_shape(
        "UpdateContainer(c1)",
        &r1.update[0],
        &shaped_update("c2", 256, false, false, None),
    )?;

    // (b) UpdateContainer(c3) updates c3 itself: the plugin's reply alone,
    // then collected (merged over the requested resources)
    let c3 = ctr("c3", &[("interop/update", "c3")]);
    let raw = h
        .update_container(&pod, &c3, &res)
        .map_err(|e| format!("UpdateContainer(c3), plugin alone: {e}"))?;
    ensure!(
        raw.update.len() == 1,
        "UpdateContainer(c3) plugin reply: updates {:?}",
        update_ids(&raw.update)
    );
    check_update(
        "UpdateContainer(c3) plugin reply",
        raw.update.first(),
        "c3",
        256,
        false,
    )?;
    let r3 = set
        .update_container(&pod, &c3, &res)
        .map_err(|e| format!("UpdateContainer(c3): {e}"))?;
    ensure!(
        r3.update.len() == 1,
        "UpdateContainer(c3): updates {:?}, want [c3]",
        update_ids(&r3.update)
    );
    check_update("UpdateContainer(c3)", r3.update.first(), "c3", 256, false)?;
    check_shape(
        "UpdateContainer(c3) plugin reply",
        &raw.update[0],
        &shaped_update("c3", 256, false, true, None),
    )?;
    check_shape(
        "UpdateContainer(c3)",
        &r3.update[0],
        &shaped_update("c3", 256, false, false, Some(&res)),
    )?;
    let merged = r3.update[0]
        .linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .cloned()
        .unwrap_or_default();
    let limit = merged
        .memory
        .as_ref()
        .and_then(|m| m.limit.as_ref())
        .map(|v| v.value);
    let cpus = merged
        .cpu
        .as_ref()
        .map(|c| c.cpus.clone())
        .unwrap_or_default();
    ensure!(
        limit == Some(1 << 30) && cpus == "2-3",
        "UpdateContainer(c3): merged resources lost the requested values: memory limit {limit:?} cpus {cpus:?}"
    );

    // (c) StopContainer(c4) in a pod whose annotations ask to update c2,
    // ignoring failures
    let pod2 = mk_pod(
        "pod-s",
        &[("interop/update", "c2"), ("interop/ignore-failure", "yes")],
    );
    let r4 = set
        .stop_container(&pod2, &with_state(mk_ctr("c4", "pod-s", &[]), running))
        .map_err(|e| format!("StopContainer(c4): {e}"))?;
    ensure!(
        r4.update.len() == 1,
        "StopContainer(c4): updates {:?}, want [c2]",
        update_ids(&r4.update)
    );
    check_update("StopContainer(c4)", r4.update.first(), "c2", 256, true)?;
    check_shape(
        "StopContainer(c4)",
        &r4.update[0],
        &shaped_update("c2", 256, true, false, None),
    )?;

    // (d) StopContainer(c5) with nothing asked: no updates
    let r5 = set
        .stop_container(&pod, &ctr("c5", &[]))
        .map_err(|e| format!("StopContainer(c5): {e}"))?;
    ensure!(
        r5.update.is_empty(),
        "StopContainer(c5): unexpected updates {:?}",
        update_ids(&r5.update)
    );

    check_event_seq(
        &read_log(&log_e)?,
        &[
            ex("UpdateContainer", "pod-u", "c1"),
            ex("UpdateContainer", "pod-u", "c3"),
            ex("UpdateContainer", "pod-u", "c3"),
            ex("StopContainer", "pod-s", "c4"),
            ex("StopContainer", "pod-u", "c5"),
        ],
    )
}
