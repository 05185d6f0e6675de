//! Field-by-field comparison of protobuf messages through reflection, and
//! the checks built on it (adjustments, updates, statuses).

use crate::*;

// ---------------------------------------------------------------------------
// Field-by-field comparison of protobuf messages, through reflection.
// Presence matters for message fields (Optional* wrappers: "unset" differs
// from "set to 0").

pub(crate) fn diff(path: &str, want: &dyn MessageDyn, got: &dyn MessageDyn) -> Vec<String> {
    let mut out = Vec::new();
    diff_msg(path, want, got, &mut out);
    out
}

pub(crate) fn render_msg(m: &dyn MessageDyn) -> String {
    let text = protobuf::text_format::print_to_string(m);
    if text.is_empty() {
        return "{} (set, every field zero)".to_string();
    }
    format!("{{{}}}", trunc(&text, 200))
}

pub(crate) fn render_value(v: &ReflectValueRef<'_>) -> String {
    match v {
        ReflectValueRef::String(s) => format!("{:?}", trunc(s, 100)),
        ReflectValueRef::Bytes(b) => format!("{} bytes", b.len()),
        ReflectValueRef::Message(m) => render_msg(&**m),
        ReflectValueRef::U32(x) => x.to_string(),
        ReflectValueRef::U64(x) => x.to_string(),
        ReflectValueRef::I32(x) => x.to_string(),
        ReflectValueRef::I64(x) => x.to_string(),
        ReflectValueRef::Bool(x) => x.to_string(),
        other => format!("{other:?}"),
    }
}

pub(crate) fn render_list(l: &protobuf::reflect::ReflectRepeatedRef<'_>) -> String {
    let parts: Vec<String> = (0..l.len()).map(|i| render_value(&l.get(i))).collect();
    trunc(&format!("[{}]", parts.join(", ")), 400)
}

pub(crate) fn diff_value(
    path: &str,
    w: &ReflectValueRef<'_>,
    g: &ReflectValueRef<'_>,
    out: &mut Vec<String>,
) {
    match (w, g) {
        (ReflectValueRef::Message(wm), ReflectValueRef::Message(gm)) => {
            diff_msg(path, &**wm, &**gm, out)
        }
        _ if w != g => out.push(format!(
            "{path}: want {}, got {}",
            render_value(w),
            render_value(g)
        )),
        _ => {}
    }
}

pub(crate) fn diff_msg(
    path: &str,
    want: &dyn MessageDyn,
    got: &dyn MessageDyn,
    out: &mut Vec<String>,
) {
    for f in want.descriptor_dyn().fields() {
        let p = format!("{path}.{}", f.name());
        match (f.get_reflect(want), f.get_reflect(got)) {
            (ReflectFieldRef::Repeated(w), ReflectFieldRef::Repeated(g)) => {
                if w.len() != g.len() {
                    out.push(format!(
                        "{p}: want {} items {}, got {} items {}",
                        w.len(),
                        render_list(&w),
                        g.len(),
                        render_list(&g)
                    ));
                    continue;
                }
                for i in 0..w.len() {
                    diff_value(&format!("{p}[{i}]"), &w.get(i), &g.get(i), out);
                }
            }
            (ReflectFieldRef::Map(w), ReflectFieldRef::Map(g)) => {
                // keys of any type (strings, int32 field numbers), in order
                let mut keys = std::collections::BTreeMap::new();
                for (k, _) in w.into_iter().chain(&g) {
                    keys.insert(render_value(&k), k.to_box());
                }
                for (name, k) in keys {
                    let ep = format!("{p}[{name}]");
                    match (w.get(k.as_value_ref()), g.get(k.as_value_ref())) {
                        (Some(wv), None) => {
                            out.push(format!("{ep}: want {}, got missing", render_value(&wv)))
                        }
                        (None, Some(gv)) => {
                            out.push(format!("{ep}: unexpected {}", render_value(&gv)))
                        }
                        (Some(wv), Some(gv)) => diff_value(&ep, &wv, &gv, out),
                        (None, None) => {}
                    }
                }
            }
            (ReflectFieldRef::Optional(w), ReflectFieldRef::Optional(g)) => {
                let is_msg = matches!(
                    f.runtime_field_type(),
                    RuntimeFieldType::Singular(RuntimeType::Message(_))
                );
                if is_msg {
                    match (w.value(), g.value()) {
                        (Some(wv), None) => {
                            out.push(format!("{p}: want {}, got unset", render_value(&wv)))
                        }
                        (None, Some(gv)) => {
                            out.push(format!("{p}: want unset, got {}", render_value(&gv)))
                        }
                        (Some(wv), Some(gv)) => diff_value(&p, &wv, &gv, out),
                        (None, None) => {}
                    }
                } else {
                    let wv = f.get_singular_field_or_default(want);
                    let gv = f.get_singular_field_or_default(got);
                    diff_value(&p, &wv, &gv, out);
                }
            }
            _ => out.push(format!("{p}: field kinds differ")),
        }
    }
}

