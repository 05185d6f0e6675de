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
//! Names, bits, groups, and which release first has each event all come from
//! the event table (`src/event_table.rs`), expanded here into [`EVENTS`].
//!
//! This module also names the response types that upstream gives as type
//! aliases of `Empty` (`StateChangeResponse`, `ShutdownRequest`,
//! `ShutdownResponse`).

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};
use std::str::FromStr;

use super::releases::{self, Release};
use super::{Empty, Event};
use crate::event_table::EVENT_GROUPS;
use crate::{Error, Result};

/// Response to `StateChange`.
pub type StateChangeResponse = Empty;
/// Request of `Shutdown`.
pub type ShutdownRequest = Empty;
/// Response to `Shutdown`.
pub type ShutdownResponse = Empty;

/// The shape of an event's handler (see `src/event_table.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    /// Pod in, nothing out.
    PodNotification,
    /// Pod, overhead and resources in, nothing out.
    PodUpdate,
    /// Pod and container in, nothing out.
    ContainerNotification,
    /// Pod and container in, adjustment and updates out.
    Create,
    /// Pod, container and resources in, updates out.
    UpdateWithUpdates,
    /// Pod and container in, updates out.
    StopWithUpdates,
    /// The validation request in, a verdict out.
    Validation,
}

impl HandlerKind {
    /// Whether the event is about a pod (else about a container).
    pub(crate) const fn is_pod(self) -> bool {
        matches!(self, HandlerKind::PodNotification | HandlerKind::PodUpdate)
    }
}

/// One row of the event table, as values.
#[derive(Debug)]
pub(crate) struct EventFacts {
    /// The event.
    pub(crate) event: Event,
    /// Its name as upstream prints it, which is also its RPC's name.
    pub(crate) name: &'static str,
    /// Its handler's shape.
    pub(crate) kind: HandlerKind,
    /// The first release with the event.
    pub(crate) since: Release,
    /// The first release whose runtime sends it through its own RPC.
    pub(crate) rpc_since: Release,
    /// Whether `StateChange` can carry it.
    pub(crate) state_change: bool,
}

/// `yes` or `no` of the event table as a `bool`.
macro_rules! yes {
    (yes) => {
        true
    };
    (no) => {
        false
    };
}

macro_rules! event_facts {
    ($({
        name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
        rpc: $req:ident => $resp:ident, since: $since:expr, rpc_since: $rpc_since:expr,
        state_change: $state_change:ident,
    })*) => {
        /// Every real event, in wire order (event `n` at index `n - 1`).
        pub(crate) const EVENTS: &[EventFacts] = &[$(EventFacts {
            event: Event::$event,
            name: stringify!($name),
            kind: HandlerKind::$kind,
            since: $since,
            rpc_since: $rpc_since,
            state_change: yes!($state_change),
        }),*];
    };
}

crate::event_table::for_each_event!(event_facts);

/// The first release whose runtime sends every event `StateChange` can
/// carry through the event's own RPC: the latest `rpc_since` of those
/// events.
pub(crate) const NOTIFICATION_RPCS_SINCE: Release = {
    let mut since = (0, 0, 0);
    let mut i = 0;
    while i < EVENTS.len() {
        if EVENTS[i].state_change && !releases::reached(since, EVENTS[i].rpc_since) {
            since = EVENTS[i].rpc_since;
        }
        i += 1;
    }
    since
};

