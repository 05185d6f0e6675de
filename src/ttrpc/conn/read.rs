//! The read side: the turn to read that worker threads take one at a time,
//! reading the socket, splitting it into logical connections and frames,
//! handing responses to their callers and queueing requests, and the worker
//! loop that reads until it has a request and then serves it.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::serve::Envelope;
use super::{Framing, Shared};
use crate::locking::{lock, wait};
use crate::mux::codec::MuxDecoder;
use crate::ttrpc::codec::{Decoded, FrameDecoder, FrameHeader, TYPE_REQUEST, TYPE_RESPONSE};
use crate::ttrpc::{Code, Response, Status};
use crate::{Error, Result};

/// The turn to read, held: given back when dropped, also if the holder
/// panics.
pub(super) struct TurnHeld<'a>(&'a Shared);

impl Drop for TurnHeld<'_> {
    fn drop(&mut self) {
        self.0.release_turn();
    }
}

/// Largest request buffer kept for reuse, and how many are kept.
const MAX_SPARE_BUFFER: usize = 64 * 1024;
const MAX_SPARE_BUFFERS: usize = 8;

/// The right to use the read side (leader/follower): one holder at a time.
///
/// A plain mutex around the read side made every worker that finished a
/// request spin on it while the reader sat in `read` (about an eighth of a
/// busy plugin's CPU); waiting here is a sleep on a condition variable.
#[derive(Default)]
pub(super) struct Turn {
    taken: bool,
    waiting: usize,
}

struct Channel {
    decoder: FrameDecoder,
    last_request_id: u32,
}

pub(super) enum Work {
    Request {
        chan: u32,
        stream_id: u32,
        req: Envelope,
        received: Instant,
    },
    Reject {
        chan: u32,
        stream_id: u32,
        status: Status,
    },
}

pub(super) struct ReadSide {
    stream: UnixStream,
    buf: Vec<u8>,
    mux: MuxDecoder,
    channels: HashMap<u32, Channel>,
    queue: VecDeque<Work>,
}

impl ReadSide {
    /// A read side for `stream` with a read buffer of `read_buffer` bytes and
    /// a frame decoder for each logical connection in `open`.
    pub(super) fn new(stream: UnixStream, read_buffer: usize, open: &[u32]) -> Self {
        let channels = open
            .iter()
            .map(|&id| {
                (
                    id,
                    Channel {
                        decoder: FrameDecoder::new(),
                        last_request_id: 0,
                    },
                )
            })
            .collect();
        ReadSide {
            stream,
            buf: vec![0; read_buffer],
            mux: MuxDecoder::new(),
            channels,
            queue: VecDeque::new(),
        }
    }

    /// True while requests wait for a worker.
    pub(super) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Reads once from the socket and decodes everything that arrived.
    fn fill(&mut self, shared: &Shared) -> Result<()> {
        self.fill_within(shared, None)
    }

    /// Like `fill`, but gives up after `wait` without data (`Ok` then).
    pub(super) fn fill_within(&mut self, shared: &Shared, wait: Option<Duration>) -> Result<()> {
        if wait.is_some() {
            let _ = self.stream.set_read_timeout(wait);
        }
        let res = self.fill_once(shared, wait.is_some());
        if wait.is_some() {
            let _ = self.stream.set_read_timeout(None);
        }
        res
    }

    fn fill_once(&mut self, shared: &Shared, timed: bool) -> Result<()> {
        let n = loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => {
                    return Err(Error::ConnectionClosed(
                        "the peer closed the connection".into(),
                    ))
                }
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if timed
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(Error::io("reading from the connection failed", e)),
            }
        };
        let ReadSide {
            buf,
            mux,
            channels,
            queue,
            ..
        } = self;
        let mut input = &buf[..n];
        match shared.framing {
            Framing::Raw => {
                if let Some(ch) = channels.get_mut(&0) {
                    ch.feed(0, input, queue, shared)?;
                }
            }
            Framing::Mux => {
                while let Some((id, piece)) = mux.decode(&mut input)? {
                    match channels.get_mut(&id) {
                        Some(ch) => ch.feed(id, piece, queue, shared)?,
                        None => log::debug!(
                            "{}: dropping {} bytes for unopened logical connection {id}",
                            shared.options.name,
                            piece.len()
                        ),
                    }
                }
            }
        }
        Ok(())
    }
}

