//! The writable-cgroups plugin: mounts `/sys/fs/cgroup` read-write in the
//! containers a pod annotation asks for, when the host's cgroup2 hierarchy
//! is mounted with `nsdelegate` (the kernel then keeps a container from
//! raising its own limits, while it may manage sub-cgroups). A port of
//! containerd/nri's `plugins/writable-cgroups`.
//!
//! The annotations, the container's own first:
//!
//! ```yaml
//! cgroups.noderesource.dev/writable.container.<name>: "true"  # one container
//! cgroups.noderesource.dev/writable: "true"                   # every container
//! ```
//!
//! Only the exact value `true` turns it on; any other value of the most
//! specific key present (`false`, `yes`, `True`) leaves the container as it
//! is. At start the plugin reads the host's mount table (`-host-mount-file`,
//! `/host/proc/1/mountinfo` by default, the host's `/proc` mounted at
//! `/host/proc` in a DaemonSet) and, without `nsdelegate` on the cgroup2
//! mount (or if the table cannot be read), ignores every annotation with a
//! warning.
//!
//! For an annotated container it replaces the `/sys/fs/cgroup` mount by the
//! same mount with `ro` dropped and `rw` added (unless already there): the
//! adjustment adds the new mount and removes the old destination, as the Go
//! plugin's does. A container without such a mount fails its creation with
//! `no /sys/fs/cgroup mount found to modify, this is unexpected`.
//!
//! The log lines are the Go plugin's messages followed by its fields the way
//! logrus prints them.
//!
//! Like every example here (and unlike the Go plugin, which takes no
//! configuration), it reads `logFile`, `syslog` and `verbose` from the
//! configuration text the runtime sends (see `nri::logging`): the only
//! settings a plugin the runtime launches gets.

use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, Mount, PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin};

/// The pod-wide annotation key; `<key>.container.<name>` is one container's.
pub const ANNOTATION: &str = "cgroups.noderesource.dev/writable";
/// Where containers see their cgroups.
pub const CGROUPS_MOUNT: &str = "/sys/fs/cgroup";
/// Where the Go plugin reads the host's mount table by default.
pub const DEFAULT_HOST_MOUNT_FILE: &str = "/host/proc/1/mountinfo";

/// The writable-cgroups plugin.
#[derive(Debug, Default)]
pub struct WritableCgroups {
    /// Whether the host's cgroup2 mount has `nsdelegate`: without it the
    /// plugin changes nothing.
    pub host_ns_delegate: bool,
}

impl WritableCgroups {
    /// The plugin, for a host whose cgroup2 mount has `nsdelegate` or not.
    pub fn new(host_ns_delegate: bool) -> Self {
        WritableCgroups { host_ns_delegate }
    }

    /// The plugin for the host whose mount table is at `path`, logging what
    /// it found as the Go plugin does at start.
    pub fn for_host(path: &str) -> Self {
        let ns_delegate = match super::mountinfo::check_host_ns_delegate(path) {
            Err(e) => {
                log::warn!(
                    "Failed to check for nsdelegate option on host cgroup mount, disabling writable cgroups error={}",
                    quote_field(&e)
                );
                false
            }
            Ok(false) => {
                log::warn!(
                    "Host cgroup mount does not have 'nsdelegate' option, disabling writable cgroups"
                );
                false
            }
            Ok(true) => {
                log::info!(
                    "Host cgroup mount has 'nsdelegate' option, enabling writable cgroups support"
                );
                true
            }
        };
        Self::new(ns_delegate)
    }

    /// The adjustment for `container` of `pod`: `None` when there is
    /// nothing to change, an error when the container has no cgroups mount
    /// to change.
    pub fn adjustment_for(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<Option<ContainerAdjustment>, String> {
        let fields = format!(
            "container={} namespace={} pod={}",
            quote_field(&container.name),
            quote_field(&pod.namespace),
            quote_field(&pod.name)
        );
        log::debug!("Started CreateContainer {fields}");
        if !is_writable_cgroups_enabled(pod, container, &fields) {
            return Ok(None);
        }
        if !self.host_ns_delegate {
            log::warn!("cgroup mount on host does not have 'nsdelegate' option; ignoring request to make cgroups writable {fields}");
            return Ok(None);
        }
        let Some(old) = container
            .mounts
            .iter()
            .find(|m| m.destination == CGROUPS_MOUNT)
        else {
            let err = format!("no {CGROUPS_MOUNT} mount found to modify, this is unexpected");
            log::error!(
                "failed to find cgroup mount {fields} error={}",
                quote_field(&err)
            );
            return Err(err);
        };
        let Some(new) = read_write_mount(old) else {
            log::debug!("cgroup mount is already read-write {fields}");
            return Ok(None);
        };
        let mut adjust = ContainerAdjustment::new();
        adjust.add_mount(new);
        adjust.remove_mount(&old.destination);
        log::info!("Successfully adjusted mounts for writable cgroups {fields}");
        Ok(Some(adjust))
    }
}

impl Plugin for WritableCgroups {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
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

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let adjust = self.adjustment_for(pod, container)?;
        Ok((adjust.unwrap_or_default(), Vec::new()))
    }
}

/// Whether the annotations of `pod` ask for writable cgroups in
/// `container`: the container's own key if present, else the pod's; only
/// `true` says yes.
pub fn is_writable_cgroups_enabled(pod: &PodSandbox, container: &Container, fields: &str) -> bool {
    let own = format!("{ANNOTATION}.container.{}", container.name);
    if let Some(value) = pod.annotations.get(&own) {
        log::debug!(
            "Found per-container annotation annotation={} {fields} value={}",
            quote_field(&own),
            quote_field(value)
        );
        return value == "true";
    }
    if let Some(value) = pod.annotations.get(ANNOTATION) {
        log::debug!(
            "Found pod-level annotation annotation={} {fields} value={}",
            quote_field(ANNOTATION),
            quote_field(value)
        );
        return value == "true";
    }
    log::debug!(
        "Pod-level annotation not found annotation={} {fields}",
        quote_field(ANNOTATION)
    );
    false
}

/// `mount` read-write: its options without `ro`, with `rw` added at the end
/// unless present; `None` if that changes nothing.
pub fn read_write_mount(mount: &Mount) -> Option<Mount> {
    let mut options = Vec::with_capacity(mount.options.len() + 1);
    let mut has_rw = false;
    let mut changed = false;
    for option in &mount.options {
        match option.as_str() {
            "rw" => {
                has_rw = true;
                options.push(option.clone());
            }
            "ro" => changed = true,
            _ => options.push(option.clone()),
        }
    }
    if !has_rw {
        options.push("rw".into());
        changed = true;
    }
    changed.then(|| Mount {
        destination: mount.destination.clone(),
        type_: mount.type_.clone(),
        source: mount.source.clone(),
        options,
        ..Default::default()
    })
}

/// A field's value as logrus's text format writes it: as is if it is made
/// of letters, digits and `-._/@^+`, else quoted.
fn quote_field(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'))
    {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}
