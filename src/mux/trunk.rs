//! Logical connections as byte streams over one trunk socket.
//!
//! [`Trunk`] runs one reader thread for a socket, splits what arrives by
//! logical connection id and queues each piece for the [`LogicalConn`] that
//! was opened for that id; pieces for ids nobody opened are dropped, as the
//! Go multiplexer does. Each [`LogicalConn`] is `Read + Write`.
//!
//! The ttrpc [`Connection`](crate::ttrpc::Connection) does not use this
//! type: it reads the trunk itself and feeds each logical connection's
//! decoder directly, without a thread or queue per connection. `Trunk` is
//! for other protocols over NRI's multiplexer and for tests.
//!
//! # Writing
//!
//! Each [`Write::write`] call sends the whole buffer as one message, shaped
//! for Go readers: one frame when it is at most 4096 bytes, else two (its
//! first 4096 bytes, then the rest), in one locked write. Write one complete
//! message per call and no frame will ever carry bytes of two messages.
//!
//! # Bounds
//!
//! A logical connection holds at most [`MAX_QUEUED_PIECES`] unread pieces,
//! as Go's side does; a peer that overflows it (or an application that stops
//! reading) closes the whole trunk with an error naming the connection.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::codec::{encode_message, MuxDecoder, MAX_FRAME_LEN};
use crate::locking::lock;
use crate::log_text::Escape;
use crate::socket::SocketClones;
use crate::{Error, Result};

/// Unread pieces a logical connection may hold before the trunk closes.
pub const MAX_QUEUED_PIECES: usize = 256;

struct TrunkState {
    writer: Mutex<UnixStream>,
    control: UnixStream,
    conns: Mutex<HashMap<u32, Sender<Vec<u8>>>>,
    closed: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl TrunkState {
    fn close(&self, reason: String) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        log::debug!("trunk closing: {}", Escape(&reason));
        *lock(&self.reason) = Some(reason);
        let _ = self.control.shutdown(Shutdown::Both);
        // Dropping the senders ends every reader after what it has queued.
        lock(&self.conns).clear();
    }
}

/// One socket carrying several logical connections.
pub struct Trunk {
    shared: Arc<TrunkState>,
    reader: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Trunk {
    /// Starts the reader thread for `stream`.
    pub fn new(stream: UnixStream) -> Result<Trunk> {
        let SocketClones { read, control } = SocketClones::of(&stream, "trunk")?;
        let shared = Arc::new(TrunkState {
            writer: Mutex::new(stream),
            control,
            conns: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            reason: Mutex::new(None),
        });
        let s = shared.clone();
        let reader = thread::Builder::new()
            .name("nri-trunk".into())
            .spawn(move || reader_main(s, read))
            .map_err(|e| Error::io("cannot spawn the trunk reader thread", e))?;
        Ok(Trunk {
            shared,
            reader: Some(reader),
        })
    }

    /// Opens logical connection `conn_id` (1 and up; each id once).
    pub fn open(&self, conn_id: u32) -> Result<LogicalConn> {
        if conn_id == 0 {
            return Err(Error::Config("logical connection id 0 is reserved".into()));
        }
        let (tx, rx) = crossbeam_channel::bounded(MAX_QUEUED_PIECES);
        {
            let mut conns = lock(&self.shared.conns);
            if self.is_closed() {
                return Err(Error::ConnectionClosed(self.close_reason()));
            }
            if conns.contains_key(&conn_id) {
                return Err(Error::Config(format!(
                    "logical connection {conn_id} is already open"
                )));
            }
            conns.insert(conn_id, tx);
        }
        Ok(LogicalConn {
            id: conn_id,
            shared: self.shared.clone(),
            rx,
            piece: Vec::new(),
            pos: 0,
        })
    }

    /// Closes the trunk: every logical connection reads EOF after what was
    /// already queued, and writes fail.
    pub fn close(&self) {
        self.shared.close("closed locally".into());
    }

    /// True once the trunk has closed (locally, by the peer or on an error).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Why the trunk closed.
    pub fn close_reason(&self) -> String {
        lock(&self.shared.reason)
            .clone()
            .unwrap_or_else(|| "trunk closed".into())
    }
}

impl Drop for Trunk {
    fn drop(&mut self) {
        self.close();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn reader_main(shared: Arc<TrunkState>, mut stream: UnixStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut dec = MuxDecoder::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return shared.close("the peer closed the trunk".into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return shared.close(format!("reading the trunk failed: {e}")),
        };
        let mut input = &buf[..n];
        loop {
            match dec.decode(&mut input) {
                Ok(Some((id, piece))) => {
                    let conns = lock(&shared.conns);
                    let Some(tx) = conns.get(&id) else {
                        log::debug!(
                            "trunk: dropping {} bytes for unopened connection {id}",
                            piece.len()
                        );
                        continue;
                    };
                    match tx.try_send(piece.to_vec()) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            drop(conns);
                            return shared.close(format!(
                                "logical connection {id} has {MAX_QUEUED_PIECES} unread pieces; closing the trunk"
                            ));
                        }
                        // Its reader was dropped: nobody wants these bytes.
                        Err(TrySendError::Disconnected(_)) => {}
                    }
                }
                Ok(None) => break,
                Err(e) => return shared.close(e.to_string()),
            }
        }
    }
}

/// One logical connection of a [`Trunk`]: a byte stream.
pub struct LogicalConn {
    id: u32,
    shared: Arc<TrunkState>,
    rx: Receiver<Vec<u8>>,
    piece: Vec<u8>,
    pos: usize,
}

impl std::fmt::Debug for LogicalConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicalConn").field("id", &self.id).finish()
    }
}

impl LogicalConn {
    /// The logical connection id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Read for LogicalConn {
    /// Blocks until bytes arrive; returns 0 (EOF) once the trunk has closed
    /// and everything queued has been read.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.piece.len() {
            match self.rx.recv() {
                Ok(p) => {
                    self.piece = p;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.piece.len() - self.pos);
        out[..n].copy_from_slice(&self.piece[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for LogicalConn {
    /// Sends all of `buf` as one message (see the module docs).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if buf.len() > MAX_FRAME_LEN as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a message of {} bytes exceeds the trunk's {MAX_FRAME_LEN}-byte limit",
                    buf.len()
                ),
            ));
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the trunk is closed",
            ));
        }
        let mut frames = Vec::with_capacity(buf.len() + 16);
        encode_message(&mut frames, self.id, buf).map_err(io::Error::other)?;
        let res = lock(&self.shared.writer).write_all(&frames);
        if let Err(e) = &res {
            self.shared
                .close(format!("writing to the trunk failed: {e}"));
        }
        res.map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
