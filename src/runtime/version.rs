//! [`Emulation`]: the NRI releases whose runtime side a
//! [`Runtime`](super::Runtime) can behave like, and what each of them does
//! differently in ways a plugin can observe. (The version numbers
//! themselves, and what any version can deliver to a plugin, are
//! [`NriVersion`](crate::api::NriVersion)'s.)
//!
//! Every version-dependent decision of this module's runtime side is a field
//! of one [`Profile`] value, looked up once from the chosen [`Emulation`]:
//! which events a plugin may subscribe to, whether notifications travel as
//! per-event RPCs or as `StateChange`, whether versions are exchanged,
//! whether a failure policy is honoured, whether `UpdateContainers` waits
//! for the event lock, and how replies of several plugins are merged
//! ([`MergeRules`]). Code elsewhere consults these fields; it never compares
//! version numbers.

use std::fmt;
use std::str::FromStr;

use crate::api::EventMask;
use crate::{Error, Result};

/// An NRI release whose runtime side (`pkg/adaptation` of containerd/nri) a
/// [`Runtime`](super::Runtime) emulates: one of a closed set, each a value
/// of everything that release does differently. Chosen with
/// [`RuntimeBuilder::emulate`](super::RuntimeBuilder::emulate); the
/// default is [`Emulation::V0_12_5`].
///
/// ```
/// use nri::api::{Event, EventMask};
/// use nri::runtime::Emulation;
///
/// let old: Emulation = "v0.9.0".parse()?;
/// assert_eq!(old, Emulation::V0_9_0);
/// assert_eq!(old.valid_events(), EventMask::V0_9_EVENTS);
/// assert!(!old.has_per_event_rpcs());
/// assert!(Emulation::default().valid_events().is_set(Event::VALIDATE_CONTAINER_ADJUSTMENT));
/// assert_eq!(Emulation::default().to_string(), "v0.12.5");
/// # Ok::<(), nri::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Emulation(&'static Profile);

impl Emulation {
    /// NRI v0.9.0 (CRI-O 1.32, containerd 1.7.26–2.1): eleven events, every
    /// notification as `StateChange`, no validation, no failure policy, one
    /// lock around events and `UpdateContainers`.
    pub const V0_9_0: Emulation = Emulation(&V0_9_0);
    /// NRI v0.11.0 (containerd 2.2.x, CRI-O 1.35): pod update events and
    /// validation, the v0.10 and v0.11 adjustments, notifications still as
    /// `StateChange`.
    pub const V0_11_0: Emulation = Emulation(&V0_11_0);
    /// NRI v0.12.3 (containerd 2.4.x): per-event RPCs with a `StateChange`
    /// fallback, versions exchanged, memory policy adjustments,
    /// `UpdateContainers` no longer waits for events.
    pub const V0_12_3: Emulation = Emulation(&V0_12_3);
    /// NRI v0.12.5: v0.12.3 plus plugin failure policies.
    pub const V0_12_5: Emulation = Emulation(&V0_12_5);
    /// The newest version emulated.
    pub const LATEST: Emulation = Emulation::V0_12_5;
    /// Every version that can be emulated, oldest first.
    pub const ALL: [Emulation; 4] = [
        Emulation::V0_9_0,
        Emulation::V0_11_0,
        Emulation::V0_12_3,
        Emulation::V0_12_5,
    ];

    /// The release tag, such as `"v0.12.5"`: what a runtime of this version
    /// sends in `ConfigureRequest.NRI_version` (from v0.12).
    pub fn as_str(self) -> &'static str {
        self.0.tag
    }

    /// The release as an [`NriVersion`](crate::api::NriVersion).
    ///
    /// ```
    /// use nri::runtime::Emulation;
    /// assert_eq!(Emulation::V0_11_0.nri_version(), "v0.11.0".parse()?);
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn nri_version(self) -> crate::api::NriVersion {
        let (major, minor, patch) = self.0.release;
        crate::api::NriVersion::release(major, minor, patch)
    }

    /// The emulation of exactly `version`, if there is one.
    pub fn of(version: &crate::api::NriVersion) -> Option<Emulation> {
        Emulation::ALL
            .into_iter()
            .find(|e| &e.nri_version() == version)
    }

    /// The events a plugin may subscribe to: bits outside it are refused at
    /// Configure.
    pub fn valid_events(self) -> EventMask {
        self.0.valid_events
    }

    /// Whether notifications are sent as per-event RPCs (RunPodSandbox,
    /// StartContainer, ...) first, falling back to `StateChange` for the
    /// rest of the connection when the plugin answers UNIMPLEMENTED (from
    /// v0.12), rather than always as `StateChange`.
    pub fn has_per_event_rpcs(self) -> bool {
        self.0.per_event_rpcs
    }

    /// Whether the plugin's `ConfigureResponse.failure_policy` is honoured
    /// (from v0.12.5).
    pub fn has_failure_policy(self) -> bool {
        self.0.failure_policy
    }

    /// Whether `UpdateContainers` calls from plugins wait while an event is
    /// in flight (before v0.12.1: the global lock that deadlocks a plugin
    /// calling it from inside a handler).
    pub fn blocks_updates_during_events(self) -> bool {
        self.0.locks_update_containers
    }

    pub(crate) fn profile(self) -> &'static Profile {
        self.0
    }
}

