//! The memory budget of decoded requests: a request is decoded only when
//! the memory its decoded form can hold fits in what the requests being
//! served leave of the budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use protobuf::Message;

use crate::pb::cost::{model_of, CostModel};
use crate::status::{Code, Status};
use crate::{Error, Result};

/// An upper bound of the heap memory, in bytes, that `bytes` hold once
/// decoded as an `M` (the `M` struct itself, the boxes, strings, vectors
/// and maps it owns, allocator overhead included), computed from the wire
/// bytes without decoding them. It is what the budget of decoded requests
/// ([`Services::set_max_decoded_bytes`](super::Services::set_max_decoded_bytes))
/// charges a request. Fails when the bytes cannot decode as a protobuf
/// message, and for message types outside the NRI API (`nri::api`), whose
/// layout the crate does not know.
///
/// ```
/// use nri::api::Container;
/// use protobuf::Message;
///
/// let c = Container { id: "c1".into(), args: vec!["sleep".into()], ..Default::default() };
/// let bound = nri::ttrpc::decoded_size_bound::<Container>(&c.write_to_bytes().unwrap()).unwrap();
/// assert!(bound >= std::mem::size_of::<Container>() as u64);
/// ```
pub fn decoded_size_bound<M: Message>(bytes: &[u8]) -> Result<u64> {
    let heap = model_of::<M>()
        .ok_or_else(|| {
            Error::Config(format!(
                "{} is not a message of the NRI API: no memory bound is known for it",
                M::NAME
            ))
        })?
        .cost(bytes)
        .map_err(|e| Error::Protocol(format!("cannot decode {}: {e}", M::NAME)))?;
    Ok(heap.saturating_add(std::mem::size_of::<M>() as u64))
}

/// Decodes a reply to one of this side's calls strictly, unless its decoded
/// form could hold more than [`DEFAULT_MAX_DECODED_BYTES`]: then it fails
/// with [`Error::DecodedTooLarge`] without decoding it. A reply is at most
/// 4 MiB on the wire, but a few bytes can stand for a large value (4 MiB of
/// empty mounts decode to over 200 MB). A short reply passes without a walk
/// of its bytes: its length times the most a wire byte can cost is under
/// the limit. Types outside the NRI API, which the cost model does not
/// know, are decoded as they are.
pub(crate) fn decode_reply<M: Message>(bytes: &[u8]) -> Result<M> {
    check_decoded_size::<M>(bytes, DEFAULT_MAX_DECODED_BYTES as u64)?;
    crate::pb::decode::<M>(bytes).map_err(|e| Error::Protobuf {
        what: "decoding",
        message: M::NAME,
        source: e,
    })
}

/// Fails with [`Error::DecodedTooLarge`] when `bytes` could hold more than
/// `limit` bytes once decoded as an `M`.
fn check_decoded_size<M: Message>(bytes: &[u8], limit: u64) -> Result<()> {
    let Some(model) = model_of::<M>() else {
        return Ok(());
    };
    let struct_size = std::mem::size_of::<M>() as u64;
    let quick = (bytes.len() as u64)
        .saturating_mul(model.max_per_wire_byte())
        .saturating_add(struct_size);
    if quick <= limit {
        return Ok(());
    }
    // Bytes the decoder would refuse anyway get its error instead.
    let Ok(heap) = model.cost(bytes) else {
        return Ok(());
    };
    let decoded = heap.saturating_add(struct_size);
    if decoded <= limit {
        return Ok(());
    }
    Err(Error::DecodedTooLarge {
        message: M::NAME,
        wire: bytes.len() as u64,
        decoded,
        limit,
    })
}

/// Default of [`Services::set_max_decoded_bytes`](super::Services::set_max_decoded_bytes):
/// 64 MiB of decoded requests served at once.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 64 << 20;

/// Bytes of memory the decoded requests being served may hold together.
#[derive(Debug)]
pub(crate) struct DecodeBudget {
    limit: AtomicUsize,
    held: AtomicUsize,
}

impl Default for DecodeBudget {
    fn default() -> Self {
        DecodeBudget {
            limit: AtomicUsize::new(DEFAULT_MAX_DECODED_BYTES),
            held: AtomicUsize::new(0),
        }
    }
}

/// Memory taken from a [`DecodeBudget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<DecodeBudget>,
    bytes: usize,
}

impl Held {
    /// The bytes taken: the bound of the request's decoded size.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl DecodeBudget {
    pub(crate) fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Release);
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Takes from the budget what `payload` can hold once decoded as the
    /// message of `model` (`size` bytes of struct, `what` its name for
    /// errors). Small payloads are charged their bound per wire byte
    /// without a look at their bytes; larger ones are walked for a tighter
    /// bound. A message type outside the NRI API (no model) is charged its
    /// encoded size. Refused with RESOURCE_EXHAUSTED naming the budget, or
    /// with INTERNAL when the bytes cannot decode anyway.
    pub(crate) fn take(
        self: &Arc<Self>,
        model: Option<&CostModel>,
        size: usize,
        payload: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<Held, Status> {
        let limit = self.limit();
        let held = self.held.load(Ordering::Acquire);
        let Some(model) = model else {
            return self.charge(
                payload.len().saturating_add(size),
                limit,
                held,
                payload,
                what,
            );
        };
        let quick = (payload.len() as u64)
            .saturating_mul(model.max_per_wire_byte())
            .saturating_add(size as u64);
        let cost = if quick <= limit.saturating_sub(held) as u64 {
            quick
        } else {
            model
                .cost(payload)
                .map_err(|e| Status::new(Code::Internal, format!("cannot decode {}: {e}", what())))?
                .saturating_add(size as u64)
        };
        let cost = usize::try_from(cost).unwrap_or(usize::MAX);
        self.charge(cost, limit, held, payload, what)
    }

    /// Takes `cost` bytes, or refuses (see [`DecodeBudget::take`]).
    fn charge(
        self: &Arc<Self>,
        cost: usize,
        limit: usize,
        held: usize,
        payload: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<Held, Status> {
        let mut now = held;
        loop {
            if cost > limit.saturating_sub(now) {
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "decoding {} ({} bytes) could hold up to {cost} bytes in memory; the budget for decoded requests is {limit} bytes, of which requests being served hold {now}",
                        what(),
                        payload.len()
                    ),
                ));
            }
            match self.held.compare_exchange_weak(
                now,
                now + cost,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Held {
                        budget: self.clone(),
                        bytes: cost,
                    })
                }
                Err(actual) => now = actual,
            }
        }
    }
}
