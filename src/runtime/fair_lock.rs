//! The runtime's locks: the event lock, granted in arrival order, and a
//! mutex helper that survives a panicking holder.

use std::sync::{Condvar, Mutex, MutexGuard};

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
    /// (next ticket to hand out, ticket being served)
    tickets: Mutex<(u64, u64)>,
    turn: Condvar,
}

impl FairLock {
    pub(crate) fn lock(&self) -> FairGuard<'_> {
        let mut t = lock(&self.tickets);
        let mine = t.0;
        t.0 += 1;
        while t.1 != mine {
            t = self.turn.wait(t).unwrap_or_else(|e| e.into_inner());
        }
        FairGuard(self)
    }
}

/// Holds a [`FairLock`]; passes it on when dropped.
pub(crate) struct FairGuard<'a>(&'a FairLock);

impl Drop for FairGuard<'_> {
    fn drop(&mut self) {
        let mut t = lock(&self.0.tickets);
        t.1 += 1;
        let waiting = t.0 != t.1;
        drop(t);
        if waiting {
            self.0.turn.notify_all();
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use std::time::Instant;

    fn waiting(l: &FairLock) -> u64 {
        let t = lock(&l.tickets);
        t.0 - t.1
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
