//! The ulimit adjuster: sets POSIX resource limits (rlimits) that a pod's
//! annotations ask for on its containers. A port of containerd/nri's
//! `plugins/ulimit-adjuster`.
//!
//! Key: `ulimits.noderesource.dev/container.<name>` (or the deprecated
//! `ulimits.nri.containerd.io/container.<name>`); value: a YAML list of
//! limits, read as the Go plugin reads it (`sigs.k8s.io/yaml`, see
//! `nri::decode`), `type` with or without the `RLIMIT_` prefix, in any
//! case:
//!
//! ```yaml
//! ulimits.noderesource.dev/container.sleep: |
//!   - type: memlock
//!     hard: 987654
//!     soft: 645321
//!   - type: RLIMIT_NOFILE
//!     hard: 4096
//!     soft: 1024
//! ```
//!
//! An unknown type, or a soft limit above the hard one, fails the
//! container's creation. A missing `hard` or `soft` is 0, as in Go.
//!
//! Deliberate differences from the Go plugin, each an error: the YAML
//! corners `nri::decode` refuses where Go reads them (see its documentation,
//! "Differences from Go"): nesting deeper than 256 levels, a tag holding
//! `,`, `[` or `]`, a plain scalar with `:` right before a flow indicator in
//! a flow collection, huge alias expansions.

use nri::api::annotations::{self, Annotation, Scope};
use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::stub::{Context, HandlerResult, Plugin};
use serde::Deserialize;

/// Annotation key prefix.
pub const ULIMIT_KEY: &str = "ulimits.noderesource.dev";
/// Deprecated annotation key prefix.
pub const OLD_ULIMIT_KEY: &str = "ulimits.nri.containerd.io";
const RLIMIT_PREFIX: &str = "RLIMIT_";

/// The resource limits Linux knows, without their `RLIMIT_` prefix.
const VALID: [&str; 16] = [
    "AS",
    "CORE",
    "CPU",
    "DATA",
    "FSIZE",
    "LOCKS",
    "MEMLOCK",
    "MSGQUEUE",
    "NICE",
    "NOFILE",
    "NPROC",
    "RSS",
    "RTPRIO",
    "RTTIME",
    "SIGPENDING",
    "STACK",
];

/// One requested limit (the Go plugin's `ulimit`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Ulimit {
    /// `type`: as annotated, then `RLIMIT_<NAME>` once checked.
    #[serde(rename = "type")]
    pub type_: String,
    /// `hard`
    pub hard: u64,
    /// `soft`
    pub soft: u64,
}

/// The ulimit adjuster plugin.
#[derive(Debug, Default)]
pub struct UlimitAdjuster;

impl Plugin for UlimitAdjuster {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        log::info!("connected to {runtime} {version}");
        nri::decode::from_yaml::<nri::decode::Value>(config)
            .map_err(|e| format!("invalid configuration: {e}"))?;
        nri::logging::configure_from_text(config)?;
        Ok(None)
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let ulimits = parse_ulimits(pod, &container.name)?;
        let adjust = adjust_ulimits(&container_name(pod, container), &ulimits)?;
        Ok((adjust, Vec::new()))
    }
}

/// The limits the annotations of `pod` ask for container `ctr`, types
/// checked and normalized to `RLIMIT_<NAME>`.
pub fn parse_ulimits(pod: &PodSandbox, ctr: &str) -> Result<Vec<Ulimit>, String> {
    let found = annotations::lookup_in(
        &pod.annotations,
        &[ULIMIT_KEY, OLD_ULIMIT_KEY],
        ctr,
        &[Scope::Container],
    );
    let Some(Annotation { key, value, .. }) = found.filter(|a| !a.value.is_empty()) else {
        log::debug!("no ulimit annotation for container {ctr}");
        return Ok(Vec::new());
    };
    let mut ulimits: Vec<Ulimit> = nri::decode::from_yaml(value)
        .map_err(|e| format!("invalid ulimit annotation {key}: {e}"))?;
    for u in &mut ulimits {
        let upper = go_to_upper(&u.type_);
        let name = upper.strip_prefix(RLIMIT_PREFIX).unwrap_or(&upper);
        if !VALID.contains(&name) {
            return Err(format!(
                "invalid ulimit annotation {key}: failed to parse type: {:?}",
                u.type_
            ));
        }
        u.type_ = format!("{RLIMIT_PREFIX}{name}");
    }
    Ok(ulimits)
}

/// An adjustment setting `ulimits`; a soft limit above the hard one is an error.
pub fn adjust_ulimits(name: &str, ulimits: &[Ulimit]) -> Result<ContainerAdjustment, String> {
    let mut adjust = ContainerAdjustment::new();
    for u in ulimits {
        if u.hard < u.soft {
            return Err(format!(
                "ulimit {:?} must have hard limit >= soft limit (hard {}, soft {})",
                u.type_, u.hard, u.soft
            ));
        }
        log::info!("{name}: {} hard={} soft={}", u.type_, u.hard, u.soft);
        adjust.add_rlimit(u.type_.clone(), u.hard, u.soft);
    }
    Ok(adjust)
}

/// Go's `strings.ToUpper`: each character's simple uppercase mapping, so
/// `ß` stays `ß` where Rust's `to_uppercase` makes it `SS`.
fn go_to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// `pod/container`, for log messages.
fn container_name(pod: &PodSandbox, container: &Container) -> String {
    if pod.name.is_empty() {
        container.name.clone()
    } else {
        format!("{}/{}", pod.name, container.name)
    }
}
