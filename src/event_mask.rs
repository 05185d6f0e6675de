//! The type of a set of NRI events.
//!
//! It sits beneath [`crate::Error`], which names it in
//! [`Error::EventsUnavailable`](crate::Error::EventsUnavailable); its
//! constants, parsing, names and operators live with the events in
//! [`crate::api`], where it is public as [`crate::api::EventMask`].

/// The bits of an event mask: bit `n - 1` stands for the event numbered `n`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventMask(pub(crate) i32);
