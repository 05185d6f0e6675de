//! Event subscriptions: [`EventMask`], the set of [`Event`]s a plugin wants
//! to hear about, and the names events go by in configuration and logs.
//!
//! A plugin returns its mask in `ConfigureResponse.events`; event `e` is bit
//! `1 << (e - 1)`, so the fourteen real events of NRI v0.12 fit in
//! `(1 << 14) - 1` ([`EventMask::ALL`]). Runtimes before v0.10 know only the
//! first eleven ([`EventMask::V0_9_EVENTS`]) and refuse a subscription with
//! any other bit. `Event::UNKNOWN` and the `Event::LAST` sentinel have no
//! bit. The text form is the one upstream tools use: a comma-separated,
//! case-insensitive list such as `"RunPodSandbox,createcontainer"`, with the
//! groups `all`, `pod`/`podsandbox` (every event whose name holds "pod") and
//! `container` (every event whose name holds "container", validation
//! included), as in NRI v0.12.5.
//!
//! This module also names the response types that upstream gives as type
//! aliases of `Empty` (`StateChangeResponse`, `ShutdownRequest`,
//! `ShutdownResponse`).

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};
use std::str::FromStr;

use super::{Empty, Event};
use crate::{Error, Result};

/// Response to `StateChange`.
pub type StateChangeResponse = Empty;
/// Request of `Shutdown`.
pub type ShutdownRequest = Empty;
/// Response to `Shutdown`.
pub type ShutdownResponse = Empty;

/// Every real event with its display name and its lower-case config name,
/// in wire order.
const EVENTS: [(Event, &str, &str); 14] = [
    (Event::RUN_POD_SANDBOX, "RunPodSandbox", "runpodsandbox"),
    (Event::STOP_POD_SANDBOX, "StopPodSandbox", "stoppodsandbox"),
    (
        Event::REMOVE_POD_SANDBOX,
        "RemovePodSandbox",
        "removepodsandbox",
    ),
    (
        Event::CREATE_CONTAINER,
        "CreateContainer",
        "createcontainer",
    ),
    (
        Event::POST_CREATE_CONTAINER,
        "PostCreateContainer",
        "postcreatecontainer",
    ),
    (Event::START_CONTAINER, "StartContainer", "startcontainer"),
    (
        Event::POST_START_CONTAINER,
        "PostStartContainer",
        "poststartcontainer",
    ),
    (
        Event::UPDATE_CONTAINER,
        "UpdateContainer",
        "updatecontainer",
    ),
    (
        Event::POST_UPDATE_CONTAINER,
        "PostUpdateContainer",
        "postupdatecontainer",
    ),
    (Event::STOP_CONTAINER, "StopContainer", "stopcontainer"),
    (
        Event::REMOVE_CONTAINER,
        "RemoveContainer",
        "removecontainer",
    ),
    (
        Event::UPDATE_POD_SANDBOX,
        "UpdatePodSandbox",
        "updatepodsandbox",
    ),
    (
        Event::POST_UPDATE_POD_SANDBOX,
        "PostUpdatePodSandbox",
        "postupdatepodsandbox",
    ),
    (
        Event::VALIDATE_CONTAINER_ADJUSTMENT,
        "ValidateContainerAdjustment",
        "validatecontaineradjustment",
    ),
];

impl Event {
    /// The mask holding only this event's bit; empty for `UNKNOWN` and
    /// `LAST`, which are not events a plugin can subscribe to.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert_eq!(Event::CREATE_CONTAINER.mask().bits(), 1 << 3);
    /// assert!(Event::UNKNOWN.mask().is_empty());
    /// ```
    pub const fn mask(self) -> EventMask {
        let n = self as i32;
        if n > Event::UNKNOWN as i32 && n < Event::LAST as i32 {
            EventMask(1 << (n - 1))
        } else {
            EventMask(0)
        }
    }

