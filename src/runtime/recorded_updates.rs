//! The unsolicited updates a plugin sent, kept for its handle within a
//! budget of bytes held in memory.
//!
//! A plugin decides what its `UpdateContainers` requests carry: a 1 MiB
//! container id costs 1 MiB for as long as the update is kept. So the
//! record counts what it holds in bytes, not in updates. Each update is
//! kept as decoded afresh from its own encoding, and counted with the
//! crate's cost model of decoded messages (`pb::cost`), which bounds what a
//! value decoded from given bytes holds, spare capacity of its vectors and
//! allocator overhead included; a value a peer sent is not kept as it came,
//! since an encoding of its choice (a packed field of overlong varints, say)
//! can leave the decoder's buffers larger than the value. The record's own
//! slots are counted too. Over the budget, or over [`MAX_RECORDED_UPDATES`]
//! updates, the oldest are dropped; an update larger than the whole budget
//! is not recorded at all.

use std::collections::VecDeque;
use std::mem::size_of;

use protobuf::Message;

use crate::api::ContainerUpdate;
use crate::pb::cost::{alloc, model_of};

/// How many unsolicited updates a [`PluginHandle`](super::PluginHandle)
/// records at most; older ones are dropped first. The record is bounded in
/// bytes too: see [`DEFAULT_MAX_RECORDED_UPDATE_BYTES`].
pub const MAX_RECORDED_UPDATES: usize = 10_000;

/// How many bytes of memory the unsolicited updates a
/// [`PluginHandle`](super::PluginHandle) records may hold by default
/// (16 MiB per plugin; see
/// [`RuntimeBuilder::max_recorded_update_bytes`](super::RuntimeBuilder::max_recorded_update_bytes)).
pub const DEFAULT_MAX_RECORDED_UPDATE_BYTES: usize = 16 << 20;

/// One recorded update and the heap bytes it holds.
type Entry = (ContainerUpdate, usize);

/// What the slots of `n` entries may take: twice the slots, at least 8
/// (a `VecDeque` grows by doubling; the record gives back what is more).
fn slots_bytes(n: usize) -> usize {
    alloc(2 * n.max(4) * size_of::<Entry>()) as usize
}

/// A copy of `u` decoded from its encoding, and an upper bound of the heap
/// it holds; `None` for an update that cannot be encoded or bounded.
fn compact(u: &ContainerUpdate) -> Option<(ContainerUpdate, usize)> {
    let bytes = u.write_to_bytes().ok()?;
    let heap = model_of::<ContainerUpdate>()?.cost(&bytes).ok()?;
    let copy = crate::pb::decode::<ContainerUpdate>(&bytes).ok()?;
    Some((copy, usize::try_from(heap).unwrap_or(usize::MAX)))
}

/// Recorded updates, oldest first, within a byte budget.
#[derive(Debug)]
pub(crate) struct RecordedUpdates {
    entries: VecDeque<Entry>,
    /// Heap bytes the entries hold (their slots not included).
    held: usize,
    /// The budget, in bytes.
    max_bytes: usize,
}

/// What recording a batch of updates dropped.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Older updates dropped to make room.
    pub(crate) oldest: usize,
    /// New updates not recorded: each alone is over the budget (or could
    /// not be bounded).
    pub(crate) too_large: usize,
}

