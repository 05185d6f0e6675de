//! The deadline guard: answers on a slow handler's behalf shortly before
//! the caller's deadline, so the caller never sees a timeout.
//!
//! # How it stays cheap
//!
//! The guard watches the requests in flight to a guarded method (see
//! [`Services::set_guarded`](crate::ttrpc::Services::set_guarded)) that
//! came with a timeout, in one table ordered by the time the guard would
//! answer ([`Deadlines`]). The serving thread puts a request in before its
//! handler runs and takes it out when the handler returns: an entry lives
//! as long as its request is served, never until its deadline. The guard's
//! thread sleeps until the earliest entry is due, and an insertion wakes
//! it only when it is earlier than that; a handler that replies in time
//! costs two short critical sections and no wake-up.
//!
//! # Who replies
//!
//! Taking an entry out of the table decides who answers the request: the
//! serving thread when it finds its entry still there, the guard when it
//! took the entry because it was due. A handler that returns after the
//! guard answered has its result dropped (and logged); its after-reply
//! actions still run, exactly once, on its own thread, once the guard's
//! reply is on the wire, and are dropped if that reply could not be
//! written, as they are for a handler's own reply.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::ConnectionState;
use crate::locking::{lock, wait, wait_timeout};
use crate::log_text::Escape;
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
///
/// Only methods registered as guarded are answered for
/// ([`Services::add_unary_guarded`](crate::ttrpc::Services::add_unary_guarded),
/// [`Services::set_guarded`](crate::ttrpc::Services::set_guarded)): a reply
/// made up for a method whose empty answer means something (NRI's
/// Configure, Synchronize, Shutdown) would be a lie.
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

/// A request the guard watches: when it would answer, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Due {
    at: Instant,
    conn_id: u32,
    stream_id: u32,
}

impl Due {
    fn stream(self) -> (u32, u32) {
        (self.conn_id, self.stream_id)
    }
}

/// When the guard's thread wakes up next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sleep {
    /// It is awake and looks at the table before sleeping again.
    Awake,
    /// It sleeps until the given time, or until woken when `None`.
    Until(Option<Instant>),
}

impl Sleep {
    /// Whether an entry due `at` must wake the guard's thread: only when
    /// it sleeps past `at` (an awake thread looks at the table before it
    /// sleeps again).
    fn woken_by(self, at: Instant) -> bool {
        match self {
            Sleep::Awake => false,
            Sleep::Until(None) => true,
            Sleep::Until(Some(until)) => at < until,
        }
    }
}

struct Table {
    /// The requests watched, by the time the guard answers.
    due: BTreeMap<Due, Arc<str>>,
    /// Requests the guard took: `None` while its reply is being written,
    /// then whether it was. The serving thread removes its own.
    answered: HashMap<(u32, u32), Option<bool>>,
    sleep: Sleep,
    stopped: bool,
}

/// The deadline guard's table, shared by the serving threads and the
/// guard's thread.
pub(super) struct Deadlines {
    guard: DeadlineGuard,
    table: Mutex<Table>,
    /// Wakes the guard's thread.
    wake: Condvar,
    /// Wakes serving threads waiting for a guard reply to be written.
    written: Condvar,
}

/// Who answers a request the guard watched, decided when its handler
/// returned.
pub(super) enum Settled {
    /// The handler was in time: its thread replies.
    Handler,
    /// The guard answered; `true` when its reply was written.
    Guard(bool),
}

impl Deadlines {
    pub(super) fn new(guard: DeadlineGuard) -> Deadlines {
        Deadlines {
            guard,
            table: Mutex::new(Table {
                due: BTreeMap::new(),
                answered: HashMap::new(),
                sleep: Sleep::Awake,
                stopped: false,
            }),
            wake: Condvar::new(),
            written: Condvar::new(),
        }
    }

    /// Ends the guard's thread (the connection is closing).
    pub(super) fn stop(&self) {
        lock(&self.table).stopped = true;
        self.wake.notify_all();
    }

    /// Starts watching a request received at `received` whose caller waits
    /// `timeout`; `None` when the deadline is too far to represent.
    fn watch(
        &self,
        conn_id: u32,
        stream_id: u32,
        received: Instant,
        timeout: Duration,
        what: &Arc<str>,
    ) -> Option<Due> {
        let margin = self.guard.margin.min(timeout / 4);
        let at = received.checked_add(timeout - margin)?;
        let due = Due {
            at,
            conn_id,
            stream_id,
        };
        let mut t = lock(&self.table);
        t.due.insert(due, what.clone());
        let wake = t.sleep.woken_by(at);
        drop(t);
        if wake {
            self.wake.notify_one();
        }
        Some(due)
    }

    /// Takes a watched request out of the table once its handler returned,
    /// and says who answers it (waiting, if the guard is writing its reply,
    /// until it is written: the write is bounded by the write timeout).
    fn settle(&self, due: Due) -> Settled {
        let mut t = lock(&self.table);
        if t.due.remove(&due).is_some() {
            return Settled::Handler;
        }
        loop {
            match t.answered.get(&due.stream()) {
                Some(None) => t = wait(&self.written, t),
                Some(&Some(ok)) => {
                    t.answered.remove(&due.stream());
                    return Settled::Guard(ok);
                }
                // Neither watched nor answered: nothing was written for it.
                None => return Settled::Guard(false),
            }
        }
    }

    /// Takes every entry due at `now` out of the table, marking each as
    /// being answered.
    fn take_due(t: &mut Table, now: Instant) -> Vec<(Due, Arc<str>)> {
        let mut taken = Vec::new();
        while let Some(entry) = t.due.first_entry() {
            if entry.key().at > now {
                break;
            }
            let (due, what) = entry.remove_entry();
            t.answered.insert(due.stream(), None);
            taken.push((due, what));
        }
        taken
    }

