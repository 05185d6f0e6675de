//! The runtime's event lock, granted in arrival order.

use std::sync::{Condvar, Mutex};

use crate::locking::{lock, wait};

/// A lock granted in arrival order.
///
/// The event lock is taken back to back by whoever relays events and now
/// and then by a plugin's `UpdateContainers`. A plain mutex lets the
/// relaying thread take it again before a woken waiter runs, so on a busy
/// machine an update could wait for seconds behind a stream of events (Go's
/// mutex avoids this with its starvation mode). Tickets make it wait for
/// the event in flight only.
#[derive(Default)]
pub(crate) struct FairLock {
    tickets: Mutex<Tickets>,
    turn: Condvar,
}

/// The queue of a [`FairLock`].
#[derive(Default)]
struct Tickets {
    /// The next ticket to hand out.
    next: u64,
    /// The ticket that holds the lock.
    serving: u64,
}

impl FairLock {
    pub(crate) fn lock(&self) -> FairGuard<'_> {
        let mut t = lock(&self.tickets);
        let mine = t.next;
        t.next += 1;
        while t.serving != mine {
            t = wait(&self.turn, t);
        }
        FairGuard(self)
    }
}

/// Holds a [`FairLock`]; passes it on when dropped.
pub(crate) struct FairGuard<'a>(&'a FairLock);

impl Drop for FairGuard<'_> {
    fn drop(&mut self) {
        let mut t = lock(&self.0.tickets);
        t.serving += 1;
        let waiting = t.next != t.serving;
        drop(t);
        if waiting {
            self.0.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use std::time::Instant;

    fn waiting(l: &FairLock) -> u64 {
        let t = lock(&l.tickets);
        t.next - t.serving
    }

    #[test]
    fn a_waiter_gets_the_lock_before_the_holder_takes_it_again() {
        let l = Arc::new(FairLock::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = l.lock();
        let waiter = {
            let (l, order) = (l.clone(), order.clone());
            std::thread::spawn(move || {
                let _g = l.lock();
                lock(&order).push("waiter");
            })
        };
        let t0 = Instant::now();
        while waiting(&l) < 2 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "waiter never queued"
            );
            std::thread::yield_now();
        }
        // Release and take it straight back, as an event relay loop does:
        // the queued waiter goes first.
        drop(first);
        let again = l.lock();
        lock(&order).push("holder again");
        drop(again);
        waiter.join().unwrap();
        assert_eq!(*lock(&order), vec!["waiter", "holder again"]);
        assert_eq!(waiting(&l), 0);
    }

    #[test]
    fn a_panicking_holder_passes_the_lock_on() {
        let l = Arc::new(FairLock::default());
        let l2 = l.clone();
        let r = std::thread::spawn(move || {
            let _g = l2.lock();
            panic!("holder fails");
        })
        .join();
        assert!(r.is_err());
        drop(l.lock());
        assert_eq!(waiting(&l), 0);
    }
}