impl Channel {
    fn feed(
        &mut self,
        chan: u32,
        mut input: &[u8],
        queue: &mut VecDeque<Work>,
        shared: &Shared,
    ) -> Result<()> {
        while let Some(d) = {
            // Only when a frame may start here: not once more per read.
            if !input.is_empty() && self.decoder.at_boundary() && !self.decoder.has_spare() {
                if let Some(b) = lock(&shared.spares).pop() {
                    self.decoder.recycle(b);
                }
            }
            self.decoder.decode(&mut input)
        } {
            match d {
                Decoded::Frame { header, data } => self.frame(chan, header, data, queue, shared)?,
                Decoded::Oversized { header, limit } => {
                    let msg = format!(
                        "message of {} bytes on stream {} exceeds the {limit}-byte limit",
                        header.length, header.stream_id
                    );
                    match header.message_type {
                        TYPE_REQUEST => {
                            self.note_request_id(header.stream_id);
                            enqueue(
                                queue,
                                shared,
                                Work::Reject {
                                    chan,
                                    stream_id: header.stream_id,
                                    status: Status::new(Code::ResourceExhausted, msg),
                                },
                            )?
                        }
                        TYPE_RESPONSE => shared.deliver(
                            chan,
                            header.stream_id,
                            Err(Error::MessageTooLarge {
                                len: header.length as u64,
                                limit: limit as u64,
                            }),
                        ),
                        t => {
                            log::warn!("{}: dropped {msg} (message type {t})", shared.options.name)
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn note_request_id(&mut self, id: u32) {
        if id % 2 == 1 && id > self.last_request_id {
            self.last_request_id = id;
        }
    }

    fn frame(
        &mut self,
        chan: u32,
        header: FrameHeader,
        data: Vec<u8>,
        queue: &mut VecDeque<Work>,
        shared: &Shared,
    ) -> Result<()> {
        let id = header.stream_id;
        match header.message_type {
            TYPE_REQUEST => {
                let work = if id % 2 == 0 {
                    Work::Reject {
                        chan,
                        stream_id: id,
                        status: Status::new(
                            Code::InvalidArgument,
                            format!("stream id {id} is even; client stream ids must be odd"),
                        ),
                    }
                } else if id <= self.last_request_id {
                    Work::Reject {
                        chan,
                        stream_id: id,
                        status: Status::new(
                            Code::InvalidArgument,
                            format!(
                                "stream id {id} is not above the last one ({}); stream ids must increase",
                                self.last_request_id
                            ),
                        ),
                    }
                } else {
                    self.last_request_id = id;
                    match Envelope::decode(data) {
                        Ok(req) => Work::Request {
                            chan,
                            stream_id: id,
                            req,
                            received: Instant::now(),
                        },
                        Err(e) => Work::Reject {
                            chan,
                            stream_id: id,
                            status: Status::new(
                                Code::InvalidArgument,
                                format!("cannot decode ttrpc request envelope: {e}"),
                            ),
                        },
                    }
                };
                enqueue(queue, shared, work)
            }
            TYPE_RESPONSE => {
                let resp = crate::pb::decode::<Response>(&data).map_err(|e| Error::Protobuf {
                    what: "decoding",
                    message: "ttrpc.Response",
                    source: e,
                });
                self.decoder.recycle(data);
                shared.deliver(chan, id, resp);
                Ok(())
            }
            t => {
                log::warn!(
                    "{}: ignoring ttrpc frame of unsupported message type {t} on stream {id} ({} bytes)",
                    shared.options.name,
                    data.len()
                );
                Ok(())
            }
        }
    }
}

fn enqueue(queue: &mut VecDeque<Work>, shared: &Shared, work: Work) -> Result<()> {
    if queue.len() < shared.options.max_queued_requests {
        queue.push_back(work);
        return Ok(());
    }
    // Over the bound: refuse right here, without growing the queue.
    let (chan, stream_id) = match &work {
        Work::Request {
            chan, stream_id, ..
        }
        | Work::Reject {
            chan, stream_id, ..
        } => (*chan, *stream_id),
    };
    let status = Status::new(
        Code::ResourceExhausted,
        format!(
            "too many requests waiting for a worker (limit {})",
            shared.options.max_queued_requests
        ),
    );
    shared.write_response(chan, stream_id, Err(status))
}

impl Shared {
    /// Keeps a used request buffer for a later frame (a few small ones only).
    pub(super) fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() <= MAX_SPARE_BUFFER {
            let mut spares = lock(&self.spares);
            if spares.len() < MAX_SPARE_BUFFERS {
                spares.push(buf);
            }
        }
    }

    /// Waits for the turn to read; `None` once the connection is closed.
    fn take_turn(&self) -> Option<TurnHeld<'_>> {
        let mut t = lock(&self.turn);
        while t.taken {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            t.waiting += 1;
            t = wait(&self.turn_cv, t);
            t.waiting -= 1;
        }
        t.taken = true;
        Some(TurnHeld(self))
    }

    /// Takes the turn to read only if nobody holds it.
    pub(super) fn try_take_turn(&self) -> Option<TurnHeld<'_>> {
        let mut t = lock(&self.turn);
        if t.taken {
            return None;
        }
        t.taken = true;
        Some(TurnHeld(self))
    }

    /// Gives the turn back and wakes one waiting worker, if any.
    fn release_turn(&self) {
        let mut t = lock(&self.turn);
        t.taken = false;
        let wake = t.waiting > 0;
        drop(t);
        if wake {
            self.turn_cv.notify_one();
        }
    }
}

struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.worker_exited();
    }
}

pub(super) fn worker_main(shared: Arc<Shared>) {
    let _exit = ExitGuard(shared.clone());
    loop {
        let Some(turn) = shared.take_turn() else {
            return;
        };
        let work = {
            let mut rs = lock(&shared.read);
            loop {
                if let Some(w) = rs.queue.pop_front() {
                    break Some(w);
                }
                if shared.closed.load(Ordering::Acquire) {
                    break None;
                }
                if let Err(e) = rs.fill(&shared) {
                    shared.close_on(&e);
                    break None;
                }
            }
        };
        drop(turn);
        match work {
            Some(w) => shared.process(w),
            None => return,
        }
    }
}
