//! The thread behind a [`PluginListener`](super::PluginListener): it
//! accepts every connection as it comes, reads each one's registration in
//! parallel with its own timeout, and queues the outcomes for
//! [`PluginListener::accept`](super::PluginListener::accept).
//!
//! One thread ("nri-accept") serves all unregistered connections of a
//! listener with `poll(2)`: a connection costs one descriptor and at most
//! [`MAX_REGISTRATION_MESSAGE`](super::MAX_REGISTRATION_MESSAGE) bytes
//! until it has registered, and no thread. At most
//! `max_unregistered_connections` are held at a time, counting the refused
//! connections the runtime keeps open: a new connection beyond that closes
//! the oldest refused one, or, when there is none, is closed at once with a
//! log line. A connection that does not register within the registration
//! timeout is closed. A registered plugin waits, with no timeout of the
//! runtime's, until `accept` takes it on (its own registration timeout
//! runs meanwhile; if it gives up and closes, its descriptor is released
//! at once).
//!
//! Outcomes are queued in the order they happen: a registration, or the
//! error of a connection that was refused, timed out, closed or broke the
//! protocol. At most [`MAX_QUEUED_FAILURES`] errors wait; older ones are
//! dropped (each was logged when it happened).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::host_state::HostState;
use super::poll::{PollSet, Waker, GONE_ONLY, READABLE};
use super::registration::{registration_timeout, Registering, Registration, Step};
use crate::locking::{lock, wait, wait_timeout};
use crate::log_text::Escape;
use crate::{Error, Result};

/// Errors queued for `accept` at most; older ones are dropped.
const MAX_QUEUED_FAILURES: usize = 64;

/// How long the acceptor leaves the listener alone after accepting failed
/// for want of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What happened to one connection.
enum Outcome {
    /// The entry with this id registered.
    Ready(u64),
    Failed(Error),
}

/// One unregistered (or registered, not yet taken) connection.
struct Entry {
    id: u64,
    conn: Registering,
    /// Until it must have registered.
    deadline: Instant,
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    outcomes: VecDeque<Outcome>,
    failures: usize,
    /// Outcomes queued so far (to tell whether to wake `accept`).
    pushed: u64,
    next_id: u64,
    stopped: bool,
}

impl Table {
    fn push(&mut self, outcome: Outcome) {
        if matches!(outcome, Outcome::Failed(_)) {
            if self.failures >= MAX_QUEUED_FAILURES {
                if let Some(at) = self
                    .outcomes
                    .iter()
                    .position(|o| matches!(o, Outcome::Failed(_)))
                {
                    self.outcomes.remove(at);
                    self.failures -= 1;
                }
            }
            self.failures += 1;
        }
        self.outcomes.push_back(outcome);
        self.pushed += 1;
    }
}

struct Shared {
    table: Mutex<Table>,
    /// Signalled when an outcome is queued.
    queued: Condvar,
    waker: Waker,
}

/// The acceptor of one listener; stops its thread when dropped.
pub(crate) struct Acceptor {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Acceptor {
    /// Starts accepting on `listener` for `host`.
    pub(crate) fn start(
        host: Arc<HostState>,
        listener: UnixListener,
        path: PathBuf,
    ) -> Result<Acceptor> {
        listener.set_nonblocking(true).map_err(|e| {
            Error::io(
                format!("cannot set up the listener on {}", path.display()),
                e,
            )
        })?;
        let shared = Arc::new(Shared {
            table: Mutex::new(Table::default()),
            queued: Condvar::new(),
            waker: Waker::new().map_err(|e| Error::io("cannot create the acceptor's waker", e))?,
        });
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name("nri-accept".into())
            .spawn(move || {
                let ran = catch_unwind(AssertUnwindSafe(|| run(&s, &host, &listener, &path)));
                if ran.is_err() {
                    log::error!(
                        "the plugin acceptor on {} failed; it accepts no more",
                        path.display()
                    );
                }
                // Whatever ended the thread, nobody waits for it in vain.
                lock(&s.table).stopped = true;
                s.queued.notify_all();
            })
            .map_err(|e| Error::io("cannot start the plugin acceptor thread", e))?;
        Ok(Acceptor {
            shared,
            thread: Some(thread),
        })
    }

    /// The next outcome: a registration, or the error of a connection that
    /// did not register; `None` when `deadline` passed first.
    pub(crate) fn next(&self, deadline: Option<Instant>) -> Option<Result<Registration>> {
        let mut table = lock(&self.shared.table);
        loop {
            while let Some(outcome) = table.outcomes.pop_front() {
                match outcome {
                    Outcome::Failed(e) => {
                        table.failures -= 1;
                        return Some(Err(e));
                    }
                    Outcome::Ready(id) => {
                        let Some(at) = table.entries.iter().position(|e| e.id == id) else {
                            // Its plugin closed the connection meanwhile.
                            continue;
                        };
                        let entry = table.entries.swap_remove(at);
                        drop(table);
                        self.shared.waker.wake();
                        match entry.conn.into_registration() {
                            Some(r) => return Some(Ok(r)),
                            None => {
                                table = lock(&self.shared.table);
                                continue;
                            }
                        }
                    }
                }
            }
            if table.stopped {
                return Some(Err(Error::State("the plugin listener has stopped".into())));
            }
            table = match deadline {
                None => wait(&self.shared.queued, table),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    wait_timeout(&self.shared.queued, table, left)
                }
            };
        }
    }

