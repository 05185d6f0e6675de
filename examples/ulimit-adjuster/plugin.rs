//! The ulimit adjuster: sets POSIX resource limits (rlimits) that a pod's
//! annotations ask for on its containers.
//!
//! Key: `ulimits.noderesource.dev/container.<name>` (or the deprecated
//! `ulimits.nri.containerd.io/container.<name>`); value: a YAML list of
//! limits, `type` with or without the `RLIMIT_` prefix, in any case:
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
//! container's creation.

use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::stub::{Context, HandlerResult, Plugin};

use crate::common::{container_name, yaml};

/// Annotation key prefix.
pub const ULIMIT_KEY: &str = "ulimits.noderesource.dev";
/// Deprecated annotation key prefix.
pub const OLD_ULIMIT_KEY: &str = "ulimits.nri.containerd.io";

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

/// One requested limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ulimit {
    /// `RLIMIT_<NAME>`.
    pub type_: String,
    /// Hard limit.
    pub hard: u64,
    /// Soft limit.
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
        yaml::parse(config).map_err(|e| format!("invalid configuration: {e}"))?;
        nri::logging::configure_from_text(config)?;
        Ok(None)
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let name = container_name(pod, container);
        let mut adjust = ContainerAdjustment::new();
        for limit in ulimits_for(pod, &container.name)? {
            log::info!(
                "{name}: {} hard={} soft={}",
                limit.type_,
                limit.hard,
                limit.soft
            );
            adjust.add_rlimit(limit.type_, limit.hard, limit.soft);
        }
        Ok((adjust, Vec::new()))
    }
}

/// The limits the annotations of `pod` ask for container `ctr`.
pub fn ulimits_for(pod: &PodSandbox, ctr: &str) -> Result<Vec<Ulimit>, String> {
    let keys = [
        format!("{ULIMIT_KEY}/container.{ctr}"),
        format!("{OLD_ULIMIT_KEY}/container.{ctr}"),
    ];
    let Some((key, value)) = keys
        .iter()
        .find_map(|k| pod.annotations.get(k).map(|v| (k, v)))
    else {
        log::debug!("no ulimit annotation for container {ctr}");
        return Ok(Vec::new());
    };
    parse_ulimits(value).map_err(|e| format!("invalid ulimit annotation {key}: {e}"))
}

/// Parses a YAML list of limits and checks each.
pub fn parse_ulimits(text: &str) -> Result<Vec<Ulimit>, String> {
    let doc = yaml::parse(text).map_err(|e| e.to_string())?;
    let mut limits = Vec::new();
    for (i, item) in doc
        .to_seq("ulimits")
        .map_err(|e| e.to_string())?
        .iter()
        .enumerate()
    {
        let field = |name: &str| item.get(name).filter(|v| !v.is_null());
        let raw = field("type")
            .ok_or_else(|| format!("ulimit {i}: type is required"))?
            .to_string_value(&format!("ulimit {i}: type"))
            .map_err(|e| e.to_string())?;
        let upper = raw.to_ascii_uppercase();
        let name = upper.strip_prefix("RLIMIT_").unwrap_or(&upper);
        if !VALID.contains(&name) {
            return Err(format!("ulimit {i}: unknown type {raw:?}"));
        }
        let number = |key: &str| -> Result<u64, String> {
            field(key).map_or(Ok(0), |v| {
                v.to_u64(&format!("ulimit {i}: {key}"))
                    .map_err(|e| e.to_string())
            })
        };
        let (hard, soft) = (number("hard")?, number("soft")?);
        if hard < soft {
            return Err(format!(
                "ulimit RLIMIT_{name} must have hard limit >= soft limit (hard {hard}, soft {soft})"
            ));
        }
        limits.push(Ulimit {
            type_: format!("RLIMIT_{name}"),
            hard,
            soft,
        });
    }
    Ok(limits)
}
