//! The NRI releases this crate knows, and what each one added or changed
//! that a plugin or a runtime can observe: the one table of version facts.
//!
//! Each fact is a [`Feature`] with the first release that has it
//! ([`Feature::since`]); the events and their RPCs carry their releases in
//! the event table (`src/event_table.rs`). Everything that depends on a
//! version is derived from these two tables: what a runtime of a version
//! can deliver ([`NriVersion::events`](super::NriVersion::events)), what the
//! plugin side concludes in Configure, what the runtime side emulates
//! (`nri::runtime::Emulation`, one profile per release whose behaviour
//! differs), and the table in `docs/NRI_VERSIONS.md` (a test renders it
//! from here and compares).
//!
//! The facts were read in each release's own sources (the Go module
//! `github.com/containerd/nri` at that tag: `pkg/api/api.proto` and
//! `pkg/adaptation`).

use super::Event;

/// A release number: `(major, minor, patch)`.
pub(crate) type Release = (u64, u64, u64);

/// The releases this crate has facts about, oldest first: the first one of
/// the `v1alpha1` API this crate speaks, then every release from v0.9.0
/// on. Releases in between (v0.3.0 to v0.8.0) behave like v0.2.0 towards a
/// plugin as far as these facts go.
pub(crate) const RELEASES: [Release; 10] = [
    (0, 2, 0),
    (0, 9, 0),
    (0, 10, 0),
    (0, 11, 0),
    (0, 12, 0),
    (0, 12, 1),
    (0, 12, 2),
    (0, 12, 3),
    (0, 12, 4),
    (0, 12, 5),
];

/// Whether `v` is at or after `since`.
pub(crate) const fn reached(v: Release, since: Release) -> bool {
    v.0 > since.0 || (v.0 == since.0 && (v.1 > since.1 || (v.1 == since.1 && v.2 >= since.2)))
}

/// Whether `v` is one of [`RELEASES`] (a compile-time check of the event
/// table's rows).
pub(crate) const fn is_release(v: Release) -> bool {
    let mut i = 0;
    while i < RELEASES.len() {
        let r = RELEASES[i];
        if r.0 == v.0 && r.1 == v.1 && r.2 == v.2 {
            return true;
        }
        i += 1;
    }
    false
}

/// A development snapshot of NRI between two releases that a runtime
/// shipped (its Go pseudo-version in the runtime's `go.mod`): the release
/// whose facts it has, and the events it knows beyond that release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The pseudo-version, as `go.mod` names it.
    pub(crate) version: &'static str,
    /// The newest release whose facts the snapshot has.
    pub(crate) base: Release,
    /// Events the snapshot knows that `base` does not.
    pub(crate) extra_events: &'static [Event],
}

/// The snapshots runtimes shipped, found in their `go.mod` files.
///
/// CRI-O 1.33 (and the `v1.34.0` tag as the Go module proxy serves it)
/// embed `v0.9.1-0.20250219030224-e597e7849f24`: the v0.9 API plus
/// UpdatePodSandbox and PostUpdatePodSandbox (its valid event mask is
/// `0x1fff`), without adjustment validation, which arrived in v0.10.0.
pub(crate) const SNAPSHOTS: [Snapshot; 1] = [Snapshot {
    version: "v0.9.1-0.20250219030224-e597e7849f24",
    base: (0, 9, 0),
    extra_events: &[Event::UPDATE_POD_SANDBOX, Event::POST_UPDATE_POD_SANDBOX],
}];

/// The snapshot `version` names (its text as `go.mod` writes it), if it
/// is a known one.
pub(crate) fn snapshot(version: &str) -> Option<&'static Snapshot> {
    SNAPSHOTS.iter().find(|s| s.version == version)
}

/// Something an NRI release added or changed, other than an event or an
/// event's RPC (those are in the event table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Feature {
    /// Adjustments of the command line (`args`), I/O priority, seccomp
    /// policy and namespaces are merged; device cgroup rules survive the
    /// copy an update is merged into; the container has timestamps, exit
    /// status and CDI devices.
    V010Adjustments,
    /// Claims are recorded as `FieldOwners` keyed by field (`Annotations k`,
    /// `MemLimit`), a removal as `-plugin`, and sent to validators; before,
    /// per-item subjects that a removal forgets.
    FieldOwners,
    /// Adjustments of sysctls, network devices, the scheduler and RDT, and
    /// `Container.user`. The RDT merge step runs for every reply with a
    /// `linux` part and leaves an empty `linux.rdt` in the merged reply.
    V011Adjustments,
    /// The merged reply's sysctl map exists, so a sysctl adjustment is
    /// merged (v0.11 writes to a map it never made and panics).
    SysctlMerged,
    /// The owner of OCI hooks accumulates every plugin that added hooks
    /// (`a,b`); before, the second plugin turns the record into a removal
    /// mark of the latest one.
    HooksOwnersAccumulated,
    /// Memory policy adjustments (`linux.memory_policy`).
    MemoryPolicy,
    /// The plugin sends its NRI version in `RegisterPlugin` and the runtime
    /// its own in `Configure`.
    VersionExchange,
    /// `UpdateContainers` no longer waits for the lock the runtime holds
    /// while it relays an event (which deadlocks a plugin calling it from
    /// a handler).
    UpdatesDuringEvents,
    /// `Container.image` (reference, digests). No code depends on it: the
    /// runtime fills the field from its own data, so it is a fact for the
    /// documentation.
    #[cfg_attr(not(test), allow(dead_code))]
    ContainerImage,
    /// A sysctl removal that nothing re-adds is reported in the merged
    /// reply's `linux.sysctl`; before, among its annotations.
    SysctlRemovalsInSysctl,
    /// `ConfigureResponse.failure_policy` is honoured: a fatal failure
    /// fails the request with `fail_request`, and a timeout keeps the plugin
    /// with `keep_connected`.
    FailurePolicy,
    /// A plugin whose connection closed is skipped until it is removed;
    /// before, the next request is still relayed to it (and fails on it, so
    /// that a validator fails the creation once).
    SkipsClosedPlugins,
}

