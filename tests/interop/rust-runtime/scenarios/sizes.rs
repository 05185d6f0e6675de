//! Message sizes up to and past the 4 MiB ttrpc limit.

use crate::*;

pub(crate) const MESSAGE_SIZES: &[usize] = &[
    0,
    1,
    4000,
    4096,
    4097,
    65536,
    1 << 20,
    (4 << 20) - (64 << 10),
    (4 << 20) - 4096,
];

pub(crate) fn sc_message_sizes(ctx: &mut Ctx) -> R {
    ctx.expect_log(&failed_line(
        "10-size",
        "CreateContainer",
        r"ttrpc message of [0-9]+ bytes exceeds the 4194304-byte limit",
    ));
    let rt = ctx.builder().build();
    let log_e = ctx.path("size.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "size",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-size", &[]);
    let mut want = Vec::new();
    let blob = |r: &CreateContainerReply| r.adjust.annotations.get("size.interop/blob").cloned();
    // replies
    for &n in MESSAGE_SIZES {
        let id = format!("reply-{n}");
        let resp = h
            .create_container(
                &pod,
                &mk_ctr(&id, &pod.id, &[("interop/reply-bytes", &n.to_string())]),
            )
            .map_err(|e| format!("reply of {n} bytes: CreateContainer: {e}"))?;
        let v = blob(&resp);
        ensure!(
            v.as_ref()
                .is_some_and(|v| v.len() == n && v.bytes().all(|b| b == b'x')),
            "reply of {n} bytes: got annotation present={} with {} bytes",
            v.is_some(),
            v.as_ref().map_or(0, |v| v.len())
        );
        want.push(ex("CreateContainer", &pod.id, &id));
    }
    // requests (CreateContainer and a StateChange event)
    for &n in MESSAGE_SIZES {
        let id = format!("request-{n}");
        let pad = "r".repeat(n);
        let c = mk_ctr(&id, &pod.id, &[("interop/pad", &pad)]);
        let resp = h
            .create_container(&pod, &c)
            .map_err(|e| format!("request of {n} bytes: CreateContainer: {e}"))?;
        check_adjust(
            &format!("request of {n} bytes"),
            &ContainerAdjustment::new(),
            &resp,
        )?;
        h.start_container(&pod, &c)
            .map_err(|e| format!("request of {n} bytes: StartContainer: {e}"))?;
        want.push(ex("CreateContainer", &pod.id, &id));
        want.push(ex("StartContainer", &pod.id, &id));
    }
    // both ways at once
    let pad = "r".repeat(1 << 20);
    let resp = h
        .create_container(
            &pod,
            &mk_ctr(
                "both-1MiB",
                &pod.id,
                &[
                    ("interop/pad", &pad),
                    ("interop/reply-bytes", &(1 << 20).to_string()),
                ],
            ),
        )
        .map_err(|e| format!("1 MiB request + 1 MiB reply: {e}"))?;
    ensure!(
        blob(&resp).map(|v| v.len()) == Some(1 << 20),
        "1 MiB request + 1 MiB reply: reply annotation has the wrong size"
    );
    want.push(ex("CreateContainer", &pod.id, "both-1MiB"));
    // an oversized request is refused before it is sent; the plugin stays
    let pad = "r".repeat(4 << 20);
    match h.create_container(
        &pod,
        &mk_ctr("over-4MiB", &pod.id, &[("interop/pad", &pad)]),
    ) {
        Err(nri::Error::MessageTooLarge { .. }) => {}
        other => {
            return Err(format!(
                "request over 4 MiB: {:?}, want MessageTooLarge",
                other.map(|_| "success")
            ))
        }
    }
    ensure!(h.is_connected(), "plugin dropped: {:?}", h.drop_reason());
    h.create_container(&pod, &mk_ctr("after", &pod.id, &[]))
        .map_err(|e| format!("CreateContainer after all sizes: {e}"))?;
    want.push(ex("CreateContainer", &pod.id, "after"));
    check_event_seq(&read_log(&log_e)?, &want)
}

