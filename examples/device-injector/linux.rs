//! The device injector's Linux adjustments of NRI v0.10-v0.12: network
//! devices moved into the container, its scheduling policy, namespaced
//! sysctls and its memory policy, each read from an annotation kind of its
//! own (see the plugin's documentation for the keys and value shapes).
//!
//! Names of policies, modes and flags are those of the NRI API
//! (`SCHED_FIFO`, `SCHED_FLAG_RESET_ON_FORK`, `MPOL_INTERLEAVE`,
//! `MPOL_F_STATIC_NODES`), which are also the OCI runtime-spec's. Go's NRI
//! API converts a name it does not know into the enum's zero value (an
//! unknown flag becomes `SCHED_FLAG_RESET_ON_FORK`, an unknown mode
//! `MPOL_DEFAULT`); this port refuses it instead, naming the value.

use std::collections::BTreeMap;

use nri::api::{
    ContainerAdjustment, Enum, LinuxNetDevice, LinuxScheduler, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, MpolFlag, MpolMode, NriVersion,
};
use serde::Deserialize;

/// The annotation kind of network devices (`network-devices.noderesource.dev`,
/// `network-devices.nri.io`).
pub const NETWORK_DEVICES: &str = "network-devices";
/// The annotation kind of the scheduling policy.
pub const SCHEDULING_POLICY: &str = "scheduling-policy";
/// The annotation kind of sysctls.
pub const SYSCTL: &str = "sysctl";
/// The annotation kind of the memory policy.
pub const MEMORY_POLICY: &str = "memory-policy";

/// The text a refusal of a network device without a host interface holds.
pub const NO_HOST_IF: &str = "has no hostIf";
/// The text a refusal of an unknown policy, mode or flag name holds.
pub const UNKNOWN_NAME: &str = "unknown name";
/// The text a refusal of a sysctl without a name or value holds.
pub const EMPTY_SYSCTL: &str = "empty sysctl";
/// The text a refusal of a kind the runtime cannot apply holds.
pub const NOT_APPLIED: &str = "cannot apply";

/// An annotated network device: the host interface `hostIf` moves into the
/// container's network namespace, renamed to `name` (kept when empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NetDevice {
    /// `hostIf`: the interface's name on the host.
    #[serde(rename = "hostIf")]
    pub host_if: String,
    /// `name`: its name in the container.
    pub name: String,
}

/// An annotated scheduling policy (the OCI runtime-spec's `Scheduler`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SchedulingPolicy {
    /// `policy`: `SCHED_OTHER`, `SCHED_FIFO`, `SCHED_RR`, `SCHED_BATCH`,
    /// `SCHED_ISO`, `SCHED_IDLE`, `SCHED_DEADLINE`; empty or `SCHED_NONE`
    /// for none.
    pub policy: String,
    /// `nice`
    pub nice: i32,
    /// `priority`
    pub priority: i32,
    /// `flags`: `SCHED_FLAG_RESET_ON_FORK`...
    pub flags: Vec<String>,
    /// `runtime` (SCHED_DEADLINE), in nanoseconds.
    pub runtime: u64,
    /// `deadline` (SCHED_DEADLINE), in nanoseconds.
    pub deadline: u64,
    /// `period` (SCHED_DEADLINE), in nanoseconds.
    pub period: u64,
}

/// An annotated memory policy (the OCI runtime-spec's `memoryPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MemoryPolicy {
    /// `mode`: `MPOL_DEFAULT` (also when empty), `MPOL_PREFERRED`,
    /// `MPOL_BIND`, `MPOL_INTERLEAVE`, `MPOL_LOCAL`, `MPOL_PREFERRED_MANY`,
    /// `MPOL_WEIGHTED_INTERLEAVE`.
    pub mode: String,
    /// `nodes`: NUMA nodes, such as `0-3,7`.
    pub nodes: String,
    /// `flags`: `MPOL_F_STATIC_NODES`, `MPOL_F_RELATIVE_NODES`,
    /// `MPOL_F_NUMA_BALANCING`.
    pub flags: Vec<String>,
}

/// Annotated sysctls: name to value; a `null` value is `None`.
pub type Sysctls = BTreeMap<String, Option<String>>;

/// The enum value named `name`, or an error naming `what` and the value.
fn named<E: Enum>(what: &str, name: &str) -> Result<E, String> {
    E::from_str(name).ok_or_else(|| format!("{UNKNOWN_NAME} {name:?} for {what}"))
}

