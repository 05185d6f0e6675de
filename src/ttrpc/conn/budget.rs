//! The byte budget of what was read but is not yet taken: requests waiting
//! for a worker, and replies waiting for their caller.
//!
//! A count of queued items says little about memory when one item may hold
//! 4 MiB; this budget counts the bytes each one holds (the capacity of its
//! buffers, plus a fixed cost for the item). The reader asks it before
//! queueing a request ([`ConnectionState::admit`]) and a worker gives the
//! bytes back when it takes the request ([`ConnectionState::release`]); a
//! reply for a caller carries a [`Held`] share that goes back when the
//! caller (or whoever drops the reply) is done with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::read::Work;
use super::ConnectionState;
use crate::proto::ttrpc::Response;
use crate::status::{Code, Status};
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::{Error, Result};

/// What an item costs beyond its buffers (its place in a queue or channel).
const ITEM_COST: usize = 256;

/// The smallest budget: one message of the largest size fits.
pub(super) const MIN_PENDING_BYTES: usize = MAX_MESSAGE_LEN + 64 * 1024;

/// Bytes held by received messages nobody has taken yet, against a limit.
#[derive(Debug)]
pub(super) struct Budget {
    limit: usize,
    held: AtomicUsize,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit: limit.max(MIN_PENDING_BYTES),
            held: AtomicUsize::new(0),
        })
    }

    /// Counts `n` more bytes as held if they fit; else returns what is held.
    fn take(&self, n: usize) -> std::result::Result<(), usize> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|&total| total <= self.limit)
            })
            .map(|_| ())
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(n))
            });
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The limit in force.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }
}

/// A share of the budget, given back when dropped.
pub(super) struct Held {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// Bytes a queued request holds.
fn work_bytes(work: &Work) -> usize {
    ITEM_COST
        + match work {
            Work::Request { envelope, .. } => {
                envelope.data.capacity()
                    + envelope.service.capacity()
                    + envelope.method.capacity()
                    + envelope
                        .metadata
                        .iter()
                        .map(|kv| ITEM_COST + kv.key.capacity() + kv.value.capacity())
                        .sum::<usize>()
            }
            Work::Refuse { status, .. } => status.message.capacity(),
        }
}

/// Bytes a reply for a caller holds.
fn reply_bytes(reply: &Result<Response>) -> usize {
    ITEM_COST
        + match reply {
            Ok(r) => {
                r.payload.capacity()
                    + r.status.as_ref().map_or(0, |s| {
                        s.message.capacity()
                            + s.details
                                .iter()
                                .map(|d| ITEM_COST + d.type_url.capacity() + d.value.capacity())
                                .sum::<usize>()
                    })
            }
            Err(_) => 0,
        }
}

impl ConnectionState {
    /// Whether a request read from the socket may wait for a worker behind
    /// `queued` others: within `max_queued_requests` and the byte budget.
    /// Else the RESOURCE_EXHAUSTED status to refuse it with, naming the
    /// bound. An admitted request's bytes stay counted until
    /// [`ConnectionState::release`].
    pub(super) fn admit(&self, queued: usize, work: &Work) -> std::result::Result<(), Status> {
        let max = self.options.max_queued_requests;
        if queued >= max {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!("too many requests waiting for a worker (limit {max})"),
            ));
        }
        let n = work_bytes(work);
        self.budget.take(n).map_err(|held| {
            Status::new(
                Code::ResourceExhausted,
                format!(
                    "a request of {n} bytes does not fit in the {}-byte budget for received \
                     messages waiting to be taken (max_pending_bytes; {held} bytes held)",
                    self.budget.limit()
                ),
            )
        })
    }

    /// Gives back the bytes of a request a worker took from the queue.
    pub(super) fn release(&self, work: &Work) {
        self.budget.give_back(work_bytes(work));
    }

    /// Counts a reply for a waiting caller in the budget: the reply with
    /// its share, or, when it does not fit, an error for the caller in its
    /// place (the reply is dropped).
    pub(super) fn hold_reply(&self, reply: Result<Response>) -> (Result<Response>, Option<Held>) {
        let n = reply_bytes(&reply);
        match self.budget.take(n) {
            Ok(()) => (
                reply,
                Some(Held {
                    budget: self.budget.clone(),
                    bytes: n,
                }),
            ),
            Err(held) => (
                Err(Error::OverBudget {
                    what: "reply",
                    len: n as u64,
                    held: held as u64,
                    limit: self.budget.limit() as u64,
                }),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_bytes_and_refuses_what_does_not_fit() {
        let b = Budget::new(0);
        assert_eq!(b.limit(), MIN_PENDING_BYTES);
        assert!(b.take(MIN_PENDING_BYTES - 10).is_ok());
        assert_eq!(b.take(11), Err(MIN_PENDING_BYTES - 10));
        assert!(b.take(10).is_ok());
        assert_eq!(b.held(), MIN_PENDING_BYTES);
        b.give_back(MIN_PENDING_BYTES);
        assert_eq!(b.held(), 0);
        // Never below zero, never past usize.
        b.give_back(5);
        assert_eq!(b.held(), 0);
        assert!(b.take(usize::MAX).is_err());
    }

    #[test]
    fn a_held_share_goes_back_when_dropped() {
        let b = Budget::new(MIN_PENDING_BYTES);
        b.take(1000).unwrap();
        let h = Held {
            budget: b.clone(),
            bytes: 1000,
        };
        assert_eq!(b.held(), 1000);
        drop(h);
        assert_eq!(b.held(), 0);
    }
}
