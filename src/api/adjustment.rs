//! Builder methods on [`ContainerAdjustment`], the changes a plugin asks for
//! in its `CreateContainer` reply, one for each method of upstream's
//! `pkg/api/adjustment.go`.
//!
//! Every method records one change, creates the nested messages it needs,
//! and returns `&mut Self` so that calls chain. Removals are recorded with
//! the `-` marker of [`crate::api::mark_for_removal`]; the runtime applies
//! them before additions, so removing and then adding a key replaces it.
//!
//! ```
//! use nri::api::{ContainerAdjustment, OptionalExt};
//!
//! let mut adjust = ContainerAdjustment::new();
//! adjust
//!     .add_annotation("example.com/adjusted", "true")
//!     .remove_env("DEBUG")
//!     .set_linux_memory_limit(512 << 20)
//!     .set_linux_cpuset_cpus("0-3");
//! let resources = &adjust.linux.resources;
//! assert_eq!(resources.memory.limit.value(), Some(512 << 20));
//! assert_eq!(resources.cpu.cpus, "0-3");
//! assert_eq!(adjust.env[0].key, "-DEBUG");
//! ```
//!
//! Setter names follow upstream in Rust casing (`SetLinuxCPUSetCPUs` is
//! `set_linux_cpuset_cpus`, `SetLinuxPidLimits` is `set_linux_pid_limits`).
//! Each setter takes the type of the wire field it sets, so
//! `set_linux_cpu_period` takes a `u64` where upstream takes an `int64`.

use super::{
    mark_for_removal, optional, CDIDevice, ContainerAdjustment, Hooks, HugepageLimit, KeyValue,
    LinuxContainerAdjustment, LinuxDevice, LinuxResources, Mount, OptionalExt, POSIXRlimit,
};

impl ContainerAdjustment {
    fn linux_mut(&mut self) -> &mut LinuxContainerAdjustment {
        self.linux.mut_or_insert_default()
    }

    fn resources_mut(&mut self) -> &mut LinuxResources {
        self.linux_mut().resources.mut_or_insert_default()
    }

    /// Adds (or replaces) the annotation `key=value`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_annotation("owner", "team-a");
    /// assert_eq!(adjust.annotations["owner"], "team-a");
    /// ```
    pub fn add_annotation(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Removes the annotation `key`. Removing an annotation first also lets
    /// the plugin set it again even if another plugin set it before.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_annotation("owner");
    /// assert_eq!(adjust.annotations["-owner"], "");
    /// ```
    pub fn remove_annotation(&mut self, key: &str) -> &mut Self {
        self.annotations
            .insert(mark_for_removal(key), String::new());
        self
    }

    /// Adds a mount.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, Mount};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_mount(Mount {
    ///     destination: "/scratch".into(),
    ///     type_: "tmpfs".into(),
    ///     source: "tmpfs".into(),
    ///     options: vec!["nosuid".into()],
    ///     ..Default::default()
    /// });
    /// assert_eq!(adjust.mounts[0].destination, "/scratch");
    /// ```
    pub fn add_mount(&mut self, mount: Mount) -> &mut Self {
        self.mounts.push(mount);
        self
    }

    /// Removes the mount whose destination in the container is
    /// `container_path`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_mount("/scratch");
    /// assert_eq!(adjust.mounts[0].destination, "-/scratch");
    /// ```
    pub fn remove_mount(&mut self, container_path: &str) -> &mut Self {
        self.mounts.push(Mount {
            destination: mark_for_removal(container_path),
            ..Default::default()
        });
        self
    }

    /// Adds (or overrides) the environment variable `key=value`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_env("LOG_LEVEL", "debug");
    /// assert_eq!((adjust.env[0].key.as_str(), adjust.env[0].value.as_str()), ("LOG_LEVEL", "debug"));
    /// ```
    pub fn add_env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.push(KeyValue::pair(key, value));
        self
    }