/// Adds annotated network devices; a later device of the same host
/// interface replaces an earlier one, as in Go's `AddLinuxNetDevice`.
pub fn add_net_devices(
    adjust: &mut ContainerAdjustment,
    devices: &[NetDevice],
) -> Result<(), String> {
    if let Some(i) = devices.iter().position(|d| d.host_if.is_empty()) {
        return Err(format!("network device {i} {NO_HOST_IF}"));
    }
    for device in devices {
        adjust.add_linux_net_device(device.host_if.clone(), LinuxNetDevice::named(&device.name));
    }
    Ok(())
}

impl SchedulingPolicy {
    /// The NRI scheduler; an unknown policy or flag name is an error. An
    /// empty policy is `SCHED_NONE`, which runtimes leave unapplied.
    pub fn to_nri(&self) -> Result<LinuxScheduler, String> {
        let policy = match self.policy.as_str() {
            "" => LinuxSchedulerPolicy::SCHED_NONE,
            name => named("the scheduling policy", name)?,
        };
        let mut scheduler = LinuxScheduler::with_policy(policy);
        scheduler.nice = self.nice;
        scheduler.priority = self.priority;
        scheduler.runtime = self.runtime;
        scheduler.deadline = self.deadline;
        scheduler.period = self.period;
        for flag in &self.flags {
            scheduler.add_flag(named::<LinuxSchedulerFlag>("a scheduling flag", flag)?);
        }
        Ok(scheduler)
    }
}

/// Sets annotated sysctls; an empty name or value (`~`, `""`) is an error.
pub fn set_sysctls(adjust: &mut ContainerAdjustment, sysctls: &Sysctls) -> Result<(), String> {
    for (name, value) in sysctls {
        match value.as_deref() {
            _ if name.is_empty() => return Err(format!("{EMPTY_SYSCTL} name")),
            None | Some("") => return Err(format!("{EMPTY_SYSCTL} value for {name:?}")),
            Some(value) => {
                adjust.set_linux_sysctl(name.clone(), value);
            }
        }
    }
    Ok(())
}

impl MemoryPolicy {
    /// Sets the memory policy; an unknown mode or flag name is an error. An
    /// empty mode is `MPOL_DEFAULT`.
    pub fn apply(&self, adjust: &mut ContainerAdjustment) -> Result<(), String> {
        let mode = match self.mode.as_str() {
            "" => MpolMode::MPOL_DEFAULT,
            name => named("the memory policy mode", name)?,
        };
        let flags = self
            .flags
            .iter()
            .map(|f| named::<MpolFlag>("a memory policy flag", f))
            .collect::<Result<Vec<_>, _>>()?;
        adjust.set_linux_memory_policy(mode, self.nodes.clone(), &flags);
        Ok(())
    }
}

/// The first NRI release whose runtimes apply each kind: network devices
/// and the scheduling policy from v0.11.0; sysctls from v0.12.0 (a v0.11
/// runtime panics merging one: it writes to a map it never made); the
/// memory policy from v0.12.0. Older runtimes read a reply without the
/// fields they do not know, so they drop the adjustment.
pub const SINCE: [(&str, (u64, u64, u64)); 4] = [
    (NETWORK_DEVICES, (0, 11, 0)),
    (SCHEDULING_POLICY, (0, 11, 0)),
    (SYSCTL, (0, 12, 0)),
    (MEMORY_POLICY, (0, 12, 0)),
];

/// An error naming the first kind `adjust` holds that a runtime of NRI
/// version `runtime` cannot apply; `Ok` when the version is unknown.
pub fn check_runtime(
    adjust: &ContainerAdjustment,
    runtime: Option<&NriVersion>,
) -> Result<(), String> {
    let Some(runtime) = runtime else {
        return Ok(());
    };
    let linux = &adjust.linux;
    let present = |kind: &str| match kind {
        NETWORK_DEVICES => !linux.net_devices.is_empty(),
        SCHEDULING_POLICY => linux.scheduler.is_some(),
        SYSCTL => !linux.sysctl.is_empty(),
        _ => linux.memory_policy.is_some(),
    };
    for (kind, (major, minor, patch)) in SINCE {
        let since = NriVersion::release(major, minor, patch);
        if present(kind) && *runtime < since {
            return Err(format!(
                "the runtime's NRI {runtime} {NOT_APPLIED} {kind} annotations (NRI {since} or newer does)"
            ));
        }
    }
    Ok(())
}
