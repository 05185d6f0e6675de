//! The device injector: adds device nodes, CDI devices, mounts and network
//! devices that a pod's annotations ask for to its containers, and sets
//! their I/O priority, scheduling policy, sysctls and memory policy. A port
//! of containerd/nri's `plugins/device-injector` (NRI v0.12).
//!
//! Annotation keys, most specific first (the first one present wins, each
//! kind on its own), for each kind `K` of the table below:
//! `K.noderesource.dev/container.<name>`, `K.nri.io/container.<name>`,
//! `K.noderesource.dev/pod`, `K.nri.io/pod`, `K.noderesource.dev`,
//! `K.nri.io`.
//!
//! | kind `K` | value | adjustment |
//! |---|---|---|
//! | `devices` | list of `path`, `type`, `major`, `minor`, `file_mode`, `uid`, `gid` | device nodes |
//! | `cdi-devices` | list of CDI device names | CDI devices |
//! | `mounts` | list of `source`, `destination`, `type`, `options` | mounts |
//! | `io-priority` | `class`, `priority` | I/O priority |
//! | `network-devices` | list of `hostIf`, `name` | host network interfaces moved into the container |
//! | `scheduling-policy` | `policy`, `nice`, `priority`, `flags`, `runtime`, `deadline`, `period` | scheduling policy (`sched_setattr`) |
//! | `sysctl` | mapping of sysctl name to value | namespaced sysctls |
//! | `memory-policy` | `mode`, `nodes`, `flags` | memory policy (`set_mempolicy`) |
//!
//! Values are YAML, read as the Go plugin reads them (`sigs.k8s.io/yaml`:
//! field names in any case, YAML 1.1 numbers such as `0666`, a later
//! duplicate key winning, a number read into a string field as its text;
//! see `nri::decode`), and looked up as the Go plugin looks them up
//! (`nri::api::annotations::lookup`):
//!
//! ```yaml
//! devices.noderesource.dev/container.c0: |
//!   - path: /dev/nri-null
//!     type: c
//!     major: 1
//!     minor: 3
//!     file_mode: 0666    # optional, like uid and gid
//! cdi-devices.noderesource.dev/container.c1: |
//!   - vendor0.com/device=null
//! mounts.noderesource.dev/container.c2: |
//!   - source: /home
//!     destination: /host-home
//!     type: bind
//!     options: [bind, ro]
//! io-priority.noderesource.dev/container.c3: |
//!   class: IOPRIO_CLASS_RT     # or _NONE, _BE, _IDLE
//!   priority: 4
//! network-devices.noderesource.dev/container.c4: |
//!   - hostIf: ens2.100         # the interface on the host
//!     name: netdev0            # its name in the container (optional)
//! scheduling-policy.noderesource.dev/container.c5: |
//!   policy: SCHED_FIFO         # SCHED_OTHER, _RR, _BATCH, _ISO, _IDLE, _DEADLINE
//!   priority: 10
//!   flags: [SCHED_FLAG_RESET_ON_FORK]
//! sysctl.noderesource.dev/container.c6: |
//!   net.ipv4.ip_unprivileged_port_start: 80
//!   kernel.shmmni: "8192"
//! memory-policy.noderesource.dev/container.c7: |
//!   mode: MPOL_INTERLEAVE      # MPOL_DEFAULT, _PREFERRED, _BIND, _LOCAL...
//!   nodes: "0-1"
//!   flags: [MPOL_F_STATIC_NODES]
//! ```
//!
//! A malformed annotation fails the container's creation with an error that
//! names the key, so the mistake shows in the pod's events. An unknown I/O
//! priority class is logged and ignored, as in Go. An empty annotation
//! value of a list or mapping kind (and of `scheduling-policy` and
//! `memory-policy`) injects nothing; an empty `io-priority` value counts,
//! as in Go. An empty scheduling policy is `SCHED_NONE` (which runtimes
//! leave unapplied), an empty memory policy mode `MPOL_DEFAULT`; of two
//! network devices of the same `hostIf`, the later wins.
//!
//! The keys and value shapes of the four kinds of NRI v0.10-v0.12
//! (`network-devices`, `scheduling-policy`, `sysctl`, `memory-policy`)
//! follow upstream's documentation of the sample and the NRI API's names;
//! `tests/ports` checks this port against that logic written with the Go
//! libraries (`sigs.k8s.io/yaml` and Go's NRI API).
//!
//! Deliberate differences from the Go plugin, each an error instead of what
//! Go does:
//!
//! - a device without a `path` (Go injects a device node at the empty path,
//!   which the OCI runtime resolves to the container's root directory);
//! - a mount without a `destination` (Go injects it, and the runtime mounts
//!   it over the container's root directory);
//! - a network device without a `hostIf` (Go asks the runtime to move the
//!   host interface of the empty name, which fails the container later);
//! - an unknown scheduling policy or flag, memory policy mode or flag name
//!   (Go's NRI API turns an unknown name into the enum's zero value: a
//!   different flag, `SCHED_FLAG_RESET_ON_FORK` or `MPOL_F_STATIC_NODES`,
//!   no policy at all, or `MPOL_DEFAULT`);
//! - a sysctl with an empty name or an empty value (`~`, `""`), which Go
//!   passes on and the OCI runtime fails to write when the container
//!   starts;
//! - a kind the runtime's NRI cannot apply, when the runtime's NRI version
//!   is known (sent, or inferred from its name and version): network
//!   devices and the scheduling policy before NRI v0.11.0, sysctls and the
//!   memory policy before v0.12.0 (see `linux::SINCE`). Such a runtime
//!   drops what it does not know, and one of NRI v0.11 (containerd 2.2.1
//!   to 2.2.9) panics merging a sysctl adjustment; the Go plugin sends
//!   them all the same;
//! - the YAML corners `nri::decode` refuses where Go reads them (see its
//!   documentation, "Differences from Go"): nesting deeper than 256 levels,
//!   a tag holding `,`, `[` or `]`, a plain scalar with `:` right before a
//!   flow indicator in a flow collection, huge alias expansions.

