//! The serving half of ttrpc: a registry of methods and the per-request
//! context handlers see.
//!
//! A [`Services`] maps fully qualified service names and method names to
//! handlers. It is served over a [`crate::ttrpc::Connection`], which reads
//! requests, calls the handlers on its worker threads and writes the replies.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use protobuf::Message;

use super::decode_budget::DecodeBudget;
use super::reused;
use super::{Code, KeyValue, Status};
use crate::pb::cost::CostModel;
use crate::pb::reuse::Reuse;

/// A method handler: gets the request context and the encoded argument,
/// returns the encoded result or a status.
pub type MethodHandler =
    Box<dyn Fn(&RequestContext, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync>;

/// A method handler that takes ownership of the encoded argument (for
/// handlers that keep the bytes, saving a copy of a large payload).
pub type OwnedMethodHandler =
    Box<dyn Fn(&RequestContext, Vec<u8>) -> Result<Vec<u8>, Status> + Send + Sync>;

/// A handler that takes the whole received frame by value, with where the
/// payload lies in it: a handler keeping a large payload keeps it without
/// moving it to the front of its buffer.
pub(crate) type FrameHandler = Box<
    dyn Fn(&RequestContext, Vec<u8>, std::ops::Range<usize>) -> Result<Vec<u8>, Status>
        + Send
        + Sync,
>;

/// Either kind of registered handler (an [`OwnedMethodHandler`] is served
/// as a [`FrameHandler`]).
pub(crate) enum Handler {
    Borrowed(MethodHandler),
    Frame(FrameHandler),
}

/// A registered handler with its method's full name (`service/method`),
/// kept so that serving a request need not build the name again, and
/// whether a deadline guard may answer for it.
pub(crate) struct Method {
    pub(crate) name: Arc<str>,
    pub(crate) handler: Handler,
    pub(crate) guarded: bool,
}

/// An action to run once a request's reply is written.
pub(crate) type AfterReply = Box<dyn FnOnce() + Send>;

/// The status for a request of `full` (`service/method`) that does not
/// decode as `M`: INTERNAL, as Go's ttrpc answers it.
fn undecodable<M: Message>(full: &str, e: impl fmt::Display) -> Status {
    Status::new(
        Code::Internal,
        format!("cannot decode {full} argument as {}: {e}", M::NAME),
    )
}

/// Encodes a handler's typed result; a failure is INTERNAL on the wire.
pub(crate) fn encode_result<M: Message>(method: &str, resp: &M) -> Result<Vec<u8>, Status> {
    resp.write_to_bytes().map_err(|e| {
        Status::new(
            Code::Internal,
            format!("cannot encode {method} result {}: {e}", M::NAME),
        )
    })
}

/// Registry of the services a connection serves.
///
/// ```
/// use nri::ttrpc::{Services, Status};
/// use nri::api::{Empty, RegisterPluginRequest};
/// let mut services = Services::new();
/// services.add_unary("example.Service", "Hello", |_ctx, req: RegisterPluginRequest| {
///     assert!(!req.plugin_name.is_empty());
///     Ok::<_, Status>(Empty::new())
/// });
/// assert!(services.has_method("example.Service", "Hello"));
/// assert!(!services.has_method("example.Service", "Bye"));
/// // A deadline guard answers only for methods marked as guarded.
/// assert!(!services.is_guarded("example.Service", "Hello"));
/// assert!(services.set_guarded("example.Service", "Hello", true));
/// assert!(services.is_guarded("example.Service", "Hello"));
/// ```
#[derive(Default)]
pub struct Services {
    services: HashMap<String, HashMap<String, Method>>,
    budget: Arc<DecodeBudget>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = Vec::new();
        for (s, methods) in &self.services {
            for m in methods.keys() {
                names.push(format!("{s}/{m}"));
            }
        }
        names.sort();
        f.debug_struct("Services").field("methods", &names).finish()
    }
}

impl Services {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a handler working on encoded bytes.
    pub fn add_method(&mut self, service: &str, method: &str, handler: MethodHandler) {
        self.insert(service, method, Handler::Borrowed(handler));
    }

    /// Registers a handler that takes the encoded argument by value.
    pub fn add_method_owned(&mut self, service: &str, method: &str, handler: OwnedMethodHandler) {
        self.add_method_frame(
            service,
            method,
            Box::new(move |ctx, mut data, payload| {
                data.truncate(payload.end);
                data.drain(..payload.start);
                handler(ctx, data)
            }),
        );
    }

