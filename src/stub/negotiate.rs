//! What the runtime can do, decided once per connection from Configure, and
//! the subscription that follows from it.
//!
//! A runtime embedding NRI v0.9 refuses a subscription to an event it does
//! not know (and drops the plugin); Go's stub sends its mask regardless.
//! This stub learns the runtime's NRI version (sent in Configure since
//! v0.12, else inferred from the runtime's name and version, else unknown,
//! which counts as v0.9), subscribes only to events the runtime can deliver,
//! logs the handled events it cannot, and refuses to run when one of them is
//! required.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::api::{
    ConfigureRequest, EventMask, FailurePolicy, NriVersion, DEVEL_VERSION, UNKNOWN_VERSION,
};
use crate::locking::lock;
use crate::Error;

/// What the plugin brings to the negotiation, fixed when the stub is built.
pub(super) struct Wants {
    /// The events the plugin handles ([`Plugin::events`](super::Plugin::events)).
    pub(super) handled: EventMask,
    /// The handled events it cannot run without.
    pub(super) required: EventMask,
    /// The failure policy sent in the Configure reply.
    pub(super) failure_policy: Option<FailurePolicy>,
}

/// What Configure settled for the current connection.
#[derive(Default)]
pub(super) struct Negotiated {
    runtime: Mutex<Option<Arc<RuntimeInfo>>>,
    subscribed: Mutex<EventMask>,
}

impl Negotiated {
    /// Forgets a previous connection's outcome.
    pub(super) fn reset(&self) {
        *lock(&self.runtime) = None;
        *lock(&self.subscribed) = EventMask::EMPTY;
    }

    /// The runtime, once Configure told it.
    pub(super) fn runtime(&self) -> Option<Arc<RuntimeInfo>> {
        lock(&self.runtime).clone()
    }

    pub(super) fn set_runtime(&self, runtime: Arc<RuntimeInfo>) {
        *lock(&self.runtime) = Some(runtime);
    }

    /// The events subscribed to; empty before Configure.
    pub(super) fn subscribed(&self) -> EventMask {
        *lock(&self.subscribed)
    }

    pub(super) fn set_subscribed(&self, mask: EventMask) {
        *lock(&self.subscribed) = mask;
    }
}

/// What the stub knows of the runtime it is connected to, from Configure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// The runtime's name as it sent it (`containerd`, `cri-o`).
    pub name: String,
    /// The runtime's own version as it sent it (`v2.4.2`).
    pub version: String,
    /// The NRI version the runtime embeds, when known.
    pub nri_version: Option<NriVersion>,
    /// How [`RuntimeInfo::nri_version`] was learned.
    pub nri_version_source: NriVersionSource,
    /// The events this runtime can deliver: every event from NRI v0.10 on,
    /// the eleven of v0.9 otherwise (also when the version is unknown).
    pub events: EventMask,
}

/// How the runtime's NRI version was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NriVersionSource {
    /// The runtime sent it in Configure (NRI v0.12 and newer).
    Sent,
    /// Inferred from the runtime's name and version (containerd and CRI-O
    /// releases embedding NRI before v0.12).
    Inferred,
    /// Not sent and not inferable: the runtime is treated as NRI v0.9.
    Unknown,
}

impl RuntimeInfo {
    /// Reads the runtime's identity from Configure. The second value is a
    /// note worth logging (an unreadable version, a failed inference).
    pub(crate) fn from_configure(req: &ConfigureRequest) -> (RuntimeInfo, Option<String>) {
        let sent = req.NRI_version.trim();
        let mut note = None;
        let mut version = None;
        let mut source = NriVersionSource::Unknown;
        if !sent.is_empty() && sent != UNKNOWN_VERSION && sent != DEVEL_VERSION {
            match NriVersion::parse(sent) {
                Ok(v) => {
                    version = Some(v);
                    source = NriVersionSource::Sent;
                }
                Err(e) => note = Some(format!("ignoring the runtime's NRI version: {e}")),
            }
        }
        if version.is_none() {
            match NriVersion::infer_from_runtime(&req.runtime_name, &req.runtime_version) {
                Ok(v) => {
                    version = Some(v);
                    source = NriVersionSource::Inferred;
                }
                Err(e) => {
                    let e = e.to_string();
                    let e = e.strip_prefix("invalid configuration: ").unwrap_or(&e);
                    note = Some(match note {
                        Some(n) => format!("{n}; {e}"),
                        None => e.to_string(),
                    });
                }
            }
        }
        let events = version
            .as_ref()
            .map_or(EventMask::V0_9_EVENTS, NriVersion::events);
        let info = RuntimeInfo {
            name: req.runtime_name.clone(),
            version: req.runtime_version.clone(),
            nri_version: version,
            nri_version_source: source,
            events,
        };
        (info, note)
    }
}

/// `containerd v2.2.9 (NRI v0.11.0, inferred)`.
impl fmt::Display for RuntimeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.name.is_empty() {
            "(unnamed runtime)"
        } else {
            &self.name
        };
        write!(f, "{name} {}", self.version)?;
        match (&self.nri_version, self.nri_version_source) {
            (Some(v), NriVersionSource::Inferred) => write!(f, " (NRI {v}, inferred)"),
            (Some(v), _) => write!(f, " (NRI {v})"),
            (None, _) => write!(f, " (NRI version unknown: treated as v0.9)"),
        }
    }
}

/// The events to subscribe to, and those the plugin handles but will not get.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Subscription {
    /// The mask to send in the Configure reply; never empty.
    pub mask: EventMask,
    /// Events the plugin wanted that this runtime cannot deliver.
    pub undeliverable: EventMask,
}

