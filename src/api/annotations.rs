//! Finding a pod's annotation for a container the way upstream's sample
//! plugins do (`containerd/nri`'s `plugins/device-injector`,
//! `ulimit-adjuster`, `network-device-injector`).
//!
//! A kind of annotation (`devices`, `mounts`, `cdi-devices`, `io-priority`...)
//! has a key prefix in the current domain, `devices.noderesource.dev`, and
//! one in the deprecated domain, `devices.nri.io`. A pod annotates one
//! container with `<prefix>/container.<name>`, and every container with
//! `<prefix>/pod` or the bare `<prefix>`. The most specific key present
//! wins, the current domain before the deprecated one at each level:
//!
//! | rank | key |
//! |---|---|
//! | 1 | `devices.noderesource.dev/container.<name>` |
//! | 2 | `devices.nri.io/container.<name>` |
//! | 3 | `devices.noderesource.dev/pod` |
//! | 4 | `devices.nri.io/pod` |
//! | 5 | `devices.noderesource.dev` |
//! | 6 | `devices.nri.io` |
//!
//! A key counts once present, even with an empty value: upstream's device
//! injector then injects nothing of that kind (an empty list), and does not
//! look further.
//!
//! ```
//! use nri::api::annotations;
//! use nri::api::fixtures;
//!
//! let pod = fixtures::pod("web")
//!     .annotation("devices.nri.io/pod", "- path: /dev/fuse")
//!     .annotation("devices.noderesource.dev/container.nginx", "- path: /dev/nri-null")
//!     .build();
//! let found = annotations::lookup(&pod.annotations, "devices", "nginx").unwrap();
//! assert_eq!(found.key, "devices.noderesource.dev/container.nginx");
//! assert_eq!(found.value, "- path: /dev/nri-null");
//! // Other containers get the pod-wide one.
//! let found = annotations::lookup(&pod.annotations, "devices", "sidecar").unwrap();
//! assert_eq!((found.key.as_str(), found.scope), ("devices.nri.io/pod", annotations::Scope::Pod));
//! assert!(annotations::lookup(&pod.annotations, "mounts", "nginx").is_none());
//! ```
//!
//! Some samples use other prefixes or fewer levels; [`lookup_in`] takes
//! both: the ulimit adjuster reads only
//! `ulimits.noderesource.dev/container.<name>` and
//! `ulimits.nri.containerd.io/container.<name>`, the network device injector
//! only `netdevice.noderesource.dev/pod`, `netdevices.nri.containerd.io/pod`
//! and the two bare prefixes.
//!
//! ```
//! use nri::api::annotations::{self, Scope};
//! use nri::api::fixtures;
//!
//! let pod = fixtures::pod("db")
//!     .annotation("ulimits.nri.containerd.io/container.postgres", "- {type: nofile, hard: 4096, soft: 1024}")
//!     .build();
//! let prefixes = ["ulimits.noderesource.dev", "ulimits.nri.containerd.io"];
//! let found = annotations::lookup_in(&pod.annotations, &prefixes, "postgres", &[Scope::Container]);
//! assert_eq!(found.unwrap().key, "ulimits.nri.containerd.io/container.postgres");
//! ```

use std::collections::HashMap;

/// The domains of upstream's sample annotations: current, then deprecated.
pub const DOMAINS: [&str; 2] = ["noderesource.dev", "nri.io"];

/// Which containers an annotation key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `<prefix>/container.<name>`: one container, by name.
    Container,
    /// `<prefix>/pod`: every container of the pod.
    Pod,
    /// `<prefix>`: every container of the pod.
    Bare,
}

/// Upstream's precedence: a container's own key, then the pod's, then the
/// bare prefix.
pub const ALL_SCOPES: [Scope; 3] = [Scope::Container, Scope::Pod, Scope::Bare];

impl Scope {
    /// The key of this scope for `prefix` and container `container`.
    ///
    /// ```
    /// use nri::api::annotations::Scope;
    /// assert_eq!(Scope::Container.key("mounts.nri.io", "app"), "mounts.nri.io/container.app");
    /// assert_eq!(Scope::Pod.key("mounts.nri.io", "app"), "mounts.nri.io/pod");
    /// assert_eq!(Scope::Bare.key("mounts.nri.io", "app"), "mounts.nri.io");
    /// ```
    pub fn key(self, prefix: &str, container: &str) -> String {
        match self {
            Scope::Container => format!("{prefix}/container.{container}"),
            Scope::Pod => format!("{prefix}/pod"),
            Scope::Bare => prefix.to_string(),
        }
    }
}

