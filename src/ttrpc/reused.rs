//! Requests decoded into messages kept per worker thread.
//!
//! A typed handler that borrows its request (the stub's events) gets it
//! decoded into the message that held the previous request of the same
//! type on the same thread ([`crate::pb::reuse`]): in steady state, a
//! request like the one before it decodes with a handful of allocations
//! instead of one per string and nested message.
//!
//! A kept message holds the capacity of the requests decoded into it, so
//! only small requests are kept: when the bound of a request's decoded size
//! (the one the budget of decoded requests charges) is over
//! [`REUSE_MAX_BYTES`], the thread's kept message of that type is dropped
//! and the request is decoded into a message of its own, freed once its
//! handler returns. A thread therefore keeps at most one message per
//! request type, each from requests under that bound (strings and vectors
//! much larger than what they hold are shrunk as they are reused, see
//! [`crate::pb::reuse`]), and all of it goes with the thread.
//!
//! While a handler runs, its message is out of the cache: a request served
//! on the same thread meanwhile gets a message of its own.

use std::any::{Any, TypeId};
use std::cell::RefCell;

use protobuf::Message;

use crate::pb::cost::CostModel;
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

/// True when the bound of the decoded size of `payload` as an `M` is at
/// most [`REUSE_MAX_BYTES`]: `charged` (what the budget took) when it is
/// that small, else the cost model's walk of the bytes. False without a
/// model.
pub(crate) fn small_bound<M>(model: Option<&CostModel>, charged: usize, payload: &[u8]) -> bool {
    if charged as u64 <= REUSE_MAX_BYTES {
        return true;
    }
    let Some(model) = model else { return false };
    model
        .cost(payload)
        .is_ok_and(|heap| heap.saturating_add(std::mem::size_of::<M>() as u64) <= REUSE_MAX_BYTES)
}

/// Decodes `payload` as an `M` and runs `f` on it: into this thread's kept
/// message when `small` (the request's decoded-size bound is at most
/// [`REUSE_MAX_BYTES`], see [`small_bound`]), else into a message of its
/// own, dropping the kept one. A decoding error is the protobuf crate's.
pub(crate) fn with_decoded<M, T>(
    payload: &[u8],
    small: bool,
    f: impl FnOnce(&M) -> T,
) -> protobuf::Result<T>
where
    M: Message + Reuse,
{
    if !small {
        drop(take::<M>());
        let m = crate::pb::decode::<M>(payload)?;
        return Ok(f(&m));
    }
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
    put_back(kept);
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

    #[test]
    fn small_requests_are_kept_and_large_ones_drop_the_kept_message() {
        let before = kept_count();
        let got = with_decoded::<CreateContainerRequest, _>(&request("c1"), true, |r| {
            r.container.id.clone()
        });
        assert_eq!(got.ok().as_deref(), Some("c1"));
        assert_eq!(kept_count(), before + 1);
        let got = with_decoded::<CreateContainerRequest, _>(&request("c2"), true, |r| {
            (r.container.id.clone(), r.container.args.len())
        });
        assert_eq!(got.ok(), Some(("c2".to_string(), 2)));
        assert_eq!(kept_count(), before + 1);
        // A large one is decoded on its own and the kept one goes.
        let got = with_decoded::<CreateContainerRequest, _>(&request("c3"), false, |r| {
            r.container.id.clone()
        });
        assert_eq!(got.ok().as_deref(), Some("c3"));
        assert_eq!(kept_count(), before);
    }

    #[test]
    fn a_request_that_does_not_decode_fails_and_keeps_nothing() {
        let before = kept_count();
        // A container (field 2) declaring 16 bytes where 1 follows.
        let got = with_decoded::<CreateContainerRequest, _>(&[0x12, 0x10, 0x0a], true, |_| ());
        assert!(got.is_err());
        assert_eq!(kept_count(), before);
    }

    #[test]
    fn the_bound_decides_with_a_walk_only_when_the_charge_is_large() {
        let model = crate::pb::cost::model_of::<CreateContainerRequest>();
        let bytes = request("c1");
        assert!(small_bound::<CreateContainerRequest>(
            model.as_ref(),
            100,
            &bytes
        ));
        // Charged over the limit: the walk of these few bytes is far under.
        assert!(small_bound::<CreateContainerRequest>(
            model.as_ref(),
            usize::MAX,
            &bytes
        ));
        assert!(!small_bound::<CreateContainerRequest>(
            None,
            usize::MAX,
            &bytes
        ));
        // A request with a 300 KiB string is over it.
        let big = Container {
            id: "x".repeat(300 << 10),
            ..Default::default()
        };
        let big = CreateContainerRequest {
            container: protobuf::MessageField::some(big),
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap_or_default();
        assert!(!small_bound::<CreateContainerRequest>(
            model.as_ref(),
            usize::MAX,
            &big
        ));
    }
}
