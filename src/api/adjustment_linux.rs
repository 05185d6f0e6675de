//! The [`ContainerAdjustment`] changes added in NRI v0.10 to v0.12 that are
//! not cgroup resources: namespaces, network devices, sysctls, I/O
//! priority, seccomp policy, process scheduling, RDT and memory policy (Go
//! `pkg/api` v0.12.5 `SetLinuxIOPriority`, `AddOrReplaceNamespace`, ...).
//!
//! A runtime embedding an older NRI ignores these fields: check
//! [`crate::stub::Stub::runtime`] where that matters.
//!
//! ```
//! use nri::api::{ContainerAdjustment, IOPrioClass, LinuxIOPriority, LinuxNamespace};
//!
//! let mut adjust = ContainerAdjustment::new();
//! adjust
//!     .set_linux_io_priority(LinuxIOPriority::with_class(IOPrioClass::IOPRIO_CLASS_BE, 4))
//!     .add_or_replace_namespace(LinuxNamespace { type_: "network".into(), path: "/var/run/netns/blue".into(), ..Default::default() })
//!     .set_linux_sysctl("net.core.somaxconn", "1024");
//! assert_eq!(adjust.linux.namespaces[0].path, "/var/run/netns/blue");
//! assert_eq!(adjust.linux.sysctl["net.core.somaxconn"], "1024");
//! ```

use protobuf::MessageField;

use super::{
    mark_for_removal, optional, ContainerAdjustment, IOPrioClass, LinuxIOPriority,
    LinuxMemoryPolicy, LinuxNamespace, LinuxNetDevice, LinuxScheduler, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, LinuxSeccomp, MpolFlag, MpolMode, OptionalRepeatedString,
};

impl ContainerAdjustment {
    /// Adds a namespace to join or create, replacing one of the same type
    /// (`network`, `ipc`, `uts`, `mount`, `pid`, `user`, `cgroup`, `time`)
    /// the container already has.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, LinuxNamespace};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_or_replace_namespace(LinuxNamespace { type_: "network".into(), path: "/var/run/netns/blue".into(), ..Default::default() });
    /// assert_eq!(adjust.linux.namespaces[0].type_, "network");
    /// ```
    pub fn add_or_replace_namespace(&mut self, namespace: LinuxNamespace) -> &mut Self {
        self.linux
            .mut_or_insert_default()
            .namespaces
            .push(namespace);
        self
    }

    /// Removes the container's namespace of the given type (recorded as
    /// the type with the removal marker, as upstream does).
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_namespace("ipc");
    /// assert_eq!(adjust.linux.namespaces[0].type_, "-ipc");
    /// ```
    pub fn remove_namespace(&mut self, type_: &str) -> &mut Self {
        self.linux
            .mut_or_insert_default()
            .namespaces
            .push(LinuxNamespace {
                type_: mark_for_removal(type_),
                ..Default::default()
            });
        self
    }

