//! The stream-id counters of one logical connection.
//!
//! ttrpc numbers the requests a client sends with odd stream ids that
//! increase, and the reply reuses the request's id. Go's server refuses a
//! request whose id is even ("StreamID must be odd for client initiated
//! streams") or not above the last one ("StreamID cannot be re-used and
//! must increment"), with INVALID_ARGUMENT on that id, and goes on. Go's
//! client counts in a `uint32` and would wrap from 2^32 - 1 to 1, an id
//! its own server then refuses, and its server keeps such a connection
//! open while refusing every later request. Here neither side keeps a
//! connection that can do no more: [`CallIds`] stops with an error that
//! says so (the connection then closes, see `conn/client.rs`), and a
//! request after the peer used its last id is fatal
//! ([`RequestIds::used_up`], `inbound.rs`).

use crate::status::{Code, Status};
use crate::{Error, Result};

/// Ids for the calls this side makes on one logical connection: 1, 3, 5,
/// ... up to 2^32 - 1.
#[derive(Debug)]
pub(crate) struct CallIds {
    /// The next id to hand out; past `u32::MAX` once every odd id is used.
    next: u64,
}

impl Default for CallIds {
    fn default() -> Self {
        CallIds { next: 1 }
    }
}

impl CallIds {
    /// Ids handed out so far would make the next one `next` (for tests).
    #[cfg(test)]
    pub(crate) fn starting_at(next: u32) -> CallIds {
        CallIds {
            next: u64::from(next),
        }
    }

    /// The id of the next call. An id is used up even when the call then
    /// fails before it is sent (as with Go's client).
    pub(crate) fn next(&mut self, conn_id: u32) -> Result<u32> {
        let id = u32::try_from(self.next).map_err(|_| {
            Error::Protocol(format!(
                "logical connection {conn_id} has used every odd stream id up to {}; \
                 ttrpc stream ids must increase, so further calls need a new connection",
                u32::MAX
            ))
        })?;
        self.next += 2;
        Ok(id)
    }
}

/// The check of the ids of the requests the peer sends on one logical
/// connection.
#[derive(Debug, Default)]
pub(crate) struct RequestIds {
    /// The highest id accepted so far (0 before the first).
    last: u32,
}

impl RequestIds {
    /// Accepts `id` for a new request when it is odd and above every
    /// earlier one, and makes it the last one; otherwise returns the
    /// INVALID_ARGUMENT status to answer on it.
    pub(crate) fn accept(&mut self, id: u32) -> std::result::Result<(), Status> {
        if id % 2 == 0 {
            return Err(Status::new(
                Code::InvalidArgument,
                format!("stream id {id} is even; client stream ids must be odd"),
            ));
        }
        if id <= self.last {
            return Err(Status::new(
                Code::InvalidArgument,
                format!(
                    "stream id {id} is not above the last one ({}); stream ids must increase",
                    self.last
                ),
            ));
        }
        self.last = id;
        Ok(())
    }

    /// True once the peer used the last stream id: no later request can
    /// be accepted.
    pub(crate) fn used_up(&self) -> bool {
        self.last == u32::MAX
    }

    /// Counts `id` as used by a request refused for another reason (too
    /// large), when it would have been accepted.
    pub(crate) fn note(&mut self, id: u32) {
        if id % 2 == 1 && id > self.last {
            self.last = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_odd_increasing_and_stop_at_the_last_odd_u32() {
        let mut ids = CallIds::default();
        assert_eq!(ids.next(1).unwrap(), 1);
        assert_eq!(ids.next(1).unwrap(), 3);
        let mut ids = CallIds::starting_at(u32::MAX - 2);
        assert_eq!(ids.next(2).unwrap(), u32::MAX - 2);
        assert_eq!(ids.next(2).unwrap(), u32::MAX);
        let err = ids.next(2).unwrap_err().to_string();
        assert!(
            err.contains("logical connection 2 has used every odd stream id up to 4294967295"),
            "{err}"
        );
        // It stays exhausted: no wrap to 1, which a Go server would refuse.
        assert!(ids.next(2).is_err());
    }

    #[test]
    fn request_ids_must_be_odd_and_increase() {
        let mut ids = RequestIds::default();
        let even = ids.accept(2).unwrap_err();
        assert_eq!(even.code, Code::InvalidArgument);
        assert!(even.message.contains("stream id 2 is even"), "{even}");
        assert!(ids.accept(1).is_ok());
        assert!(ids.accept(5).is_ok());
        let again = ids.accept(5).unwrap_err();
        assert!(
            again
                .message
                .contains("stream id 5 is not above the last one (5)"),
            "{again}"
        );
        assert!(ids.accept(3).is_err());
        // A refused even id changes nothing; an oversized request's id counts.
        ids.note(4);
        assert!(ids.accept(7).is_ok());
        ids.note(9);
        assert!(ids.accept(9).is_err());
        assert!(ids.accept(u32::MAX).is_ok());
        assert!(ids.accept(u32::MAX).is_err());
    }
}
