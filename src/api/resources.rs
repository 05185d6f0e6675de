//! Linux resource setters shared by [`ContainerAdjustment`](super::ContainerAdjustment)
//! and [`ContainerUpdate`](super::ContainerUpdate).
//!
//! Both messages carry a `LinuxResources` under `linux.resources`, and
//! upstream gives both the same setters. They are written once here, as a
//! macro expanded for each type, each with a doc example run for that type.

/// Expands to one resource setter with its doc example.
macro_rules! resource_setter {
    ($ty:ident, $ctor:literal, $doc:literal, $name:ident($($arg:ident: $argty:ty),*), $call:literal, $check:literal, |$r:ident| $body:expr) => {
        #[doc = $doc]
        #[doc = ""]
        #[doc = "```"]
        #[doc = concat!("use nri::api::{", stringify!($ty), ", OptionalExt};")]
        #[doc = concat!("let mut x = ", $ctor, ";")]
        #[doc = concat!("x.", stringify!($name), "(", $call, ");")]
        #[doc = concat!("assert_eq!(x.linux.resources.", $check, ");")]
        #[doc = "```"]
        pub fn $name(&mut self, $($arg: $argty),*) -> &mut Self {
            let $r = self.resources_mut();
            $body;
            self
        }
    };
}

/// Expands to every Linux resource setter for `$ty`, whose `resources_mut`
/// returns its `LinuxResources`, creating the nested messages.
macro_rules! linux_resource_setters {
    ($ty:ident, $ctor:literal) => {
        impl $ty {
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the memory limit in bytes.", set_linux_memory_limit(value: i64), "1 << 30", "memory.limit.value(), Some(1 << 30)", |r| r.memory.mut_or_insert_default().limit = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the memory reservation (soft limit) in bytes.", set_linux_memory_reservation(value: i64), "256 << 20", "memory.reservation.value(), Some(256 << 20)", |r| r.memory.mut_or_insert_default().reservation = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the memory plus swap limit in bytes.", set_linux_memory_swap(value: i64), "2 << 30", "memory.swap.value(), Some(2 << 30)", |r| r.memory.mut_or_insert_default().swap = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the kernel memory limit in bytes (cgroup v1 only).", set_linux_memory_kernel(value: i64), "64 << 20", "memory.kernel.value(), Some(64 << 20)", |r| r.memory.mut_or_insert_default().kernel = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the kernel TCP buffer memory limit in bytes (cgroup v1 only).", set_linux_memory_kernel_tcp(value: i64), "16 << 20", "memory.kernel_tcp.value(), Some(16 << 20)", |r| r.memory.mut_or_insert_default().kernel_tcp = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the swappiness (0 to 100).", set_linux_memory_swappiness(value: u64), "10", "memory.swappiness.value(), Some(10)", |r| r.memory.mut_or_insert_default().swappiness = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Disables the OOM killer for the container.", set_linux_memory_disable_oom_killer(), "", "memory.disable_oom_killer.value(), Some(true)", |r| r.memory.mut_or_insert_default().disable_oom_killer = optional(true));
            $crate::api::resources::resource_setter!($ty, $ctor, "Enables hierarchical memory accounting (cgroup v1 only).", set_linux_memory_use_hierarchy(), "", "memory.use_hierarchy.value(), Some(true)", |r| r.memory.mut_or_insert_default().use_hierarchy = optional(true));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the CPU shares (relative weight).", set_linux_cpu_shares(value: u64), "2048", "cpu.shares.value(), Some(2048)", |r| r.cpu.mut_or_insert_default().shares = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the CFS quota in microseconds per period (`-1` for no quota).", set_linux_cpu_quota(value: i64), "-1", "cpu.quota.value(), Some(-1)", |r| r.cpu.mut_or_insert_default().quota = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the CFS period in microseconds.", set_linux_cpu_period(value: u64), "100_000", "cpu.period.value(), Some(100_000)", |r| r.cpu.mut_or_insert_default().period = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the realtime runtime in microseconds per realtime period.", set_linux_cpu_realtime_runtime(value: i64), "950_000", "cpu.realtime_runtime.value(), Some(950_000)", |r| r.cpu.mut_or_insert_default().realtime_runtime = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the realtime period in microseconds.", set_linux_cpu_realtime_period(value: u64), "1_000_000", "cpu.realtime_period.value(), Some(1_000_000)", |r| r.cpu.mut_or_insert_default().realtime_period = optional(value));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the cpuset CPUs, in kernel list form (`\"0-3,8\"`).", set_linux_cpuset_cpus(value: impl Into<String>), "\"4-7\"", "cpu.cpus, \"4-7\"", |r| r.cpu.mut_or_insert_default().cpus = value.into());
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the cpuset memory nodes, in kernel list form (`\"0,1\"`).", set_linux_cpuset_mems(value: impl Into<String>), "\"1\"", "cpu.mems, \"1\"", |r| r.cpu.mut_or_insert_default().mems = value.into());
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the maximum number of processes.", set_linux_pid_limits(value: i64), "4096", "pids.limit, 4096", |r| r.pids.mut_or_insert_default().limit = value);
            $crate::api::resources::resource_setter!($ty, $ctor, "Adds a hugepage limit in bytes for one page size (`\"2MB\"`, `\"1GB\"`).", add_linux_hugepage_limit(page_size: impl Into<String>, value: u64), "\"1GB\", 2 << 30", "hugepage_limits[0].page_size, \"1GB\"", |r| r.hugepage_limits.push(HugepageLimit { page_size: page_size.into(), limit: value, ..Default::default() }));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the block I/O class (resolved by the runtime's blockio config).", set_linux_blockio_class(value: impl Into<String>), "\"slow\"", "blockio_class.value().as_deref(), Some(\"slow\")", |r| r.blockio_class = optional(value.into()));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets the RDT (cache and memory bandwidth) class.", set_linux_rdt_class(value: impl Into<String>), "\"bronze\"", "rdt_class.value().as_deref(), Some(\"bronze\")", |r| r.rdt_class = optional(value.into()));
            $crate::api::resources::resource_setter!($ty, $ctor, "Sets a cgroup v2 unified resource: a cgroup file name and its value.", add_linux_unified(key: impl Into<String>, value: impl Into<String>), "\"cpu.weight\", \"50\"", "unified[\"cpu.weight\"], \"50\"", |r| r.unified.insert(key.into(), value.into()));
        }
    };
}

pub(crate) use {linux_resource_setters, resource_setter};