impl Default for Emulation {
    fn default() -> Self {
        Emulation::LATEST
    }
}

impl fmt::Display for Emulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.tag)
    }
}

impl fmt::Debug for Emulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Emulation({})", self.0.tag)
    }
}

impl FromStr for Emulation {
    type Err = Error;

    /// Parses `v0.12.5` or `0.12.5` (one of [`Emulation::ALL`]).
    fn from_str(s: &str) -> Result<Emulation> {
        let want = s.trim();
        let want = want.strip_prefix('v').unwrap_or(want);
        Emulation::ALL
            .into_iter()
            .find(|v| &v.0.tag[1..] == want)
            .ok_or_else(|| {
                let known: Vec<&str> = Emulation::ALL.iter().map(|v| v.as_str()).collect();
                Error::Config(format!(
                    "unknown NRI version {s:?}: the runtime emulates {}",
                    known.join(", ")
                ))
            })
    }
}

impl PartialEq for Profile {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag
    }
}

impl Eq for Profile {}

impl std::hash::Hash for Profile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tag.hash(state);
    }
}

/// Everything a runtime of one NRI version does differently.
#[derive(Debug)]
pub(crate) struct Profile {
    /// Release tag, sent as `ConfigureRequest.NRI_version` when
    /// `sends_nri_version`.
    pub(crate) tag: &'static str,
    /// The same release as numbers (a test keeps the two equal).
    pub(crate) release: (u64, u64, u64),
    /// Events a plugin may subscribe to.
    pub(crate) valid_events: EventMask,
    /// Notifications as per-event RPCs first (v0.12).
    pub(crate) per_event_rpcs: bool,
    /// `ConfigureRequest.NRI_version` is filled in (v0.12).
    pub(crate) sends_nri_version: bool,
    /// `ConfigureResponse.failure_policy` is honoured (v0.12.5).
    pub(crate) failure_policy: bool,
    /// `UpdateContainers` takes the event lock (before v0.12.1).
    pub(crate) locks_update_containers: bool,
    /// How replies are merged.
    pub(crate) merge: MergeRules,
}

/// How the replies of several plugins to one request are merged
/// (`pkg/adaptation/result.go` of the version).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergeRules {
    /// How claims are recorded and conflicts reported.
    pub(crate) owners: OwnerStyle,
    /// The adjustments of v0.10 and v0.11 are merged: args, I/O priority,
    /// seccomp policy, namespaces, sysctls, network devices, scheduler,
    /// RDT and device cgroup rules in resources. Older versions drop them.
    pub(crate) v0_10_adjustments: bool,
    /// Memory policy adjustments are merged (v0.12).
    pub(crate) memory_policy: bool,
    /// What a sysctl adjustment does.
    pub(crate) sysctl: SysctlRule,
    /// How the owner of OCI hooks is recorded.
    pub(crate) hooks_owner: HooksOwner,
    /// A merged adjustment gets an empty `linux.rdt` as soon as one plugin
    /// replied with a `linux` part (v0.11: the RDT merge step always runs).
    pub(crate) rdt_skeleton: bool,
    /// The copy of resources an update is merged into keeps the device
    /// cgroup rules (v0.11); v0.9's copy leaves them out.
    pub(crate) update_keeps_device_rules: bool,
}

/// How owners of adjusted fields are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerStyle {
    /// v0.9: per-item subjects (`annotation k`, `memory limit`); removing an
    /// item forgets its owner.
    Subjects,
    /// v0.10+: `pkg/api` `FieldOwners` keyed by [`Field`](crate::api::Field)
    /// (`Annotations k`, `MemLimit `); removing an item records the remover
    /// as `-plugin`, which only that plugin may set again. Sent to
    /// validators.
    Fields,
}

/// What a sysctl adjustment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysctlRule {
    /// Not merged (v0.9).
    Ignored,
    /// v0.11: setting a sysctl writes to a map the adaptation never
    /// created, which crashes the runtime; a removal-only entry lands among
    /// the annotations.
    Broken,
    /// v0.12: merged like annotations.
    Merged,
}