use nri::api::annotations::{self, Annotation};
use nri::api::dump;
use nri::api::{
    optional, CDIDevice, Container, ContainerAdjustment, ContainerUpdate, Event, EventMask,
    IOPrioClass, LinuxDevice, LinuxIOPriority, Mount, PodSandbox,
};
use nri::stub::{Context, HandlerResult, NriVersionSource, Plugin};
use serde::de::DeserializeOwned;
use serde::Deserialize;

#[path = "linux.rs"]
pub mod linux;

use linux::{MemoryPolicy, NetDevice, SchedulingPolicy, Sysctls};

/// The annotation kind of device nodes (`devices.noderesource.dev`,
/// `devices.nri.io`).
pub const DEVICES: &str = "devices";
/// The annotation kind of CDI devices.
pub const CDI_DEVICES: &str = "cdi-devices";
/// The annotation kind of mounts.
pub const MOUNTS: &str = "mounts";
/// The annotation kind of the I/O priority.
pub const IO_PRIORITY: &str = "io-priority";

/// An annotated device (the Go plugin's `device`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Device {
    /// `path`: the device node in the container.
    pub path: String,
    /// `type`: `c`, `b`, `u` or `p`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `major`
    pub major: i64,
    /// `minor`
    pub minor: i64,
    /// `file_mode`, 0 for the runtime's default.
    pub file_mode: u32,
    /// `uid`, 0 for the runtime's default.
    pub uid: u32,
    /// `gid`, 0 for the runtime's default.
    pub gid: u32,
}

impl Device {
    /// The NRI device; a zero mode, uid or gid is left unset.
    pub fn to_nri(&self) -> LinuxDevice {
        let mut device = LinuxDevice {
            path: self.path.clone(),
            type_: self.type_.clone(),
            major: self.major,
            minor: self.minor,
            ..Default::default()
        };
        if self.file_mode != 0 {
            device.file_mode = optional(self.file_mode);
        }
        if self.uid != 0 {
            device.uid = optional(self.uid);
        }
        if self.gid != 0 {
            device.gid = optional(self.gid);
        }
        device
    }
}

/// An annotated mount (the Go plugin's `mount`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AnnotatedMount {
    /// `source`
    pub source: String,
    /// `destination`: where in the container.
    pub destination: String,
    /// `type`, such as `bind`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `options`, such as `[bind, ro]`.
    pub options: Vec<String>,
}