impl Feature {
    /// Every feature, in the order of [`Feature::since`].
    #[cfg(test)]
    pub(crate) const ALL: [Feature; 12] = [
        Feature::V010Adjustments,
        Feature::FieldOwners,
        Feature::V011Adjustments,
        Feature::SysctlMerged,
        Feature::HooksOwnersAccumulated,
        Feature::MemoryPolicy,
        Feature::VersionExchange,
        Feature::UpdatesDuringEvents,
        Feature::ContainerImage,
        Feature::SysctlRemovalsInSysctl,
        Feature::FailurePolicy,
        Feature::SkipsClosedPlugins,
    ];

    /// The first release with the feature.
    pub(crate) const fn since(self) -> Release {
        match self {
            Feature::V010Adjustments | Feature::FieldOwners => (0, 10, 0),
            Feature::V011Adjustments => (0, 11, 0),
            Feature::SysctlMerged
            | Feature::HooksOwnersAccumulated
            | Feature::MemoryPolicy
            | Feature::VersionExchange => (0, 12, 0),
            Feature::UpdatesDuringEvents => (0, 12, 1),
            Feature::ContainerImage => (0, 12, 2),
            Feature::SysctlRemovalsInSysctl => (0, 12, 3),
            Feature::FailurePolicy => (0, 12, 4),
            Feature::SkipsClosedPlugins => (0, 12, 5),
        }
    }

    /// Whether a runtime or plugin of release `v` has the feature.
    pub(crate) const fn in_release(self, v: Release) -> bool {
        reached(v, self.since())
    }

    /// A short description, for the documentation table.
    #[cfg(test)]
    pub(crate) const fn summary(self) -> &'static str {
        match self {
            Feature::V010Adjustments => {
                "args, I/O priority, seccomp policy and namespace adjustments"
            }
            Feature::FieldOwners => "field owners (`FieldOwners`), sent to validators",
            Feature::V011Adjustments => {
                "sysctl, net device, scheduler and RDT adjustments; `Container.user`"
            }
            Feature::SysctlMerged => "sysctl adjustments merged (v0.11 panics on them)",
            Feature::HooksOwnersAccumulated => "the owner of OCI hooks accumulates",
            Feature::MemoryPolicy => "memory policy adjustments",
            Feature::VersionExchange => "NRI versions exchanged at registration and Configure",
            Feature::UpdatesDuringEvents => "`UpdateContainers` does not wait for events",
            Feature::ContainerImage => "`Container.image`",
            Feature::SysctlRemovalsInSysctl => {
                "a sysctl removal is reported in `linux.sysctl` (before: annotations)"
            }
            Feature::FailurePolicy => "plugin failure policies honoured",
            Feature::SkipsClosedPlugins => "closed plugins skipped until removed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_in_order_and_every_feature_arrives_in_one() {
        for pair in RELEASES.windows(2) {
            assert!(reached(pair[1], pair[0]) && pair[0] != pair[1], "{pair:?}");
        }
        for f in Feature::ALL {
            assert!(is_release(f.since()), "{f:?}");
        }
        for pair in Feature::ALL.windows(2) {
            assert!(reached(pair[1].since(), pair[0].since()), "{pair:?}");
        }
        assert!(!is_release((0, 10, 1)));
    }

    #[test]
    fn reached_compares_each_component_in_turn() {
        assert!(reached((0, 12, 5), (0, 12, 4)));
        assert!(reached((0, 12, 0), (0, 11, 9)));
        assert!(reached((1, 0, 0), (0, 99, 99)));
        assert!(reached((0, 10, 0), (0, 10, 0)));
        assert!(!reached((0, 9, 9), (0, 10, 0)));
        assert!(!reached((0, 12, 3), (0, 12, 4)));
    }

    #[test]
    fn every_release_the_proto_comments_name_is_in_the_table() {
        let proto = include_str!("../../proto/nri.proto");
        let mut named = 0;
        for (i, _) in proto.match_indices("Since NRI v") {
            let text = &proto[i + "Since NRI v".len()..];
            let end = text
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(text.len());
            let parts: Vec<u64> = text[..end]
                .trim_end_matches('.')
                .split('.')
                .map(|n| n.parse().unwrap())
                .collect();
            let release = (parts[0], parts[1], parts[2]);
            assert!(
                is_release(release),
                "proto/nri.proto names v{}",
                &text[..end]
            );
            named += 1;
        }
        assert!(named > 50, "only {named} releases named");
    }
}
