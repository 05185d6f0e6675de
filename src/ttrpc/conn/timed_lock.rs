//! A lock taken with a deadline, fair to the threads that wait for it.
//!
//! The connection's writer is held for a whole message, and a message can
//! take a while when the peer reads slowly. A caller whose call has a
//! timeout must not wait past it for its turn to write, and a caller that
//! waits must not be overtaken forever by a stream of replies. A
//! [`TimedLock`] gives both: [`TimedLock::lock_until`] gives up at a
//! deadline, and threads that had to wait take the lock in the order they
//! came (a thread arriving while others wait queues behind them).
//!
//! The uncontended case costs what a `Mutex` does: a check that nobody
//! waits and a `try_lock`, and on release an unlock and a check that nobody
//! waits. Only a thread that finds the lock taken touches the queue.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Instant;

use crate::locking::{lock, wait, wait_timeout};

/// Why [`TimedLock::lock_until`] did not get the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LockFailed {
    /// The deadline passed first.
    TimedOut,
    /// The lock was closed ([`TimedLock::close`]) before or while waiting.
    Closed,
}

/// The threads waiting, in arrival order, by ticket.
#[derive(Default)]
struct Queue {
    tickets: VecDeque<u64>,
    next: u64,
    closed: bool,
}

/// A mutex that can be waited for with a deadline, first come first served
/// among the threads that wait.
pub(super) struct TimedLock<T> {
    value: Mutex<T>,
    /// Threads in `queue`, readable without its lock: arrivals seeing zero
    /// may take the value directly.
    waiting: AtomicUsize,
    queue: Mutex<Queue>,
    turn: Condvar,
}

/// The value of a [`TimedLock`], held; the next waiter is woken on drop.
pub(super) struct TimedGuard<'a, T> {
    lock: &'a TimedLock<T>,
    guard: Option<MutexGuard<'a, T>>,
}

impl<T> TimedLock<T> {
    pub(super) fn new(value: T) -> Self {
        TimedLock {
            value: Mutex::new(value),
            waiting: AtomicUsize::new(0),
            queue: Mutex::new(Queue::default()),
            turn: Condvar::new(),
        }
    }

    /// Takes the lock, waiting at most until `deadline` (`None`: until it
    /// is free or closed).
    pub(super) fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<TimedGuard<'_, T>, LockFailed> {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            if let Some(g) = self.try_value() {
                return Ok(self.held(g));
            }
        }
        self.lock_slow(deadline)
    }

    /// Fails every waiter and every later wait with [`LockFailed::Closed`]
    /// (a holder keeps the lock until it lets go).
    pub(super) fn close(&self) {
        lock(&self.queue).closed = true;
        self.turn.notify_all();
    }

    fn held<'a>(&'a self, g: MutexGuard<'a, T>) -> TimedGuard<'a, T> {
        TimedGuard {
            lock: self,
            guard: Some(g),
        }
    }

    /// The value if nobody holds it (a holder that panicked is taken over,
    /// as everywhere in the crate).
    fn try_value(&self) -> Option<MutexGuard<'_, T>> {
        match self.value.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn lock_slow(&self, deadline: Option<Instant>) -> Result<TimedGuard<'_, T>, LockFailed> {
        let mut q = lock(&self.queue);
        if q.closed {
            return Err(LockFailed::Closed);
        }
        let ticket = q.next;
        q.next += 1;
        q.tickets.push_back(ticket);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `TimedGuard::drop`: either the holder
        // letting go sees this waiter and wakes it, or the `try_lock` below
        // sees the value free.
        fence(Ordering::SeqCst);
        loop {
            if q.closed {
                self.leave(&mut q, ticket);
                return Err(LockFailed::Closed);
            }
            if q.tickets.front() == Some(&ticket) {
                if let Some(g) = self.try_value() {
                    q.tickets.pop_front();
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Ok(self.held(g));
                }
            }
            q = match deadline {
                None => wait(&self.turn, q),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.leave(&mut q, ticket);
                        return Err(LockFailed::TimedOut);
                    }
                    wait_timeout(&self.turn, q, left)
                }
            };
        }
    }

    /// Takes `ticket` out of the queue; the thread after it may be first now.
    fn leave(&self, q: &mut Queue, ticket: u64) {
        if let Some(i) = q.tickets.iter().position(|&t| t == ticket) {
            q.tickets.remove(i);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if i == 0 {
                self.turn.notify_all();
            }
        }
    }
}