/// How the owner of OCI hooks is recorded (hooks never conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HooksOwner {
    /// Not recorded (v0.9).
    None,
    /// v0.11: the first plugin is recorded; from the second on the record
    /// becomes `-<latest plugin>` (its accumulation step fails silently).
    LatestAsRemover,
    /// v0.12: every plugin that added hooks, as `a,b,c`.
    Accumulated,
}

static V0_9_0: Profile = Profile {
    tag: "v0.9.0",
    release: (0, 9, 0),
    valid_events: EventMask::V0_9_EVENTS,
    per_event_rpcs: false,
    sends_nri_version: false,
    failure_policy: false,
    locks_update_containers: true,
    merge: MergeRules {
        owners: OwnerStyle::Subjects,
        v0_10_adjustments: false,
        memory_policy: false,
        sysctl: SysctlRule::Ignored,
        hooks_owner: HooksOwner::None,
        rdt_skeleton: false,
        update_keeps_device_rules: false,
    },
};

static V0_11_0: Profile = Profile {
    tag: "v0.11.0",
    release: (0, 11, 0),
    valid_events: EventMask::ALL,
    per_event_rpcs: false,
    sends_nri_version: false,
    failure_policy: false,
    locks_update_containers: true,
    merge: MergeRules {
        owners: OwnerStyle::Fields,
        v0_10_adjustments: true,
        memory_policy: false,
        sysctl: SysctlRule::Broken,
        hooks_owner: HooksOwner::LatestAsRemover,
        rdt_skeleton: true,
        update_keeps_device_rules: true,
    },
};

/// v0.12.3, a constant so that v0.12.5 reads as "v0.12.3 plus failure
/// policies".
const V0_12_3_PROFILE: Profile = Profile {
    tag: "v0.12.3",
    release: (0, 12, 3),
    valid_events: EventMask::ALL,
    per_event_rpcs: true,
    sends_nri_version: true,
    failure_policy: false,
    locks_update_containers: false,
    merge: MergeRules {
        owners: OwnerStyle::Fields,
        v0_10_adjustments: true,
        memory_policy: true,
        sysctl: SysctlRule::Merged,
        hooks_owner: HooksOwner::Accumulated,
        rdt_skeleton: true,
        update_keeps_device_rules: true,
    },
};

static V0_12_3: Profile = V0_12_3_PROFILE;

static V0_12_5: Profile = Profile {
    tag: "v0.12.5",
    release: (0, 12, 5),
    failure_policy: true,
    ..V0_12_3_PROFILE
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    #[test]
    fn each_emulation_agrees_with_what_its_nri_version_delivers() {
        for e in Emulation::ALL {
            let v = crate::api::NriVersion::parse(e.as_str()).expect("a valid tag");
            assert_eq!(e.nri_version(), v);
            assert_eq!(e.valid_events(), v.events(), "{e}");
            assert_eq!(e.has_per_event_rpcs(), v.has_per_event_rpcs(), "{e}");
            assert_eq!(Emulation::of(&v), Some(e));
        }
        assert_eq!(Emulation::of(&"v0.10.0".parse().unwrap()), None);
    }

    #[test]
    fn versions_parse_with_or_without_the_v_and_refuse_unknown_ones() {
        for v in Emulation::ALL {
            assert_eq!(v.as_str().parse::<Emulation>().unwrap(), v);
            assert_eq!(v.as_str()[1..].parse::<Emulation>().unwrap(), v);
        }
        let err = "v0.10.0".parse::<Emulation>().unwrap_err().to_string();
        assert!(err.contains("v0.10.0") && err.contains("v0.12.5"), "{err}");
    }

    #[test]
    fn only_v0_9_refuses_the_pod_update_and_validation_events() {
        let new = Event::UPDATE_POD_SANDBOX.mask() | Event::VALIDATE_CONTAINER_ADJUSTMENT.mask();
        assert!(!Emulation::V0_9_0.valid_events().contains(new));
        for v in [Emulation::V0_11_0, Emulation::V0_12_3, Emulation::V0_12_5] {
            assert!(v.valid_events().contains(new), "{v}");
        }
    }

    #[test]
    fn v0_12_5_is_v0_12_3_with_failure_policies() {
        let (a, b) = (Emulation::V0_12_3.profile(), Emulation::V0_12_5.profile());
        assert!(!a.failure_policy && b.failure_policy);
        assert_eq!(a.per_event_rpcs, b.per_event_rpcs);
        assert_eq!(a.locks_update_containers, b.locks_update_containers);
        assert_eq!(a.merge.sysctl, b.merge.sysctl);
        assert_eq!(b.tag, "v0.12.5");
        assert_ne!(Emulation::V0_12_3, Emulation::V0_12_5);
    }
}
