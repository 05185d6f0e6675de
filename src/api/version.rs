//! NRI versions: the one this crate speaks, the ones runtimes report, and
//! what a runtime of a given version can deliver.
//!
//! Since NRI v0.12.0 the plugin sends its NRI version at registration and
//! the runtime sends its own in Configure. Older runtimes send none; for
//! containerd and CRI-O the version can then be inferred from the runtime's
//! own name and version ([`NriVersion::infer_from_runtime`], the table of
//! upstream's `api.InferVersionFromRuntime`). What a version means for a
//! plugin is decided here and nowhere else: [`NriVersion::events`] is the
//! set of events such a runtime can deliver.
//!
//! Versions are Go module versions (`v0.12.5`, `v0.9.1-0.20250219030224-e597e7849f24`)
//! and compare as upstream compares them: numerically by major, minor and
//! patch, then a pre-release sorts before its release.

use std::cmp::Ordering;
use std::fmt;

use super::event::NOTIFICATION_RPCS_SINCE;
use super::releases::{reached, snapshot, Release};
use super::EventMask;
use crate::{Error, Result};

/// The NRI API version this crate implements, sent to the runtime in
/// `RegisterPluginRequest.NRI_version`.
///
/// ```
/// assert_eq!(nri::api::NRI_VERSION, "v0.12.5");
/// ```
pub const NRI_VERSION: &str = "v0.12.5";

/// The text upstream uses for a version it could not determine.
pub const UNKNOWN_VERSION: &str = "0.0.0-unknown";

/// The text Go reports for a module built from a working tree.
pub const DEVEL_VERSION: &str = "(devel)";

