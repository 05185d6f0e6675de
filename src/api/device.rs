//! Helpers on [`LinuxDevice`]: constructors for device nodes, the cgroup
//! access string, comparison and the removal marker.
//!
//! Upstream's conversions to and from OCI runtime-spec devices (`ToOCI`,
//! `FromOCILinuxDevices`) are left out: they need the runtime-spec types,
//! which this crate does not model.

use super::{is_marked_for_removal, optional, LinuxDevice};

impl LinuxDevice {
    /// A character device node at `path` (its path in the container) with
    /// the given major and minor numbers. Mode, owner and group are unset:
    /// the OCI runtime's defaults apply unless [`LinuxDevice::with_file_mode`],
    /// [`LinuxDevice::with_uid`] or [`LinuxDevice::with_gid`] set them.
    ///
    /// Added with [`ContainerAdjustment::add_device`](super::ContainerAdjustment::add_device),
    /// the device is also allowed in the container's device cgroup
    /// ([`LinuxDevice::access_string`]).
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, LinuxDevice, OptionalExt};
    /// let fuse = LinuxDevice::char_device("/dev/fuse", 10, 229).with_file_mode(0o666);
    /// assert_eq!((fuse.type_.as_str(), fuse.major, fuse.minor), ("c", 10, 229));
    /// assert_eq!(fuse.file_mode.value(), Some(0o666));
    /// assert_eq!(fuse.uid.value(), None);
    ///
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_device(fuse);
    /// assert_eq!(adjust.linux.devices[0].path, "/dev/fuse");
    /// ```
    pub fn char_device(path: impl Into<String>, major: i64, minor: i64) -> LinuxDevice {
        LinuxDevice::node(path, "c", major, minor)
    }

    /// A block device node at `path` (its path in the container) with the
    /// given major and minor numbers; see [`LinuxDevice::char_device`].
    ///
    /// ```
    /// use nri::api::{LinuxDevice, OptionalExt};
    /// let disk = LinuxDevice::block_device("/dev/xvdb", 202, 16).with_uid(0).with_gid(6);
    /// assert_eq!(disk.type_, "b");
    /// assert_eq!(disk.access_string(), "rwm");
    /// assert_eq!((disk.uid.value(), disk.gid.value()), (Some(0), Some(6)));
    /// ```
    pub fn block_device(path: impl Into<String>, major: i64, minor: i64) -> LinuxDevice {
        LinuxDevice::node(path, "b", major, minor)
    }

    fn node(path: impl Into<String>, type_: &str, major: i64, minor: i64) -> LinuxDevice {
        LinuxDevice {
            path: path.into(),
            type_: type_.to_string(),
            major,
            minor,
            ..Default::default()
        }
    }

    /// This device with its node's permission bits set to `mode` (such as
    /// `0o660`).
    ///
    /// ```
    /// use nri::api::{LinuxDevice, OptionalExt};
    /// let null = LinuxDevice::char_device("/dev/null", 1, 3).with_file_mode(0o666);
    /// assert_eq!(null.file_mode.value(), Some(0o666));
    /// ```
    pub fn with_file_mode(mut self, mode: u32) -> LinuxDevice {
        self.file_mode = optional(mode);
        self
    }

    /// This device with its node owned by user `uid`.
    pub fn with_uid(mut self, uid: u32) -> LinuxDevice {
        self.uid = optional(uid);
        self
    }

    /// This device with its node owned by group `gid`.
    pub fn with_gid(mut self, gid: u32) -> LinuxDevice {
        self.gid = optional(gid);
        self
    }

    /// The device cgroup access string the runtime grants for this device:
    /// `"rw"`, plus `"m"` (mknod) for block devices (`type_ == "b"`).
    ///
    /// As upstream, read and write are granted whatever the file mode says.
    ///
    /// ```
    /// use nri::api::LinuxDevice;
    /// let mut device = LinuxDevice { path: "/dev/sda".into(), type_: "b".into(), ..Default::default() };
    /// assert_eq!(device.access_string(), "rwm");
    /// device.type_ = "c".into();
    /// assert_eq!(device.access_string(), "rw");
    /// ```
    pub fn access_string(&self) -> &'static str {
        if self.type_ == "b" {
            "rwm"
        } else {
            "rw"
        }
    }

    /// Whether both name the same device node: equal major and minor numbers.
    ///
    /// Upstream's `Cmp` means this but returns the opposite by a slip; this
    /// returns true for the same device.
    ///
    /// ```
    /// use nri::api::LinuxDevice;
    /// let null = LinuxDevice { path: "/dev/null".into(), major: 1, minor: 3, ..Default::default() };
    /// let alias = LinuxDevice { path: "/dev/my-null".into(), major: 1, minor: 3, ..Default::default() };
    /// assert!(null.equivalent(&alias));
    /// let zero = LinuxDevice { major: 1, minor: 5, ..Default::default() };
    /// assert!(!null.equivalent(&zero));
    /// ```
    pub fn equivalent(&self, other: &LinuxDevice) -> bool {
        self.major == other.major && self.minor == other.minor
    }

    /// The device path without its marker when this entry asks for the
    /// device's removal, `None` otherwise.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_device("/dev/kvm");
    /// assert_eq!(adjust.linux.devices[0].is_marked_for_removal(), Some("/dev/kvm"));
    /// ```
    pub fn is_marked_for_removal(&self) -> Option<&str> {
        is_marked_for_removal(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OptionalExt;

    #[test]
    fn constructed_nodes_leave_mode_and_owner_to_the_runtime() {
        let device = LinuxDevice::char_device("/dev/net/tun", 10, 200);
        let expected = LinuxDevice {
            path: "/dev/net/tun".into(),
            type_: "c".into(),
            major: 10,
            minor: 200,
            ..Default::default()
        };
        assert_eq!(device, expected);
        assert!(device.file_mode.is_none() && device.uid.is_none() && device.gid.is_none());
    }

    #[test]
    fn zero_mode_and_root_owner_are_set_not_left_unset() {
        let device = LinuxDevice::block_device("/dev/loop0", 7, 0)
            .with_file_mode(0)
            .with_uid(0)
            .with_gid(0);
        assert_eq!(device.type_, "b");
        assert_eq!(device.file_mode.value(), Some(0));
        assert_eq!(device.uid.value(), Some(0));
        assert_eq!(device.gid.value(), Some(0));
    }

    #[test]
    fn access_string_grants_mknod_only_to_block_devices() {
        let mut device = LinuxDevice::new();
        for (type_, access) in [
            ("b", "rwm"),
            ("c", "rw"),
            ("u", "rw"),
            ("p", "rw"),
            ("", "rw"),
        ] {
            device.type_ = type_.to_string();
            assert_eq!(device.access_string(), access, "type {type_:?}");
        }
    }

    #[test]
    fn access_string_ignores_file_mode_like_upstream() {
        let device = LinuxDevice {
            type_: "c".into(),
            file_mode: optional(0o000),
            ..Default::default()
        };
        assert_eq!(device.access_string(), "rw");
    }

    #[test]
    fn devices_are_equivalent_by_major_and_minor_only() {
        let a = LinuxDevice::char_device("/dev/a", 10, 200);
        let mut b = a.clone();
        b.path = "/dev/b".into();
        assert!(a.equivalent(&b));
        b.minor = 201;
        assert!(!a.equivalent(&b));
        b.minor = 200;
        b.major = 11;
        assert!(!a.equivalent(&b));
    }

    #[test]
    fn removal_marked_device_is_recognised() {
        let device = LinuxDevice {
            path: "-/dev/kvm".into(),
            ..Default::default()
        };
        assert_eq!(device.is_marked_for_removal(), Some("/dev/kvm"));
    }
}