    /// Moves the host network device `host_device` into the container,
    /// as `device` (whose name is the device's name inside the container).
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, LinuxNetDevice};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_linux_net_device("enp3s0f1", LinuxNetDevice::named("net1"));
    /// assert_eq!(adjust.linux.net_devices["enp3s0f1"].name, "net1");
    /// ```
    pub fn add_linux_net_device(
        &mut self,
        host_device: impl Into<String>,
        device: LinuxNetDevice,
    ) -> &mut Self {
        self.linux
            .mut_or_insert_default()
            .net_devices
            .insert(host_device.into(), device);
        self
    }

    /// Withdraws the host network device `host_device` from the container.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_linux_net_device("enp3s0f1");
    /// assert!(adjust.linux.net_devices.contains_key("-enp3s0f1"));
    /// ```
    pub fn remove_linux_net_device(&mut self, host_device: &str) -> &mut Self {
        self.linux
            .mut_or_insert_default()
            .net_devices
            .insert(mark_for_removal(host_device), LinuxNetDevice::named(""));
        self
    }

    /// Sets a namespaced kernel parameter (`net.ipv4.ip_forward`) to
    /// `value`.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_sysctl("net.ipv4.ip_forward", "1");
    /// assert_eq!(adjust.linux.sysctl["net.ipv4.ip_forward"], "1");
    /// ```
    pub fn set_linux_sysctl(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Self {
        self.linux
            .mut_or_insert_default()
            .sysctl
            .insert(key.into(), value.into());
        self
    }

    /// Sets the container's I/O priority.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, IOPrioClass, LinuxIOPriority};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_io_priority(LinuxIOPriority::with_class(IOPrioClass::IOPRIO_CLASS_IDLE, 0));
    /// assert_eq!(adjust.linux.io_priority.class.enum_value(), Ok(IOPrioClass::IOPRIO_CLASS_IDLE));
    /// ```
    pub fn set_linux_io_priority(&mut self, priority: LinuxIOPriority) -> &mut Self {
        self.linux.mut_or_insert_default().io_priority = MessageField::some(priority);
        self
    }

    /// Replaces the container's seccomp policy.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, LinuxSeccomp};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_seccomp_policy(LinuxSeccomp::with_default_action("SCMP_ACT_LOG"));
    /// assert_eq!(adjust.linux.seccomp_policy.default_action, "SCMP_ACT_LOG");
    /// ```
    pub fn set_linux_seccomp_policy(&mut self, policy: LinuxSeccomp) -> &mut Self {
        self.linux.mut_or_insert_default().seccomp_policy = MessageField::some(policy);
        self
    }

    /// Sets the scheduling policy and attributes of the container's
    /// process.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, LinuxScheduler, LinuxSchedulerPolicy};
    /// let mut adjust = ContainerAdjustment::new();
    /// let mut sched = LinuxScheduler::with_policy(LinuxSchedulerPolicy::SCHED_BATCH);
    /// sched.nice = 5;
    /// adjust.set_linux_scheduler(sched);
    /// assert_eq!(adjust.linux.scheduler.nice, 5);
    /// ```
    pub fn set_linux_scheduler(&mut self, scheduler: LinuxScheduler) -> &mut Self {
        self.linux.mut_or_insert_default().scheduler = MessageField::some(scheduler);
        self
    }

    /// Sets the RDT class of service (CLOS) the container is assigned to.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, OptionalExt};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_rdt_clos_id("gold");
    /// assert_eq!(adjust.linux.rdt.clos_id.value().as_deref(), Some("gold"));
    /// ```
    pub fn set_linux_rdt_clos_id(&mut self, value: impl Into<String>) -> &mut Self {
        let rdt = self
            .linux
            .mut_or_insert_default()
            .rdt
            .mut_or_insert_default();
        rdt.clos_id = optional(value.into());
        self
    }

    /// Sets the RDT schemata (lines such as `L3:0=ff`) of the container's
    /// class of service.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_rdt_schemata(["L3:0=ff", "MB:0=50"]);
    /// assert_eq!(adjust.linux.rdt.schemata.value, ["L3:0=ff", "MB:0=50"]);
    /// ```
    pub fn set_linux_rdt_schemata<S: Into<String>>(
        &mut self,
        schemata: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        let rdt = self
            .linux
            .mut_or_insert_default()
            .rdt
            .mut_or_insert_default();
        rdt.schemata = MessageField::some(OptionalRepeatedString {
            value: schemata.into_iter().map(Into::into).collect(),
            ..Default::default()
        });
        self
    }

    /// Turns RDT monitoring of the container on or off.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, OptionalExt};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_rdt_enable_monitoring(true);
    /// assert_eq!(adjust.linux.rdt.enable_monitoring.value(), Some(true));
    /// ```
    pub fn set_linux_rdt_enable_monitoring(&mut self, enable: bool) -> &mut Self {
        let rdt = self
            .linux
            .mut_or_insert_default()
            .rdt
            .mut_or_insert_default();
        rdt.enable_monitoring = optional(enable);
        self
    }

    /// Removes the container's RDT configuration (class, schemata and
    /// monitoring).
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_linux_rdt();
    /// assert!(adjust.linux.rdt.remove);
    /// ```
    pub fn remove_linux_rdt(&mut self) -> &mut Self {
        self.linux
            .mut_or_insert_default()
            .rdt
            .mut_or_insert_default()
            .remove = true;
        self
    }

    /// Sets the NUMA memory policy of the container's process: a mode, the
    /// nodes in kernel list form (`"0-1"`) and mode flags.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, MpolFlag, MpolMode};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.set_linux_memory_policy(MpolMode::MPOL_BIND, "0", &[MpolFlag::MPOL_F_STATIC_NODES]);
    /// assert_eq!(adjust.linux.memory_policy.nodes, "0");
    /// assert_eq!(adjust.linux.memory_policy.flags.len(), 1);
    /// ```
    pub fn set_linux_memory_policy(
        &mut self,
        mode: MpolMode,
        nodes: impl Into<String>,
        flags: &[MpolFlag],
    ) -> &mut Self {
        self.linux.mut_or_insert_default().memory_policy = MessageField::some(LinuxMemoryPolicy {
            mode: mode.into(),
            nodes: nodes.into(),
            flags: flags.iter().map(|f| (*f).into()).collect(),
            ..Default::default()
        });
        self
    }
}

impl LinuxIOPriority {
    /// An I/O priority: a scheduling class and a level within it (0, the
    /// highest, to 7).
    pub fn with_class(class: IOPrioClass, priority: i32) -> LinuxIOPriority {
        LinuxIOPriority {
            class: class.into(),
            priority,
            ..Default::default()
        }
    }
}