/// Finds `n` such that `len(n)` (a message length growing by one byte per
/// unit of `n` in this range) is exactly `target`.
pub(crate) fn solve_len(target: usize, len: impl Fn(usize) -> usize) -> R<usize> {
    let mut n = target.saturating_sub(16 << 10);
    for _ in 0..8 {
        let l = len(n);
        if l == target {
            return Ok(n);
        }
        n = (n as i64 + target as i64 - l as i64).max(0) as usize;
    }
    Err(format!(
        "no padding gives a message of exactly {target} bytes"
    ))
}

/// The ttrpc limit exactly: a request whose ttrpc message is 4 MiB to the
/// byte is sent and served, one byte more is refused locally (plugin
/// kept); a reply of exactly 4 MiB (as the Go server frames it: no status
/// for OK, just the payload; or with an empty status, as the Rust stub
/// frames it) is received.
pub(crate) fn sc_message_size_limits(ctx: &mut Ctx) -> R {
    const LIMIT: usize = 4 << 20;
    ctx.expect_log(&failed_line(
        "10-limit",
        "CreateContainer",
        r"ttrpc message of 4194305 bytes exceeds the 4194304-byte limit",
    ));
    // a plugin that answers a reply over the limit with RESOURCE_EXHAUSTED
    ctx.allow_log(&failed_line(
        "10-limit",
        "CreateContainer",
        r"nri\.pkg\.api\.v1alpha1\.Plugin/CreateContainer failed with ResourceExhausted: .*",
    ));
    let rt = ctx.builder().build();
    let log_e = ctx.path("limit.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, _) = ctx.external(
        &l,
        &plugin,
        "limit",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-lim", &[]);
    let timeout_nano = h.request_timeout().as_nanos() as i64;
    let request_ctr = |n: usize| mk_ctr("at-limit", "pod-lim", &[("interop/pad", &"r".repeat(n))]);
    let request_len = |n: usize| {
        let payload = nri::api::CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(request_ctr(n)),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default();
        nri::ttrpc::Request {
            service: nri::api::PLUGIN_SERVICE.into(),
            method: "CreateContainer".into(),
            payload,
            timeout_nano,
            ..Default::default()
        }
        .compute_size() as usize
    };
    let n = solve_len(LIMIT, request_len)?;
    h.create_container(&pod, &request_ctr(n))
        .map_err(|e| format!("request of exactly {LIMIT} bytes: {e}"))?;
    match h.create_container(&pod, &request_ctr(n + 1)) {
        Err(nri::Error::MessageTooLarge { len, .. }) if len == LIMIT as u64 + 1 => {}
        other => {
            return Err(format!(
                "request of {LIMIT} + 1 bytes: {:?}, want MessageTooLarge of {} bytes",
                other.map(|_| "success"),
                LIMIT + 1
            ))
        }
    }
    ensure!(h.is_connected(), "plugin dropped: {:?}", h.drop_reason());

    // The Go ttrpc server sends no status with an OK reply; a server that
    // sends an empty one (the Rust stub) needs two bytes more.
    let reply_len = |n: usize, with_status: bool| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("limit.interop/blob".into(), "x".repeat(n));
        let payload = CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default();
        let mut resp = nri::ttrpc::Response {
            payload,
            ..Default::default()
        };
        if with_status {
            resp.status.mut_or_insert_default();
        }
        resp.compute_size() as usize
    };
    let mut want = vec![ex("CreateContainer", "pod-lim", "at-limit")];
    let mut outcome = Err(String::new());
    for with_status in [false, true] {
        let m = solve_len(LIMIT, |n| reply_len(n, with_status))?;
        let id = format!(
            "reply-at-limit-{}",
            if with_status { "status" } else { "plain" }
        );
        want.push(ex("CreateContainer", "pod-lim", &id));
        let r = h.create_container(
            &pod,
            &mk_ctr(&id, "pod-lim", &[("interop/reply-bytes", &m.to_string())]),
        );
        outcome = match r {
            Ok(resp) => {
                let got = resp
                    .adjust
                    .annotations
                    .get("limit.interop/blob")
                    .map_or(0, |v| v.len());
                ensure!(
                    got == m,
                    "reply of exactly {LIMIT} bytes: annotation of {got} bytes, want {m}"
                );
                Ok(())
            }
            // the server could not send it: try the other framing
            Err(nri::Error::Status {
                code: Code::ResourceExhausted,
                message,
                ..
            }) if !with_status => Err(message),
            Err(e) => Err(format!(
                "reply of exactly {LIMIT} bytes ({m}-byte annotation): {e}"
            )),
        };
        if outcome.is_ok() {
            break;
        }
    }
    outcome?;
    ensure!(h.is_connected(), "plugin dropped: {:?}", h.drop_reason());
    check_event_seq(&read_log(&log_e)?, &want)
}