    /// Entries waiting in the table (for tests).
    #[cfg(test)]
    fn watched(&self) -> usize {
        lock(&self.table).due.len()
    }
}

fn guard_main(shared: Arc<ConnectionState>) {
    let Some(d) = shared.guard.as_ref() else {
        return;
    };
    let mut t = lock(&d.table);
    loop {
        if t.stopped {
            return;
        }
        let now = Instant::now();
        let taken = Deadlines::take_due(&mut t, now);
        if !taken.is_empty() {
            drop(t);
            for (due, what) in taken {
                log::warn!(
                    "{}: {} (stream {}) is about to miss its deadline; answering on its behalf with {:?}",
                    Escape(&shared.options.name),
                    Escape(&what),
                    due.stream_id,
                    d.guard.reply
                );
                let result = match &d.guard.reply {
                    GuardReply::Empty => Ok(Vec::new()),
                    GuardReply::Error(st) => Err(st.clone()),
                };
                let ok = shared
                    .write_response(due.conn_id, due.stream_id, result)
                    .is_ok();
                lock(&d.table).answered.insert(due.stream(), Some(ok));
                d.written.notify_all();
            }
            t = lock(&d.table);
            continue;
        }
        let next = t.due.first_key_value().map(|(due, _)| due.at);
        t.sleep = Sleep::Until(next);
        t = match next {
            Some(at) => wait_timeout(&d.wake, t, at.saturating_duration_since(now)),
            None => wait(&d.wake, t),
        };
        t.sleep = Sleep::Awake;
    }
}

/// Starts the guard thread of a connection that has a guard.
pub(super) fn start(shared: &Arc<ConnectionState>) -> Result<()> {
    if shared.guard.is_none() {
        return Ok(());
    }
    let s = shared.clone();
    let h = thread::Builder::new()
        .name(format!("{}-guard", shared.options.name))
        .spawn(move || guard_main(s))
        .map_err(|e| Error::io("cannot spawn the deadline-guard thread", e))?;
    lock(&shared.threads).push(h);
    Ok(())
}

impl ConnectionState {
    /// Has the guard watch a request to a guarded method that came with a
    /// timeout; `None` without a guard or a timeout.
    pub(super) fn watch_deadline(
        &self,
        conn_id: u32,
        stream_id: u32,
        received: Instant,
        timeout: Option<Duration>,
        what: &Arc<str>,
    ) -> Option<Due> {
        self.guard
            .as_ref()?
            .watch(conn_id, stream_id, received, timeout?, what)
    }

    /// Says who answers a watched request whose handler returned.
    pub(super) fn settle_deadline(&self, due: Due) -> Settled {
        match &self.guard {
            Some(d) => d.settle(due),
            None => Settled::Handler,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlines() -> Deadlines {
        Deadlines::new(DeadlineGuard {
            margin: Duration::from_millis(100),
            reply: GuardReply::Empty,
        })
    }

    /// Watches request `stream` of connection 1, received at `now`.
    fn watch(d: &Deadlines, stream: u32, now: Instant, timeout: Duration) -> Option<Due> {
        let what: Arc<str> = "svc/M".into();
        d.watch(1, stream, now, timeout, &what)
    }

    #[test]
    fn an_entry_leaves_when_its_handler_returns_in_time() {
        let d = deadlines();
        let now = Instant::now();
        for i in 0..1000u32 {
            let due = watch(&d, 2 * i + 1, now, Duration::from_secs(3600)).unwrap();
            assert!(matches!(d.settle(due), Settled::Handler));
        }
        assert_eq!(d.watched(), 0);
        assert!(lock(&d.table).answered.is_empty());
    }

    #[test]
    fn a_deadline_beyond_the_clock_is_not_watched() {
        let d = deadlines();
        assert!(watch(&d, 1, Instant::now(), Duration::MAX).is_none());
        assert_eq!(d.watched(), 0);
    }

    #[test]
    fn the_margin_is_at_most_a_quarter_of_the_timeout() {
        let d = deadlines();
        let now = Instant::now();
        let due = watch(&d, 1, now, Duration::from_millis(200)).unwrap();
        assert_eq!(due.at, now + Duration::from_millis(150));
    }

    #[test]
    fn an_insertion_wakes_the_guard_only_when_earlier_than_its_wake_up() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let later = now + Duration::from_secs(10);
        // Asleep until `later`: an entry due sooner wakes it, one due
        // later waits for that wake-up.
        assert!(Sleep::Until(Some(later)).woken_by(soon));
        assert!(!Sleep::Until(Some(soon)).woken_by(later));
        assert!(!Sleep::Until(Some(soon)).woken_by(soon));
        // Asleep with nothing to wait for: any entry wakes it.
        assert!(Sleep::Until(None).woken_by(later));
        // Awake: it will look at the table anyway.
        assert!(!Sleep::Awake.woken_by(now));
    }

    #[test]
    fn the_guard_takes_what_is_due_and_the_late_handler_learns_it() {
        let d = deadlines();
        let now = Instant::now();
        let late = watch(&d, 1, now, Duration::from_millis(400)).unwrap();
        let later = watch(&d, 3, now, Duration::from_secs(60)).unwrap();
        let taken = Deadlines::take_due(&mut lock(&d.table), now + Duration::from_millis(300));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, late);
        lock(&d.table).answered.insert(late.stream(), Some(true));
        assert!(matches!(d.settle(late), Settled::Guard(true)));
        assert!(matches!(d.settle(later), Settled::Handler));
        let t = lock(&d.table);
        assert!(t.due.is_empty() && t.answered.is_empty());
    }
}
