//! Setting up a [`Connection`]: which logical connections it serves or
//! opens, its options and callbacks, and starting its threads.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::budget::{Budget, MIN_PENDING_BYTES};
use super::guard::{self, Deadlines};
use super::read::{worker_main, ReadSide, Turn, TurnSignals};
use super::timed_lock::TimedLock;
use super::write::Writer;
use super::{Connection, ConnectionOptions, ConnectionState, Framing, OnClose, Owner};
use crate::locking::lock;
use crate::socket::SocketClones;
use crate::ttrpc::session::{Inbound, Outbound};
use crate::ttrpc::Services;
use crate::{Error, Result};

/// Sets up and starts a [`Connection`].
pub struct ConnectionBuilder {
    stream: UnixStream,
    framing: Framing,
    options: ConnectionOptions,
    services: HashMap<u32, Arc<Services>>,
    open: Vec<u32>,
    on_close: Option<OnClose>,
    on_closing: Option<OnClose>,
}

impl ConnectionBuilder {
    /// Starts building a connection over `stream`.
    pub fn new(stream: UnixStream, framing: Framing) -> Self {
        ConnectionBuilder {
            stream,
            framing,
            options: ConnectionOptions::default(),
            services: HashMap::new(),
            open: Vec::new(),
            on_close: None,
            on_closing: None,
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: ConnectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Serves `services` on logical connection `conn_id` (ignored with
    /// [`Framing::Raw`], where the one stream is served).
    pub fn serve(mut self, conn_id: u32, services: Arc<Services>) -> Self {
        let id = self.framing.conn_id(conn_id);
        self.services.insert(id, services);
        self.open.push(id);
        self
    }

    /// Opens logical connection `conn_id` for calls made with
    /// [`Connection::client`].
    pub fn open(mut self, conn_id: u32) -> Self {
        let id = self.framing.conn_id(conn_id);
        self.open.push(id);
        self
    }

    /// Sets a callback run once as soon as the connection starts closing,
    /// on the thread that closes it, before handlers still running have
    /// finished. Keep it short; it must not wait for the connection.
    pub fn on_closing(mut self, f: impl FnOnce(&str) + Send + 'static) -> Self {
        self.on_closing = Some(Box::new(f));
        self
    }

    /// Sets the callback run once when the connection has closed and its
    /// workers have ended.
    pub fn on_close(mut self, f: impl FnOnce(&str) + Send + 'static) -> Self {
        self.on_close = Some(Box::new(f));
        self
    }

    /// Starts the workers and returns the running connection.
    pub fn start(self) -> Result<Connection> {
        let ConnectionBuilder {
            stream,
            framing,
            mut options,
            services,
            mut open,
            on_close,
            on_closing,
        } = self;
        options.workers = options.workers.max(1);
        options.read_buffer = options.read_buffer.max(4096);
        options.write_timeout = options.write_timeout.max(Duration::from_millis(1));
        options.max_pending_bytes = options.max_pending_bytes.max(MIN_PENDING_BYTES);
        if framing == Framing::Mux && open.contains(&0) {
            return Err(Error::Config("logical connection id 0 is reserved".into()));
        }
        open.sort_unstable();
        open.dedup();
        let clones = SocketClones::of(&stream, "connection")?;
        let read = ReadSide::new(
            clones.read,
            options.read_buffer,
            Inbound::new(framing, &open),
        );
        let writer = Writer::new(stream, Outbound::new(framing), options.write_timeout)?;
        let shared = Arc::new(ConnectionState {
            framing,
            options: options.clone(),
            services,
            open,
            read: Mutex::new(read),
            turn: Mutex::new(Turn::default()),
            turn_cv: TurnSignals::default(),
            spares: Mutex::new(Vec::new()),
            writer: TimedLock::new(writer),
            control: clones.control,
            pending: Mutex::new(HashMap::new()),
            budget: Budget::new(options.max_pending_bytes),
            peer: Mutex::new(options.peer.clone()),
            closed: AtomicBool::new(false),
            reason: Mutex::new(None),
            alive: AtomicUsize::new(options.workers),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
            on_close: Mutex::new(on_close),
            on_closing: Mutex::new(on_closing),
            guard: options.deadline_guard.clone().map(Deadlines::new),
            threads: Mutex::new(Vec::new()),
        });
        guard::start(&shared)?;
        for i in 0..options.workers {
            let s = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-{}", options.name, i))
                .spawn(move || worker_main(s));
            if let Err(e) = spawned.map(|h| lock(&shared.threads).push(h)) {
                // Workers already running exit once closed; the rest never started.
                let missing = options.workers - i;
                shared.close(format!("cannot spawn worker thread: {e}"));
                for _ in 0..missing {
                    shared.worker_exited();
                }
                return Err(Error::io("cannot spawn a worker thread", e));
            }
        }
        let owner = Arc::new(Owner(shared.clone()));
        Ok(Connection { shared, owner })
    }
}