impl AnnotatedMount {
    /// The NRI mount.
    pub fn to_nri(&self) -> Mount {
        Mount {
            source: self.source.clone(),
            destination: self.destination.clone(),
            type_: self.type_.clone(),
            options: self.options.clone(),
            ..Default::default()
        }
    }
}

/// An annotated I/O priority (the Go plugin's `ioPrio`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct IoPriority {
    /// `class`: `IOPRIO_CLASS_NONE`, `_RT`, `_BE` or `_IDLE`.
    pub class: String,
    /// `priority` within the class.
    pub priority: i32,
}

impl IoPriority {
    /// The NRI I/O priority, or `None` (with a warning) for an unknown class.
    pub fn to_nri(&self) -> Option<LinuxIOPriority> {
        let class = match self.class.as_str() {
            "IOPRIO_CLASS_NONE" => IOPrioClass::IOPRIO_CLASS_NONE,
            "IOPRIO_CLASS_RT" => IOPrioClass::IOPRIO_CLASS_RT,
            "IOPRIO_CLASS_BE" => IOPrioClass::IOPRIO_CLASS_BE,
            "IOPRIO_CLASS_IDLE" => IOPrioClass::IOPRIO_CLASS_IDLE,
            other => {
                log::warn!("unknown I/O priority class {other:?}, ignoring it");
                return None;
            }
        };
        Some(LinuxIOPriority {
            class: class.into(),
            priority: self.priority,
            ..Default::default()
        })
    }
}

/// The device injector plugin.
#[derive(Debug, Default)]
pub struct DeviceInjector;

impl Plugin for DeviceInjector {
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
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        // With -verbose, what the Go plugin dumps with its -verbose.
        let name = container_name(pod, container);
        dump::log(log::Level::Debug, "CreateContainer", "pod", pod);
        dump::log(log::Level::Debug, "CreateContainer", "container", container);
        let adjust = adjustment_for(pod, container)?;
        // A runtime that would drop a kind (or crash on it) is told instead.
        let runtime = ctx.runtime();
        let version = runtime.as_ref().and_then(|r| match r.nri_version_source {
            NriVersionSource::Unknown => None,
            _ => r.nri_version.as_ref(),
        });
        linux::check_runtime(&adjust, version).map_err(|e| format!("{}: {e}", name))?;
        dump::log(log::Level::Debug, &name, "ContainerAdjustment", &adjust);
        Ok((adjust, Vec::new()))
    }
}

/// The adjustment the annotations of `pod` ask for `container`.
pub fn adjustment_for(
    pod: &PodSandbox,
    container: &Container,
) -> Result<ContainerAdjustment, String> {
    let name = container_name(pod, container);
    let ctr = container.name.as_str();
    let mut adjust = ContainerAdjustment::new();

    for device in parse_devices(pod, ctr)? {
        log::info!("{name}: injecting device {:?}", device.path);
        adjust.add_device(device.to_nri());
    }
    for device in parse_cdi_devices(pod, ctr)? {
        log::info!("{name}: injecting CDI device {device:?}");
        adjust.add_cdi_device(CDIDevice::named(device));
    }
    for mount in parse_mounts(pod, ctr)? {
        log::info!(
            "{name}: injecting mount {:?} -> {:?}",
            mount.source,
            mount.destination
        );
        adjust.add_mount(mount.to_nri());
    }
    if let Some(priority) = parse_io_priority(pod, ctr)? {
        if let Some(priority) = priority.to_nri() {
            log::info!("{name}: setting I/O priority {priority:?}");
            adjust.linux.mut_or_insert_default().io_priority = Some(priority).into();
        }
    }
    if let Some((key, devices)) =
        decode::<Vec<NetDevice>>(pod, linux::NETWORK_DEVICES, ctr, true, "network device")?
    {
        linux::add_net_devices(&mut adjust, &devices)
            .map_err(|e| format!("invalid network device annotation {key}: {e}"))?;
        for d in &devices {
            log::info!(
                "{name}: injecting network device {:?} as {:?}",
                d.host_if,
                d.name
            );
        }
    }
    if let Some((key, policy)) = decode::<SchedulingPolicy>(
        pod,
        linux::SCHEDULING_POLICY,
        ctr,
        true,
        "scheduling policy",
    )? {
        let scheduler = policy
            .to_nri()
            .map_err(|e| format!("invalid scheduling policy annotation {key}: {e}"))?;
        log::info!("{name}: setting scheduling policy {:?}", policy.policy);
        adjust.set_linux_scheduler(scheduler);
    }
    if let Some((key, sysctls)) = decode::<Sysctls>(pod, linux::SYSCTL, ctr, true, "sysctl")? {
        linux::set_sysctls(&mut adjust, &sysctls)
            .map_err(|e| format!("invalid sysctl annotation {key}: {e}"))?;
        for (sysctl, value) in &sysctls {
            log::info!("{name}: setting sysctl {sysctl}={value:?}");
        }
    }
    if let Some((key, policy)) =
        decode::<MemoryPolicy>(pod, linux::MEMORY_POLICY, ctr, true, "memory policy")?
    {
        policy
            .apply(&mut adjust)
            .map_err(|e| format!("invalid memory policy annotation {key}: {e}"))?;
        log::info!(
            "{name}: setting memory policy {:?} {:?}",
            policy.mode,
            policy.nodes
        );
    }
    Ok(adjust)
}

