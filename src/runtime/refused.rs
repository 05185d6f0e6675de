//! Connections of refused plugins, held open until their plugins close
//! them.
//!
//! The reference does not close the connection of a plugin whose
//! registration it refused; the plugin is expected to give up and close it.
//! The runtime does the same, at the cost of one descriptor per refused
//! connection and no thread of its own: one thread ("nri-refused") watches
//! all of them with `poll(2)`, throws away whatever they send, and closes
//! each one the moment its plugin has gone. The thread starts with the
//! first refused connection and ends when none is left. At most `max`
//! connections are held; beyond that the oldest is closed first (holding
//! them open is a courtesy, not a promise).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use super::poll::{PollSet, Waker, READABLE};
use crate::locking::lock;

/// Bytes thrown away from one connection before the thread turns to the
/// others.
const DRAIN_BUDGET: usize = 256 * 1024;

/// The refused connections of one runtime; see the module docs.
pub(crate) struct RefusedConnections {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// `None` when it could not be created: refused connections are then
    /// closed at once.
    waker: Option<Waker>,
}

impl Shared {
    fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake();
        }
    }
}

#[derive(Default)]
struct State {
    held: VecDeque<(u64, UnixStream)>,
    next_id: u64,
    max: usize,
    thread: Option<thread::JoinHandle<()>>,
    running: bool,
    stopping: bool,
}

impl RefusedConnections {
    /// Holds at most `max` connections.
    pub(crate) fn new(max: usize) -> RefusedConnections {
        let waker = Waker::new()
            .map_err(|e| log::warn!("refused plugin connections will be closed at once: {e}"))
            .ok();
        RefusedConnections {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    max,
                    ..Default::default()
                }),
                waker,
            }),
        }
    }

    /// How many connections are held.
    pub(crate) fn len(&self) -> usize {
        lock(&self.shared.state).held.len()
    }

    /// Closes the oldest held connection; false when none is held.
    pub(crate) fn close_oldest(&self) -> bool {
        let oldest = lock(&self.shared.state).held.pop_front();
        self.shared.wake();
        oldest.is_some()
    }

    /// Holds `stream` open until its plugin closes it.
    pub(crate) fn hold(&self, stream: UnixStream) {
        if let Err(e) = stream.set_nonblocking(true) {
            log::debug!("closing a refused plugin connection at once: {e}");
            return;
        }
        let mut st = lock(&self.shared.state);
        if st.stopping || self.shared.waker.is_none() {
            return;
        }
        while st.held.len() >= st.max.max(1) {
            st.held.pop_front();
            log::warn!(
                "closing the oldest refused plugin connection: {} are held open already",
                st.max
            );
        }
        let id = st.next_id;
        st.next_id += 1;
        st.held.push_back((id, stream));
        if st.running {
            drop(st);
            self.shared.wake();
            return;
        }
        let shared = self.shared.clone();
        let spawned = thread::Builder::new()
            .name("nri-refused".into())
            .spawn(move || watch(&shared));
        match spawned {
            Ok(h) => {
                st.running = true;
                // The previous thread has ended (it cleared `running`).
                if let Some(old) = st.thread.replace(h) {
                    drop(st);
                    let _ = old.join();
                }
            }
            Err(e) => {
                log::warn!("cannot watch refused plugin connections ({e}): closing them");
                st.held.clear();
            }
        }
    }
}

impl Drop for RefusedConnections {
    fn drop(&mut self) {
        let handle = {
            let mut st = lock(&self.shared.state);
            st.stopping = true;
            st.held.clear();
            st.thread.take()
        };
        self.shared.wake();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// The watching thread: until nothing is held, waits for any held
/// connection to send or close, drains what it sent and drops it once its
/// plugin has gone.
fn watch(shared: &Shared) {
    let Some(waker) = &shared.waker else {
        lock(&shared.state).running = false;
        return;
    };
    let mut set = PollSet::default();
    let mut ids = Vec::new();
    let mut scratch = vec![0u8; 16 * 1024];
    loop {
        set.clear();
        ids.clear();
        {
            let mut st = lock(&shared.state);
            if st.stopping || st.held.is_empty() {
                st.running = false;
                return;
            }
            set.add(waker.fd(), READABLE);
            for (id, s) in &st.held {
                set.add(s.as_raw_fd(), READABLE);
                ids.push(*id);
            }
        }
        if let Err(e) = set.wait(None) {
            log::warn!("cannot watch refused plugin connections ({e}): closing them");
            let mut st = lock(&shared.state);
            st.held.clear();
            st.running = false;
            return;
        }
        if set.ready(0).any() {
            waker.drain();
        }
        let mut st = lock(&shared.state);
        for (i, id) in ids.iter().enumerate() {
            let ready = set.ready(i + 1);
            if !ready.any() {
                continue;
            }
            let Some(pos) = st.held.iter().position(|(h, _)| h == id) else {
                continue;
            };
            let gone =
                ready.gone() || (ready.readable() && drained_to_end(&st.held[pos].1, &mut scratch));
            if gone {
                st.held.remove(pos);
                log::debug!("a refused plugin closed its connection");
            }
        }
    }
}

/// Reads and throws away what `s` holds; true when its plugin has gone.
fn drained_to_end(mut s: &UnixStream, scratch: &mut [u8]) -> bool {
    let mut budget = DRAIN_BUDGET;
    while budget > 0 {
        match s.read(scratch) {
            Ok(0) => return true,
            Ok(n) => budget = budget.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(5), "{what}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn held_connections_stay_open_and_go_when_their_plugins_close() {
        let refused = RefusedConnections::new(8);
        let mut plugins = Vec::new();
        for _ in 0..3 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            refused.hold(ours);
            plugins.push(theirs);
        }
        assert_eq!(refused.len(), 3);
        // Whatever a refused plugin sends is thrown away; the connection
        // stays open.
        (&plugins[0]).write_all(&[0u8; 100_000]).unwrap();
        thread::sleep(Duration::from_millis(20));
        assert_eq!(refused.len(), 3);
        let mut buf = [0u8; 1];
        plugins[1]
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        assert!(
            plugins[1].read(&mut buf).is_err(),
            "the runtime closed a refused connection"
        );
        plugins.remove(0);
        wait_until("first closed connection released", || refused.len() == 2);
        plugins.clear();
        wait_until("every closed connection released", || refused.len() == 0);
        wait_until("the watching thread ended", || {
            !lock(&refused.shared.state).running
        });
        // And it starts again with the next one.
        let (ours, theirs) = UnixStream::pair().unwrap();
        refused.hold(ours);
        assert_eq!(refused.len(), 1);
        drop(theirs);
        wait_until("released again", || refused.len() == 0);
    }

    #[test]
    fn beyond_the_limit_the_oldest_is_closed() {
        let refused = RefusedConnections::new(2);
        let (a, mut first) = UnixStream::pair().unwrap();
        refused.hold(a);
        let (b, _second) = UnixStream::pair().unwrap();
        refused.hold(b);
        let (c, _third) = UnixStream::pair().unwrap();
        refused.hold(c);
        assert_eq!(refused.len(), 2);
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(first.read(&mut buf).unwrap(), 0, "the oldest was closed");
        assert!(refused.close_oldest());
        assert_eq!(refused.len(), 1);
    }
}