    /// How many connections wait to register or to be taken.
    pub(crate) fn pending(&self) -> usize {
        lock(&self.shared.table).entries.len()
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        lock(&self.shared.table).stopped = true;
        self.shared.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The acceptor thread.
fn run(shared: &Shared, host: &HostState, listener: &UnixListener, path: &std::path::Path) {
    let mut set = PollSet::default();
    let mut watched: Vec<u64> = Vec::new();
    let mut backoff_until: Option<Instant> = None;
    loop {
        set.clear();
        watched.clear();
        let now = Instant::now();
        let mut next = backoff_until.filter(|t| *t > now);
        set.add(shared.waker.fd(), READABLE);
        let listening = next.is_none();
        if listening {
            set.add(listener.as_raw_fd(), READABLE);
        }
        {
            let table = lock(&shared.table);
            if table.stopped {
                return;
            }
            for e in &table.entries {
                let events = if e.conn.is_registered() {
                    GONE_ONLY
                } else {
                    next = Some(next.map_or(e.deadline, |n| n.min(e.deadline)));
                    READABLE
                };
                set.add(e.conn.fd(), events);
                watched.push(e.id);
            }
        }
        let timeout = next.map(|t| t.saturating_duration_since(Instant::now()));
        if let Err(e) = set.wait(timeout) {
            log::error!(
                "plugin listener on {}: cannot wait for connections: {e}",
                path.display()
            );
            thread::sleep(ACCEPT_BACKOFF);
            continue;
        }
        if set.ready(0).any() {
            shared.waker.drain();
        }
        let first = if listening { 2 } else { 1 };
        let mut table = lock(&shared.table);
        if table.stopped {
            return;
        }
        let before = table.pushed;
        for (i, id) in watched.iter().enumerate() {
            let ready = set.ready(first + i);
            if !ready.any() {
                continue;
            }
            let Some(at) = table.entries.iter().position(|e| e.id == *id) else {
                continue;
            };
            if table.entries[at].conn.is_registered() {
                if ready.gone() {
                    table.entries.swap_remove(at);
                    log::info!(
                        "a registered plugin closed its connection on {} before it was taken on",
                        path.display()
                    );
                }
                continue;
            }
            match table.entries[at].conn.advance() {
                Step::Pending => {}
                Step::Registered => table.push(Outcome::Ready(*id)),
                Step::Refused(e) => {
                    let entry = table.entries.swap_remove(at);
                    host.refused.hold(entry.conn.into_stream());
                    table.push(Outcome::Failed(e));
                }
                Step::Failed(e) => {
                    table.entries.swap_remove(at);
                    log::info!(
                        "plugin connection on {} failed to register: {}",
                        path.display(),
                        Escape(&e)
                    );
                    table.push(Outcome::Failed(e));
                }
            }
        }
        expire(&mut table, host, path);
        if listening && set.ready(1).any() {
            backoff_until = accept_all(&mut table, host, listener, path);
        }
        if table.pushed != before {
            shared.queued.notify_all();
        }
    }
}

/// Closes the connections that did not register in time.
fn expire(table: &mut Table, host: &HostState, path: &std::path::Path) {
    let now = Instant::now();
    let timeout = host.settings.registration_timeout;
    let mut i = 0;
    while i < table.entries.len() {
        let e = &table.entries[i];
        if !e.conn.is_registered() && e.deadline <= now {
            table.entries.swap_remove(i);
            log::warn!(
                "plugin connection on {} did not register within {timeout:?}; closing it",
                path.display()
            );
            table.push(Outcome::Failed(registration_timeout(timeout)));
        } else {
            i += 1;
        }
    }
}

/// Accepts every waiting connection, within the cap. Returns until when to
/// leave the listener alone after running out of descriptors or memory.
fn accept_all(
    table: &mut Table,
    host: &HostState,
    listener: &UnixListener,
    path: &std::path::Path,
) -> Option<Instant> {
    let max = host.settings.max_unregistered_connections;
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => {
                log::warn!(
                    "cannot accept plugin connections on {} ({e}); trying again in {:?}",
                    path.display(),
                    ACCEPT_BACKOFF
                );
                return Some(Instant::now() + ACCEPT_BACKOFF);
            }
        };
        if table.entries.len() + host.refused.len() >= max && !host.refused.close_oldest() {
            log::warn!(
                "closing a new plugin connection on {}: {} connections are already waiting to \
                 register (max_unregistered_connections)",
                path.display(),
                table.entries.len()
            );
            drop(stream);
            continue;
        }
        match Registering::new(stream, true) {
            Ok(conn) => {
                let id = table.next_id;
                table.next_id += 1;
                table.entries.push(Entry {
                    id,
                    conn,
                    deadline: Instant::now() + host.settings.registration_timeout,
                });
            }
            Err(e) => log::warn!("plugin connection on {}: {e}", path.display()),
        }
    }
}
