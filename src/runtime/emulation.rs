//! [`Emulation`]: the NRI releases whose runtime side a
//! [`Runtime`](super::Runtime) can behave like, and what each of them does
//! differently in ways a plugin can observe. (The version numbers
//! themselves, and what any version can deliver to a plugin, are
//! [`NriVersion`](crate::api::NriVersion)'s.)
//!
//! Every version-dependent decision of this module's runtime side is a field
//! of one [`Profile`] value, looked up once from the chosen [`Emulation`]:
//! which events a plugin may subscribe to, which events travel through
//! their own RPC rather than `StateChange`, whether versions are exchanged,
//! whether a failure policy is honoured, whether `UpdateContainers` waits
//! for the event lock, whether closed plugins are skipped, and how replies
//! of several plugins are merged ([`MergeRules`]). Each profile is derived
//! from the release tables (`crate::api::releases` and the event table), so
//! that a fact about a release is written once; code elsewhere consults the
//! profile's fields and never compares version numbers.
//!
//! A release gets a profile of its own when its behaviour differs from the
//! one before it. v0.12.2 does not: it only adds `Container.image`, which
//! the runtime fills from its own data (here: from the caller's), so
//! [`Emulation::V0_12_1`] stands for it.

use std::fmt;
use std::str::FromStr;

use crate::api::releases::{reached, Feature, Release};
use crate::api::{Event, EventMask};
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
    /// NRI v0.9.0 (CRI-O 1.32; containerd 1.7.26 to 2.1 embed v0.8.0,
    /// which this also stands for): eleven events, every notification as
    /// `StateChange`, no validation, no failure policy, one lock around
    /// events and `UpdateContainers`.
    pub const V0_9_0: Emulation = Emulation(&V0_9_0);
    /// NRI v0.10.0 (containerd 2.2.0, CRI-O 1.34): the pod update events and
    /// validation, field owners, the args, I/O priority, seccomp policy and
    /// namespace adjustments; notifications still as `StateChange`. It has
    /// no sysctl, net device, scheduler or RDT adjustments: a plugin's reply
    /// with them is read without them.
    pub const V0_10_0: Emulation = Emulation(&V0_10_0);
    /// NRI v0.11.0 (containerd 2.2.1 and later 2.2 releases, CRI-O 1.35):
    /// v0.10.0 plus the sysctl, net device, scheduler and RDT adjustments
    /// (a sysctl adjustment crashes it, and fails the creation here).
    pub const V0_11_0: Emulation = Emulation(&V0_11_0);
    /// NRI v0.12.0 (containerd 2.3.x): per-event RPCs with a `StateChange`
    /// fallback, versions exchanged, memory policy adjustments, sysctl
    /// adjustments merged; `UpdateContainers` still waits for events.
    pub const V0_12_0: Emulation = Emulation(&V0_12_0);
    /// NRI v0.12.1 and v0.12.2: v0.12.0, but `UpdateContainers` no longer
    /// waits for events.
    pub const V0_12_1: Emulation = Emulation(&V0_12_1);
    /// NRI v0.12.3 (containerd 2.4.x): v0.12.1, with a sysctl removal
    /// reported in the merged reply's `linux.sysctl` rather than among its
    /// annotations.
    pub const V0_12_3: Emulation = Emulation(&V0_12_3);
    /// NRI v0.12.4: v0.12.3 plus plugin failure policies.
    pub const V0_12_4: Emulation = Emulation(&V0_12_4);
    /// NRI v0.12.5: v0.12.4, and a plugin whose connection closed is
    /// skipped by later requests until it is removed.
    pub const V0_12_5: Emulation = Emulation(&V0_12_5);
    /// The newest version emulated.
    pub const LATEST: Emulation = Emulation::V0_12_5;
    /// Every version that can be emulated, oldest first.
    pub const ALL: [Emulation; 8] = [
        Emulation::V0_9_0,
        Emulation::V0_10_0,
        Emulation::V0_11_0,
        Emulation::V0_12_0,
        Emulation::V0_12_1,
        Emulation::V0_12_3,
        Emulation::V0_12_4,
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
        self.nri_version().has_per_event_rpcs()
    }

    /// Whether the plugin's `ConfigureResponse.failure_policy` is honoured
    /// (from v0.12.4).
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
    pub(crate) release: Release,
    /// Events a plugin may subscribe to.
    pub(crate) valid_events: EventMask,
    /// `ConfigureRequest.NRI_version` is filled in (v0.12).
    pub(crate) sends_nri_version: bool,
    /// `ConfigureResponse.failure_policy` is honoured (v0.12.4).
    pub(crate) failure_policy: bool,
    /// `UpdateContainers` takes the event lock (before v0.12.1).
    pub(crate) locks_update_containers: bool,
    /// A closed plugin is skipped rather than relayed to (v0.12.5).
    pub(crate) skips_closed_plugins: bool,
    /// How replies are merged.
    pub(crate) merge: MergeRules,
}