    /// Registers a handler that takes the received frame by value, with
    /// the range of the payload in it.
    pub(crate) fn add_method_frame(&mut self, service: &str, method: &str, handler: FrameHandler) {
        self.insert(service, method, Handler::Frame(handler));
    }

    fn insert(&mut self, service: &str, method: &str, handler: Handler) {
        self.services
            .entry(service.to_string())
            .or_default()
            .insert(
                method.to_string(),
                Method {
                    name: format!("{service}/{method}").into(),
                    handler,
                    guarded: false,
                },
            );
    }

    /// Bounds the memory the decoded requests of typed handlers
    /// ([`Services::add_unary`]) may hold while they are served, all
    /// methods together (default
    /// [`DEFAULT_MAX_DECODED_BYTES`](super::DEFAULT_MAX_DECODED_BYTES)). Before a
    /// request is decoded, the memory its decoded form can hold is bounded
    /// from its bytes; a request that does not fit in what the requests
    /// being served leave is refused with RESOURCE_EXHAUSTED.
    pub fn set_max_decoded_bytes(&mut self, bytes: usize) {
        self.budget.set_limit(bytes);
    }

    /// Registers a typed unary handler. A payload that does not decode as
    /// `Req` is answered with INTERNAL, as Go's ttrpc does; one whose
    /// decoded form would not fit in the budget of decoded requests (see
    /// [`Services::set_max_decoded_bytes`]) with RESOURCE_EXHAUSTED. The
    /// decoded form of a message of the NRI API is bounded from its bytes;
    /// other message types are charged their encoded size.
    pub fn add_unary<Req, Resp, F>(&mut self, service: &str, method: &str, f: F)
    where
        Req: Message,
        Resp: Message,
        F: Fn(&RequestContext, Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        let full = format!("{service}/{method}");
        self.add_typed::<Req, Resp, _>(service, method, move |ctx, payload, _, _| {
            let req =
                crate::pb::decode::<Req>(payload).map_err(|e| undecodable::<Req>(&full, e))?;
            f(ctx, req)
        });
    }

    /// Registers a typed unary handler that borrows its request, as
    /// [`Services::add_unary`] does otherwise: the request is decoded into
    /// a message kept per worker thread and request type, reusing what it
    /// held; the message is kept for the next request while what it holds
    /// is within [`REUSE_MAX_BYTES`](super::reused::REUSE_MAX_BYTES) (see
    /// [`super::reused`]). The budget check comes first, as for
    /// [`Services::add_unary`].
    pub(crate) fn add_unary_reused<Req, Resp, F>(&mut self, service: &str, method: &str, f: F)
    where
        Req: Message + Reuse,
        Resp: Message,
        F: Fn(&RequestContext, &Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        let full = format!("{service}/{method}");
        self.add_typed::<Req, Resp, _>(service, method, move |ctx, payload, _, _| {
            reused::with_decoded(payload, |req: &Req| f(ctx, req))
                .map_err(|e| undecodable::<Req>(&full, e))?
        });
    }

    /// Registers `serve` for a method whose requests are `Req`: each
    /// request is charged to the budget of decoded requests first (refused
    /// with RESOURCE_EXHAUSTED when it does not fit), then `serve` gets
    /// the payload, the cost model of `Req` and the bytes charged, and its
    /// response is encoded.
    fn add_typed<Req, Resp, S>(&mut self, service: &str, method: &str, serve: S)
    where
        Req: Message,
        Resp: Message,
        S: Fn(&RequestContext, &[u8], Option<&CostModel>, usize) -> Result<Resp, Status>
            + Send
            + Sync
            + 'static,
    {
        let full = format!("{service}/{method}");
        let budget = self.budget.clone();
        let model = OnceLock::new();
        self.add_method(
            service,
            method,
            Box::new(move |ctx, payload| {
                let model = model.get_or_init(crate::pb::cost::model_of::<Req>).as_ref();
                let what = || format!("{full} argument {}", Req::NAME);
                let held = budget.take(model, std::mem::size_of::<Req>(), payload, &what)?;
                encode_result(&full, &serve(ctx, payload, model, held.bytes())?)
            }),
        );
    }

