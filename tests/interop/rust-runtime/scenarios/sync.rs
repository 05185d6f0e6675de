//! Synchronize, in one message and in chunks.

use crate::*;

pub(crate) fn sc_synchronize_small(ctx: &mut Ctx) -> R {
    let rt = ctx.builder().build();
    let pods: Vec<PodSandbox> = (0..3).map(|i| mk_pod(&format!("pod-{i}"), &[])).collect();
    let ctrs: Vec<Container> = (0..5)
        .map(|i| {
            let ann: &[(&str, &str)] = if i == 1 || i == 4 {
                &[("interop/sync-update", "yes")]
            } else {
                &[]
            };
            with_state(
                mk_ctr(&format!("ctr-{i}"), &pods[i % 3].id, ann),
                ContainerState::CONTAINER_RUNNING,
            )
        })
        .collect();
    rt.set_state(pods, ctrs);
    let (log_l, log_e) = (ctx.path("sync-launched.log"), ctx.path("sync-external.log"));
    let launched = rt
        .launch(
            &ctx.plugin,
            "synclaunched",
            "30",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (external, _) = ctx.external(
        &l,
        &plugin,
        "syncext",
        "40",
        &format!("log={}\n", log_e.display()),
    )?;
    for (h, log) in [(&launched, &log_l), (&external, &log_e)] {
        let es = read_log(log)?;
        check_preamble(&es, 0, 3, 5).map_err(|e| format!("{}: {e}", h.name()))?;
        ensure!(
            filter_event(&es, "Synchronize").len() == 1,
            "{}: more than one Synchronize: {}",
            h.name(),
            summarize(&es)
        );
        check_sync_updates(
            &format!("{} sync", h.name()),
            h.sync_updates(),
            &["ctr-1", "ctr-4"],
        )?;
    }
    Ok(())
}

pub(crate) fn sc_synchronize_chunked(ctx: &mut Ctx) -> R {
    const N_PODS: usize = 24;
    const N_CTRS: usize = 96;
    let rt = ctx.builder().build();
    let pod_pad = "p".repeat(16 << 10);
    let ctr_pad = "c".repeat(48 << 10);
    let pods: Vec<PodSandbox> = (0..N_PODS)
        .map(|i| mk_pod(&format!("pod-{i:02}"), &[("interop/pad", &pod_pad)]))
        .collect();
    let ctrs: Vec<Container> = (0..N_CTRS)
        .map(|i| {
            let mut ann = vec![("interop/pad", ctr_pad.as_str())];
            if i == 1 || i == N_CTRS - 2 {
                ann.push(("interop/sync-update", "yes"));
            }
            with_state(
                mk_ctr(&format!("ctr-{i:02}"), &pods[i % N_PODS].id, &ann),
                ContainerState::CONTAINER_RUNNING,
            )
        })
        .collect();
    rt.set_state(pods, ctrs);
    let last = format!("ctr-{:02}", N_CTRS - 2);
    let (log_e, log_l) = (ctx.path("chunked.log"), ctx.path("chunked-launched.log"));
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let mark = log_mark();
    let (external, _) = ctx.external(
        &l,
        &plugin,
        "chunked",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let runtime_log = log_since(mark);
    let launched = rt
        .launch(
            &ctx.plugin,
            "chunklaunched",
            "20",
            &format!("log={}\n", log_l.display()),
        )
        .map_err(|e| format!("launch: {e}"))?;
    for (h, log) in [(&external, &log_e), (&launched, &log_l)] {
        let es = read_log(log)?;
        check_preamble(&es, 0, N_PODS, N_CTRS).map_err(|e| format!("{}: {e}", h.name()))?;
        let n = filter_event(&es, "Synchronize").len();
        ensure!(
            n == 1,
            "{}: {n} Synchronize lines, want 1: {}",
            h.name(),
            summarize(&es)
        );
        check_sync_updates(
            &format!("{} chunked sync", h.name()),
            h.sync_updates(),
            &["ctr-01", &last],
        )?;
        ensure!(
            h.is_connected(),
            "{} dropped after the chunked sync",
            h.name()
        );
    }
    // prove the runtime really split the state
    let said = |s: &str| runtime_log.iter().filter(|(_, m)| m.contains(s)).count();
    ensure!(
        said("is oversized; retrying with chunks") > 0,
        "the runtime did not split the Synchronize request (state not over 4 MiB?)"
    );
    let chunks = said("sending Synchronize chunk to plugin 10-chunked");
    ensure!(
        chunks >= 2,
        "the runtime sent {chunks} Synchronize chunks, want >= 2"
    );
    ensure!(
        runtime_log
            .iter()
            .any(|(_, m)| m == &format!("plugin 10-chunked synchronized in {chunks} chunks")),
        "no \"synchronized in {chunks} chunks\" line in the runtime's log"
    );
    Ok(())
}
