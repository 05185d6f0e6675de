//! The turn to send a plugin a request: at most one request is in flight
//! per plugin, and a caller waits for its turn only until its deadline.
//!
//! A plain mutex would let a caller wait for the request ahead of it and
//! then get a full request timeout of its own; with several threads calling
//! one plugin, the last would wait for all of them. Here the caller's
//! deadline covers its wait for the turn.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::locking::{lock, wait_timeout};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct CallLock {
    busy: Mutex<Turns>,
    free: Condvar,
}

#[derive(Debug, Default)]
struct Turns {
    taken: bool,
    waiting: usize,
}

impl CallLock {
    /// Takes the turn, waiting until `deadline` at most; `None` when the
    /// deadline passed first.
    pub(crate) fn lock_until(&self, deadline: Instant) -> Option<CallTurn<'_>> {
        let mut t = lock(&self.busy);
        while t.taken {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            t.waiting += 1;
            t = wait_timeout(&self.free, t, left);
            t.waiting -= 1;
        }
        t.taken = true;
        Some(CallTurn(self))
    }
}

/// Holds the turn; passes it on when dropped (also if the holder panics).
#[derive(Debug)]
pub(crate) struct CallTurn<'a>(&'a CallLock);

impl Drop for CallTurn<'_> {
    fn drop(&mut self) {
        let mut t = lock(&self.0.busy);
        t.taken = false;
        let waiting = t.waiting > 0;
        drop(t);
        if waiting {
            self.0.free.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_caller_waits_for_the_turn_only_until_its_deadline() {
        let l = Arc::new(CallLock::default());
        let held = l
            .lock_until(Instant::now() + Duration::from_secs(1))
            .unwrap();
        let start = Instant::now();
        assert!(l
            .lock_until(Instant::now() + Duration::from_millis(30))
            .is_none());
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(30) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        let l2 = l.clone();
        let t = std::thread::spawn(move || {
            l2.lock_until(Instant::now() + Duration::from_secs(5))
                .is_some()
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert!(
            t.join().unwrap(),
            "the waiter gets the turn once it is free"
        );
        assert!(l.lock_until(Instant::now()).is_some());
    }
}