    /// The event's name as upstream prints it (`"RunPodSandbox"`); `"Unknown"`
    /// for `UNKNOWN` and `"Last"` for the `LAST` sentinel.
    ///
    /// ```
    /// use nri::api::Event;
    /// assert_eq!(Event::POST_START_CONTAINER.name(), "PostStartContainer");
    /// assert_eq!(Event::STOP_POD_SANDBOX.to_string(), "StopPodSandbox");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Event::UNKNOWN => "Unknown",
            Event::LAST => "Last",
            event => EVENTS
                .iter()
                .find(|(e, _, _)| *e == event)
                .map_or("Unknown", |(_, name, _)| name),
        }
    }

    /// Whether this is a pod sandbox event (run, stop or remove a pod).
    ///
    /// ```
    /// use nri::api::Event;
    /// assert!(Event::RUN_POD_SANDBOX.is_pod_event());
    /// assert!(!Event::START_CONTAINER.is_pod_event());
    /// ```
    pub const fn is_pod_event(self) -> bool {
        EventMask::POD_EVENTS.contains(self.mask()) && !self.mask().is_empty()
    }

    /// Whether this is a container event.
    ///
    /// ```
    /// use nri::api::Event;
    /// assert!(Event::UPDATE_CONTAINER.is_container_event());
    /// assert!(!Event::REMOVE_POD_SANDBOX.is_container_event());
    /// ```
    pub const fn is_container_event(self) -> bool {
        EventMask::CONTAINER_EVENTS.contains(self.mask()) && !self.mask().is_empty()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Event`]s, as exchanged in `ConfigureResponse.events`.
///
/// A thin `Copy` wrapper over the wire's `i32`: build it from events, from
/// text, or from raw bits, and combine masks with `|`, `&` and `!`.
///
/// ```
/// use nri::api::{Event, EventMask};
///
/// let mask: EventMask = "RunPodSandbox, createcontainer".parse()?;
/// assert_eq!(mask, EventMask::from_events(&[Event::RUN_POD_SANDBOX, Event::CREATE_CONTAINER]));
/// assert_eq!(mask.to_string(), "RunPodSandbox,CreateContainer");
/// assert_eq!(mask.bits(), 0b1001);
/// # Ok::<(), nri::Error>(())
/// ```
pub use crate::event_mask::EventMask;

impl EventMask {
    /// The empty mask: no events.
    ///
    /// ```
    /// use nri::api::EventMask;
    /// assert!(EventMask::EMPTY.is_empty());
    /// assert_eq!(EventMask::EMPTY, EventMask::default());
    /// ```
    pub const EMPTY: EventMask = EventMask(0);

    /// Every valid event of NRI v0.12, `(1 << 14) - 1` (upstream
    /// `ValidEvents`).
    ///
    /// ```
    /// use nri::api::EventMask;
    /// assert_eq!(EventMask::ALL.bits(), (1 << 14) - 1);
    /// ```
    pub const ALL: EventMask = EventMask((1 << (Event::LAST as i32 - 1)) - 1);

    /// The eleven events that runtimes embedding NRI v0.9.x know, `0x7ff`:
    /// everything but UpdatePodSandbox, PostUpdatePodSandbox and
    /// ValidateContainerAdjustment, which arrived in v0.10.0. A v0.9 runtime
    /// refuses a subscription with any other bit.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert_eq!(EventMask::V0_9_EVENTS.bits(), 0x7ff);
    /// assert!(!EventMask::V0_9_EVENTS.is_set(Event::UPDATE_POD_SANDBOX));
    /// ```
    pub const V0_9_EVENTS: EventMask = EventMask((1 << 11) - 1);

    /// The pod sandbox events: run, update, post-update, stop and remove a
    /// pod sandbox (the text groups `pod` and `podsandbox`).
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert!(EventMask::POD_EVENTS.is_set(Event::REMOVE_POD_SANDBOX));
    /// assert!(EventMask::POD_EVENTS.is_set(Event::UPDATE_POD_SANDBOX));
    /// assert_eq!(EventMask::POD_EVENTS, "pod".parse::<EventMask>()?);
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub const POD_EVENTS: EventMask = EventMask::from_events(&[
        Event::RUN_POD_SANDBOX,
        Event::UPDATE_POD_SANDBOX,
        Event::POST_UPDATE_POD_SANDBOX,
        Event::STOP_POD_SANDBOX,
        Event::REMOVE_POD_SANDBOX,
    ]);

    /// The nine container events, adjustment validation included (the
    /// text group `container`).
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert!(EventMask::CONTAINER_EVENTS.is_set(Event::POST_UPDATE_CONTAINER));
    /// assert!(EventMask::CONTAINER_EVENTS.is_set(Event::VALIDATE_CONTAINER_ADJUSTMENT));
    /// assert_eq!(EventMask::CONTAINER_EVENTS | EventMask::POD_EVENTS, EventMask::ALL);
    /// ```
    pub const CONTAINER_EVENTS: EventMask = EventMask::from_events(&[
        Event::CREATE_CONTAINER,
        Event::POST_CREATE_CONTAINER,
        Event::START_CONTAINER,
        Event::POST_START_CONTAINER,
        Event::UPDATE_CONTAINER,
        Event::POST_UPDATE_CONTAINER,
        Event::STOP_CONTAINER,
        Event::REMOVE_CONTAINER,
        Event::VALIDATE_CONTAINER_ADJUSTMENT,
    ]);

    /// The mask holding exactly the given events (`UNKNOWN` and `LAST` add
    /// nothing). Usable in `const` items.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// const MINE: EventMask = EventMask::from_events(&[Event::CREATE_CONTAINER, Event::STOP_CONTAINER]);
    /// assert!(MINE.is_set(Event::STOP_CONTAINER));
    /// assert!(!MINE.is_set(Event::START_CONTAINER));
    /// ```
    pub const fn from_events(events: &[Event]) -> EventMask {
        let mut bits = 0;
        let mut i = 0;
        while i < events.len() {
            bits |= events[i].mask().0;
            i += 1;
        }
        EventMask(bits)
    }

    /// The mask with exactly these bits, as received on the wire. Bits
    /// outside [`EventMask::ALL`] are kept; see [`EventMask::is_valid`].
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// let mask = EventMask::from_bits(0b11);
    /// assert!(mask.is_set(Event::STOP_POD_SANDBOX));
    /// assert_eq!(mask.bits(), 3);
    /// ```
    pub const fn from_bits(bits: i32) -> EventMask {
        EventMask(bits)
    }

    /// The raw bits, as sent in `ConfigureResponse.events`.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert_eq!(Event::RUN_POD_SANDBOX.mask().bits(), 1);
    /// ```
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// Adds an event to the mask; returns the mask for chaining.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// let mut mask = EventMask::EMPTY;
    /// mask.set(Event::START_CONTAINER).set(Event::STOP_CONTAINER);
    /// assert_eq!(mask.to_string(), "StartContainer,StopContainer");
    /// ```
    pub fn set(&mut self, event: Event) -> &mut Self {
        self.0 |= event.mask().0;
        self
    }

    /// Removes an event from the mask; returns the mask for chaining.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// let mut mask = EventMask::from_events(&[Event::RUN_POD_SANDBOX, Event::STOP_POD_SANDBOX]);
    /// mask.clear(Event::RUN_POD_SANDBOX);
    /// assert_eq!(mask, Event::STOP_POD_SANDBOX.mask());
    /// ```
    pub fn clear(&mut self, event: Event) -> &mut Self {
        self.0 &= !event.mask().0;
        self
    }

    /// Whether the mask holds the event (always false for `UNKNOWN` and
    /// `LAST`).
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert!(EventMask::ALL.is_set(Event::CREATE_CONTAINER));
    /// assert!(!EventMask::ALL.is_set(Event::UNKNOWN));
    /// ```
    pub const fn is_set(self, event: Event) -> bool {
        let bit = event.mask().0;
        bit != 0 && self.0 & bit == bit
    }

    /// Whether the mask holds every event of `other`.
    ///
    /// ```
    /// use nri::api::EventMask;
    /// assert!(EventMask::ALL.contains(EventMask::POD_EVENTS));
    /// assert!(!EventMask::POD_EVENTS.contains(EventMask::ALL));
    /// ```
    pub const fn contains(self, other: EventMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the mask holds no bits at all.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert!(EventMask::EMPTY.is_empty());
    /// assert!(!Event::STOP_CONTAINER.mask().is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of the mask names a real event (no bits outside
    /// [`EventMask::ALL`]).
    ///
    /// ```
    /// use nri::api::EventMask;
    /// assert!(EventMask::ALL.is_valid());
    /// assert!(!EventMask::from_bits(1 << 14).is_valid());
    /// ```
    pub const fn is_valid(self) -> bool {
        self.0 & !EventMask::ALL.0 == 0
    }

    /// The events in the mask, in wire order.
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// let mask = EventMask::from_events(&[Event::STOP_CONTAINER, Event::RUN_POD_SANDBOX]);
    /// let events: Vec<Event> = mask.events().collect();
    /// assert_eq!(events, [Event::RUN_POD_SANDBOX, Event::STOP_CONTAINER]);
    /// ```
    pub fn events(self) -> impl Iterator<Item = Event> {
        EVENTS
            .iter()
            .map(|(event, _, _)| *event)
            .filter(move |event| self.is_set(*event))
    }

    /// Parses the text form: comma-separated event names, case-insensitive,
    /// surrounding whitespace ignored, plus the groups `all`, `pod` or
    /// `podsandbox`, and `container`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownEvent`] naming the first item that is none of these,
    /// including an empty item (as upstream, `""` and `"a,,b"` are errors).
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// let mask = EventMask::parse("pod, StartContainer")?;
    /// assert!(mask.contains(EventMask::POD_EVENTS));
    /// assert!(mask.is_set(Event::START_CONTAINER));
    /// assert!(EventMask::parse("startcontainer,bogus").is_err());
    /// # Ok::<(), nri::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<EventMask> {
        let mut mask = EventMask::EMPTY;
        for item in text.split(',') {
            let name = item.trim();
            mask |= lookup(name).ok_or_else(|| Error::UnknownEvent(name.to_string()))?;
        }
        Ok(mask)
    }
}

/// Text names that stand for several events.
const GROUPS: [(&str, EventMask); 4] = [
    ("all", EventMask::ALL),
    ("pod", EventMask::POD_EVENTS),
    ("podsandbox", EventMask::POD_EVENTS),
    ("container", EventMask::CONTAINER_EVENTS),
];

/// The events a single text name stands for, ignoring ASCII case.
fn lookup(name: &str) -> Option<EventMask> {
    let events = EVENTS
        .iter()
        .map(|(event, _, config_name)| (*config_name, event.mask()));
    GROUPS
        .into_iter()
        .chain(events)
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, mask)| mask)
}