/// A reply over 4 MiB cannot be sent by the plugin's ttrpc server: the Go
/// one gives up on the connection, so the call fails fatally and the
/// plugin is dropped, as with the reference (closed or timed out).
pub(crate) fn sc_oversized_reply_dropped(ctx: &mut Ctx) -> R {
    // a plugin that cannot send its reply either leaves the request
    // unanswered or closes the connection (one answering RESOURCE_EXHAUSTED
    // instead is kept and logs its failure)
    let cause = format!("(?:{}|{CONNECTION_CLOSED})", no_reply("CreateContainer"));
    ctx.allow_log(&dropping_line("10-big", "CreateContainer", &cause));
    ctx.allow_log(&failed_line("10-big", "CreateContainer", ".*"));
    let rt = ctx
        .builder()
        .request_timeout(Duration::from_secs(1))
        .build();
    let log_e = ctx.path("big.log");
    let l = rt.listen(ctx.path("nri.sock")).map_err(|e| e.to_string())?;
    let plugin = ctx.plugin.clone();
    let (h, slot) = ctx.external(
        &l,
        &plugin,
        "big",
        "10",
        &format!("log={}\n", log_e.display()),
    )?;
    let pod = mk_pod("pod-big", &[]);
    let n = (4 << 20).to_string();
    let r = h.create_container(
        &pod,
        &mk_ctr("ctr-big", &pod.id, &[("interop/reply-bytes", &n)]),
    );
    match r {
        // the Go ttrpc server gives up on the connection (or never answers)
        Err(nri::Error::DeadlineExceeded { .. }) | Err(nri::Error::ConnectionClosed(_)) => {
            ensure!(
                !h.is_connected(),
                "plugin still connected after a fatal error"
            );
            ensure!(
                ctx.procs[slot].wait_exit(Duration::from_secs(3)),
                "plugin process did not exit after the runtime dropped it"
            );
        }
        // a server that reports the oversized reply as a status: not fatal
        Err(nri::Error::Status {
            code: Code::ResourceExhausted,
            ..
        }) => {
            ensure!(
                h.is_connected(),
                "plugin dropped for a status: {:?}",
                h.drop_reason()
            );
            h.create_container(&pod, &mk_ctr("ctr-next", &pod.id, &[]))
                .map_err(|e| format!("CreateContainer after the oversized reply: {e}"))?;
            return check_event_seq(
                &read_log(&log_e)?,
                &[
                    ex("CreateContainer", "pod-big", "ctr-big"),
                    ex("CreateContainer", "pod-big", "ctr-next"),
                ],
            );
        }
        other => {
            return Err(format!(
            "CreateContainer with a 4 MiB reply: {:?}, want a fatal error (or RESOURCE_EXHAUSTED)",
            other.map(|_| "success")
        ))
        }
    }
    check_event_seq(
        &read_log(&log_e)?,
        &[ex("CreateContainer", "pod-big", "ctr-big")],
    )
}
