//! The network device injector: moves host network devices into a pod's
//! network namespace when the pod starts, under the names its annotation
//! gives, and back to the host when the pod stops. A port of
//! containerd/nri's `plugins/network-device-injector`.
//!
//! Network devices belong to a network namespace, which all containers of
//! a pod share, so the annotation is the pod's (the first key present wins):
//!
//! | rank | key |
//! |---|---|
//! | 1 | `netdevice.noderesource.dev/pod` |
//! | 2 | `netdevices.nri.containerd.io/pod` |
//! | 3 | `netdevice.noderesource.dev` |
//! | 4 | `netdevices.nri.containerd.io` |
//!
//! (upstream's README names the prefix `netdevices.noderesource.dev`; its
//! code, which this port follows, reads `netdevice.noderesource.dev`.)
//!
//! ```yaml
//! netdevice.noderesource.dev/pod: |
//!   - name: enp2s2f0      # the device on the host (required)
//!     new_name: eth1      # its name in the pod (default: the same)
//!     address: 192.168.2.2
//!     prefix: 24
//!     mtu: 1500
//! ```
//!
//! The value is YAML read as the Go plugin reads it (`nri::decode`, the
//! semantics of `sigs.k8s.io/yaml`). As in the Go plugin, `address` must be
//! an IP address when given (else the pod fails with `error parsing address
//! …`), and `address`, `prefix` and `mtu` are read but not applied: the
//! device keeps its own configuration.
//!
//! A pod in the host's network namespace that asks for a device fails to
//! start (`trying to inject network device on host network Pod`). When the
//! pod stops, each device is moved back to the host under its old name (kept
//! in the device's alias), and left down.
//!
//! Like every example here (and unlike the Go plugin, which takes no
//! configuration), it reads `logFile`, `syslog` and `verbose` (which also
//! turns on the pod dumps) from the configuration text the runtime sends
//! (see `nri::logging`).
//!
//! With `-verbose` it dumps the pod at RunPodSandbox and StopPodSandbox
//! (`nri::api::dump`: `RunPodSandbox: pod:` and a line per field).
//!
//! Deliberate differences from the Go plugin:
//!
//! - a device that cannot be moved into the pod (no such device on the host,
//!   a name taken in the pod...) fails the pod's start with an error naming
//!   it, after moving back the devices already moved; the Go plugin ignores
//!   the error silently and skips the pod's remaining devices;
//! - a device the plugin cannot move back when the pod stops is logged, and
//!   the others are still moved back (the Go plugin stops at the first,
//!   silently);
//! - `new_name` defaults to `name`, and `prefix` to 32 (IPv4) or 128 (IPv6)
//!   when an address is given, as the Go plugin means to: its defaulting
//!   changes a copy, so a device without `new_name` is never moved there;
//! - a device without `name` is refused with the annotation (Go accepts it
//!   and fails to find the device);
//! - `-verbose` logs the whole pod at RunPodSandbox and StopPodSandbox (the
//!   Go plugin's dump prints only the word `pod`), and the debug line names
//!   the pod (Go prints a function's address);
//! - the YAML corners `nri::decode` refuses where Go reads them (see its
//!   documentation, "Differences from Go").

use std::net::IpAddr;
use std::path::Path;

use nri::api::annotations::{self, Scope};
use nri::api::{dump, Event, EventMask, LinuxNamespace, PodSandbox};
use nri::stub::{Context, HandlerResult, Plugin};
use serde::Deserialize;

use super::hostdev::{move_link_in, move_link_out};
use super::netlink::{NetNs, Socket};

/// The annotation key prefixes, current first.
pub const PREFIXES: [&str; 2] = ["netdevice.noderesource.dev", "netdevices.nri.containerd.io"];

/// An annotated network device (the Go plugin's `netdevice`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NetDevice {
    /// `name`: the device on the host.
    pub name: String,
    /// `new_name`: its name in the pod.
    pub new_name: String,
    /// `address`: an IP address, checked but not applied.
    pub address: String,
    /// `prefix`: the address's prefix length, not applied.
    pub prefix: i64,
    /// `mtu`: not applied.
    pub mtu: i64,
}

/// The network device injector plugin.
#[derive(Debug, Default)]
pub struct NetworkDeviceInjector;

impl Plugin for NetworkDeviceInjector {
    fn events(&self) -> EventMask {
        Event::RUN_POD_SANDBOX | Event::STOP_POD_SANDBOX
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        // The logging keys (logFile, syslog, verbose), as every example.
        nri::logging::configure_from_text(config)?;
        Ok(None)
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        log::debug!(
            "Started pod... name={} namespace={}",
            pod.name,
            pod.namespace
        );
        // With -verbose, the pod, as the Go plugin means to dump it.
        dump::log(log::Level::Debug, "RunPodSandbox", "pod", pod);
        let devices = parse_netdevices(pod)?;
        if devices.is_empty() {
            return Ok(());
        }
        let Some(ns) = network_namespace(pod) else {
            log::info!(
                "Pod using host namespace, skipping ... name={} namespace={}",
                pod.name,
                pod.namespace
            );
            return Err("trying to inject network device on host network Pod".into());
        };
        inject_all(&devices, Path::new(ns)).map_err(|e| {
            log::error!("pod {}/{}: {e}", pod.namespace, pod.name);
            e.into()
        })
    }