/// The table's rows are in wire order, name releases of the release table,
/// and fill the mask upstream calls `ValidEvents`.
const _: () = {
    let mut i = 0;
    let mut bits = 0;
    while i < EVENTS.len() {
        let facts = &EVENTS[i];
        assert!(
            facts.event as usize == i + 1,
            "event table rows out of wire order"
        );
        assert!(
            releases::is_release(facts.since),
            "an event's release is not in the table"
        );
        assert!(
            releases::is_release(facts.rpc_since),
            "an RPC's release is not in the table"
        );
        assert!(
            releases::reached(facts.rpc_since, facts.since),
            "an RPC before its event"
        );
        bits |= facts.event.mask().0;
        i += 1;
    }
    assert!(bits == EventMask::ALL.0, "the event table misses an event");
    assert!(
        EVENTS.len() + 1 == Event::LAST as usize,
        "the event table misses an event"
    );
};

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
            Event::LAST => "Last",
            event => event.facts().map_or("Unknown", |f| f.name),
        }
    }

    /// The event's row of the event table; `None` for `UNKNOWN` and `LAST`.
    pub(crate) const fn facts(self) -> Option<&'static EventFacts> {
        let n = self as usize;
        if n >= 1 && n <= EVENTS.len() {
            Some(&EVENTS[n - 1])
        } else {
            None
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
        matches!(self.facts(), Some(f) if f.kind.is_pod())
    }

    /// Whether this is a container event.
    ///
    /// ```
    /// use nri::api::Event;
    /// assert!(Event::UPDATE_CONTAINER.is_container_event());
    /// assert!(!Event::REMOVE_POD_SANDBOX.is_container_event());
    /// ```
    pub const fn is_container_event(self) -> bool {
        matches!(self.facts(), Some(f) if !f.kind.is_pod())
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
    pub const V0_9_EVENTS: EventMask = EventMask::known_by((0, 9, 0));

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
    pub const POD_EVENTS: EventMask = EventMask::about_pods(true);

    /// The nine container events, adjustment validation included (the
    /// text group `container`).
    ///
    /// ```
    /// use nri::api::{Event, EventMask};
    /// assert!(EventMask::CONTAINER_EVENTS.is_set(Event::POST_UPDATE_CONTAINER));
    /// assert!(EventMask::CONTAINER_EVENTS.is_set(Event::VALIDATE_CONTAINER_ADJUSTMENT));
    /// assert_eq!(EventMask::CONTAINER_EVENTS | EventMask::POD_EVENTS, EventMask::ALL);
    /// ```
    pub const CONTAINER_EVENTS: EventMask = EventMask::about_pods(false);

    /// The events a runtime of NRI release `release` knows, from the event
    /// table.
    pub(crate) const fn known_by(release: Release) -> EventMask {
        let mut bits = 0;
        let mut i = 0;
        while i < EVENTS.len() {
            if releases::reached(release, EVENTS[i].since) {
                bits |= EVENTS[i].event.mask().0;
            }
            i += 1;
        }
        EventMask(bits)
    }

    /// The events about pods (`true`) or about containers (`false`).
    const fn about_pods(pods: bool) -> EventMask {
        let mut bits = 0;
        let mut i = 0;
        while i < EVENTS.len() {
            if EVENTS[i].kind.is_pod() == pods {
                bits |= EVENTS[i].event.mask().0;
            }
            i += 1;
        }
        EventMask(bits)
    }

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
            .map(|facts| facts.event)
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

/// The events a single text name stands for, ignoring ASCII case: an
/// event's name, or a group name standing for every event whose name holds
/// the group's word.
fn lookup(name: &str) -> Option<EventMask> {
    if let Some(facts) = EVENTS.iter().find(|f| f.name.eq_ignore_ascii_case(name)) {
        return Some(facts.event.mask());
    }
    let (_, word) = EVENT_GROUPS
        .iter()
        .find(|(group, _)| group.eq_ignore_ascii_case(name))?;
    Some(
        EVENTS
            .iter()
            .filter(|f| contains_ignore_case(f.name, word))
            .map(|f| f.event)
            .collect(),
    )
}

/// Whether `text` holds `word` (lower case), ignoring ASCII case.
fn contains_ignore_case(text: &str, word: &str) -> bool {
    word.is_empty()
        || text
            .as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
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

/// `Event::A | Event::B` is the mask of both.
///
/// ```
/// use nri::api::{Event, EventMask};
/// let mask: EventMask = Event::CREATE_CONTAINER | Event::STOP_CONTAINER;
/// assert_eq!(mask.to_string(), "CreateContainer,StopContainer");
/// ```
impl BitOr for Event {
    type Output = EventMask;

    fn bitor(self, rhs: Event) -> EventMask {
        self.mask() | rhs.mask()
    }
}

/// `Event::A | mask` adds the event to the mask.
///
/// ```
/// use nri::api::{Event, EventMask};
/// let mask = Event::RUN_POD_SANDBOX | EventMask::CONTAINER_EVENTS;
/// assert_eq!(mask, EventMask::ALL & !Event::UPDATE_POD_SANDBOX.mask()
///     & !Event::POST_UPDATE_POD_SANDBOX.mask() & !Event::STOP_POD_SANDBOX.mask()
///     & !Event::REMOVE_POD_SANDBOX.mask());
/// ```
impl BitOr<EventMask> for Event {
    type Output = EventMask;

    fn bitor(self, rhs: EventMask) -> EventMask {
        self.mask() | rhs
    }
}

/// `mask | Event::A` adds the event to the mask.
///
/// ```
/// use nri::api::{Event, EventMask};
/// let mask = EventMask::EMPTY | Event::START_CONTAINER;
/// assert_eq!(mask, Event::START_CONTAINER.mask());
/// ```
impl BitOr<Event> for EventMask {
    type Output = EventMask;

    fn bitor(self, rhs: Event) -> EventMask {
        self | rhs.mask()
    }
}

impl BitOr for EventMask {
    type Output = EventMask;

    fn bitor(self, rhs: EventMask) -> EventMask {
        EventMask(self.0 | rhs.0)
    }
}

/// `mask |= Event::A` adds the event to the mask.
impl BitOrAssign<Event> for EventMask {
    fn bitor_assign(&mut self, rhs: Event) {
        self.0 |= rhs.mask().0;
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
        for facts in EVENTS {
            let event = facts.event;
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
        for facts in EVENTS {
            let (event, config) = (facts.event, facts.name.to_ascii_lowercase());
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
        for facts in EVENTS {
            let (event, pretty) = (facts.event, facts.name);
            let config = pretty.to_ascii_lowercase();
            assert_eq!(EventMask::parse(&config).unwrap(), event.mask());
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
    fn the_unknown_event_error_lists_every_name_parse_accepts() {
        let err = EventMask::parse("bogus").unwrap_err().to_string();
        let known = err.split_once("(known, in any case: ").unwrap().1;
        let names: Vec<&str> = known.trim_end_matches(')').split(", ").collect();
        assert_eq!(names.len(), EVENTS.len() + EVENT_GROUPS.len(), "{err}");
        for name in names {
            assert!(EventMask::parse(name).is_ok(), "{name} in {err}");
        }
        for facts in EVENTS {
            assert!(
                err.contains(facts.name),
                "{} missing from {err}",
                facts.name
            );
        }
    }

    #[test]
    fn events_and_masks_combine_with_bitor() {
        let mask: EventMask = Event::CREATE_CONTAINER | Event::STOP_CONTAINER;
        assert_eq!(
            mask,
            EventMask::from_events(&[Event::CREATE_CONTAINER, Event::STOP_CONTAINER])
        );
        assert_eq!(Event::UNKNOWN | Event::LAST, EventMask::EMPTY);
        assert_eq!(
            Event::RUN_POD_SANDBOX | EventMask::POD_EVENTS,
            EventMask::POD_EVENTS
        );
        assert_eq!(
            mask | Event::START_CONTAINER,
            EventMask::from_events(&[
                Event::CREATE_CONTAINER,
                Event::START_CONTAINER,
                Event::STOP_CONTAINER
            ])
        );
    }

    #[test]
    fn each_release_knows_the_events_of_the_table() {
        assert_eq!(EventMask::known_by((0, 2, 0)), EventMask::V0_9_EVENTS);
        assert_eq!(EventMask::known_by((0, 10, 0)), EventMask::ALL);
        assert_eq!(EventMask::known_by((0, 1, 0)), EventMask::EMPTY);
        assert_eq!(
            Event::STOP_POD_SANDBOX.facts().unwrap().name,
            "StopPodSandbox"
        );
        assert!(Event::UNKNOWN.facts().is_none() && Event::LAST.facts().is_none());
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
        for facts in EVENTS {
            let event = facts.event;
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
