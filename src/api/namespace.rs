//! Constructors for [`LinuxNamespace`], and the names of the kinds of Linux
//! namespace.

use super::LinuxNamespace;

impl LinuxNamespace {
    /// The process ID namespace kind.
    pub const PID: &'static str = "pid";
    /// The network namespace kind.
    pub const NETWORK: &'static str = "network";
    /// The mount namespace kind.
    pub const MOUNT: &'static str = "mount";
    /// The System V IPC and POSIX message queue namespace kind.
    pub const IPC: &'static str = "ipc";
    /// The host and domain name namespace kind.
    pub const UTS: &'static str = "uts";
    /// The user and group ID namespace kind.
    pub const USER: &'static str = "user";
    /// The cgroup root namespace kind.
    pub const CGROUP: &'static str = "cgroup";
    /// The clock namespace kind.
    pub const TIME: &'static str = "time";

    /// Joining the existing namespace of kind `type_` at `path`, such as
    /// `/proc/1234/ns/net` or `/var/run/netns/cni-…`.
    ///
    /// ```
    /// use nri::api::LinuxNamespace;
    /// let net = LinuxNamespace::join(LinuxNamespace::NETWORK, "/var/run/netns/blue");
    /// assert_eq!((net.type_.as_str(), net.path.as_str()), ("network", "/var/run/netns/blue"));
    /// ```
    pub fn join(type_: impl Into<String>, path: impl Into<String>) -> LinuxNamespace {
        LinuxNamespace {
            type_: type_.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    /// A new namespace of kind `type_` for the container (no path).
    ///
    /// ```
    /// use nri::api::LinuxNamespace;
    /// let pid = LinuxNamespace::create(LinuxNamespace::PID);
    /// assert_eq!(pid.type_, "pid");
    /// assert!(pid.path.is_empty());
    /// ```
    pub fn create(type_: impl Into<String>) -> LinuxNamespace {
        LinuxNamespace::join(type_, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_the_names_the_oci_runtime_spec_uses() {
        let kinds = [
            LinuxNamespace::PID,
            LinuxNamespace::NETWORK,
            LinuxNamespace::MOUNT,
            LinuxNamespace::IPC,
            LinuxNamespace::UTS,
            LinuxNamespace::USER,
            LinuxNamespace::CGROUP,
            LinuxNamespace::TIME,
        ];
        assert_eq!(
            kinds,
            ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
        );
    }

    #[test]
    fn created_namespace_has_no_path_and_joined_one_keeps_it() {
        assert_eq!(
            LinuxNamespace::create("ipc"),
            LinuxNamespace {
                type_: "ipc".into(),
                ..Default::default()
            }
        );
        assert_eq!(
            LinuxNamespace::join("uts", "/proc/1/ns/uts").path,
            "/proc/1/ns/uts"
        );
    }
}