impl FromStr for EventMask {
    type Err = Error;

    fn from_str(text: &str) -> Result<EventMask> {
        EventMask::parse(text)
    }
}

/// Upstream's `PrettyString`: event names joined by `,` in wire order, then
/// `unknown(0x..)` with any bits that name no event; empty for no events.
impl fmt::Display for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for event in self.events() {
            write!(f, "{sep}{}", event.name())?;
            sep = ",";
        }
        let unknown = self.0 & !EventMask::ALL.0;
        if unknown != 0 {
            // Two's complement, so that a negative mask prints as its bits.
            write!(f, "{sep}unknown(0x{:x})", unknown as u32)?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventMask(0x{:x}: {self})", self.0 as u32)
    }
}

impl From<Event> for EventMask {
    fn from(event: Event) -> EventMask {
        event.mask()
    }
}

impl FromIterator<Event> for EventMask {
    fn from_iter<I: IntoIterator<Item = Event>>(events: I) -> EventMask {
        let mut mask = EventMask::EMPTY;
        for event in events {
            mask.set(event);
        }
        mask
    }
}

impl BitOr for EventMask {
    type Output = EventMask;

    fn bitor(self, rhs: EventMask) -> EventMask {
        EventMask(self.0 | rhs.0)
    }
}

impl BitOrAssign for EventMask {
    fn bitor_assign(&mut self, rhs: EventMask) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for EventMask {
    type Output = EventMask;

    fn bitand(self, rhs: EventMask) -> EventMask {
        EventMask(self.0 & rhs.0)
    }
}

impl BitAndAssign for EventMask {
    fn bitand_assign(&mut self, rhs: EventMask) {
        self.0 &= rhs.0;
    }
}

/// The complement within [`EventMask::ALL`]: every real event not in the
/// mask, never bits that name no event.
impl Not for EventMask {
    type Output = EventMask;