impl LinuxNetDevice {
    /// A network device with its name inside the container.
    pub fn named(name: impl Into<String>) -> LinuxNetDevice {
        LinuxNetDevice {
            name: name.into(),
            ..Default::default()
        }
    }
}

impl LinuxSeccomp {
    /// A seccomp policy with only its default action (`SCMP_ACT_ALLOW`,
    /// `SCMP_ACT_ERRNO`, ...); add rules to `syscalls`.
    pub fn with_default_action(action: impl Into<String>) -> LinuxSeccomp {
        LinuxSeccomp {
            default_action: action.into(),
            ..Default::default()
        }
    }
}

impl LinuxScheduler {
    /// Scheduling attributes with only the policy set; set `nice`,
    /// `priority`, `flags` and the deadline parameters as needed.
    pub fn with_policy(policy: LinuxSchedulerPolicy) -> LinuxScheduler {
        LinuxScheduler {
            policy: policy.into(),
            ..Default::default()
        }
    }

    /// Adds a scheduler flag.
    pub fn add_flag(&mut self, flag: LinuxSchedulerFlag) -> &mut Self {
        self.flags.push(flag.into());
        self
    }
}

impl LinuxNamespace {
    /// The removed namespace type when this entry is a removal (`-ipc`),
    /// else `None`.
    ///
    /// ```
    /// use nri::api::LinuxNamespace;
    /// let mut ns = LinuxNamespace::new();
    /// ns.type_ = "-ipc".into();
    /// assert_eq!(ns.is_marked_for_removal(), Some("ipc"));
    /// ns.type_ = "ipc".into();
    /// assert_eq!(ns.is_marked_for_removal(), None);
    /// ```
    pub fn is_marked_for_removal(&self) -> Option<&str> {
        super::is_marked_for_removal(&self.type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LinuxSyscall, OptionalExt};

    fn ns(type_: &str, path: &str) -> LinuxNamespace {
        LinuxNamespace {
            type_: type_.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_v0_12_setter_lands_in_its_field() {
        let mut adjust = ContainerAdjustment::new();
        let mut sched = LinuxScheduler::with_policy(LinuxSchedulerPolicy::SCHED_FIFO);
        sched.priority = 10;
        sched.add_flag(LinuxSchedulerFlag::SCHED_FLAG_RESET_ON_FORK);
        let mut seccomp = LinuxSeccomp::with_default_action("SCMP_ACT_ALLOW");
        seccomp.syscalls.push(LinuxSyscall {
            names: vec!["mount".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: optional(1u32),
            ..Default::default()
        });
        adjust
            .add_or_replace_namespace(ns("network", "/ns"))
            .remove_namespace("ipc")
            .add_linux_net_device("eth1", LinuxNetDevice::named("net0"))
            .remove_linux_net_device("eth2")
            .set_linux_sysctl("kernel.msgmax", "65536")
            .set_linux_io_priority(LinuxIOPriority::with_class(IOPrioClass::IOPRIO_CLASS_RT, 2))
            .set_linux_seccomp_policy(seccomp)
            .set_linux_scheduler(sched)
            .set_linux_rdt_clos_id("gold")
            .set_linux_rdt_schemata(["L3:0=f"])
            .set_linux_rdt_enable_monitoring(false)
            .set_linux_memory_policy(MpolMode::MPOL_INTERLEAVE, "0-1", &[]);
        let linux = &adjust.linux;
        assert_eq!(linux.namespaces.len(), 2);
        assert_eq!(linux.namespaces[1].is_marked_for_removal(), Some("ipc"));
        assert_eq!(linux.net_devices["eth1"].name, "net0");
        assert!(linux.net_devices.contains_key("-eth2"));
        assert_eq!(linux.sysctl["kernel.msgmax"], "65536");
        assert_eq!(linux.io_priority.priority, 2);
        assert_eq!(linux.seccomp_policy.syscalls[0].errno_ret.value(), Some(1));
        assert_eq!(linux.scheduler.priority, 10);
        assert_eq!(linux.scheduler.flags.len(), 1);
        assert_eq!(linux.rdt.clos_id.value().as_deref(), Some("gold"));
        assert_eq!(linux.rdt.schemata.value, ["L3:0=f"]);
        assert_eq!(linux.rdt.enable_monitoring.value(), Some(false));
        assert!(!linux.rdt.remove);
        assert_eq!(
            linux.memory_policy.mode.enum_value(),
            Ok(MpolMode::MPOL_INTERLEAVE)
        );
    }

    #[test]
    fn set_args_and_update_args_follow_upstream() {
        let mut adjust = ContainerAdjustment::new();
        adjust.set_args(["/bin/app", "--flag"]);
        assert_eq!(adjust.args, ["/bin/app", "--flag"]);
        adjust.update_args(["--extra"]);
        assert_eq!(adjust.args, ["", "--extra"]);
    }
}
