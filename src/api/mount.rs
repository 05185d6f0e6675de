//! Helpers on [`Mount`]: constructors for bind and tmpfs mounts, comparing
//! mounts, reading their propagation mode and removal marker.
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
    /// A recursive bind mount of the host path `source` at `destination` in
    /// the container, read-write: type `bind`, option `rbind`. Chain
    /// [`Mount::read_only`] or [`Mount::with_option`] for more.
    ///
    /// ```
    /// use nri::api::{ContainerAdjustment, Mount};
    /// let data = Mount::bind("/srv/data", "/data");
    /// assert_eq!((data.type_.as_str(), data.source.as_str()), ("bind", "/srv/data"));
    /// assert_eq!(data.options, ["rbind"]);
    ///
    /// let mut adjust = ContainerAdjustment::new();
    /// adjust.add_mount(Mount::bind("/etc/ssl/certs", "/etc/ssl/certs").read_only());
    /// assert_eq!(adjust.mounts[0].options, ["rbind", "ro"]);
    /// ```
    pub fn bind(source: impl Into<String>, destination: impl Into<String>) -> Mount {
        Mount::of_type("bind", source, destination).with_option("rbind")
    }

    /// A fresh, empty `tmpfs` at `destination` in the container, with
    /// options `nosuid` and `nodev`.
    ///
    /// ```
    /// use nri::api::Mount;
    /// let scratch = Mount::tmpfs("/scratch").with_option("size=64m");
    /// assert_eq!(scratch.type_, "tmpfs");
    /// assert_eq!(scratch.options, ["nosuid", "nodev", "size=64m"]);
    /// ```
    pub fn tmpfs(destination: impl Into<String>) -> Mount {
        Mount::of_type("tmpfs", "tmpfs", destination).with_options(["nosuid", "nodev"])
    }

    /// A mount of any filesystem type, without options.
    ///
    /// ```
    /// use nri::api::Mount;
    /// let proc = Mount::of_type("proc", "proc", "/host/proc").read_only();
    /// assert_eq!((proc.type_.as_str(), proc.destination.as_str()), ("proc", "/host/proc"));
    /// assert_eq!(proc.options, ["ro"]);
    /// ```
    pub fn of_type(
        type_: impl Into<String>,
        source: impl Into<String>,
        destination: impl Into<String>,
    ) -> Mount {
        Mount {
            destination: destination.into(),
            type_: type_.into(),
            source: source.into(),
            ..Default::default()
        }
    }

    /// This mount, read-only: option `ro` in place of any `rw`.
    ///
    /// ```
    /// use nri::api::Mount;
    /// let mount = Mount::bind("/a", "/b").with_option("rw").read_only();
    /// assert_eq!(mount.options, ["rbind", "ro"]);
    /// ```
    pub fn read_only(mut self) -> Mount {
        self.options.retain(|o| o != "rw" && o != "ro");
        self.options.push("ro".to_string());
        self
    }

    /// This mount with `option` appended to its options.
    ///
    /// ```
    /// use nri::api::{Mount, SELINUX_RELABEL};
    /// let mount = Mount::bind("/srv/www", "/usr/share/nginx/html").with_option(SELINUX_RELABEL);
    /// assert_eq!(mount.options, ["rbind", "relabel"]);
    /// ```
    pub fn with_option(mut self, option: impl Into<String>) -> Mount {
        self.options.push(option.into());
        self
    }

    /// This mount with `options` appended to its options, in order.
    ///
    /// ```
    /// use nri::api::Mount;
    /// let mount = Mount::bind("/run/app", "/run/app").with_options(["nosuid", "rshared"]);
    /// assert_eq!(mount.options, ["rbind", "nosuid", "rshared"]);
    /// assert_eq!(mount.propagation(), Some("rshared"));
    /// ```
    pub fn with_options<I>(mut self, options: I) -> Mount
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.options.extend(options.into_iter().map(Into::into));
        self
    }

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
    fn bind_mount_is_recursive_and_writable_until_made_read_only() {
        let mount = Mount::bind("/s", "/d");
        assert_eq!(
            mount,
            Mount {
                destination: "/d".into(),
                type_: "bind".into(),
                source: "/s".into(),
                options: vec!["rbind".into()],
                ..Default::default()
            }
        );
        let ro = mount.clone().read_only();
        assert_eq!(ro.options, ["rbind", "ro"]);
        // Asking twice changes nothing more.
        assert_eq!(ro.clone().read_only(), ro);
    }

    #[test]
    fn read_only_replaces_an_explicit_rw() {
        let mount = Mount::bind("/s", "/d")
            .with_options(["rw", "nosuid"])
            .read_only();
        assert_eq!(mount.options, ["rbind", "nosuid", "ro"]);
    }

    #[test]
    fn tmpfs_mount_has_no_host_source() {
        let mount = Mount::tmpfs("/tmp");
        assert_eq!(mount.source, "tmpfs");
        assert_eq!(mount.destination, "/tmp");
        assert_eq!(mount.options, ["nosuid", "nodev"]);
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