/// An annotation found by [`lookup`] or [`lookup_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation<'a> {
    /// The key that was present, for messages (`invalid device annotation
    /// devices.nri.io/pod: ...`).
    pub key: String,
    /// Its value, possibly empty.
    pub value: &'a str,
    /// Which level the key is of.
    pub scope: Scope,
}

/// The most specific annotation of kind `kind` for container `container`:
/// the keys of the prefixes `<kind>.noderesource.dev` and `<kind>.nri.io`,
/// in upstream's precedence (see the [module documentation](self)).
pub fn lookup<'a>(
    annotations: &'a HashMap<String, String>,
    kind: &str,
    container: &str,
) -> Option<Annotation<'a>> {
    let prefixes = DOMAINS.map(|domain| format!("{kind}.{domain}"));
    let prefixes = prefixes.each_ref().map(String::as_str);
    lookup_in(annotations, &prefixes, container, &ALL_SCOPES)
}

/// The first annotation present among the keys of `scopes` (in that order)
/// and `prefixes` (in that order within each scope) for container
/// `container`.
pub fn lookup_in<'a>(
    annotations: &'a HashMap<String, String>,
    prefixes: &[&str],
    container: &str,
    scopes: &[Scope],
) -> Option<Annotation<'a>> {
    keys(prefixes, container, scopes).find_map(|(scope, key)| {
        annotations.get(&key).map(|value| Annotation {
            key,
            value: value.as_str(),
            scope,
        })
    })
}

/// The keys [`lookup_in`] tries, in order.
///
/// ```
/// use nri::api::annotations::{keys, ALL_SCOPES};
/// let tried: Vec<String> = keys(&["a.noderesource.dev", "a.nri.io"], "c", &ALL_SCOPES)
///     .map(|(_, key)| key)
///     .collect();
/// assert_eq!(tried, [
///     "a.noderesource.dev/container.c", "a.nri.io/container.c",
///     "a.noderesource.dev/pod", "a.nri.io/pod",
///     "a.noderesource.dev", "a.nri.io",
/// ]);
/// ```
pub fn keys<'k>(
    prefixes: &'k [&'k str],
    container: &'k str,
    scopes: &'k [Scope],
) -> impl Iterator<Item = (Scope, String)> + 'k {
    scopes.iter().flat_map(move |&scope| {
        prefixes
            .iter()
            .map(move |prefix| (scope, scope.key(prefix, container)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(keys: &[&str]) -> HashMap<String, String> {
        keys.iter()
            .map(|k| (k.to_string(), format!("value of {k}")))
            .collect()
    }

    #[test]
    fn each_key_wins_over_every_later_one() {
        let order = [
            "devices.noderesource.dev/container.c0",
            "devices.nri.io/container.c0",
            "devices.noderesource.dev/pod",
            "devices.nri.io/pod",
            "devices.noderesource.dev",
            "devices.nri.io",
        ];
        for (i, key) in order.iter().enumerate() {
            // This key and every less specific one: this one wins.
            let present = annotations(&order[i..]);
            let found = lookup(&present, "devices", "c0").expect("found");
            assert_eq!(found.key, *key);
            assert_eq!(found.value, format!("value of {key}"));
        }
    }

    #[test]
    fn other_containers_and_kinds_are_not_taken() {
        let present = annotations(&[
            "devices.noderesource.dev/container.c1",
            "mounts.noderesource.dev/pod",
            "devices.noderesource.dev.extra",
            "devices.noderesource.dev/container.c0x",
        ]);
        assert_eq!(lookup(&present, "devices", "c0"), None);
        assert_eq!(
            lookup(&present, "mounts", "c0").map(|a| a.scope),
            Some(Scope::Pod)
        );
    }

    #[test]
    fn an_empty_value_counts_as_present() {
        let mut present = annotations(&["devices.noderesource.dev/pod"]);
        present.insert("devices.nri.io/container.c0".into(), String::new());
        let found = lookup(&present, "devices", "c0").expect("found");
        assert_eq!(
            (found.key.as_str(), found.value),
            ("devices.nri.io/container.c0", "")
        );
    }

    #[test]
    fn scopes_and_prefixes_can_be_narrowed() {
        let present = annotations(&[
            "netdevices.nri.containerd.io",
            "netdevice.noderesource.dev/container.c0",
        ]);
        let prefixes = ["netdevice.noderesource.dev", "netdevices.nri.containerd.io"];
        let found =
            lookup_in(&present, &prefixes, "c0", &[Scope::Pod, Scope::Bare]).expect("found");
        assert_eq!(found.key, "netdevices.nri.containerd.io");
        assert_eq!(found.scope, Scope::Bare);
        assert!(lookup_in(&present, &prefixes, "c1", &[Scope::Container]).is_none());
    }
}
