//! The deadline guard: a thread that answers on a slow handler's behalf
//! shortly before the caller's deadline, so the caller never sees a timeout.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::ConnectionState;
use crate::locking::lock;
use crate::ttrpc::Status;
use crate::{Error, Result};

/// The reply a deadline guard sends for a handler that is about to miss the
/// caller's deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuardReply {
    /// An OK reply with an empty payload, which every NRI response type reads
    /// as "no changes".
    Empty,
    /// An error status.
    Error(Status),
}

/// Answers on a slow handler's behalf shortly before the caller's deadline,
/// so the caller never sees a timeout; the handler's late result is then
/// discarded and logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlineGuard {
    /// How long before the deadline the guard answers (capped at a quarter of
    /// the request's timeout).
    pub margin: Duration,
    /// What it answers.
    pub reply: GuardReply,
}

impl Default for DeadlineGuard {
    fn default() -> Self {
        DeadlineGuard {
            margin: Duration::from_millis(250),
            reply: GuardReply::Empty,
        }
    }
}

pub(super) struct GuardEntry {
    at: Instant,
    conn_id: u32,
    stream_id: u32,
    /// The method's full name, for the log.
    what: Arc<str>,
    replied: Arc<AtomicBool>,
}

impl PartialEq for GuardEntry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for GuardEntry {}
impl PartialOrd for GuardEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GuardEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at) // min-heap on time
    }
}

pub(super) enum GuardMsg {
    Watch(GuardEntry),
    Stop,
}

fn guard_main(shared: Weak<ConnectionState>, rx: Receiver<GuardMsg>, guard: DeadlineGuard) {
    let mut heap: BinaryHeap<GuardEntry> = BinaryHeap::new();
    loop {
        let msg = match heap.peek() {
            Some(e) => match rx.recv_deadline(e.at) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(_) => return,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
        };
        match msg {
            Some(GuardMsg::Watch(e)) => heap.push(e),
            Some(GuardMsg::Stop) => return,
            None => {}
        }
        let now = Instant::now();
        while heap.peek().is_some_and(|e| e.at <= now) {
            let Some(e) = heap.pop() else { break };
            if e.replied.swap(true, Ordering::AcqRel) {
                continue;
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            log::warn!(
                "{}: {} (stream {}) is about to miss its deadline; answering on its behalf with {:?}",
                shared.options.name,
                e.what,
                e.stream_id,
                guard.reply
            );
            let result = match &guard.reply {
                GuardReply::Empty => Ok(Vec::new()),
                GuardReply::Error(st) => Err(st.clone()),
            };
            let _ = shared.write_response(e.conn_id, e.stream_id, result);
        }
    }
}

/// Starts the guard thread of a connection.
pub(super) fn start(shared: &Arc<ConnectionState>, guard: DeadlineGuard) -> Result<()> {
    let (tx, rx) = crossbeam_channel::unbounded();
    *lock(&shared.guard) = Some(tx);
    let weak = Arc::downgrade(shared);
    let h = thread::Builder::new()
        .name(format!("{}-guard", shared.options.name))
        .spawn(move || guard_main(weak, rx, guard))
        .map_err(|e| Error::io("cannot spawn the deadline-guard thread", e))?;
    lock(&shared.threads).push(h);
    Ok(())
}

impl ConnectionState {
    /// Has the guard watch a request that came with a timeout; returns the
    /// flag that whoever replies first (the handler or the guard) sets.
    /// `None` without a timeout or without a guard.
    pub(super) fn watch_deadline(
        &self,
        conn_id: u32,
        stream_id: u32,
        received: Instant,
        timeout: Option<Duration>,
        what: &Arc<str>,
    ) -> Option<Arc<AtomicBool>> {
        match (timeout, lock(&self.guard).as_ref()) {
            (Some(t), Some(tx)) => {
                let flag = Arc::new(AtomicBool::new(false));
                let margin = self
                    .options
                    .deadline_guard
                    .as_ref()
                    .map(|g| g.margin)
                    .unwrap_or_default()
                    .min(t / 4);
                let _ = tx.send(GuardMsg::Watch(GuardEntry {
                    at: received + t - margin,
                    conn_id,
                    stream_id,
                    what: what.clone(),
                    replied: flag.clone(),
                }));
                Some(flag)
            }
            _ => None,
        }
    }
}
