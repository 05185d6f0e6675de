//! The device injector: adds device nodes, CDI devices and mounts that a
//! pod's annotations ask for to its containers, and sets their I/O priority.
//! A port of containerd/nri's `plugins/device-injector`.
//!
//! Annotation keys, most specific first (the first one present wins, each
//! kind on its own):
//!
//! | kind | keys |
//! |---|---|
//! | device nodes | `devices.noderesource.dev/container.<name>`, `devices.nri.io/container.<name>`, `devices.noderesource.dev/pod`, `devices.nri.io/pod`, `devices.noderesource.dev`, `devices.nri.io` |
//! | CDI devices | the same with `cdi-devices.noderesource.dev` / `cdi-devices.nri.io` |
//! | mounts | the same with `mounts.noderesource.dev` / `mounts.nri.io` |
//! | I/O priority | the same with `io-priority.noderesource.dev` / `io-priority.nri.io` |
//!
//! Values are YAML, read as the Go plugin reads them (`sigs.k8s.io/yaml`:
//! field names in any case, YAML 1.1 numbers such as `0666`, a later
//! duplicate key winning; see `common/goyaml.rs`):
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
//! ```
//!
//! A malformed annotation fails the container's creation with an error that
//! names the key, so the mistake shows in the pod's events. An unknown I/O
//! priority class is logged and ignored, as in Go.
//!
//! Deliberate differences from the Go plugin, each an error instead of what
//! Go does:
//!
//! - a device without a `path` (Go injects a device node at the empty path,
//!   which the OCI runtime resolves to the container's root directory);
//! - a mount without a `destination` (Go injects it, and the runtime mounts
//!   it over the container's root directory);
//! - YAML nested deeper than 1,000 levels (Go allows 10,000; the bound keeps
//!   the reader's stack use small);
//! - two corners where go-yaml's older libyaml reads YAML its own way: a tag
//!   holding `,`, `[` or `]` (`!a,b`), and inside a flow collection a plain
//!   scalar with `:` right before `,`, `[`, `]`, `{`, `}` or `?` (`[a:]`).
//!   Both are refused, as libyaml and YAML 1.2 refuse them.

use nri::api::{
    optional, CDIDevice, Container, ContainerAdjustment, ContainerUpdate, Event, EventMask,
    IOPrioClass, LinuxDevice, LinuxIOPriority, Mount, PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin};

use crate::common::gojson::{self, decode_struct, Decode, Json, Mode};
use crate::common::{container_name, first_annotation, goyaml, yaml};

/// Annotation key prefixes of device nodes: current, then deprecated.
pub const DEVICE_KEYS: (&str, &str) = ("devices.noderesource.dev", "devices.nri.io");
/// Annotation key prefixes of CDI devices.
pub const CDI_DEVICE_KEYS: (&str, &str) = ("cdi-devices.noderesource.dev", "cdi-devices.nri.io");
/// Annotation key prefixes of mounts.
pub const MOUNT_KEYS: (&str, &str) = ("mounts.noderesource.dev", "mounts.nri.io");
/// Annotation key prefixes of the I/O priority.
pub const IO_PRIORITY_KEYS: (&str, &str) = ("io-priority.noderesource.dev", "io-priority.nri.io");

/// An annotated device (the Go plugin's `device`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// `path`: the device node in the container.
    pub path: String,
    /// `type`: `c`, `b`, `u` or `p`.
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

impl Decode for Device {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), gojson::Error> {
        decode_struct(
            value,
            mode,
            &mut [
                ("path", &mut self.path),
                ("type", &mut self.type_),
                ("major", &mut self.major),
                ("minor", &mut self.minor),
                ("file_mode", &mut self.file_mode),
                ("uid", &mut self.uid),
                ("gid", &mut self.gid),
            ],
        )
    }
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnotatedMount {
    /// `source`
    pub source: String,
    /// `destination`: where in the container.
    pub destination: String,
    /// `type`, such as `bind`.
    pub type_: String,
    /// `options`, such as `[bind, ro]`.
    pub options: Vec<String>,
}