    fn stop_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        log::debug!(
            "Stopped pod... name={} namespace={}",
            pod.name,
            pod.namespace
        );
        dump::log(log::Level::Debug, "StopPodSandbox", "pod", pod);
        let devices = parse_netdevices(pod)?;
        if devices.is_empty() {
            return Ok(());
        }
        let Some(ns) = network_namespace(pod) else {
            return Ok(());
        };
        for device in &devices {
            if let Err(e) = release(device, Path::new(ns)) {
                log::warn!(
                    "pod {}/{}: cannot move network device {:?} back to the host as {:?}: {e}",
                    pod.namespace,
                    pod.name,
                    device.new_name,
                    device.name
                );
            }
        }
        Ok(())
    }
}

/// The path of the pod's network namespace; `None` for a pod in the host's
/// (no network namespace, or one without a path, as the Go plugin decides).
pub fn network_namespace(pod: &PodSandbox) -> Option<&str> {
    pod.linux
        .namespace(LinuxNamespace::NETWORK)
        .map(|ns| ns.path.as_str())
        .filter(|path| !path.is_empty())
}

/// The devices the pod's annotation asks for, checked and defaulted.
pub fn parse_netdevices(pod: &PodSandbox) -> Result<Vec<NetDevice>, String> {
    let Some(found) =
        annotations::lookup_in(&pod.annotations, &PREFIXES, "", &[Scope::Pod, Scope::Bare])
    else {
        return Ok(Vec::new());
    };
    let key = found.key;
    let mut devices: Vec<NetDevice> = nri::decode::from_yaml(found.value)
        .map_err(|e| format!("invalid device annotation {key:?}: {e}"))?;
    for (i, device) in devices.iter_mut().enumerate() {
        if device.name.is_empty() {
            return Err(format!(
                "invalid device annotation {key:?}: network device {i} has no name"
            ));
        }
        if device.new_name.is_empty() {
            device.new_name = device.name.clone();
        }
        if !device.address.is_empty() {
            let Some(ip) = parse_ip(&device.address) else {
                return Err(format!("error parsing address {}", device.address));
            };
            if device.prefix == 0 {
                device.prefix = if ip.is_ipv4() { 32 } else { 128 };
            }
        }
    }
    Ok(devices)
}

/// An IP address as Go's `net.ParseIP` reads it: dotted IPv4 without
/// leading zeros, or IPv6 (an IPv4-mapped one counting as IPv4), no zone.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// Moves every device into the namespace at `ns`, or none: after a
/// failure, the devices already moved go back.
pub fn inject_all(devices: &[NetDevice], ns: &Path) -> Result<(), String> {
    for (i, device) in devices.iter().enumerate() {
        if let Err(e) = inject(device, ns) {
            for done in devices[..i].iter().rev() {
                if let Err(back) = release(done, ns) {
                    log::warn!(
                        "cannot move network device {:?} back to the host: {back}",
                        done.new_name
                    );
                }
            }
            return Err(format!(
                "cannot inject network device {:?} as {:?}: {e}",
                device.name, device.new_name
            ));
        }
        log::info!(
            "injected network device {:?} as {:?} into {}",
            device.name,
            device.new_name,
            ns.display()
        );
    }
    Ok(())
}

/// Moves `device` from the calling thread's network namespace (the host's)
/// into the one at `ns`.
pub fn inject(device: &NetDevice, ns: &Path) -> Result<(), String> {
    let container_ns = NetNs::open(ns)?;
    let host_ns = NetNs::current()?;
    let mut host = Socket::open().map_err(|e| e.to_string())?;
    let host_dev = host.link_by_name(&device.name).map_err(|e| e.to_string())?;
    move_link_in(
        &mut host,
        &host_ns,
        &host_dev,
        &container_ns,
        &device.new_name,
    )
    .map(|_| ())
    .map_err(|e| format!("failed to move link {e}"))
}

/// Moves `device` out of the network namespace at `ns` back into the
/// calling thread's (the host's).
pub fn release(device: &NetDevice, ns: &Path) -> Result<(), String> {
    let container_ns = NetNs::open(ns)?;
    let host_ns = NetNs::current()?;
    let mut host = Socket::open().map_err(|e| e.to_string())?;
    move_link_out(&mut host, &host_ns, &container_ns, &device.new_name)
}