    /// Removes the environment variable `key`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_env("LOG_LEVEL");
    /// assert_eq!(adjust.env[0].key, "-LOG_LEVEL");
    /// ```
    pub fn remove_env(&mut self, key: &str) -> &mut Self {
        self.env.push(KeyValue::pair(mark_for_removal(key), ""));
        self
    }

    /// Appends OCI hooks, each list after the hooks already recorded.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, Hook, Hooks};
    /// let hook = Hook { path: "/usr/bin/true".into(), ..Default::default() };
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_hooks(Hooks { prestart: vec![hook.clone()], ..Default::default() });
    /// adjust.add_hooks(Hooks { prestart: vec![hook], ..Default::default() });
    /// assert_eq!(adjust.hooks.prestart.len(), 2);
    /// ```
    pub fn add_hooks(&mut self, hooks: Hooks) -> &mut Self {
        self.hooks.mut_or_insert_default().append(hooks);
        self
    }

    /// Adds a POSIX resource limit, such as `RLIMIT_NOFILE`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_rlimit("RLIMIT_NOFILE", 4096, 1024);
    /// let rlimit = &adjust.rlimits[0];
    /// assert_eq!((rlimit.type_.as_str(), rlimit.hard, rlimit.soft), ("RLIMIT_NOFILE", 4096, 1024));
    /// ```
    pub fn add_rlimit(&mut self, type_: impl Into<String>, hard: u64, soft: u64) -> &mut Self {
        self.rlimits.push(POSIXRlimit {
            type_: type_.into(),
            hard,
            soft,
            ..Default::default()
        });
        self
    }

    /// Adds a Linux device node. The runtime also lets the container use
    /// it: it adds an *allow* rule for the device's type, major and minor to
    /// the container's device cgroup, with the access of
    /// [`LinuxDevice::access_string`], so no separate cgroup rule is needed.
    /// A device of the same path replaces one the container already has.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, LinuxDevice};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_device(LinuxDevice {
    ///     path: "/dev/fuse".into(),
    ///     type_: "c".into(),
    ///     major: 10,
    ///     minor: 229,
    ///     ..Default::default()
    /// });
    /// assert_eq!(adjust.linux.devices[0].minor, 229);
    /// ```
    pub fn add_device(&mut self, device: LinuxDevice) -> &mut Self {
        self.linux_mut().devices.push(device);
        self
    }

    /// Removes the device node at `path`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_device("/dev/fuse");
    /// assert_eq!(adjust.linux.devices[0].path, "-/dev/fuse");
    /// ```
    pub fn remove_device(&mut self, path: &str) -> &mut Self {
        self.linux_mut().devices.push(LinuxDevice {
            path: mark_for_removal(path),
            ..Default::default()
        });
        self
    }

    /// Adds a CDI device by its fully qualified name (`vendor.com/class=name`);
    /// the runtime resolves it with its CDI registry.
    ///
    /// ```
    /// use nri::api::{CDIDevice, ContainerAdjustment};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_cdi_device(CDIDevice { name: "vendor.com/gpu=0".into(), ..Default::default() });
    /// assert_eq!(adjust.CDI_devices[0].name, "vendor.com/gpu=0");
    /// ```
    pub fn add_cdi_device(&mut self, device: CDIDevice) -> &mut Self {
        self.CDI_devices.push(device);
        self
    }

    /// Replaces the container's command line (`args[0]` is the program).
    /// Another plugin that also sets the arguments conflicts with this one.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_args(["/bin/sh", "-c", "exec app"]);
    /// assert_eq!(adjust.args, ["/bin/sh", "-c", "exec app"]);
    /// ```
    pub fn set_args<S: Into<String>>(&mut self, args: impl IntoIterator<Item = S>) -> &mut Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the container's command line, taking it over from a plugin
    /// that set it earlier in the chain instead of conflicting with it
    /// (recorded, as upstream does, as the arguments after an empty first
    /// element).
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.update_args(["/bin/app", "--verbose"]);
    /// assert_eq!(adjust.args, ["", "/bin/app", "--verbose"]);
    /// ```
    pub fn update_args<S: Into<String>>(&mut self, args: impl IntoIterator<Item = S>) -> &mut Self {
        self.args = std::iter::once(String::new())
            .chain(args.into_iter().map(Into::into))
            .collect();
        self
    }