impl Decode for AnnotatedMount {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), gojson::Error> {
        decode_struct(
            value,
            mode,
            &mut [
                ("source", &mut self.source),
                ("destination", &mut self.destination),
                ("type", &mut self.type_),
                ("options", &mut self.options),
            ],
        )
    }
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoPriority {
    /// `class`: `IOPRIO_CLASS_NONE`, `_RT`, `_BE` or `_IDLE`.
    pub class: String,
    /// `priority` within the class.
    pub priority: i32,
}

impl Decode for IoPriority {
    fn decode(&mut self, value: &Json, mode: Mode) -> Result<(), gojson::Error> {
        decode_struct(
            value,
            mode,
            &mut [("class", &mut self.class), ("priority", &mut self.priority)],
        )
    }
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
        let adjust = adjustment_for(pod, container)?;
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
    Ok(adjust)
}

/// The annotated devices for container `ctr`.
pub fn parse_devices(pod: &PodSandbox, ctr: &str) -> Result<Vec<Device>, String> {
    let Some((key, value)) = annotation(pod, DEVICE_KEYS, ctr).filter(|(_, v)| !v.is_empty())
    else {
        return Ok(Vec::new());
    };
    let invalid = |e: &dyn std::fmt::Display| format!("invalid device annotation {key}: {e}");
    let devices: Vec<Device> = goyaml::unmarshal(value).map_err(|e| invalid(&e))?;
    if let Some(i) = devices.iter().position(|d| d.path.is_empty()) {
        return Err(invalid(&format!("device {i} has no path")));
    }
    Ok(devices)
}

/// The annotated CDI device names for container `ctr`.
pub fn parse_cdi_devices(pod: &PodSandbox, ctr: &str) -> Result<Vec<String>, String> {
    let Some((key, value)) = annotation(pod, CDI_DEVICE_KEYS, ctr).filter(|(_, v)| !v.is_empty())
    else {
        return Ok(Vec::new());
    };
    goyaml::unmarshal(value).map_err(|e| format!("invalid CDI device annotation {key}: {e}"))
}

/// The annotated mounts for container `ctr`.
pub fn parse_mounts(pod: &PodSandbox, ctr: &str) -> Result<Vec<AnnotatedMount>, String> {
    let Some((key, value)) = annotation(pod, MOUNT_KEYS, ctr).filter(|(_, v)| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let invalid = |e: &dyn std::fmt::Display| format!("invalid mount annotation {key}: {e}");
    let mounts: Vec<AnnotatedMount> = goyaml::unmarshal(value).map_err(|e| invalid(&e))?;
    if let Some(i) = mounts.iter().position(|m| m.destination.is_empty()) {
        return Err(invalid(&format!("mount {i} has no destination")));
    }
    Ok(mounts)
}

/// The annotated I/O priority for container `ctr`; an empty annotation
/// counts, as in Go.
pub fn parse_io_priority(pod: &PodSandbox, ctr: &str) -> Result<Option<IoPriority>, String> {
    let Some((key, value)) = annotation(pod, IO_PRIORITY_KEYS, ctr) else {
        return Ok(None);
    };
    goyaml::unmarshal(value)
        .map(Some)
        .map_err(|e| format!("invalid I/O priority annotation {key}: {e}"))
}

/// The most specific annotation of a kind for container `ctr`: its key and value.
fn annotation<'a>(
    pod: &'a PodSandbox,
    (key, old_key): (&str, &str),
    ctr: &str,
) -> Option<(String, &'a str)> {
    first_annotation(
        pod,
        [
            format!("{key}/container.{ctr}"),
            format!("{old_key}/container.{ctr}"),
            format!("{key}/pod"),
            format!("{old_key}/pod"),
            key.to_string(),
            old_key.to_string(),
        ],
    )
}
