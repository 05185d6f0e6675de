//! A plugin's registration, read before any thread is spent on it.
//!
//! A connection that has not registered costs the runtime one descriptor
//! and at most [`MAX_REGISTRATION_MESSAGE`] bytes: no [`Connection`] (and
//! so no worker threads) is started for it until its `RegisterPlugin`
//! request is in and accepted. [`Registering`] reads the socket without
//! blocking, on whichever thread watches it (the listener's acceptor for
//! plugins dialing a socket path, the caller for
//! [`Runtime::accept_stream`](super::Runtime::accept_stream) and
//! [`Runtime::launch`](super::Runtime::launch)), and answers what arrives
//! itself:
//!
//! - `RegisterPlugin`: an external plugin with an empty name or an index
//!   that is not two digits is refused with an UNKNOWN status, as the
//!   reference refuses it; otherwise the registration is complete, and
//!   the OK reply is written once the runtime takes the plugin on
//!   ([`Registration::accept`]), just before the connection starts;
//! - any other request gets FAILED_PRECONDITION (a plugin registers
//!   first); a request over [`MAX_REGISTRATION_MESSAGE`] gets
//!   RESOURCE_EXHAUSTED, its bytes skipped; an undecodable one gets
//!   INVALID_ARGUMENT;
//! - frames for other logical connections and replies are dropped, as a
//!   connection drops them.
//!
//! The reader never takes a byte past the `RegisterPlugin` request, so the
//! [`Connection`] started afterwards reads the stream from the next frame
//! on (see `registration_reader.rs`).
//!
//! [`Connection`]: crate::ttrpc::Connection

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use protobuf::MessageField;

use crate::api::{rpc, RegisterPluginRequest, RUNTIME_SERVICE};
use crate::mux::codec::encode_message;
use crate::mux::RUNTIME_SERVICE_CONN;
use crate::ttrpc::codec::{encode_frame, TYPE_RESPONSE};
use crate::ttrpc::{Code, Request, Response, Status};
use crate::{Error, Result};

use super::poll::{PollSet, READABLE};
use super::registration_reader::{FrameReader, Message};

/// The largest message an unregistered plugin may send (a `RegisterPlugin`
/// request holds a name, a two-digit index and a version: a few dozen
/// bytes). Longer ones are skipped and answered with RESOURCE_EXHAUSTED.
pub const MAX_REGISTRATION_MESSAGE: usize = 16 * 1024;

/// Bytes read from one connection before the watching thread turns to
/// the others.
const READ_BUDGET: usize = 256 * 1024;

/// A complete, accepted `RegisterPlugin` request and the socket it came on.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) stream: UnixStream,
    /// The stream id the OK reply goes to.
    stream_id: u32,
    pub(crate) request: RegisterPluginRequest,
}

impl Registration {
    /// Answers the `RegisterPlugin` request with OK, within `timeout`,
    /// and hands the socket back in blocking mode, positioned at the next
    /// frame the plugin sends.
    pub(crate) fn accept(self, timeout: Duration) -> Result<(UnixStream, RegisterPluginRequest)> {
        let Registration {
            mut stream,
            stream_id,
            request,
        } = self;
        let setup = |e| Error::io("cannot set up the plugin's connection", e);
        stream.set_nonblocking(false).map_err(setup)?;
        stream
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(setup)?;
        let frame = reply_frame(stream_id, &Status::new(Code::Ok, ""))?;
        stream
            .write_all(&frame)
            .map_err(|e| Error::io("cannot answer the plugin's RegisterPlugin request", e))?;
        stream.set_write_timeout(None).map_err(setup)?;
        Ok((stream, request))
    }
}

/// What reading an unregistered connection came to.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing conclusive yet: wait until the socket is readable again.
    Pending,
    /// The plugin registered ([`Registering::into_registration`]).
    Registered,
    /// The plugin was refused ([`Error::RegistrationRefused`], naming what
    /// it sent) and told so; like the reference, the runtime leaves the
    /// connection open until the plugin closes it.
    Refused(Error),
    /// The connection cannot register: it closed, broke the framing or
    /// does not read its replies. Close it.
    Failed(Error),
}

/// An unregistered connection being read; see the module docs.
#[derive(Debug)]
pub(crate) struct Registering {
    stream: UnixStream,
    reader: FrameReader,
    /// External plugins name themselves, and are checked.
    external: bool,
    registered: Option<(u32, RegisterPluginRequest)>,
}