    /// Sets the container's cgroups path.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_cgroups_path("/kubepods/pod1/ctr1");
    /// assert_eq!(adjust.linux.cgroups_path, "/kubepods/pod1/ctr1");
    /// ```
    pub fn set_linux_cgroups_path(&mut self, value: impl Into<String>) -> &mut Self {
        self.linux_mut().cgroups_path = value.into();
        self
    }

    /// Sets the OOM score adjustment, or with `None` withdraws a value this
    /// adjustment set earlier.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, OptionalExt};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_oom_score_adj(Some(-500));
    /// assert_eq!(adjust.linux.oom_score_adj.value(), Some(-500));
    /// adjust.set_linux_oom_score_adj(None);
    /// assert_eq!(adjust.linux.oom_score_adj.value(), None);
    /// ```
    pub fn set_linux_oom_score_adj(&mut self, value: Option<i64>) -> &mut Self {
        self.linux_mut().oom_score_adj.set_value(value);
        self
    }
}

super::resources::linux_resource_setters!(ContainerAdjustment, "ContainerAdjustment::new()");

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::api::{is_marked_for_removal, Hook};
    use protobuf::Message;

    /// Calls every Linux resource setter that [`ContainerAdjustment`] and
    /// [`ContainerUpdate`](crate::api::ContainerUpdate) share, with the
    /// values 1 to 14; evaluates to the target for further chaining.
    macro_rules! set_every_linux_resource {
        ($target:expr) => {
            $target
                .set_linux_memory_limit(1)
                .set_linux_memory_reservation(2)
                .set_linux_memory_swap(3)
                .set_linux_memory_kernel(4)
                .set_linux_memory_kernel_tcp(5)
                .set_linux_memory_swappiness(6)
                .set_linux_memory_disable_oom_killer()
                .set_linux_memory_use_hierarchy()
                .set_linux_cpu_shares(7)
                .set_linux_cpu_quota(8)
                .set_linux_cpu_period(9)
                .set_linux_cpu_realtime_runtime(10)
                .set_linux_cpu_realtime_period(11)
                .set_linux_cpuset_cpus("0-1")
                .set_linux_cpuset_mems("0")
                .set_linux_pid_limits(12)
                .add_linux_hugepage_limit("2MB", 13)
                .set_linux_blockio_class("io")
                .set_linux_rdt_class("rdt")
                .add_linux_unified("memory.max", "14")
        };
    }
    pub(in crate::api) use set_every_linux_resource;

    #[test]
    fn setters_chain_and_create_nested_messages() {
        let mut adjust = ContainerAdjustment::new();
        set_every_linux_resource!(adjust)
            .set_linux_cgroups_path("/cg")
            .set_linux_oom_score_adj(Some(15));

        let linux = &adjust.linux;
        let res = &linux.resources;
        let (mem, cpu) = (&res.memory, &res.cpu);
        let signed = [
            mem.limit.value(),
            mem.reservation.value(),
            mem.swap.value(),
            mem.kernel.value(),
            mem.kernel_tcp.value(),
            cpu.quota.value(),
            cpu.realtime_runtime.value(),
        ];
        assert_eq!(signed, [1, 2, 3, 4, 5, 8, 10].map(Some));
        let unsigned = [
            mem.swappiness.value(),
            cpu.shares.value(),
            cpu.period.value(),
            cpu.realtime_period.value(),
        ];
        assert_eq!(unsigned, [6, 7, 9, 11].map(Some));
        let flags = [mem.disable_oom_killer.value(), mem.use_hierarchy.value()];
        assert_eq!(flags, [Some(true); 2]);
        assert_eq!((cpu.cpus.as_str(), cpu.mems.as_str()), ("0-1", "0"));
        assert_eq!(res.pids.limit, 12);
        assert_eq!(res.hugepage_limits[0].limit, 13);
        assert_eq!(res.blockio_class.value().as_deref(), Some("io"));
        assert_eq!(res.rdt_class.value().as_deref(), Some("rdt"));
        assert_eq!(res.unified["memory.max"], "14");
        assert_eq!(linux.cgroups_path, "/cg");
        assert_eq!(linux.oom_score_adj.value(), Some(15));
    }

    #[test]
    fn untouched_adjustment_stays_empty_on_the_wire() {
        let adjust = ContainerAdjustment::new();
        assert!(adjust.write_to_bytes().unwrap().is_empty());
        assert!(adjust.linux.is_none());
    }

    #[test]
    fn removals_use_the_removal_marker() {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .remove_annotation("a")
            .remove_mount("/m")
            .remove_env("E")
            .remove_device("/dev/d");
        assert_eq!(adjust.annotations.get("-a").map(String::as_str), Some(""));
        assert_eq!(
            is_marked_for_removal(&adjust.mounts[0].destination),
            Some("/m")
        );
        assert_eq!(is_marked_for_removal(&adjust.env[0].key), Some("E"));
        assert_eq!(
            is_marked_for_removal(&adjust.linux.devices[0].path),
            Some("/dev/d")
        );
    }

    #[test]
    fn remove_then_add_annotation_keeps_both_records() {
        let mut adjust = ContainerAdjustment::new();
        adjust.remove_annotation("k").add_annotation("k", "v");
        assert_eq!(adjust.annotations.len(), 2);
        assert_eq!(adjust.annotations["k"], "v");
    }

    #[test]
    fn add_hooks_appends_every_kind_in_order() {
        let hook = |path: &str| Hook {
            path: path.to_string(),
            ..Default::default()
        };
        let mut adjust = ContainerAdjustment::new();
        adjust.add_hooks(Hooks {
            prestart: vec![hook("p1")],
            poststop: vec![hook("s1")],
            ..Default::default()
        });
        adjust.add_hooks(
            Hooks::new()
                .with_prestart(hook("p2"))
                .with_create_runtime(hook("r"))
                .with_create_container(hook("c"))
                .with_start_container(hook("st"))
                .with_poststart(hook("ps")),
        );
        let hooks = &adjust.hooks;
        let paths: Vec<&str> = hooks.prestart.iter().map(|h| h.path.as_str()).collect();
        assert_eq!(paths, ["p1", "p2"]);
        assert_eq!(hooks.create_runtime.len(), 1);
        assert_eq!(hooks.create_container.len(), 1);
        assert_eq!(hooks.start_container.len(), 1);
        assert_eq!(hooks.poststart.len(), 1);
        assert_eq!(hooks.poststop[0].path, "s1");
    }

    #[test]
    fn oom_score_adj_none_clears_an_earlier_value() {
        let mut adjust = ContainerAdjustment::new();
        adjust.set_linux_oom_score_adj(Some(0));
        assert_eq!(adjust.linux.oom_score_adj.value(), Some(0));
        adjust.set_linux_oom_score_adj(None);
        assert!(adjust.linux.oom_score_adj.is_none());
        assert!(adjust.linux.is_some());
    }

    #[test]
    fn adjustment_survives_the_wire() {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .add_env("A", "1")
            .add_rlimit("RLIMIT_NOFILE", 2, 1)
            .add_cdi_device(CDIDevice {
                name: "vendor.com/dev=x".into(),
                ..Default::default()
            })
            .set_linux_memory_swappiness(0);
        let bytes = adjust.write_to_bytes().unwrap();
        let decoded = ContainerAdjustment::parse_from_bytes(&bytes).unwrap();
        assert_eq!(decoded, adjust);
        assert_eq!(decoded.linux.resources.memory.swappiness.value(), Some(0));
    }
}