/// The annotation of `kind` for container `ctr`, decoded; `None` when
/// there is none, or (with `skip_empty`) when it is empty.
fn decode<T: DeserializeOwned>(
    pod: &PodSandbox,
    kind: &str,
    ctr: &str,
    skip_empty: bool,
    what: &str,
) -> Result<Option<(String, T)>, String> {
    let Some(Annotation { key, value, .. }) = annotations::lookup(&pod.annotations, kind, ctr)
    else {
        return Ok(None);
    };
    if skip_empty && value.is_empty() {
        return Ok(None);
    }
    match nri::decode::from_yaml(value) {
        Ok(decoded) => Ok(Some((key, decoded))),
        Err(e) => Err(format!("invalid {what} annotation {key}: {e}")),
    }
}

/// The annotated devices for container `ctr`.
pub fn parse_devices(pod: &PodSandbox, ctr: &str) -> Result<Vec<Device>, String> {
    let Some((key, devices)) = decode::<Vec<Device>>(pod, DEVICES, ctr, true, "device")? else {
        return Ok(Vec::new());
    };
    if let Some(i) = devices.iter().position(|d| d.path.is_empty()) {
        return Err(format!(
            "invalid device annotation {key}: device {i} has no path"
        ));
    }
    Ok(devices)
}

/// The annotated CDI device names for container `ctr`.
pub fn parse_cdi_devices(pod: &PodSandbox, ctr: &str) -> Result<Vec<String>, String> {
    let names = decode::<Vec<String>>(pod, CDI_DEVICES, ctr, true, "CDI device")?;
    Ok(names.map(|(_, names)| names).unwrap_or_default())
}

/// The annotated mounts for container `ctr`.
pub fn parse_mounts(pod: &PodSandbox, ctr: &str) -> Result<Vec<AnnotatedMount>, String> {
    let Some((key, mounts)) = decode::<Vec<AnnotatedMount>>(pod, MOUNTS, ctr, true, "mount")?
    else {
        return Ok(Vec::new());
    };
    if let Some(i) = mounts.iter().position(|m| m.destination.is_empty()) {
        return Err(format!(
            "invalid mount annotation {key}: mount {i} has no destination"
        ));
    }
    Ok(mounts)
}

/// The annotated I/O priority for container `ctr`; an empty annotation
/// counts, as in Go.
pub fn parse_io_priority(pod: &PodSandbox, ctr: &str) -> Result<Option<IoPriority>, String> {
    let priority = decode::<IoPriority>(pod, IO_PRIORITY, ctr, false, "I/O priority")?;
    Ok(priority.map(|(_, priority)| priority))
}

/// `pod/container`, for log messages.
fn container_name(pod: &PodSandbox, container: &Container) -> String {
    if pod.name.is_empty() {
        container.name.clone()
    } else {
        format!("{}/{}", pod.name, container.name)
    }
}