impl Registering {
    /// Starts reading `stream`, which is switched to non-blocking mode.
    pub(crate) fn new(stream: UnixStream, external: bool) -> Result<Registering> {
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot set up a plugin connection", e))?;
        Ok(Registering {
            stream,
            reader: FrameReader::new(MAX_REGISTRATION_MESSAGE),
            external,
            registered: None,
        })
    }

    /// The descriptor to watch.
    pub(crate) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// True once the plugin has registered.
    pub(crate) fn is_registered(&self) -> bool {
        self.registered.is_some()
    }

    /// The socket, to close it or hold it open.
    pub(crate) fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// The registration, once [`Step::Registered`] was returned.
    pub(crate) fn into_registration(self) -> Option<Registration> {
        let (stream_id, request) = self.registered?;
        Some(Registration {
            stream: self.stream,
            stream_id,
            request,
        })
    }

    /// Reads what has arrived (up to a budget) and acts on it.
    pub(crate) fn advance(&mut self) -> Step {
        if self.registered.is_some() {
            return Step::Registered;
        }
        let mut buf = [0u8; 4096];
        let mut budget = READ_BUDGET;
        while budget > 0 {
            let want = self.reader.want().min(buf.len());
            let n = match self.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    return Step::Failed(Error::ConnectionClosed(
                        "plugin connection closed before registration: the peer closed the \
                         connection"
                            .into(),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Step::Failed(Error::io(
                        "reading an unregistered plugin connection failed",
                        e,
                    ))
                }
            };
            budget = budget.saturating_sub(n);
            let step = match self.reader.feed(&buf[..n]) {
                Err(e) => Step::Failed(e),
                Ok(None) => continue,
                Ok(Some(Message::Request { stream_id, data })) => self.on_request(stream_id, &data),
                Ok(Some(Message::Oversized { stream_id, len })) => self.answer(
                    stream_id,
                    Status::new(
                        Code::ResourceExhausted,
                        format!(
                            "a request of {len} bytes from a plugin that has not registered \
                             exceeds the {MAX_REGISTRATION_MESSAGE}-byte limit"
                        ),
                    ),
                ),
            };
            if !matches!(step, Step::Pending) {
                return step;
            }
        }
        Step::Pending
    }

    /// Acts on one request.
    fn on_request(&mut self, stream_id: u32, data: &[u8]) -> Step {
        let req: Request = match crate::pb::decode(data) {
            Ok(r) => r,
            Err(e) => {
                return self.answer(
                    stream_id,
                    Status::new(Code::InvalidArgument, format!("undecodable request: {e}")),
                )
            }
        };
        let register = rpc::REGISTER_PLUGIN;
        if req.service != RUNTIME_SERVICE || req.method != register.method {
            return self.answer(
                stream_id,
                Status::new(
                    Code::FailedPrecondition,
                    format!(
                        "{}/{} called before RegisterPlugin: a plugin must register first",
                        req.service, req.method
                    ),
                ),
            );
        }
        let reg: RegisterPluginRequest = match crate::pb::decode(&req.payload) {
            Ok(r) => r,
            Err(e) => {
                return self.answer(
                    stream_id,
                    Status::new(
                        Code::Internal,
                        format!("undecodable RegisterPluginRequest: {e}"),
                    ),
                )
            }
        };
        if !self.reader.at_boundary() {
            return Step::Failed(Error::Protocol(
                "a plugin's RegisterPlugin request shared its trunk frame with other data".into(),
            ));
        }
        if self.external {
            if let Some(message) = refusal(&reg) {
                log::warn!(
                    "refusing registration of plugin {:?} with index {:?}: {message}",
                    reg.plugin_name,
                    reg.plugin_idx
                );
                let plugin = format!("{}-{}", reg.plugin_idx, reg.plugin_name);
                return match self.answer(stream_id, Status::new(Code::Unknown, message.clone())) {
                    Step::Pending => Step::Refused(Error::RegistrationRefused { plugin, message }),
                    other => other,
                };
            }
        }
        self.registered = Some((stream_id, reg));
        Step::Registered
    }