impl<T> Drop for TimedGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        fence(Ordering::SeqCst);
        if self.lock.waiting.load(Ordering::SeqCst) > 0 {
            // Under the queue lock, so that a waiter between its check and
            // its sleep cannot miss the wake-up.
            let _q = lock(&self.lock.queue);
            self.lock.turn.notify_all();
        }
    }
}

impl<T> Deref for TimedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Set in `held`, taken only in `drop`.
        match &self.guard {
            Some(g) => g,
            None => unreachable!("a TimedGuard holds its value until dropped"),
        }
    }
}

impl<T> DerefMut for TimedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.guard {
            Some(g) => g,
            None => unreachable!("a TimedGuard holds its value until dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn an_uncontended_lock_is_taken_at_once_and_released_on_drop() {
        let l = TimedLock::new(5);
        {
            let mut g = l.lock_until(Some(Instant::now())).unwrap();
            *g += 1;
        }
        assert_eq!(*l.lock_until(None).unwrap(), 6);
    }

    #[test]
    fn a_waiter_gives_up_at_its_deadline_and_the_lock_stays_usable() {
        let l = Arc::new(TimedLock::new(0));
        let g = l.lock_until(None).unwrap();
        let started = Instant::now();
        let r = l.lock_until(Some(started + Duration::from_millis(50)));
        assert!(matches!(r, Err(LockFailed::TimedOut)));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        drop(g);
        assert_eq!(l.waiting.load(Ordering::SeqCst), 0);
        assert!(l.lock_until(Some(Instant::now())).is_ok());
    }

    #[test]
    fn closing_fails_waiters_and_later_waits() {
        let l = Arc::new(TimedLock::new(0));
        let g = l.lock_until(None).unwrap();
        let l2 = l.clone();
        let waiter = thread::spawn(move || l2.lock_until(None).map(|_| ()));
        while l.waiting.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        l.close();
        assert_eq!(waiter.join().unwrap(), Err(LockFailed::Closed));
        drop(g);
        // Free and nobody waits: the fast path still works after close, the
        // holder's write then fails on the shut-down socket.
        assert!(l.lock_until(None).is_ok());
        let g = l.lock_until(None).unwrap();
        assert!(matches!(l.lock_slow(None), Err(LockFailed::Closed)));
        drop(g);
    }

    #[test]
    fn waiters_take_the_lock_in_arrival_order_ahead_of_later_arrivals() {
        let l = Arc::new(TimedLock::new(Vec::new()));
        let g = l.lock_until(None).unwrap();
        let mut threads = Vec::new();
        for i in 0..4 {
            let l2 = l.clone();
            threads.push(thread::spawn(move || {
                l2.lock_until(Some(Instant::now() + Duration::from_secs(10)))
                    .unwrap()
                    .push(i);
            }));
            // Each queues before the next arrives.
            while l.waiting.load(Ordering::SeqCst) < i + 1 {
                thread::yield_now();
            }
        }
        drop(g);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*l.lock_until(None).unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_waiter_is_not_starved_by_a_stream_of_other_holders() {
        let l = Arc::new(TimedLock::new(0u64));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut hogs = Vec::new();
        for _ in 0..3 {
            let (l2, stop2) = (l.clone(), stop.clone());
            hogs.push(thread::spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let mut g = l2.lock_until(None).unwrap();
                    *g += 1;
                    thread::sleep(Duration::from_millis(2));
                }
            }));
        }
        thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        let got = l.lock_until(Some(started + Duration::from_secs(5)));
        let took = started.elapsed();
        drop(got);
        stop.store(true, Ordering::Relaxed);
        for h in hogs {
            h.join().unwrap();
        }
        // Behind at most the three hogs (2 ms each), not behind all of
        // their later turns; a loaded machine gets a generous bound.
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
}