/// Decides the subscription for a plugin that wants `wanted` (a subset of
/// what it handles) and cannot work without `required`.
pub(crate) fn subscribe(
    plugin: &str,
    wanted: EventMask,
    required: EventMask,
    runtime: &RuntimeInfo,
) -> Result<Subscription, Error> {
    let undeliverable = wanted & !runtime.events;
    let missing = required & undeliverable;
    if !missing.is_empty() {
        return Err(Error::EventsUnavailable {
            plugin: plugin.to_string(),
            events: missing,
            runtime: runtime.to_string(),
        });
    }
    let mask = wanted & runtime.events;
    if mask.is_empty() {
        // An empty mask would read as "every event" to the runtime.
        return Err(Error::EventsUnavailable {
            plugin: plugin.to_string(),
            events: undeliverable,
            runtime: runtime.to_string(),
        });
    }
    Ok(Subscription {
        mask,
        undeliverable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    fn configure(name: &str, version: &str, nri: &str) -> ConfigureRequest {
        ConfigureRequest {
            runtime_name: name.into(),
            runtime_version: version.into(),
            NRI_version: nri.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_sent_version_wins_over_inference() {
        let (info, note) =
            RuntimeInfo::from_configure(&configure("containerd", "v2.4.2", "v0.12.3"));
        assert_eq!(info.nri_version.unwrap().to_string(), "v0.12.3");
        assert_eq!(info.nri_version_source, NriVersionSource::Sent);
        assert_eq!(info.events, EventMask::ALL);
        assert_eq!(note, None);
    }

    #[test]
    fn a_missing_or_placeholder_version_is_inferred() {
        for nri in ["", "  ", UNKNOWN_VERSION, DEVEL_VERSION] {
            let (info, note) = RuntimeInfo::from_configure(&configure("containerd", "v2.2.9", nri));
            assert_eq!(
                info.nri_version.as_ref().unwrap().to_string(),
                "v0.11.0",
                "{nri:?}"
            );
            assert_eq!(info.nri_version_source, NriVersionSource::Inferred);
            assert_eq!(info.events, EventMask::ALL);
            assert_eq!(note, None);
            assert_eq!(
                info.to_string(),
                "containerd v2.2.9 (NRI v0.11.0, inferred)"
            );
        }
    }

    #[test]
    fn a_malformed_version_is_noted_then_inferred() {
        let (info, note) = RuntimeInfo::from_configure(&configure("containerd", "v2.1.0", "0.12"));
        assert_eq!(info.nri_version.unwrap().to_string(), "v0.8.0");
        assert!(note.unwrap().contains("\"0.12\""));
        assert_eq!(info.events, EventMask::V0_9_EVENTS);
    }

    #[test]
    fn an_unknown_runtime_counts_as_v0_9() {
        let (info, note) = RuntimeInfo::from_configure(&configure("my-runtime", "1.0", ""));
        assert_eq!(info.nri_version, None);
        assert_eq!(info.nri_version_source, NriVersionSource::Unknown);
        assert_eq!(info.events, EventMask::V0_9_EVENTS);
        assert!(note.unwrap().contains("unknown runtime \"my-runtime\""));
        assert!(info.to_string().contains("NRI version unknown"));
    }

    #[test]
    fn a_version_from_the_future_gets_every_known_event() {
        let (info, _) = RuntimeInfo::from_configure(&configure("containerd", "v9.0.0", "v3.1.4"));
        assert_eq!(info.events, EventMask::ALL);
    }

    #[test]
    fn subscription_drops_what_an_old_runtime_cannot_deliver() {
        let (old, _) = RuntimeInfo::from_configure(&configure("containerd", "v2.1.0", ""));
        let wanted = EventMask::from_events(&[
            Event::CREATE_CONTAINER,
            Event::UPDATE_POD_SANDBOX,
            Event::VALIDATE_CONTAINER_ADJUSTMENT,
        ]);
        let sub = subscribe("10-p", wanted, EventMask::EMPTY, &old).unwrap();
        assert_eq!(sub.mask, Event::CREATE_CONTAINER.mask());
        assert_eq!(
            sub.undeliverable,
            EventMask::from_events(&[
                Event::UPDATE_POD_SANDBOX,
                Event::VALIDATE_CONTAINER_ADJUSTMENT
            ])
        );
        let (new, _) = RuntimeInfo::from_configure(&configure("containerd", "v2.4.2", "v0.12.3"));
        let sub = subscribe("10-p", wanted, EventMask::EMPTY, &new).unwrap();
        assert_eq!(sub.mask, wanted);
        assert!(sub.undeliverable.is_empty());
    }

    #[test]
    fn a_required_event_the_runtime_lacks_is_an_error_naming_both() {
        let (old, _) = RuntimeInfo::from_configure(&configure("containerd", "v2.1.0", ""));
        let wanted = Event::CREATE_CONTAINER.mask() | Event::VALIDATE_CONTAINER_ADJUSTMENT.mask();
        let err = subscribe(
            "10-p",
            wanted,
            Event::VALIDATE_CONTAINER_ADJUSTMENT.mask(),
            &old,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("10-p"), "{err}");
        assert!(err.contains("ValidateContainerAdjustment"), "{err}");
        assert!(
            err.contains("containerd v2.1.0 (NRI v0.8.0, inferred)"),
            "{err}"
        );
    }

    #[test]
    fn nothing_deliverable_is_an_error_not_an_empty_mask() {
        let (old, _) = RuntimeInfo::from_configure(&configure("cri-o", "1.32.0", ""));
        let wanted = Event::UPDATE_POD_SANDBOX.mask();
        let err = subscribe("10-p", wanted, EventMask::EMPTY, &old).unwrap_err();
        assert!(err.to_string().contains("UpdatePodSandbox"), "{err}");
    }
}