    /// Writes a reply without waiting: a plugin that does not take a few
    /// bytes has stopped reading.
    fn answer(&mut self, stream_id: u32, status: Status) -> Step {
        let frame = match reply_frame(stream_id, &status) {
            Ok(f) => f,
            Err(e) => return Step::Failed(e),
        };
        let mut left = &frame[..];
        while !left.is_empty() {
            match self.stream.write(left) {
                Ok(0) => break,
                Ok(n) => left = &left[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    return Step::Failed(Error::io(
                        "answering an unregistered plugin connection failed",
                        e,
                    ))
                }
            }
        }
        if left.is_empty() {
            Step::Pending
        } else {
            Step::Failed(Error::Protocol(
                "a plugin that has not registered does not read its replies".into(),
            ))
        }
    }
}

/// Why an external plugin's registration is refused, in the reference's
/// words, or `None`.
fn refusal(req: &RegisterPluginRequest) -> Option<String> {
    if req.plugin_name.is_empty() {
        Some("invalid (empty) plugin name".to_string())
    } else if crate::api::validate_plugin_index(&req.plugin_idx).is_err() {
        Some(format!(
            "invalid plugin index: invalid plugin index {:?}, must be 2 digits (00-99)",
            req.plugin_idx
        ))
    } else {
        None
    }
}

/// A reply on the runtime service's logical connection, framed for the
/// trunk (for Go readers too).
fn reply_frame(stream_id: u32, status: &Status) -> Result<Vec<u8>> {
    let response = Response {
        status: MessageField::some(status.to_proto()),
        ..Default::default()
    };
    let data = protobuf::Message::write_to_bytes(&response).map_err(|e| Error::Protobuf {
        what: "encoding",
        message: "ttrpc.Response",
        source: e,
    })?;
    let mut message = Vec::with_capacity(data.len() + 10);
    encode_frame(&mut message, stream_id, TYPE_RESPONSE, 0, &data)?;
    let mut out = Vec::with_capacity(message.len() + 16);
    encode_message(&mut out, RUNTIME_SERVICE_CONN, &message)?;
    Ok(out)
}

/// What registering one connection came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Registered(Registration),
    /// Refused; the socket is to be held open until the plugin closes it.
    Refused(Error, UnixStream),
    Failed(Error),
}

/// Registers one connection on the calling thread, within `timeout`.
pub(crate) fn register_within(stream: UnixStream, external: bool, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut conn = match Registering::new(stream, external) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    let mut set = PollSet::default();
    loop {
        match conn.advance() {
            Step::Registered => {
                return match conn.into_registration() {
                    Some(r) => Outcome::Registered(r),
                    None => Outcome::Failed(Error::State(
                        "internal error: a registration without its request".into(),
                    )),
                }
            }
            Step::Refused(e) => return Outcome::Refused(e, conn.into_stream()),
            Step::Failed(e) => return Outcome::Failed(e),
            Step::Pending => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Failed(registration_timeout(timeout));
        }
        set.clear();
        set.add(conn.fd(), READABLE);
        if let Err(e) = set.wait(Some(left)) {
            return Outcome::Failed(Error::io("waiting for a plugin to register failed", e));
        }
    }
}

