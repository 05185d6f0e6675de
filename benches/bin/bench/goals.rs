//! The report's goals: each a limit on a measured figure or ratio, met or
//! not.

use std::fmt::Write as _;

use crate::format::{fmt_num, fmt_ratio3, ratio};
use crate::suite::{Measured, Params};

struct Goal {
    text: String,
    met: Option<bool>,
    detail: String,
}

/// Appends the goals table to `w`.
pub fn table(w: &mut String, p: &Params, r: &Measured) {
    let Params {
        ref sync_sizes,
        ref rust_static,
        ref static_target,
        ..
    } = *p;
    let (rust_size, go_size) = (r.rust_size, r.go_size);
    let m = |k: &str| r.suite.med(k);
    let mut goals: Vec<Goal> = Vec::new();
    let mut goal = |text: &str, checks: Vec<(Option<f64>, f64, bool)>, detail: String| {
        // (value, limit, lower_is_better)
        let met = checks
            .iter()
            .map(|(v, lim, low)| v.map(|v| if *low { v <= *lim } else { v >= *lim }))
            .try_fold(true, |acc, x| x.map(|x| acc && x));
        goals.push(Goal {
            text: text.to_string(),
            met,
            detail,
        });
    };
    let ar = |k: &str| m(&format!("a_rust.{k}"));
    let ag = |k: &str| m(&format!("a_go.{k}"));
    let p50r = ratio(ar("create_p50_us"), ag("create_p50_us"));
    let p50f = ratio(ar("create_p50_us"), m("floor_create.floor_p50_us"));
    goal(
        "A: CreateContainer p50 ≤ 0.5× Go's",
        vec![(p50r, 0.5, true)],
        format!("{} of Go", fmt_ratio3(p50r)),
    );
    goal(
        "A: CreateContainer p50 ≤ 2× the floor",
        vec![(p50f, 2.0, true)],
        format!("{} of the floor", fmt_ratio3(p50f)),
    );
    let cr = ratio(ar("create_calls_per_s"), ag("create_calls_per_s"));
    goal("A: calls/s ≥ 2× Go", vec![(cr, 2.0, false)], fmt_ratio3(cr));
    let cpu = ratio(ar("create_cpu_us_per_call"), ag("create_cpu_us_per_call"));
    goal(
        "A: plugin CPU per call ≤ 0.3× Go",
        vec![(cpu, 0.3, true)],
        fmt_ratio3(cpu),
    );
    let tr = ratio(m("ttrpc_ours.ttrpc_p50_us"), m("ttrpc_theirs.ttrpc_p50_us"));
    goal(
        "raw ttrpc round trip (p50) ≤ 0.2× the ttrpc crate's",
        vec![(tr, 0.2, true)],
        fmt_ratio3(tr),
    );
    let rss = ar("idle_rss_kb");
    let rssr = ratio(rss, ag("idle_rss_kb"));
    goal(
        "idle RSS ≤ 2 MiB and ≤ 1/4 of Go's (default glibc release build)",
        vec![(rss, 2048.0, true), (rssr, 0.25, true)],
        format!("{} KiB, {} of Go", fmt_num(rss), fmt_ratio3(rssr)),
    );
    if rust_static.is_some() {
        let rss = m("a_rust_static.idle_rss_kb");
        let rssr = ratio(rss, ag("idle_rss_kb"));
        goal(
            &format!("idle RSS ≤ 2 MiB and ≤ 1/4 of Go's (static {static_target} build)"),
            vec![(rss, 2048.0, true), (rssr, 0.25, true)],
            format!("{} KiB, {} of Go", fmt_num(rss), fmt_ratio3(rssr)),
        );
    }
    let sr = ratio(rust_size, go_size);
    goal(
        "stripped static binary ≤ 2 MiB and ≤ 1/4 of Go's",
        vec![(rust_size, 2.0 * 1024.0 * 1024.0, true), (sr, 0.25, true)],
        format!("{} bytes, {} of Go", fmt_num(rust_size), fmt_ratio3(sr)),
    );
    if let Some(n) = sync_sizes.iter().max() {
        let t = ratio(ar(&format!("sync_{n}_ms")), ag(&format!("sync_{n}_ms")));
        let h = ratio(
            ar(&format!("sync_{n}_hwm_kb")),
            ag(&format!("sync_{n}_hwm_kb")),
        );
        goal(
            &format!("A: Synchronize of {n} containers ≤ 0.5× Go's time"),
            vec![(t, 0.5, true)],
            format!("{} of Go", fmt_ratio3(t)),
        );
        goal(
            &format!("A: Synchronize of {n} containers at ≤ 0.5× Go's peak RSS"),
            vec![(h, 0.5, true)],
            format!("{} of Go", fmt_ratio3(h)),
        );
        // The same goals when the Rust plugin does read the state (Go's
        // plugin always pays for decoding it).
        for (variant, what) in [
            ("walk", "decoding every item one at a time"),
            ("decode", "decoding the whole state into vectors"),
        ] {
            let vr = |k: &str| m(&format!("a_rust_{variant}.{k}"));
            let t = ratio(vr(&format!("sync_{n}_ms")), ag(&format!("sync_{n}_ms")));
            let h = ratio(
                vr(&format!("sync_{n}_hwm_kb")),
                ag(&format!("sync_{n}_hwm_kb")),
            );
            goal(
                &format!("A: Synchronize of {n} containers ≤ 0.5× Go's time, Rust {what}"),
                vec![(t, 0.5, true)],
                format!("{} of Go", fmt_ratio3(t)),
            );
            goal(
                &format!("A: Synchronize of {n} containers at ≤ 0.5× Go's peak RSS, Rust {what}"),
                vec![(h, 0.5, true)],
                format!("{} of Go", fmt_ratio3(h)),
            );
        }
    }
    let _ = writeln!(w, "\n## Goals\n\n| goal | measured | met |\n|---|---|---|");
    for g in &goals {
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            g.text,
            g.detail,
            match g.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            }
        );
    }
}
