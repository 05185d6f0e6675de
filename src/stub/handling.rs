//! Serving one request of the plugin service: finding the stub, running
//! the plugin's handler on this thread (timed and counted), and turning the
//! handler's error into a ttrpc status.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Weak};
use std::time::Instant;

use protobuf::Message;

use crate::api::rpc::Rpc;
use crate::api::{Container, PodSandbox};
use crate::ttrpc::{Code, RequestContext, Services, Status};
use crate::Error;

use super::context::Context;
use super::in_handler::HandlerScope;
use super::lifecycle::{Inner, Stub};
use super::plugin::{HandlerError, HandlerResult, Plugin};
use super::stats::{Outcome, Slot};
use crate::log_text::Escape;
use crate::pb::reuse::Reuse;

/// One request being served.
pub(super) struct Call<'a> {
    pub(super) stub: &'a Stub,
    pub(super) rc: &'a RequestContext,
    pub(super) plugin: &'a dyn Plugin,
}

/// What every handler registration holds: the stub (weakly: a connection
/// must not keep its stub alive) and the plugin.
#[derive(Clone)]
pub(super) struct Served {
    pub(super) stub: Weak<Inner>,
    pub(super) plugin: Arc<dyn Plugin>,
}

impl Served {
    /// Runs `f` for one request, or fails it when the stub is gone.
    fn serve<Req, Resp>(
        &self,
        rc: &RequestContext,
        req: Req,
        f: impl FnOnce(&Call<'_>, Req) -> Result<Resp, Status>,
    ) -> Result<Resp, Status> {
        let inner = self
            .stub
            .upgrade()
            .ok_or_else(|| Status::new(Code::Unavailable, "the plugin stub is gone"))?;
        let stub = Stub { inner };
        let call = Call {
            stub: &stub,
            rc,
            plugin: &*self.plugin,
        };
        f(&call, req)
    }

    /// Registers `f` as the handler of `rpc`. Its request is decoded into
    /// a message kept per worker thread and lent to `f` (see
    /// [`Services::add_unary_reused`]).
    pub(super) fn add<Req: Message + Reuse, Resp: Message>(
        &self,
        services: &mut Services,
        rpc: Rpc<Req, Resp>,
        f: impl Fn(&Call<'_>, &Req) -> Result<Resp, Status> + Send + Sync + 'static,
    ) {
        let served = self.clone();
        services.add_unary_reused(rpc.service, rpc.method, move |rc, req: &Req| {
            served.serve(rc, req, &f)
        });
    }

    /// Registers `f` as the handler of `rpc`, served on its encoded request
    /// (the received frame taken by value, with where the request lies in
    /// it) and encoded reply.
    pub(super) fn add_encoded<Req, Resp>(
        &self,
        services: &mut Services,
        rpc: Rpc<Req, Resp>,
        f: impl Fn(&Call<'_>, Vec<u8>, Range<usize>) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    ) {
        let served = self.clone();
        services.add_method_frame(
            rpc.service,
            rpc.method,
            Box::new(move |rc, frame, at| {
                served.serve(rc, (frame, at), |call, (frame, at)| f(call, frame, at))
            }),
        );
    }
}

impl Call<'_> {
    /// Runs a handler as request `name`: marks the thread as in a handler,
    /// and times and counts the call in `slot`, as failed when the handler
    /// returns an error.
    pub(super) fn run<T>(
        &self,
        name: &'static str,
        slot: Slot,
        handler: impl FnOnce(&Context<'_>, &dyn Plugin) -> HandlerResult<T>,
    ) -> HandlerResult<T> {
        let started = self.stub.inner.stats.clock();
        let ctx = Context {
            req: self.rc,
            stub: self.stub,
            request: name,
        };
        let result = {
            let _scope = HandlerScope::enter();
            handler(&ctx, self.plugin)
        };
        self.record(slot, started, result.is_err());
        result
    }

    /// Counts one served request; `started` is what
    /// [`Recorder::clock`](super::stats::Recorder::clock) gave before the
    /// handler ran (`None`: not counting).
    fn record(&self, slot: Slot, started: Option<Instant>, failed: bool) {
        let Some(started) = started else { return };
        let inner = &self.stub.inner;
        inner.stats.record(
            slot,
            Outcome {
                failed,
                took: started.elapsed(),
                timeout: self.rc.timeout(),
                guard_margin: (inner.options.deadline_guard.as_ref())
                    .filter(|_| self.rc.is_guarded())
                    .map(|g| g.margin),
            },
        );
    }

    /// The status for a handler's error, logged as the failure of request
    /// `name` about `subject`.
    pub(super) fn failed(&self, name: &str, subject: &dyn fmt::Display, e: HandlerError) -> Status {
        let status = handler_status(e);
        log::warn!(
            "plugin {}: {name} handler failed for {}: {}",
            Escape(self.stub.name()),
            Escape(subject),
            Escape(&status.message)
        );
        status
    }
}

/// What an event is about, for log lines: `pod ns/name (id)` or
/// `container ns/pod/name (id)`.
pub(super) struct Subject<'a> {
    pub(super) pod: &'a PodSandbox,
    pub(super) container: Option<&'a Container>,
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pod = self.pod;
        let kind = if self.container.is_some() {
            "container"
        } else {
            "pod"
        };
        f.write_str(kind)?;
        f.write_str(" ")?;
        if !pod.namespace.is_empty() {
            write!(f, "{}/", pod.namespace)?;
        }
        f.write_str(&pod.name)?;
        match self.container {
            Some(c) => write!(f, "/{} ({})", c.name, c.id),
            None => write!(f, " ({})", pod.id),
        }
    }
}

/// The ttrpc status for a handler's error: a [`Status`] as it is, an
/// [`Error`] with its code, anything else UNKNOWN with its text.
pub(super) fn handler_status(e: HandlerError) -> Status {
    let e = match e.downcast::<Status>() {
        Ok(st) => return *st,
        Err(e) => e,
    };
    match e.downcast::<Error>() {
        Ok(err) => Status::new(
            match *err {
                Error::Handler(_) => Code::Unknown,
                ref other => other.code(),
            },
            err.to_string(),
        ),
        Err(e) => Status::new(Code::Unknown, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_pod_or_the_container() {
        let mut pod = PodSandbox::new();
        pod.id = "p1".into();
        pod.name = "web".into();
        let subject = Subject {
            pod: &pod,
            container: None,
        };
        assert_eq!(subject.to_string(), "pod web (p1)");
        pod.namespace = "prod".into();
        let mut ctr = Container::new();
        ctr.id = "c1".into();
        ctr.name = "app".into();
        let subject = Subject {
            pod: &pod,
            container: Some(&ctr),
        };
        assert_eq!(subject.to_string(), "container prod/web/app (c1)");
    }
}
