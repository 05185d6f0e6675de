//! Constructors for [`CDIDevice`], a device the Container Device Interface
//! (CDI) injects by name.

use super::CDIDevice;

impl CDIDevice {
    /// The CDI device `name`, fully qualified as CDI spells it:
    /// `vendor.com/class=device`. The runtime resolves it against the CDI
    /// specifications on the node and fails the container's creation when
    /// none defines it.
    ///
    /// ```
    /// use nri::api::{CDIDevice, ContainerAdjustment};
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_cdi_device(CDIDevice::named("nvidia.com/gpu=0"));
    /// assert_eq!(adjust.CDI_devices[0].name, "nvidia.com/gpu=0");
    /// ```
    pub fn named(name: impl Into<String>) -> CDIDevice {
        CDIDevice {
            name: name.into(),
            ..Default::default()
        }
    }
}

impl From<&str> for CDIDevice {
    /// The same as [`CDIDevice::named`].
    fn from(name: &str) -> CDIDevice {
        CDIDevice::named(name)
    }
}

impl From<String> for CDIDevice {
    /// The same as [`CDIDevice::named`].
    fn from(name: String) -> CDIDevice {
        CDIDevice::named(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_from_build_the_same_device() {
        let by_name = CDIDevice::named("vendor.com/fpga=1");
        assert_eq!(by_name.name, "vendor.com/fpga=1");
        assert_eq!(CDIDevice::from("vendor.com/fpga=1"), by_name);
        assert_eq!(CDIDevice::from(String::from("vendor.com/fpga=1")), by_name);
    }
}