pub(crate) fn join_diffs(d: &[String]) -> String {
    const MAX: usize = 8;
    if d.len() > MAX {
        format!("{}; ... ({} differences)", d[..MAX].join("; "), d.len())
    } else {
        d.join("; ")
    }
}

/// Checks a CreateContainer reply: a plugin's own ([`CreateContainerReply`])
/// or a set's collected one (`CreateContainerResponse`).
pub(crate) fn check_adjust<T: Clone + Into<CreateContainerReply>>(
    what: &str,
    want: &ContainerAdjustment,
    resp: &T,
) -> R {
    let resp: CreateContainerReply = resp.clone().into();
    let d = diff("adjust", want, &resp.adjust);
    ensure!(
        d.is_empty(),
        "{what}: adjustment differs: {}",
        join_diffs(&d)
    );
    ensure!(
        resp.update.is_empty() && resp.evict.is_empty(),
        "{what}: unexpected updates {:?} / evictions {}",
        update_ids(&resp.update),
        resp.evict.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Update checks.

pub(crate) fn shares_of(u: &ContainerUpdate) -> Option<u64> {
    u.linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .and_then(|r| r.cpu.as_ref())
        .and_then(|c| c.shares.as_ref())
        .map(|s| s.value)
}

pub(crate) fn check_update(
    what: &str,
    u: Option<&ContainerUpdate>,
    id: &str,
    shares: u64,
    ignore: bool,
) -> R {
    let Some(u) = u else {
        return Err(format!("{what}: no update"));
    };
    ensure!(
        u.container_id == id,
        "{what}: update for container {:?}, want {id:?}",
        u.container_id
    );
    ensure!(
        shares_of(u) == Some(shares),
        "{what}: update of {id}: cpu shares {:?}, want {shares}",
        shares_of(u)
    );
    ensure!(
        u.ignore_failure == ignore,
        "{what}: update of {id}: ignore_failure {}, want {ignore}",
        u.ignore_failure
    );
    Ok(())
}

/// A container update as the plugin sends it (`raw`: upstream's
/// `SetLinuxCPUShares` on a fresh update), or as the reference collects it:
/// a skeleton with memory and cpu set, over the requested resources for the
/// container being updated.
pub(crate) fn shaped_update(
    id: &str,
    shares: u64,
    ignore: bool,
    raw: bool,
    requested: Option<&LinuxResources>,
) -> ContainerUpdate {
    let mut res = requested.cloned().unwrap_or_default();
    if !raw {
        res.memory.mut_or_insert_default();
    }
    res.cpu.mut_or_insert_default().shares = optional(shares);
    ContainerUpdate {
        container_id: id.into(),
        linux: MessageField::some(LinuxContainerUpdate {
            resources: MessageField::some(res),
            ..Default::default()
        }),
        ignore_failure: ignore,
        ..Default::default()
    }
}

pub(crate) fn check_shape(what: &str, got: &ContainerUpdate, want: &ContainerUpdate) -> R {
    let d = diff("update", want, got);
    ensure!(d.is_empty(), "{what}: update differs: {}", join_diffs(&d));
    Ok(())
}

pub(crate) fn update_ids(us: &[ContainerUpdate]) -> Vec<String> {
    us.iter().map(|u| u.container_id.clone()).collect()
}

pub(crate) fn check_sync_updates(what: &str, got: &[ContainerUpdate], ids: &[&str]) -> R {
    ensure!(
        got.len() == ids.len(),
        "{what}: {} sync updates {:?}, want {ids:?}",
        got.len(),
        update_ids(got)
    );
    for id in ids {
        check_update(
            what,
            got.iter().find(|u| u.container_id == *id),
            id,
            384,
            false,
        )?;
    }
    Ok(())
}

/// Expects a non-OK status from the plugin carrying the contract's failure
/// message (code UNKNOWN: what a Go handler's plain error becomes).
pub(crate) fn expect_status_failure<T>(what: &str, r: nri::Result<T>) -> R {
    match r {
        Ok(_) => Err(format!("{what} succeeded, want error {FAIL_MSG:?}")),
        Err(nri::Error::Status { code, message, .. }) => {
            ensure!(
                message.contains(FAIL_MSG),
                "{what}: status message {message:?} does not carry {FAIL_MSG:?}"
            );
            ensure!(
                code == Code::Unknown,
                "{what}: status code {code:?}, want Unknown"
            );
            Ok(())
        }
        Err(e) => Err(format!("{what}: error {e} is not a status from the plugin")),
    }
}
