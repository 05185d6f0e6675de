//! The device injector: adds device nodes, CDI devices and mounts that a
//! pod's annotations ask for to its containers.
//!
//! Annotation keys, most specific first (the first one present wins, each
//! kind on its own):
//!
//! | kind | keys |
//! |---|---|
//! | device nodes | `devices.noderesource.dev/container.<name>`, `devices.nri.io/container.<name>`, `devices.noderesource.dev/pod`, `devices.nri.io/pod`, `devices.noderesource.dev`, `devices.nri.io` |
//! | CDI devices | the same with `cdi-devices.noderesource.dev` / `cdi-devices.nri.io` |
//! | mounts | the same with `mounts.noderesource.dev` / `mounts.nri.io` |
//!
//! Values are YAML lists:
//!
//! ```yaml
//! devices.noderesource.dev/container.c0: |
//!   - path: /dev/nri-null
//!     type: c            # c or b
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
//! ```
//!
//! A malformed annotation fails the container's creation with an error that
//! names the key, so the mistake shows in the pod's events.

use nri::api::{
    optional, CDIDevice, Container, ContainerAdjustment, ContainerUpdate, Event, EventMask,
    LinuxDevice, Mount, PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin};

use crate::common::{container_name, yaml};

/// Annotation key prefixes of device nodes: current, then deprecated.
pub const DEVICE_KEYS: (&str, &str) = ("devices.noderesource.dev", "devices.nri.io");
/// Annotation key prefixes of CDI devices.
pub const CDI_DEVICE_KEYS: (&str, &str) = ("cdi-devices.noderesource.dev", "cdi-devices.nri.io");
/// Annotation key prefixes of mounts.
pub const MOUNT_KEYS: (&str, &str) = ("mounts.noderesource.dev", "mounts.nri.io");

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
    let mut adjust = ContainerAdjustment::new();

    if let Some((key, value)) = annotation(pod, DEVICE_KEYS, &container.name) {
        for device in
            parse_devices(value).map_err(|e| format!("invalid device annotation {key}: {e}"))?
        {
            log::info!("{name}: injecting device {}", device.path);
            adjust.add_device(device);
        }
    }
    if let Some((key, value)) = annotation(pod, CDI_DEVICE_KEYS, &container.name) {
        let doc =
            yaml::parse(value).map_err(|e| format!("invalid CDI device annotation {key}: {e}"))?;
        let names = doc
            .to_string_list("CDI devices")
            .map_err(|e| format!("invalid CDI device annotation {key}: {e}"))?;
        for device in names {
            log::info!("{name}: injecting CDI device {device}");
            adjust.add_cdi_device(CDIDevice::named(device));
        }
    }
    if let Some((key, value)) = annotation(pod, MOUNT_KEYS, &container.name) {
        for mount in
            parse_mounts(value).map_err(|e| format!("invalid mount annotation {key}: {e}"))?
        {
            log::info!(
                "{name}: injecting mount {} -> {}",
                mount.source,
                mount.destination
            );
            adjust.add_mount(mount);
        }
    }
    Ok(adjust)
}

/// The most specific annotation of a kind for container `ctr`: its key and value.
fn annotation<'a>(
    pod: &'a PodSandbox,
    (key, old_key): (&str, &str),
    ctr: &str,
) -> Option<(String, &'a str)> {
    [
        format!("{key}/container.{ctr}"),
        format!("{old_key}/container.{ctr}"),
        format!("{key}/pod"),
        format!("{old_key}/pod"),
        key.to_string(),
        old_key.to_string(),
    ]
    .into_iter()
    .find_map(|k| pod.annotations.get(&k).map(|v| (k, v.as_str())))
}

/// Parses a YAML list of devices.
pub fn parse_devices(text: &str) -> Result<Vec<LinuxDevice>, yaml::Error> {
    let doc = yaml::parse(text)?;
    let mut devices = Vec::new();
    for (i, item) in doc.to_seq("devices")?.iter().enumerate() {
        let what = |field: &str| format!("device {i}: {field}");
        let mut device = LinuxDevice::new();
        for (key, value) in item.to_map(&format!("device {i}"))? {
            match key.as_str() {
                "path" => device.path = value.to_string_value(&what("path"))?,
                "type" => device.type_ = value.to_string_value(&what("type"))?,
                "major" => device.major = value.to_i64(&what("major"))?,
                "minor" => device.minor = value.to_i64(&what("minor"))?,
                "file_mode" => {
                    let mode = value.to_u32(&what("file_mode"))?;
                    if mode != 0 {
                        device.file_mode = optional(mode);
                    }
                }
                "uid" => {
                    let uid = value.to_u32(&what("uid"))?;
                    if uid != 0 {
                        device.uid = optional(uid);
                    }
                }
                "gid" => {
                    let gid = value.to_u32(&what("gid"))?;
                    if gid != 0 {
                        device.gid = optional(gid);
                    }
                }
                other => log::debug!("device {i}: ignoring unknown field {other:?}"),
            }
        }
        if device.path.is_empty() {
            return Err(yaml::Error {
                line: 0,
                message: format!("device {i}: path is required"),
            });
        }
        if !matches!(device.type_.as_str(), "c" | "b" | "u" | "p") {
            return Err(yaml::Error {
                line: 0,
                message: format!(
                    "device {i}: type must be c, b, u or p, got {:?}",
                    device.type_
                ),
            });
        }
        devices.push(device);
    }
    Ok(devices)
}

/// Parses a YAML list of mounts.
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>, yaml::Error> {
    let doc = yaml::parse(text)?;
    let mut mounts = Vec::new();
    for (i, item) in doc.to_seq("mounts")?.iter().enumerate() {
        let what = |field: &str| format!("mount {i}: {field}");
        let mut mount = Mount::new();
        for (key, value) in item.to_map(&format!("mount {i}"))? {
            match key.as_str() {
                "source" => mount.source = value.to_string_value(&what("source"))?,
                "destination" => mount.destination = value.to_string_value(&what("destination"))?,
                "type" => mount.type_ = value.to_string_value(&what("type"))?,
                "options" => mount.options = value.to_string_list(&what("options"))?,
                other => log::debug!("mount {i}: ignoring unknown field {other:?}"),
            }
        }
        if mount.destination.is_empty() {
            return Err(yaml::Error {
                line: 0,
                message: format!("mount {i}: destination is required"),
            });
        }
        mounts.push(mount);
    }
    Ok(mounts)
}