impl RecordedUpdates {
    /// An empty record holding at most `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> RecordedUpdates {
        RecordedUpdates {
            entries: VecDeque::new(),
            held: 0,
            max_bytes,
        }
    }

    /// Bytes the record holds: the updates and its slots.
    pub(crate) fn bytes(&self) -> usize {
        self.held
            .saturating_add(alloc(self.entries.capacity() * size_of::<Entry>()) as usize)
    }

    /// How many updates are recorded.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records compact copies of `updates`, dropping the oldest to stay
    /// within the budget and [`MAX_RECORDED_UPDATES`].
    pub(crate) fn record(&mut self, updates: &[ContainerUpdate]) -> Dropped {
        let mut dropped = Dropped::default();
        for u in updates {
            let Some((copy, bytes)) = compact(u) else {
                dropped.too_large += 1;
                continue;
            };
            if bytes.saturating_add(slots_bytes(1)) > self.max_bytes {
                dropped.too_large += 1;
                continue;
            }
            while !self.entries.is_empty()
                && (self.entries.len() >= MAX_RECORDED_UPDATES
                    || self.held + bytes + slots_bytes(self.entries.len() + 1) > self.max_bytes)
            {
                self.pop_oldest();
                dropped.oldest += 1;
            }
            self.entries.push_back((copy, bytes));
            self.held += bytes;
        }
        self.fit_slots();
        dropped
    }

    fn pop_oldest(&mut self) {
        if let Some((_, bytes)) = self.entries.pop_front() {
            self.held -= bytes;
        }
    }

    /// Keeps the slots within what [`slots_bytes`] counts for the entries,
    /// so that a burst that grew them does not hold their memory once its
    /// updates are gone, and the whole record stays within the budget.
    fn fit_slots(&mut self) {
        let want = 2 * self.entries.len().max(4);
        if self.entries.capacity() > want {
            self.entries.shrink_to(want);
        }
    }

    /// Copies of the recorded updates, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<ContainerUpdate> {
        self.entries.iter().map(|(u, _)| u.clone()).collect()
    }

    /// Removes and returns the recorded updates, oldest first.
    pub(crate) fn take(&mut self) -> Vec<ContainerUpdate> {
        self.held = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(u, _)| u)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: &str) -> ContainerUpdate {
        ContainerUpdate {
            container_id: id.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn large_updates_are_bounded_by_bytes_not_by_count() {
        let mut r = RecordedUpdates::new(8 << 20);
        let big = "x".repeat(1 << 20);
        for i in 0..600 {
            let d = r.record(&[update(&format!("{i}-{big}"))]);
            assert_eq!(d.too_large, 0);
            assert!(r.bytes() <= 8 << 20, "{} bytes held", r.bytes());
        }
        assert!(r.len() >= 6 && r.len() < 8, "{} kept", r.len());
        // The newest are kept, in order.
        let kept = r.to_vec();
        assert!(kept.last().unwrap().container_id.starts_with("599-"));
        assert_eq!(r.take().len(), kept.len());
        assert_eq!(r.len(), 0);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn the_count_limit_still_holds_for_small_updates() {
        let mut r = RecordedUpdates::new(usize::MAX / 4);
        let batch: Vec<ContainerUpdate> = (0..MAX_RECORDED_UPDATES + 5)
            .map(|i| update(&format!("c{i}")))
            .collect();
        let d = r.record(&batch);
        assert_eq!(d.oldest, 5);
        assert_eq!(r.len(), MAX_RECORDED_UPDATES);
        assert_eq!(r.to_vec()[0].container_id, "c5");
    }

    #[test]
    fn an_update_over_the_whole_budget_is_not_recorded_and_the_others_stay() {
        let mut r = RecordedUpdates::new(64 << 10);
        r.record(&[update("small")]);
        let d = r.record(&[update(&"y".repeat(100 << 10))]);
        assert_eq!(
            d,
            Dropped {
                oldest: 0,
                too_large: 1
            }
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn slots_grown_by_a_burst_are_given_back() {
        let mut r = RecordedUpdates::new(1 << 20);
        let burst: Vec<ContainerUpdate> = (0..5000).map(|i| update(&format!("c{i}"))).collect();
        r.record(&burst);
        assert!(r.bytes() <= 1 << 20, "{}", r.bytes());
        let kept = r.len();
        r.record(&[update(&"z".repeat(900 << 10))]);
        assert!(r.len() < kept);
        assert!(r.bytes() <= 1 << 20, "{}", r.bytes());
    }
}
