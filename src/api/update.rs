//! Builder methods on [`ContainerUpdate`], a change to the resources of an
//! existing container, one for each method of upstream's
//! `pkg/api/update.go`.
//!
//! A plugin returns updates from `CreateContainer`, `UpdateContainer`,
//! `StopContainer` and `Synchronize`, or sends them on its own through
//! `UpdateContainers`. Every setter creates the nested messages it needs and
//! returns `&mut Self` so that calls chain; names and argument types match
//! the [`ContainerAdjustment`](super::ContainerAdjustment) setters.
//!
//! ```
//! use nri::api::{ContainerUpdate, OptionalExt};
//!
//! let mut update = ContainerUpdate::for_container("ctr-1");
//! update.set_linux_cpu_shares(1024).set_linux_cpuset_cpus("2-3").set_ignore_failure();
//! assert_eq!(update.container_id, "ctr-1");
//! assert_eq!(update.linux.resources.cpu.shares.value(), Some(1024));
//! assert!(update.ignore_failure);
//! ```
//!
//! Upstream's `LinuxResources` conversions (`FromOCILinuxResources`,
//! `FromCRILinuxResources`, `ToOCI`, `ToCRI`) need runtime-spec and CRI
//! types and are left out; its `Copy` is `LinuxResources::clone`.

use super::{optional, ContainerUpdate, HugepageLimit, LinuxResources};

impl ContainerUpdate {
    fn resources_mut(&mut self) -> &mut LinuxResources {
        self.linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default()
    }

    /// An empty update for the container with this id.
    ///
    /// ```
    /// use nri::api::ContainerUpdate;
    /// let update = ContainerUpdate::for_container("ctr-1");
    /// assert_eq!(update.container_id, "ctr-1");
    /// assert!(update.linux.is_none());
    /// ```
    pub fn for_container(container_id: impl Into<String>) -> ContainerUpdate {
        ContainerUpdate {
            container_id: container_id.into(),
            ..Default::default()
        }
    }

    /// Sets the id of the container to update.
    ///
    /// ```
    /// use nri::api::ContainerUpdate;
    /// let mut update = ContainerUpdate::new();
    /// update.set_container_id("ctr-2");
    /// assert_eq!(update.container_id, "ctr-2");
    /// ```
    pub fn set_container_id(&mut self, container_id: impl Into<String>) -> &mut Self {
        self.container_id = container_id.into();
        self
    }

    /// Replaces all the Linux resources of the update at once, for example
    /// with a modified copy of the resources a request carried.
    ///
    /// ```
    /// use nri::api::{ContainerUpdate, LinuxResources, OptionalExt};
    /// let mut resources = LinuxResources::new();
    /// resources.memory.mut_or_insert_default().limit.set_value(Some(1 << 30));
    /// let mut update = ContainerUpdate::for_container("ctr-1");
    /// update.set_linux_resources(resources);
    /// assert_eq!(update.linux.resources.memory.limit.value(), Some(1 << 30));
    /// ```
    pub fn set_linux_resources(&mut self, resources: LinuxResources) -> &mut Self {
        *self.resources_mut() = resources;
        self
    }

    /// Marks the update as optional: if the runtime fails to apply it, the
    /// container operation it came with still succeeds.
    ///
    /// ```
    /// use nri::api::ContainerUpdate;
    /// let mut update = ContainerUpdate::for_container("c");
    /// update.set_ignore_failure();
    /// assert!(update.ignore_failure);
    /// ```
    pub fn set_ignore_failure(&mut self) -> &mut Self {
        self.ignore_failure = true;
        self
    }
}

super::resources::linux_resource_setters!(ContainerUpdate, "ContainerUpdate::for_container(\"c\")");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::adjustment::tests::set_every_linux_resource;
    use crate::api::{ContainerAdjustment, OptionalExt};
    use protobuf::Message;

    #[test]
    fn setters_chain_and_set_what_the_adjustment_setters_set() {
        let mut update = ContainerUpdate::for_container("ctr");
        set_every_linux_resource!(update).set_ignore_failure();
        let mut adjust = ContainerAdjustment::new();
        set_every_linux_resource!(adjust);
        // The adjustment's test checks each value.
        assert_eq!(update.linux.resources, adjust.linux.resources);
        assert_eq!(update.linux.resources.pids.limit, 12);
        assert!(update.ignore_failure);
        assert_eq!(update.container_id, "ctr");
    }

    #[test]
    fn set_linux_resources_replaces_earlier_settings() {
        let mut update = ContainerUpdate::for_container("ctr");
        update.set_linux_cpu_shares(1);
        let mut resources = LinuxResources::new();
        resources.pids.mut_or_insert_default().limit = 9;
        update
            .set_linux_resources(resources)
            .set_linux_memory_limit(5);
        let res = &update.linux.resources;
        assert!(res.cpu.is_none());
        assert_eq!(res.pids.limit, 9);
        assert_eq!(res.memory.limit.value(), Some(5));
    }

    #[test]
    fn container_id_can_be_changed() {
        let mut update = ContainerUpdate::for_container("a");
        update.set_container_id("b");
        assert_eq!(update.container_id, "b");
    }

    #[test]
    fn update_survives_the_wire() {
        let mut update = ContainerUpdate::for_container("ctr");
        update
            .set_linux_cpu_quota(-1)
            .set_linux_memory_swappiness(0);
        let bytes = update.write_to_bytes().unwrap();
        let decoded = ContainerUpdate::parse_from_bytes(&bytes).unwrap();
        assert_eq!(decoded, update);
        assert_eq!(decoded.linux.resources.cpu.quota.value(), Some(-1));
    }
}