impl Profile {
    /// What a runtime of `release` does, from the release tables.
    const fn of(tag: &'static str, release: Release) -> Profile {
        // A closure cannot be called in a const fn.
        macro_rules! has {
            ($feature:ident) => {
                Feature::$feature.in_release(release)
            };
        }
        let field_owners = has!(FieldOwners);
        Profile {
            tag,
            release,
            valid_events: EventMask::known_by(release),
            sends_nri_version: has!(VersionExchange),
            failure_policy: has!(FailurePolicy),
            locks_update_containers: !has!(UpdatesDuringEvents),
            skips_closed_plugins: has!(SkipsClosedPlugins),
            merge: MergeRules {
                owners: if field_owners {
                    OwnerStyle::Fields
                } else {
                    OwnerStyle::Subjects
                },
                v0_10_adjustments: has!(V010Adjustments),
                v0_11_adjustments: has!(V011Adjustments),
                memory_policy: has!(MemoryPolicy),
                sysctl: if !has!(V011Adjustments) {
                    SysctlRule::Ignored
                } else if !has!(SysctlMerged) {
                    SysctlRule::Broken
                } else if !has!(SysctlRemovalsInSysctl) {
                    SysctlRule::MergedRemovalsAsAnnotations
                } else {
                    SysctlRule::Merged
                },
                hooks_owner: if has!(HooksOwnersAccumulated) {
                    HooksOwner::Accumulated
                } else if field_owners {
                    HooksOwner::LatestAsRemover
                } else {
                    HooksOwner::None
                },
                // The RDT merge step came with the RDT adjustment.
                rdt_skeleton: has!(V011Adjustments),
                // v0.10's copy of resources keeps the device rules.
                update_keeps_device_rules: has!(V010Adjustments),
            },
        }
    }

    /// Whether `event` goes through its own RPC (else as `StateChange`).
    pub(crate) fn sends_own_rpc(&self, event: Event) -> bool {
        event
            .facts()
            .is_some_and(|f| reached(self.release, f.rpc_since))
    }
}

/// How the replies of several plugins to one request are merged
/// (`pkg/adaptation/result.go` of the version).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergeRules {
    /// How claims are recorded and conflicts reported.
    pub(crate) owners: OwnerStyle,
    /// The adjustments of v0.10 are merged: args, I/O priority, seccomp
    /// policy, namespaces and device cgroup rules in resources. Older
    /// versions drop them.
    pub(crate) v0_10_adjustments: bool,
    /// The adjustments of v0.11 are merged: network devices, the scheduler
    /// and RDT (sysctls: see [`MergeRules::sysctl`]). Older versions drop
    /// them.
    pub(crate) v0_11_adjustments: bool,
    /// Memory policy adjustments are merged (v0.12).
    pub(crate) memory_policy: bool,
    /// What a sysctl adjustment does.
    pub(crate) sysctl: SysctlRule,
    /// How the owner of OCI hooks is recorded.
    pub(crate) hooks_owner: HooksOwner,
    /// A merged adjustment gets an empty `linux.rdt` as soon as one plugin
    /// replied with a `linux` part (from v0.11: the RDT merge step always
    /// runs).
    pub(crate) rdt_skeleton: bool,
    /// The copy of resources an update is merged into keeps the device
    /// cgroup rules (v0.10); v0.9's copy leaves them out.
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
    /// Not merged: the version has no sysctl adjustment (before v0.11).
    Ignored,
    /// v0.11: setting a sysctl writes to a map the adaptation never
    /// created, which crashes the runtime; a removal-only entry lands among
    /// the annotations.
    Broken,
    /// v0.12.0 to v0.12.2: merged like annotations, but a removal-only
    /// entry lands among the annotations.
    MergedRemovalsAsAnnotations,
    /// v0.12.3: merged like annotations.
    Merged,
}