    /// Registers a typed unary handler, as [`Services::add_unary`] does, as
    /// a guarded method (see [`Services::set_guarded`]).
    pub fn add_unary_guarded<Req, Resp, F>(&mut self, service: &str, method: &str, f: F)
    where
        Req: Message,
        Resp: Message,
        F: Fn(&RequestContext, Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        self.add_unary(service, method, f);
        self.set_guarded(service, method, true);
    }

    /// Says whether a connection's [`DeadlineGuard`](super::DeadlineGuard)
    /// may answer for `service`/`method` when its handler is late. Methods
    /// are not guarded unless marked: a made-up reply suits a method whose
    /// empty answer means "nothing to do" (NRI's events), never one whose
    /// answer the caller acts on (NRI's Configure, whose empty reply would
    /// subscribe to every event, Synchronize, Shutdown). Returns false
    /// when no such method is registered.
    pub fn set_guarded(&mut self, service: &str, method: &str, guarded: bool) -> bool {
        match self
            .services
            .get_mut(service)
            .and_then(|methods| methods.get_mut(method))
        {
            Some(m) => {
                m.guarded = guarded;
                true
            }
            None => false,
        }
    }

    /// True when `service`/`method` is registered as guarded.
    pub fn is_guarded(&self, service: &str, method: &str) -> bool {
        self.lookup(service, method).is_ok_and(|m| m.guarded)
    }

    /// True when `service`/`method` has a handler.
    pub fn has_method(&self, service: &str, method: &str) -> bool {
        self.lookup(service, method).is_ok()
    }

    pub(crate) fn lookup(&self, service: &str, method: &str) -> Result<&Method, Status> {
        let methods = self.services.get(service).ok_or_else(|| {
            Status::new(Code::Unimplemented, format!("unknown service {service:?}"))
        })?;
        methods.get(method).ok_or_else(|| {
            Status::new(
                Code::Unimplemented,
                format!("unknown method {method:?} of service {service:?}"),
            )
        })
    }
}

/// What a handler knows about the request it serves.
pub struct RequestContext {
    pub(crate) service: String,
    pub(crate) method: String,
    pub(crate) stream_id: u32,
    pub(crate) received: Instant,
    pub(crate) timeout: Option<Duration>,
    pub(crate) metadata: Vec<KeyValue>,
    pub(crate) guarded: bool,
    pub(crate) after_reply: RefCell<Vec<AfterReply>>,
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("service", &self.service)
            .field("method", &self.method)
            .field("stream_id", &self.stream_id)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RequestContext {
    /// A context for calling a handler directly (tests, or another
    /// transport): no deadline, no metadata.
    pub fn new(service: &str, method: &str) -> Self {
        RequestContext {
            service: service.to_string(),
            method: method.to_string(),
            stream_id: 1,
            received: Instant::now(),
            timeout: None,
            metadata: Vec::new(),
            guarded: false,
            after_reply: RefCell::new(Vec::new()),
        }
    }

    /// Sets the caller's timeout, counted from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.received = Instant::now();
        self.timeout = Some(timeout);
        self
    }

    /// Fully qualified service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Method name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The ttrpc stream id of the request.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The caller's timeout as sent in `timeout_nano`, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The instant after which the caller no longer waits for the reply.
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| self.received + t)
    }

    /// Time left before the deadline (`None` without a deadline; zero once
    /// it has passed).
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True when the method is registered as guarded: a connection's
    /// deadline guard, if it has one, may answer for this request (see
    /// [`Services::set_guarded`]).
    pub fn is_guarded(&self) -> bool {
        self.guarded
    }

    /// The request's metadata, in wire order.
    pub fn metadata(&self) -> &[KeyValue] {
        &self.metadata
    }

    /// The first metadata value for `key`.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    }

    /// Queues work to run on the same thread right after this request's
    /// reply has been written. It runs exactly once, after the handler
    /// returned and a reply is on the wire: the handler's own, or the one a
    /// deadline guard sent on its behalf (the action then runs when the
    /// late handler returns). It is dropped when no reply could be written
    /// (the connection closed).
    pub fn after_reply(&self, f: impl FnOnce() + Send + 'static) {
        self.after_reply.borrow_mut().push(Box::new(f));
    }

    pub(crate) fn take_after_reply(&self) -> Vec<AfterReply> {
        std::mem::take(&mut *self.after_reply.borrow_mut())
    }
}
