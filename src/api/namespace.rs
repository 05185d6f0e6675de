//! Constructors for [`LinuxNamespace`], the names of the kinds of Linux
//! namespace, and access to a pod's or container's namespaces by kind.

use super::{LinuxContainer, LinuxNamespace, LinuxPodSandbox};

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

/// Finding and setting namespaces by kind in a namespace list.
macro_rules! namespaces_by_kind {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// The namespace of kind `kind` (such as
            /// [`LinuxNamespace::NETWORK`]), if there is one. A pod in the
            /// host's network namespace (`hostNetwork: true`) has none of
            /// kind `network`, nor have its containers.
            ///
            /// ```
            /// use nri::api::{fixtures, LinuxNamespace};
            /// let pod = fixtures::pod("web").build();
            /// let net = pod.linux.namespace(LinuxNamespace::NETWORK).unwrap();
            /// assert!(net.path.starts_with("/var/run/netns/"));
            /// let host = fixtures::pod("agent").host_network().build();
            /// assert!(host.linux.namespace(LinuxNamespace::NETWORK).is_none());
            /// ```
            pub fn namespace(&self, kind: &str) -> Option<&LinuxNamespace> {
                self.namespaces.iter().find(|ns| ns.type_ == kind)
            }

            /// The path of the namespace of kind `kind`, if there is one
            /// and it is joined (a path); `None` for a namespace created
            /// for the container or pod, or none.
            pub fn namespace_path(&self, kind: &str) -> Option<&str> {
                self.namespace(kind)
                    .map(|ns| ns.path.as_str())
                    .filter(|path| !path.is_empty())
            }

            /// Sets `namespace`, replacing the one of the same kind if
            /// there is one (in its place), else adding it at the end.
            pub fn set_namespace(&mut self, namespace: LinuxNamespace) {
                match self.namespaces.iter_mut().find(|ns| ns.type_ == namespace.type_) {
                    Some(slot) => *slot = namespace,
                    None => self.namespaces.push(namespace),
                }
            }

            /// Removes the namespace of kind `kind`, if there is one; returns it.
            pub fn remove_namespace(&mut self, kind: &str) -> Option<LinuxNamespace> {
                let at = self.namespaces.iter().position(|ns| ns.type_ == kind)?;
                Some(self.namespaces.remove(at))
            }

            /// Sets (`Some`) or removes (`None`) namespaces by kind, in
            /// order, as the fixtures' builders collect them.
            pub(crate) fn change_namespaces(
                &mut self,
                changes: Vec<(String, Option<LinuxNamespace>)>,
            ) {
                for (kind, namespace) in changes {
                    match namespace {
                        Some(namespace) => self.set_namespace(namespace),
                        None => {
                            self.remove_namespace(&kind);
                        }
                    }
                }
            }
        }
    )*};
}

namespaces_by_kind!(LinuxPodSandbox, LinuxContainer);

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
    fn namespaces_are_found_set_and_removed_by_kind() {
        let mut linux = LinuxContainer::default();
        linux.set_namespace(LinuxNamespace::create(LinuxNamespace::PID));
        linux.set_namespace(LinuxNamespace::join(LinuxNamespace::NETWORK, "/a"));
        linux.set_namespace(LinuxNamespace::join(LinuxNamespace::NETWORK, "/b"));
        assert_eq!(linux.namespaces.len(), 2);
        assert_eq!(linux.namespace_path(LinuxNamespace::NETWORK), Some("/b"));
        assert_eq!(linux.namespace_path(LinuxNamespace::PID), None);
        assert!(linux.namespace(LinuxNamespace::PID).is_some());
        let removed = linux.remove_namespace(LinuxNamespace::PID).unwrap();
        assert_eq!(removed.type_, "pid");
        assert!(linux.remove_namespace(LinuxNamespace::PID).is_none());
        assert_eq!(linux.namespaces[0].type_, "network");
        let mut pod = LinuxPodSandbox::default();
        pod.set_namespace(LinuxNamespace::create(LinuxNamespace::IPC));
        assert!(pod.namespace(LinuxNamespace::IPC).is_some());
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
