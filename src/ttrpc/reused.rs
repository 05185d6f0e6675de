//! Requests decoded into messages kept per worker thread.
//!
//! A typed handler that borrows its request (the stub's events) gets it
//! decoded into the message that held the previous request of the same
//! type on the same thread ([`crate::pb::reuse`]): in steady state, a
//! request like the one before it decodes with a handful of allocations
//! instead of one per string and nested message.
//!
//! A kept message holds the capacity of the requests decoded into it, so
//! it is kept only while what it holds is small: after each request, when
//! the message's [`retained_bound`](ReusedMessage::retained_bound) (counted
//! as the decoder grew it, with no walk of the message or of the bytes)
//! plus the message itself is over [`REUSE_MAX_BYTES`], it is dropped once
//! its handler returns, and the next request of the type starts a new one.
//! A thread therefore keeps at most one message per request type, each
//! holding at most that bound (strings and vectors much larger than what
//! they hold are shrunk as they are reused, see [`crate::pb::reuse`]), and
//! all of it goes with the thread. While it is decoded into, a message
//! holds at most what it held before plus what the request's decoded form
//! takes, which the budget of decoded requests charged.
//!
//! While a handler runs, its message is out of the cache: a request served
//! on the same thread meanwhile gets a message of its own.

use std::any::{Any, TypeId};
use std::cell::RefCell;

use protobuf::Message;

use crate::pb::reuse::{Reuse, ReusedMessage};

/// Requests whose decoded form may hold more than this many bytes are not
/// decoded into a kept message (256 KiB).
pub(crate) const REUSE_MAX_BYTES: u64 = 256 << 10;

/// A kept message (a `ReusedMessage` of the type `type_id` names).
struct Kept {
    type_id: TypeId,
    message: Box<dyn Any>,
}

thread_local! {
    /// This thread's kept messages, one per request type.
    static KEPT: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
}

/// Takes this thread's kept message of type `M` out of the cache.
fn take<M: 'static>() -> Option<Kept> {
    let id = TypeId::of::<M>();
    KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        let i = kept.iter().position(|k| k.type_id == id)?;
        Some(kept.swap_remove(i))
    })
    .ok()
    .flatten()
}

/// Puts a message back in this thread's cache.
fn put_back(k: Kept) {
    let _ = KEPT.try_with(|kept| kept.borrow_mut().push(k));
}

/// Decodes `payload` as an `M` into this thread's kept message (a new one
/// when there is none) and runs `f` on it; the message is kept for the
/// next request only when what it holds stays within [`REUSE_MAX_BYTES`].
/// A decoding error is the protobuf crate's.
pub(crate) fn with_decoded<M, T>(payload: &[u8], f: impl FnOnce(&M) -> T) -> protobuf::Result<T>
where
    M: Message + Reuse,
{
    let mut kept = take::<M>().unwrap_or_else(|| Kept {
        type_id: TypeId::of::<M>(),
        message: Box::new(ReusedMessage::<M>::new()),
    });
    let Some(m) = kept.message.downcast_mut::<ReusedMessage<M>>() else {
        // Kept under M's type id, so always a ReusedMessage<M>.
        let m = crate::pb::decode::<M>(payload)?;
        return Ok(f(&m));
    };
    // On an error the message is dropped with `kept`.
    let out = f(m.decode(payload)?);
    let held = m
        .retained_bound()
        .saturating_add(std::mem::size_of::<ReusedMessage<M>>() as u64);
    if held <= REUSE_MAX_BYTES {
        put_back(kept);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::nri::{Container, CreateContainerRequest, PodSandbox};

    fn kept_count() -> usize {
        KEPT.with(|k| k.borrow().len())
    }

    fn request(id: &str) -> Vec<u8> {
        CreateContainerRequest {
            pod: protobuf::MessageField::some(PodSandbox {
                id: "p".into(),
                ..Default::default()
            }),
            container: protobuf::MessageField::some(Container {
                id: id.into(),
                args: vec!["a".into(), "b".into()],
                ..Default::default()
            }),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default()
    }

    fn big_request(id: &str, bytes: usize) -> Vec<u8> {
        CreateContainerRequest {
            container: protobuf::MessageField::some(Container {
                id: id.into(),
                annotations: [("big".to_string(), "x".repeat(bytes))].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default()
    }

    #[test]
    fn small_requests_are_kept_and_large_ones_are_not() {
        let before = kept_count();
        let got =
            with_decoded::<CreateContainerRequest, _>(&request("c1"), |r| r.container.id.clone());
        assert_eq!(got.ok().as_deref(), Some("c1"));
        assert_eq!(kept_count(), before + 1);
        let got = with_decoded::<CreateContainerRequest, _>(&request("c2"), |r| {
            (r.container.id.clone(), r.container.args.len())
        });
        assert_eq!(got.ok(), Some(("c2".to_string(), 2)));
        assert_eq!(kept_count(), before + 1);
        // Just under the limit, the message stays; over it, it goes.
        let got = with_decoded::<CreateContainerRequest, _>(&big_request("c3", 200 << 10), |r| {
            r.container.id.clone()
        });
        assert_eq!(got.ok().as_deref(), Some("c3"));
        assert_eq!(kept_count(), before + 1);
        let got = with_decoded::<CreateContainerRequest, _>(&big_request("c4", 300 << 10), |r| {
            r.container.id.clone()
        });
        assert_eq!(got.ok().as_deref(), Some("c4"));
        assert_eq!(kept_count(), before);
        // The next request starts a new message, and it is kept.
        let got =
            with_decoded::<CreateContainerRequest, _>(&request("c5"), |r| r.container.id.clone());
        assert_eq!(got.ok().as_deref(), Some("c5"));
        assert_eq!(kept_count(), before + 1);
    }

    #[test]
    fn a_message_that_grew_past_the_limit_over_many_requests_goes() {
        let before = kept_count();
        // Each request needs a longer string than the one before: every
        // decode grows the message a little.
        let mut dropped_after = None;
        for i in 1..=40usize {
            let _ = with_decoded::<CreateContainerRequest, _>(
                &big_request("c", (i * 10) << 10),
                |_| (),
            );
            if kept_count() == before {
                dropped_after = Some(i);
                break;
            }
        }
        let i = dropped_after.expect("the growing message was never dropped");
        assert!(i >= 2, "dropped after {i} requests");
    }

    #[test]
    fn a_request_that_does_not_decode_fails_and_keeps_nothing() {
        let before = kept_count();
        // A container (field 2) declaring 16 bytes where 1 follows.
        let got = with_decoded::<CreateContainerRequest, _>(&[0x12, 0x10, 0x0a], |_| ());
        assert!(got.is_err());
        assert_eq!(kept_count(), before);
    }
}
