//! Helpers on [`Mount`]: comparing mounts, reading their propagation mode
//! and removal marker.
//!
//! Upstream's conversions to and from OCI runtime-spec mounts (`ToOCI`,
//! `FromOCIMounts`) are left out: they need the runtime-spec types, which
//! this crate does not model. [`Mount::propagation`] keeps the one fact
//! `ToOCI` reports besides the conversion.

use super::{is_marked_for_removal, Mount};

/// Mount pseudo-option asking the runtime to relabel the source for SELinux.
///
/// ```
/// use nri::api::{Mount, SELINUX_RELABEL};
/// let mount = Mount { options: vec!["rbind".into(), SELINUX_RELABEL.into()], ..Default::default() };
/// assert!(mount.options.iter().any(|o| o == "relabel"));
/// ```
pub const SELINUX_RELABEL: &str = "relabel";

/// Options that set a mount's propagation mode.
const PROPAGATION_OPTIONS: [&str; 3] = ["rprivate", "rshared", "rslave"];

impl Mount {
    /// Whether both describe the same mount: equal destination, type and
    /// source, and the same options in any order.
    ///
    /// Upstream's `Cmp` means this but, by a slip, compares only the number
    /// of options; this compares the options themselves.
    ///
    /// ```
    /// use nri::api::Mount;
    /// let a = Mount { destination: "/data".into(), options: vec!["ro".into(), "bind".into()], ..Default::default() };
    /// let mut b = a.clone();
    /// b.options.reverse();
    /// assert!(a.equivalent(&b));
    /// b.options[0] = "rw".into();
    /// assert!(!a.equivalent(&b));
    /// ```
    pub fn equivalent(&self, other: &Mount) -> bool {
        if self.destination != other.destination
            || self.type_ != other.type_
            || self.source != other.source
            || self.options.len() != other.options.len()
        {
            return false;
        }
        let mut mine: Vec<&str> = self.options.iter().map(String::as_str).collect();
        let mut theirs: Vec<&str> = other.options.iter().map(String::as_str).collect();
        mine.sort_unstable();
        theirs.sort_unstable();
        mine == theirs
    }

    /// The propagation mode the options ask for (`rprivate`, `rshared` or
    /// `rslave`; the last one wins), or `None` when they ask for none.
    ///
    /// ```
    /// use nri::api::Mount;
    /// let mount = Mount { options: vec!["rbind".into(), "rshared".into()], ..Default::default() };
    /// assert_eq!(mount.propagation(), Some("rshared"));
    /// assert_eq!(Mount::new().propagation(), None);
    /// ```
    pub fn propagation(&self) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .map(String::as_str)
            .find(|option| PROPAGATION_OPTIONS.contains(option))
    }

    /// The destination without its marker when this entry asks for the
    /// mount's removal, `None` otherwise.
    ///
    /// ```
    /// use nri::api::ContainerAdjustment;
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.remove_mount("/cache");
    /// assert_eq!(adjust.mounts[0].is_marked_for_removal(), Some("/cache"));
    /// ```
    pub fn is_marked_for_removal(&self) -> Option<&str> {
        is_marked_for_removal(&self.destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(options: &[&str]) -> Mount {
        Mount {
            destination: "/d".into(),
            type_: "bind".into(),
            source: "/s".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn equivalent_mounts_ignore_option_order() {
        assert!(mount(&["rbind", "ro"]).equivalent(&mount(&["ro", "rbind"])));
        assert!(mount(&[]).equivalent(&mount(&[])));
    }

    #[test]
    fn mounts_with_different_options_of_equal_count_differ() {
        assert!(!mount(&["rbind", "ro"]).equivalent(&mount(&["rbind", "rw"])));
        assert!(!mount(&["ro", "ro"]).equivalent(&mount(&["ro", "rw"])));
        assert!(!mount(&["ro"]).equivalent(&mount(&["ro", "ro"])));
    }

    #[test]
    fn mounts_with_different_fields_differ() {
        let base = mount(&["ro"]);
        for change in [
            |m: &mut Mount| m.destination = "/x".into(),
            |m: &mut Mount| m.type_ = "tmpfs".into(),
            |m: &mut Mount| m.source = "/y".into(),
        ] {
            let mut other = base.clone();
            change(&mut other);
            assert!(!base.equivalent(&other));
        }
    }

    #[test]
    fn last_propagation_option_wins() {
        assert_eq!(
            mount(&["rslave", "ro", "rprivate"]).propagation(),
            Some("rprivate")
        );
        assert_eq!(mount(&["shared", "ro"]).propagation(), None);
    }

    #[test]
    fn removal_marked_mount_is_recognised() {
        let mut m = mount(&[]);
        assert_eq!(m.is_marked_for_removal(), None);
        m.destination = "-/d".into();
        assert_eq!(m.is_marked_for_removal(), Some("/d"));
    }
}
