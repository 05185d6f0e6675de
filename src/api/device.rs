//! Helpers on [`LinuxDevice`]: the cgroup access string, comparison and the
//! removal marker.
//!
//! Upstream's conversions to and from OCI runtime-spec devices (`ToOCI`,
//! `FromOCILinuxDevices`) are left out: they need the runtime-spec types,
//! which this crate does not model.

use super::{is_marked_for_removal, LinuxDevice};

impl LinuxDevice {
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
    use crate::api::optional;

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
        let a = LinuxDevice {
            path: "/dev/a".into(),
            type_: "c".into(),
            major: 10,
            minor: 200,
            ..Default::default()
        };
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