    fn not(self) -> EventMask {
        EventMask(!self.0 & EventMask::ALL.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bits_follow_wire_numbering() {
        for (event, _, _) in EVENTS {
            assert_eq!(event.mask().bits(), 1 << (event as i32 - 1));
        }
        assert_eq!(EventMask::ALL.bits(), (1 << 14) - 1);
        assert_eq!(EventMask::ALL.bits(), 0x3fff);
        assert_eq!(EventMask::V0_9_EVENTS.bits(), 0x7ff);
        assert_eq!(Event::UPDATE_POD_SANDBOX.mask().bits(), 0x800);
        assert_eq!(Event::VALIDATE_CONTAINER_ADJUSTMENT.mask().bits(), 0x2000);
    }

    #[test]
    fn unknown_and_last_have_no_bit() {
        assert!(Event::UNKNOWN.mask().is_empty());
        assert!(Event::LAST.mask().is_empty());
        let mut mask = EventMask::EMPTY;
        mask.set(Event::UNKNOWN).set(Event::LAST);
        assert!(mask.is_empty());
        assert!(!EventMask::from_bits(-1).is_set(Event::LAST));
    }

    #[test]
    fn parse_event_mask_accepts_mixed_case_and_groups() {
        let mask = EventMask::parse(" RunPodSandbox ,CREATECONTAINER,\tstopContainer ").unwrap();
        assert_eq!(
            mask,
            EventMask::from_events(&[
                Event::RUN_POD_SANDBOX,
                Event::CREATE_CONTAINER,
                Event::STOP_CONTAINER
            ])
        );
        assert_eq!(EventMask::parse("ALL").unwrap(), EventMask::ALL);
        assert_eq!(EventMask::parse("Pod").unwrap(), EventMask::POD_EVENTS);
        assert_eq!(
            EventMask::parse("podsandbox").unwrap(),
            EventMask::POD_EVENTS
        );
        assert_eq!(
            EventMask::parse("container").unwrap(),
            EventMask::CONTAINER_EVENTS
        );
        assert_eq!(EventMask::parse("pod,container").unwrap(), EventMask::ALL);
        assert_eq!(" all ".parse::<EventMask>().unwrap(), EventMask::ALL);
    }

    #[test]
    fn keywords_mean_what_they_mean_in_nri_v0_12_5() {
        // Upstream expands `pod` to every event whose name holds "pod", and
        // `container` to every event whose name holds "container".
        for (event, _, config) in EVENTS {
            let pod = EventMask::parse("pod").unwrap().is_set(event);
            let ctr = EventMask::parse("container").unwrap().is_set(event);
            assert_eq!(pod, config.contains("pod"), "{event}");
            assert_eq!(ctr, config.contains("container"), "{event}");
        }
        assert_eq!(EventMask::POD_EVENTS.events().count(), 5);
        assert_eq!(EventMask::CONTAINER_EVENTS.events().count(), 9);
    }

    #[test]
    fn parse_event_mask_knows_every_event_name() {
        for (event, pretty, config) in EVENTS {
            assert_eq!(EventMask::parse(config).unwrap(), event.mask());
            assert_eq!(EventMask::parse(pretty).unwrap(), event.mask());
        }
    }

    #[test]
    fn parse_event_mask_rejects_unknown_name_and_names_it() {
        let err = EventMask::parse("createcontainer, BogusEvent").unwrap_err();
        assert!(matches!(&err, Error::UnknownEvent(name) if name == "BogusEvent"));
        assert!(err.to_string().contains("\"BogusEvent\""), "{err}");
    }

    #[test]
    fn parse_event_mask_rejects_empty_items() {
        assert!(matches!(EventMask::parse(""), Err(Error::UnknownEvent(n)) if n.is_empty()));
        assert!(EventMask::parse("createcontainer,").is_err());
        assert!(EventMask::parse("a,,b").is_err());
    }

    #[test]
    fn display_matches_upstream_pretty_string() {
        let mask = EventMask::from_events(&[Event::CREATE_CONTAINER, Event::RUN_POD_SANDBOX]);
        assert_eq!(mask.to_string(), "RunPodSandbox,CreateContainer");
        assert_eq!(EventMask::EMPTY.to_string(), "");
        assert_eq!(
            EventMask::ALL.to_string(),
            "RunPodSandbox,StopPodSandbox,RemovePodSandbox,CreateContainer,\
             PostCreateContainer,StartContainer,PostStartContainer,UpdateContainer,\
             PostUpdateContainer,StopContainer,RemoveContainer,UpdatePodSandbox,\
             PostUpdatePodSandbox,ValidateContainerAdjustment"
        );
    }

    #[test]
    fn display_reports_bits_outside_valid_set_as_unknown() {
        let mask = EventMask::from_bits(0x1 | 0x8000);
        assert_eq!(mask.to_string(), "RunPodSandbox,unknown(0x8000)");
        assert_eq!(EventMask::from_bits(0x4000).to_string(), "unknown(0x4000)");
        assert_eq!(
            EventMask::from_bits(i32::MIN).to_string(),
            "unknown(0x80000000)"
        );
    }

    #[test]
    fn display_round_trips_through_parse() {
        for bits in [0b1, 0b101_0101_0101, EventMask::ALL.bits()] {
            let mask = EventMask::from_bits(bits);
            assert_eq!(mask.to_string().parse::<EventMask>().unwrap(), mask);
        }
    }

    #[test]
    fn set_clear_and_operators_agree() {
        let mut mask = EventMask::EMPTY;
        mask.set(Event::START_CONTAINER).set(Event::STOP_CONTAINER);
        assert!(mask.is_set(Event::START_CONTAINER));
        mask.clear(Event::START_CONTAINER);
        assert!(!mask.is_set(Event::START_CONTAINER));
        assert_eq!(mask, Event::STOP_CONTAINER.mask());

        let pods = EventMask::POD_EVENTS;
        assert_eq!(!pods, EventMask::CONTAINER_EVENTS);
        assert_eq!(!EventMask::EMPTY, EventMask::ALL);
        assert_eq!(pods & EventMask::CONTAINER_EVENTS, EventMask::EMPTY);
        let mut both = pods;
        both |= EventMask::CONTAINER_EVENTS;
        assert_eq!(both, EventMask::ALL);
        both &= pods;
        assert_eq!(both, pods);
        assert!(!EventMask::from_bits(-1).is_valid());
        assert!((!EventMask::from_bits(-1)).is_valid());
    }

    #[test]
    fn events_iterate_in_wire_order_and_collect_back() {
        let mask: EventMask = [Event::REMOVE_CONTAINER, Event::CREATE_CONTAINER]
            .into_iter()
            .collect();
        let events: Vec<Event> = mask.events().collect();
        assert_eq!(events, [Event::CREATE_CONTAINER, Event::REMOVE_CONTAINER]);
        assert_eq!(EventMask::ALL.events().count(), 14);
        assert_eq!(EventMask::V0_9_EVENTS.events().count(), 11);
    }

    #[test]
    fn event_groups_partition_all_events() {
        for (event, _, _) in EVENTS {
            assert_ne!(event.is_pod_event(), event.is_container_event(), "{event}");
        }
        assert!(!Event::UNKNOWN.is_pod_event());
        assert!(!Event::LAST.is_container_event());
    }

    #[test]
    fn debug_shows_bits_and_names() {
        let mask = Event::RUN_POD_SANDBOX.mask();
        assert_eq!(format!("{mask:?}"), "EventMask(0x1: RunPodSandbox)");
    }
}