/// A parsed NRI (Go module) version: `vMAJOR[.MINOR[.PATCH]][-PRE][+BUILD]`.
///
/// ```
/// use nri::api::NriVersion;
///
/// let v: NriVersion = "v0.11.0".parse()?;
/// assert!(v >= "v0.10.0".parse()?);
/// assert!("v0.10.0-rc.1".parse::<NriVersion>()? < "v0.10.0".parse()?);
/// assert_eq!(v.to_string(), "v0.11.0");
/// # Ok::<(), nri::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NriVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl NriVersion {
    /// The release `v{major}.{minor}.{patch}`, without pre-release.
    pub fn release(major: u64, minor: u64, patch: u64) -> NriVersion {
        NriVersion {
            major,
            minor,
            patch,
            pre: String::new(),
        }
    }

    /// Parses a version as upstream does: a leading `v`, up to three
    /// numeric components without leading zeros (missing ones are 0), an
    /// optional pre-release and build metadata of `[0-9A-Za-z-]` identifiers
    /// separated by dots.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the text and the rule it breaks: empty, no
    /// leading `v`, a component that is not a number or has a leading zero,
    /// more than three components, a pre-release or build on a version
    /// without all three components, or an empty or invalid identifier.
    pub fn parse(text: &str) -> Result<NriVersion> {
        let bad = |rule: &str| Error::Config(format!("NRI version {text:?} is invalid: {rule}"));
        let rest = text
            .strip_prefix('v')
            .ok_or_else(|| bad("it must start with 'v' (as in v0.12.5)"))?;
        let (rest, build) = match rest.split_once('+') {
            Some((r, b)) => (r, Some(b)),
            None => (rest, None),
        };
        if let Some(build) = build {
            check_identifiers(build, false).map_err(|e| bad(&format!("build metadata: {e}")))?;
        }
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        if let Some(pre) = pre {
            check_identifiers(pre, true).map_err(|e| bad(&format!("pre-release: {e}")))?;
        }
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 {
            return Err(bad("more than three components"));
        }
        if parts.len() < 3 && (pre.is_some() || build.is_some()) {
            return Err(bad("a pre-release or build needs major.minor.patch"));
        }
        let mut nums = [0u64; 3];
        for (slot, part) in nums.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("{part:?} is not a number")));
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(bad(&format!("{part:?} has a leading zero")));
            }
            *slot = part
                .parse()
                .map_err(|_| bad(&format!("{part:?} is too large")))?;
        }
        Ok(NriVersion {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre: pre.unwrap_or_default().to_string(),
        })
    }

    /// The NRI version a runtime embeds, inferred from the runtime's name
    /// and version for runtimes that do not send it (those before NRI
    /// v0.12): the NRI version of the newest known release of `runtime`
    /// (`containerd` or `cri-o`) not newer than `runtime_version`, as
    /// upstream's `api.InferVersionFromRuntime` does. A `git describe`
    /// suffix (`v2.2.1-37-g41b9c58`) is ignored, and unlike upstream a
    /// version without its leading `v` (`1.34.0`) is read as if it had one.
    ///
    /// ```
    /// use nri::api::NriVersion;
    /// let v = NriVersion::infer_from_runtime("containerd", "v2.2.9")?;
    /// assert_eq!(v.to_string(), "v0.11.0");
    /// assert!(NriVersion::infer_from_runtime("containerd", "v1.6.0").is_err());
    /// # Ok::<(), nri::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown runtime, or a version older than
    /// every known release or not a version at all.
    pub fn infer_from_runtime(runtime: &str, runtime_version: &str) -> Result<NriVersion> {
        let table: &[(&str, &str)] = match runtime {
            "containerd" => CONTAINERD,
            "cri-o" => CRIO,
            other => {
                return Err(Error::Config(format!(
                    "cannot infer the NRI version of unknown runtime {other:?} (known: containerd, cri-o)"
                )))
            }
        };
        let text = if runtime_version.starts_with(|c: char| c.is_ascii_digit()) {
            format!("v{runtime_version}")
        } else {
            runtime_version.to_string()
        };
        let wanted = NriVersion::parse(&text)
            .map(NriVersion::without_git_describe)
            .map_err(|e| {
                Error::Config(format!(
                    "cannot infer the NRI version of {runtime} {runtime_version:?}: {e}"
                ))
            })?;
        let mut best: Option<(NriVersion, &str)> = None;
        for (release, nri) in table {
            let Ok(release) = NriVersion::parse(release) else {
                continue;
            };
            if release <= wanted && best.as_ref().map_or(true, |(b, _)| release > *b) {
                best = Some((release, nri));
            }
        }
        let (_, nri) = best.ok_or_else(|| {
            Error::Config(format!(
                "cannot infer the NRI version of {runtime} {runtime_version:?}: it is older than every known release"
            ))
        })?;
        NriVersion::parse(nri)
    }

    /// The major version.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor version.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch version.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release part (after `-`), empty for a release.
    pub fn pre_release(&self) -> &str {
        &self.pre
    }

    /// The release number, without pre-release: a pre-release or
    /// pseudo-version of v0.10.0 has what v0.10.0 has.
    pub(crate) fn core(&self) -> Release {
        (self.major, self.minor, self.patch)
    }

    /// The events a runtime embedding this NRI version can deliver, from
    /// the event table: [`EventMask::ALL`] from v0.10.0 on (pre-releases
    /// and pseudo-versions of v0.10.0 included), [`EventMask::V0_9_EVENTS`]
    /// before, except for the development snapshots runtimes are known to
    /// ship, which have the events of their own code (CRI-O 1.33's
    /// `v0.9.1-0.20250219030224-e597e7849f24` also delivers the two pod
    /// update events).
    ///
    /// ```
    /// use nri::api::{Event, EventMask, NriVersion};
    /// assert_eq!(NriVersion::parse("v0.9.0")?.events(), EventMask::V0_9_EVENTS);
    /// assert_eq!(NriVersion::parse("v0.11.0")?.events(), EventMask::ALL);
    /// let crio_1_33 = NriVersion::parse("v0.9.1-0.20250219030224-e597e7849f24")?;
    /// assert_eq!(crio_1_33.events().bits(), 0x1fff);
    /// assert!(!crio_1_33.events().is_set(Event::VALIDATE_CONTAINER_ADJUSTMENT));
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn events(&self) -> EventMask {
        if !self.pre.is_empty() {
            if let Some(s) = snapshot(&self.to_string()) {
                return EventMask::known_by(s.base) | EventMask::from_events(s.extra_events);
            }
        }
        EventMask::known_by(self.core())
    }

    /// Whether a runtime of this version sends every notification through
    /// its own RPC (v0.12.0 on) rather than through `StateChange`.
    pub fn has_per_event_rpcs(&self) -> bool {
        reached(self.core(), NOTIFICATION_RPCS_SINCE)
    }

    /// The version without a `git describe` suffix (`-37-g41b9c58`), which
    /// marks a build from a working tree past the release.
    fn without_git_describe(self) -> NriVersion {
        let mut parts = self.pre.splitn(2, '-');
        let (Some(commits), Some(sha)) = (parts.next(), parts.next()) else {
            return self;
        };
        let sha = sha.split('.').next().unwrap_or_default();
        let is_describe = commits.parse::<u64>().is_ok()
            && sha.len() > 1
            && sha.starts_with('g')
            && u64::from_str_radix(&sha[1..], 16).is_ok();
        if is_describe {
            NriVersion {
                pre: String::new(),
                ..self
            }
        } else {
            self
        }
    }
}