/// How the owner of OCI hooks is recorded (hooks never conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HooksOwner {
    /// Not recorded (v0.9).
    None,
    /// v0.10 and v0.11: the first plugin is recorded; from the second on
    /// the record becomes `-<latest plugin>` (its accumulation step fails
    /// silently).
    LatestAsRemover,
    /// v0.12: every plugin that added hooks, as `a,b,c`.
    Accumulated,
}

static V0_9_0: Profile = Profile::of("v0.9.0", (0, 9, 0));
static V0_10_0: Profile = Profile::of("v0.10.0", (0, 10, 0));
static V0_11_0: Profile = Profile::of("v0.11.0", (0, 11, 0));
static V0_12_0: Profile = Profile::of("v0.12.0", (0, 12, 0));
static V0_12_1: Profile = Profile::of("v0.12.1", (0, 12, 1));
static V0_12_3: Profile = Profile::of("v0.12.3", (0, 12, 3));
static V0_12_4: Profile = Profile::of("v0.12.4", (0, 12, 4));
static V0_12_5: Profile = Profile::of("v0.12.5", (0, 12, 5));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::releases::RELEASES;

    #[test]
    fn each_emulation_agrees_with_what_its_nri_version_delivers() {
        for e in Emulation::ALL {
            let v = crate::api::NriVersion::parse(e.as_str()).expect("a valid tag");
            assert_eq!(e.nri_version(), v);
            assert_eq!(e.valid_events(), v.events(), "{e}");
            assert_eq!(Emulation::of(&v), Some(e));
        }
        assert_eq!(Emulation::of(&"v0.12.2".parse().unwrap()), None);
    }

    #[test]
    fn versions_parse_with_or_without_the_v_and_refuse_unknown_ones() {
        for v in Emulation::ALL {
            assert_eq!(v.as_str().parse::<Emulation>().unwrap(), v);
            assert_eq!(v.as_str()[1..].parse::<Emulation>().unwrap(), v);
        }
        let err = "v0.12.2".parse::<Emulation>().unwrap_err().to_string();
        assert!(err.contains("v0.12.2") && err.contains("v0.12.5"), "{err}");
    }

    #[test]
    fn only_v0_9_refuses_the_pod_update_and_validation_events() {
        let new = Event::UPDATE_POD_SANDBOX | Event::VALIDATE_CONTAINER_ADJUSTMENT;
        assert!(!Emulation::V0_9_0.valid_events().contains(new));
        for v in &Emulation::ALL[1..] {
            assert!(v.valid_events().contains(new), "{v}");
        }
    }

    /// The profile's observable facts, to compare neighbours.
    fn facts(e: Emulation) -> String {
        let p = e.profile();
        let rpcs: Vec<bool> = EventMask::ALL
            .events()
            .map(|ev| p.sends_own_rpc(ev))
            .collect();
        format!(
            "{:?} {rpcs:?} {} {} {} {} {:?}",
            p.valid_events,
            p.sends_nri_version,
            p.failure_policy,
            p.locks_update_containers,
            p.skips_closed_plugins,
            p.merge
        )
    }

    #[test]
    fn every_emulated_release_behaves_differently_from_the_one_before() {
        for pair in Emulation::ALL.windows(2) {
            assert_ne!(
                facts(pair[0]),
                facts(pair[1]),
                "{} and {}",
                pair[0],
                pair[1]
            );
        }
        // v0.12.2 adds only a container field: v0.12.1 stands for it.
        let v0_12_2 = Profile::of("v0.12.2", (0, 12, 2));
        assert_eq!(
            format!("{:?}", v0_12_2.merge),
            format!("{:?}", V0_12_1.merge)
        );
        assert_eq!(
            v0_12_2.locks_update_containers,
            V0_12_1.locks_update_containers
        );
        assert_eq!(v0_12_2.failure_policy, V0_12_1.failure_policy);
        for e in Emulation::ALL {
            assert!(RELEASES.contains(&e.profile().release), "{e}");
        }
    }

    #[test]
    fn the_profiles_follow_the_release_facts() {
        let p = |e: Emulation| e.profile();
        assert!(!p(Emulation::V0_10_0).merge.v0_11_adjustments);
        assert_eq!(p(Emulation::V0_10_0).merge.sysctl, SysctlRule::Ignored);
        assert!(!p(Emulation::V0_10_0).merge.rdt_skeleton);
        assert!(p(Emulation::V0_10_0).merge.v0_10_adjustments);
        assert_eq!(p(Emulation::V0_11_0).merge.sysctl, SysctlRule::Broken);
        assert_eq!(
            p(Emulation::V0_12_0).merge.sysctl,
            SysctlRule::MergedRemovalsAsAnnotations
        );
        assert!(p(Emulation::V0_12_0).locks_update_containers);
        assert!(!p(Emulation::V0_12_1).locks_update_containers);
        assert_eq!(p(Emulation::V0_12_3).merge.sysctl, SysctlRule::Merged);
        assert!(!Emulation::V0_12_3.has_failure_policy());
        assert!(Emulation::V0_12_4.has_failure_policy());
        assert!(!p(Emulation::V0_12_4).skips_closed_plugins);
        assert!(p(Emulation::V0_12_5).skips_closed_plugins);
        assert!(!Emulation::V0_11_0.has_per_event_rpcs());
        assert!(Emulation::V0_12_0.has_per_event_rpcs());
        // UpdatePodSandbox has its own RPC from v0.10; the notifications
        // from v0.12.
        assert!(p(Emulation::V0_10_0).sends_own_rpc(Event::UPDATE_POD_SANDBOX));
        assert!(!p(Emulation::V0_11_0).sends_own_rpc(Event::POST_UPDATE_POD_SANDBOX));
        assert!(p(Emulation::V0_12_0).sends_own_rpc(Event::POST_UPDATE_POD_SANDBOX));
    }

    /// The release table as `docs/NRI_VERSIONS.md` shows it.
    fn render_docs_table() -> String {
        use crate::api::releases::RELEASES;
        use crate::api::version::{CONTAINERD, CRIO};
        use crate::api::EventFacts;
        let tag = |r: Release| format!("v{}.{}.{}", r.0, r.1, r.2);
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "—".to_string()
            } else {
                items.join("; ")
            }
        };
        let mut out = String::from(
            "| release | events added | per-event RPCs added | other changes | `Emulation` |\n\
             |---|---|---|---|---|\n",
        );
        for r in RELEASES {
            let names = |since: fn(&EventFacts) -> Release| -> Vec<String> {
                let facts = EventMask::ALL.events().filter_map(Event::facts);
                facts
                    .filter(|f| since(f) == r)
                    .map(|f| f.name.to_string())
                    .collect()
            };
            let events = names(|f| f.since);
            let rpcs = names(|f| f.rpc_since);
            let features: Vec<String> = Feature::ALL
                .iter()
                .filter(|f| f.since() == r)
                .map(|f| f.summary().to_string())
                .collect();
            let emulation = Emulation::ALL
                .iter()
                .rev()
                .find(|e| reached(r, e.profile().release))
                .map_or("—".to_string(), |e| {
                    let name = format!("`V{}`", &e.as_str()[1..].replace('.', "_"));
                    if e.profile().release == r {
                        name
                    } else {
                        format!("as {name}")
                    }
                });
            let row = [tag(r), list(events), list(rpcs), list(features), emulation];
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out.push_str(
            "\n| development snapshot | has the facts of | events added |\n|---|---|---|\n",
        );
        for s in crate::api::releases::SNAPSHOTS {
            let events: Vec<String> = s
                .extra_events
                .iter()
                .map(|e| e.name().to_string())
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                s.version,
                tag(s.base),
                list(events)
            ));
        }
        out.push_str("\n| runtime release | embeds NRI |\n|---|---|\n");
        for (runtime, table) in [("containerd", CONTAINERD), ("CRI-O", CRIO)] {
            for (release, nri) in table {
                out.push_str(&format!("| {runtime} {release} | {nri} |\n"));
            }
        }
        out
    }

    #[test]
    fn the_docs_show_the_release_tables() {
        let doc = include_str!("../../docs/NRI_VERSIONS.md");
        let (begin, end) = ("<!-- BEGIN GENERATED -->\n", "<!-- END GENERATED -->");
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        let rendered = render_docs_table();
        assert!(
            doc[start..stop] == rendered,
            "docs/NRI_VERSIONS.md is out of date; between the markers it should read:\n{rendered}"
        );
    }
}