/// The error of a plugin that did not register within `timeout`.
pub(crate) fn registration_timeout(timeout: Duration) -> Error {
    let register = rpc::REGISTER_PLUGIN;
    Error::DeadlineExceeded {
        service: register.service.to_string(),
        method: register.method.to_string(),
        peer: String::new(),
        timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::codec::MuxDecoder;
    use crate::ttrpc::codec::{Decoded, FrameDecoder, TYPE_REQUEST};

    fn register_frame(stream_id: u32, name: &str, idx: &str) -> Vec<u8> {
        let reg = RegisterPluginRequest {
            plugin_name: name.into(),
            plugin_idx: idx.into(),
            ..Default::default()
        };
        request_frame(
            stream_id,
            RUNTIME_SERVICE,
            "RegisterPlugin",
            &protobuf::Message::write_to_bytes(&reg).unwrap(),
        )
    }

    fn request_frame(stream_id: u32, service: &str, method: &str, payload: &[u8]) -> Vec<u8> {
        let req = Request {
            service: service.into(),
            method: method.into(),
            payload: payload.to_vec(),
            ..Default::default()
        };
        let mut message = Vec::new();
        encode_frame(
            &mut message,
            stream_id,
            TYPE_REQUEST,
            0,
            &protobuf::Message::write_to_bytes(&req).unwrap(),
        )
        .unwrap();
        let mut out = Vec::new();
        encode_message(&mut out, RUNTIME_SERVICE_CONN, &message).unwrap();
        out
    }

    /// Reads one reply from the plugin's end: stream id and status.
    fn read_reply(s: &mut UnixStream) -> (u32, Status) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (mut mux, mut frames) = (MuxDecoder::new(), FrameDecoder::new());
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed before a reply");
            let mut input = &buf[..n];
            while let Some((conn, mut piece)) = mux.decode(&mut input).unwrap() {
                assert_eq!(conn, RUNTIME_SERVICE_CONN);
                if let Some(Decoded::Frame { header, data }) = frames.decode(&mut piece) {
                    assert_eq!(header.message_type, TYPE_RESPONSE);
                    let resp: Response = crate::pb::decode(&data).unwrap();
                    let st = resp.status.unwrap_or_default();
                    return (
                        header.stream_id,
                        Status::new(Code::from_i32(st.code), st.message),
                    );
                }
            }
        }
    }

    /// Our end of a connection whose peer has sent `frames`, registered
    /// within 5 s (`check`: the identity is checked), and the peer's end.
    fn registered_after(frames: &[Vec<u8>], check: bool) -> (Outcome, UnixStream) {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        for frame in frames {
            theirs.write_all(frame).unwrap();
        }
        (register_within(ours, check, Duration::from_secs(5)), theirs)
    }

    #[test]
    fn a_good_registration_is_answered_ok_once_accepted() {
        let (outcome, mut theirs) = registered_after(&[register_frame(1, "good", "10")], true);
        let Outcome::Registered(r) = outcome else {
            panic!("not registered")
        };
        assert_eq!(r.request.plugin_name, "good");
        let (_stream, req) = r.accept(Duration::from_secs(1)).unwrap();
        assert_eq!(req.plugin_idx, "10");
        let (id, status) = read_reply(&mut theirs);
        assert_eq!((id, status.code), (1, Code::Ok));
    }

    #[test]
    fn a_bad_index_is_refused_naming_what_was_sent_and_the_socket_is_handed_back() {
        let (outcome, mut theirs) = registered_after(&[register_frame(1, "bad\nname", "7")], true);
        let Outcome::Refused(e, _held) = outcome else {
            panic!("not refused")
        };
        match e {
            Error::RegistrationRefused { plugin, message } => {
                assert_eq!(plugin, "7-bad\nname");
                assert!(message.contains("\"7\""), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let (id, status) = read_reply(&mut theirs);
        assert_eq!((id, status.code), (1, Code::Unknown));
    }

    #[test]
    fn other_requests_first_get_failed_precondition_and_registration_still_works() {
        let (outcome, mut theirs) = registered_after(
            &[
                request_frame(1, RUNTIME_SERVICE, "UpdateContainers", b""),
                register_frame(3, "late", "20"),
            ],
            true,
        );
        assert!(matches!(outcome, Outcome::Registered(_)), "{outcome:?}");
        let (id, status) = read_reply(&mut theirs);
        assert_eq!((id, status.code), (1, Code::FailedPrecondition));
    }

    #[test]
    fn a_launched_plugin_s_identity_is_not_checked_and_silence_times_out() {
        let (outcome, _theirs) = registered_after(&[register_frame(1, "", "x")], false);
        assert!(matches!(outcome, Outcome::Registered(_)), "{outcome:?}");
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let start = Instant::now();
        match register_within(ours, true, Duration::from_millis(50)) {
            Outcome::Failed(Error::DeadlineExceeded { method, .. }) => {
                assert_eq!(method, "RegisterPlugin")
            }
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_peer_closing_before_registering_fails_at_once() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        match register_within(ours, true, Duration::from_secs(5)) {
            Outcome::Failed(Error::ConnectionClosed(reason)) => {
                assert!(reason.contains("before registration"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_oversized_first_message_gets_resource_exhausted() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let big = "n".repeat(MAX_REGISTRATION_MESSAGE + 1);
        let writer = std::thread::spawn(move || {
            theirs.write_all(&register_frame(1, &big, "10")).unwrap();
            theirs
        });
        let outcome = register_within(ours, true, Duration::from_millis(500));
        let mut theirs = writer.join().unwrap();
        assert!(
            matches!(outcome, Outcome::Failed(Error::DeadlineExceeded { .. })),
            "{outcome:?}"
        );
        let (id, status) = read_reply(&mut theirs);
        assert_eq!((id, status.code), (1, Code::ResourceExhausted));
        assert!(
            status.message.contains("16384-byte limit"),
            "{}",
            status.message
        );
    }
}