fn check_identifiers(text: &str, pre_release: bool) -> std::result::Result<(), String> {
    for id in text.split('.') {
        if id.is_empty() {
            return Err(format!("empty identifier in {text:?}"));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("invalid character {c:?} in identifier {id:?}"));
        }
        if pre_release
            && id.len() > 1
            && id.starts_with('0')
            && id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!("numeric identifier {id:?} has a leading zero"));
        }
    }
    Ok(())
}

impl std::str::FromStr for NriVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<NriVersion> {
        NriVersion::parse(text)
    }
}

impl fmt::Display for NriVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

impl PartialOrd for NriVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NriVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core()
            .cmp(&other.core())
            .then_with(|| compare_pre_release(&self.pre, &other.pre))
    }
}

/// Semantic-version precedence of pre-releases: none sorts last; numeric
/// identifiers compare as numbers and before alphanumeric ones; a shorter
/// list of equal identifiers sorts first.
fn compare_pre_release(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let nx = x.bytes().all(|c| c.is_ascii_digit());
                let ny = y.bytes().all(|c| c.is_ascii_digit());
                let order = match (nx, ny) {
                    (true, true) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// containerd releases and the NRI version each embeds (from upstream
/// `pkg/api/version.go`; containerd 2.3 and later send their NRI version).
pub(crate) const CONTAINERD: &[(&str, &str)] = &[
    ("v1.7.0", "v0.3.0"),
    ("v1.7.7", "v0.4.0"),
    ("v1.7.14", "v0.6.0"),
    ("v1.7.16", "v0.6.1"),
    ("v1.7.26", "v0.8.0"),
    ("v2.0.0", "v0.8.0"),
    ("v2.2.0", "v0.10.0"),
    ("v2.2.1", "v0.11.0"),
];

/// CRI-O releases and the NRI version each embeds (from upstream
/// `pkg/api/version.go`, checked against each release's `go.mod` by
/// `tests/interop/check-versions.sh`). One row differs from upstream's
/// table on purpose: upstream says v1.34.0 embeds v0.10.0, but the
/// `go.mod` of the `v1.34.0` module names the same development snapshot as
/// 1.33. Inferring the snapshot is the safe side: a plugin subscribing to
/// adjustment validation, which the snapshot lacks, would be refused.
pub(crate) const CRIO: &[(&str, &str)] = &[
    ("v1.26.0", "v0.2.0"),
    ("v1.26.2", "v0.3.0"),
    ("v1.26.4", "v0.3.1-0.20230504231226-94185418e253"),
    ("v1.27.0", "v0.3.0"),
    ("v1.27.1", "v0.3.1-0.20230504231226-94185418e253"),
    ("v1.29.0", "v0.5.0"),
    ("v1.29.2", "v0.6.0"),
    ("v1.31.0", "v0.6.1"),
    ("v1.32.0", "v0.9.0"),
    ("v1.33.0", "v0.9.1-0.20250219030224-e597e7849f24"),
    ("v1.34.0", "v0.9.1-0.20250219030224-e597e7849f24"),
    ("v1.35.0", "v0.11.0"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    fn v(s: &str) -> NriVersion {
        NriVersion::parse(s).unwrap()
    }

    #[test]
    fn parses_release_pre_release_pseudo_and_short_forms() {
        assert_eq!(v("v0.12.5").core(), (0, 12, 5));
        assert_eq!(v("v1").core(), (1, 0, 0));
        assert_eq!(v("v2.1").core(), (2, 1, 0));
        let pseudo = v("v0.9.1-0.20250219030224-e597e7849f24");
        assert_eq!(pseudo.core(), (0, 9, 1));
        assert_eq!(pseudo.pre_release(), "0.20250219030224-e597e7849f24");
        assert_eq!(v("v1.2.3+build.7").to_string(), "v1.2.3");
    }

    #[test]
    fn refuses_malformed_versions_naming_the_rule() {
        for (text, rule) in [
            ("", "start with 'v'"),
            ("0.12.5", "start with 'v'"),
            ("unknown", "start with 'v'"),
            (UNKNOWN_VERSION, "start with 'v'"),
            (DEVEL_VERSION, "start with 'v'"),
            ("v", "is not a number"),
            ("v1..2", "is not a number"),
            ("v01.2.3", "leading zero"),
            ("v1.2.3.4", "more than three"),
            ("v1.2-rc1", "needs major.minor.patch"),
            ("v1.2.3-", "empty identifier"),
            ("v1.2.3-rc_1", "invalid character"),
            ("v1.2.3-01", "leading zero"),
            ("v1.2.x", "is not a number"),
            ("v99999999999999999999.0.0", "too large"),
        ] {
            let err = NriVersion::parse(text).unwrap_err().to_string();
            assert!(err.contains(rule), "{text:?}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text:?}: {err}");
        }
    }

    #[test]
    fn orders_like_upstream() {
        let sorted = [
            "v0.0.10",
            "v0.1.0",
            "v0.2.0",
            "v0.9.0",
            "v0.9.1-0.2025",
            "v0.9.1",
            "v0.10.0-alpha",
            "v0.10.0-alpha.1",
            "v0.10.0-alpha.beta",
            "v0.10.0-beta.2",
            "v0.10.0-beta.11",
            "v0.10.0-rc.1",
            "v0.10.0",
            "v0.10.9",
            "v1.0",
            "v2",
        ];
        for pair in sorted.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("v1.0").cmp(&v("v1.0.0")), Ordering::Equal);
    }

    #[test]
    fn infers_containerd_and_crio_versions_like_upstream() {
        let infer =
            |rt: &str, ver: &str| NriVersion::infer_from_runtime(rt, ver).map(|v| v.to_string());
        assert_eq!(infer("containerd", "v2.2.0").unwrap(), "v0.10.0");
        assert_eq!(infer("containerd", "v2.2.9").unwrap(), "v0.11.0");
        assert_eq!(infer("containerd", "v2.1.4").unwrap(), "v0.8.0");
        assert_eq!(infer("containerd", "v1.7.15").unwrap(), "v0.6.0");
        assert_eq!(
            infer("containerd", "v2.2.1-37-g41b9c58").unwrap(),
            "v0.11.0"
        );
        assert_eq!(infer("containerd", "v2.2.1-rc.1").unwrap(), "v0.10.0");
        assert_eq!(
            infer("cri-o", "v1.33.4").unwrap(),
            "v0.9.1-0.20250219030224-e597e7849f24"
        );
        assert_eq!(
            infer("cri-o", "1.34.2").unwrap(),
            "v0.9.1-0.20250219030224-e597e7849f24"
        );
        assert_eq!(infer("cri-o", "v1.35.0").unwrap(), "v0.11.0");
        assert!(infer("containerd", "v1.6.9")
            .unwrap_err()
            .to_string()
            .contains("older than every known release"));
        assert!(infer("podman", "v5.0.0")
            .unwrap_err()
            .to_string()
            .contains("unknown runtime \"podman\""));
        assert!(infer("containerd", "").is_err());
        assert!(infer("containerd", "garbage").is_err());
    }

    #[test]
    fn events_and_rpcs_follow_the_version() {
        assert_eq!(v("v0.9.0").events(), EventMask::V0_9_EVENTS);
        assert_eq!(
            v("v0.9.1-0.20250219030224-e597e7849f24").events(),
            EventMask::V0_9_EVENTS | Event::UPDATE_POD_SANDBOX | Event::POST_UPDATE_POD_SANDBOX
        );
        assert_eq!(v("v0.9.1").events(), EventMask::V0_9_EVENTS);
        assert_eq!(
            v("v0.9.1-0.20250101000000-000000000000").events(),
            EventMask::V0_9_EVENTS
        );
        assert_eq!(v("v0.10.0-rc.1").events(), EventMask::ALL);
        assert_eq!(v("v0.10.0").events(), EventMask::ALL);
        assert_eq!(v("v1.0.0").events(), EventMask::ALL);
        assert!(!v("v0.11.0").has_per_event_rpcs());
        assert!(v("v0.12.0").has_per_event_rpcs());
        assert!(v(NRI_VERSION).has_per_event_rpcs());
    }
}
