//! The serving side: running the handler a request names, with its
//! deadline guard (for a method registered as guarded) and panic catching,
//! and then its post-reply actions.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use super::guard::Settled;
use super::read::Work;
use super::ConnectionState;
use crate::log_text::Escape;
use crate::ttrpc::server::{AfterReply, Handler, Method, RequestContext};
use crate::ttrpc::session::Envelope;
use crate::ttrpc::{Code, Status};

impl ConnectionState {
    /// Serves or refuses `work`; gives the post-reply actions its handler
    /// registered, for the caller to run (see [`ConnectionState::after_reply`]).
    pub(super) fn process(self: &Arc<Self>, work: Work) -> Vec<AfterReply> {
        match work {
            Work::Refuse {
                conn_id,
                stream_id,
                status,
            } => {
                log::debug!(
                    "{}: refusing stream {stream_id}: {}",
                    Escape(&self.options.name),
                    Escape(&status)
                );
                let _ = self.write_response(conn_id, stream_id, Err(status));
                Vec::new()
            }
            Work::Request {
                conn_id,
                stream_id,
                envelope,
                received,
            } => self.serve(conn_id, stream_id, envelope, received),
        }
    }

    fn serve(
        self: &Arc<Self>,
        conn_id: u32,
        stream_id: u32,
        envelope: Envelope,
        received: Instant,
    ) -> Vec<AfterReply> {
        let timeout = envelope.timeout();
        let handler = match self.services.get(&conn_id) {
            Some(s) => s.lookup(&envelope.service, &envelope.method),
            None => Err(Status::new(
                Code::Unimplemented,
                format!("unknown service {:?}", envelope.service),
            )),
        };
        let Method {
            name,
            handler,
            guarded,
        } = match handler {
            Ok(m) => m,
            Err(st) => {
                let _ = self.write_response(conn_id, stream_id, Err(st));
                return Vec::new();
            }
        };
        let watched = match guarded {
            true => self.watch_deadline(conn_id, stream_id, received, timeout, name),
            false => None,
        };
        let ctx = RequestContext {
            service: envelope.service,
            method: envelope.method,
            stream_id,
            received,
            timeout,
            metadata: envelope.metadata,
            guarded: *guarded,
            after_reply: Default::default(),
        };
        let (data, payload) = (envelope.data, envelope.payload);
        let mut spare = None;
        let call = || match handler {
            Handler::Borrowed(h) => {
                let r = h(&ctx, &data[payload]);
                spare = Some(data);
                r
            }
            Handler::Frame(h) => h(&ctx, data, payload),
        };
        let result = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(r) => r,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_string());
                log::error!(
                    "{}: handler for {}/{} panicked: {}",
                    Escape(&self.options.name),
                    Escape(&ctx.service),
                    Escape(&ctx.method),
                    Escape(&what)
                );
                Err(Status::new(
                    Code::Internal,
                    format!(
                        "handler for {}/{} panicked: {what}",
                        ctx.service, ctx.method
                    ),
                ))
            }
        };
        if let Some(buf) = spare {
            self.recycle(buf);
        }
        let replied = match watched.map(|due| self.settle_deadline(due)) {
            None | Some(Settled::Handler) => {
                self.write_response(conn_id, stream_id, result).is_ok()
            }
            Some(Settled::Guard(written)) => {
                log::warn!(
                    "{}: {}/{} finished after its deadline guard had answered; its result is discarded",
                    Escape(&self.options.name),
                    Escape(&ctx.service),
                    Escape(&ctx.method)
                );
                written
            }
        };
        // Once a reply (the handler's or the guard's) is on the wire, and
        // only then.
        if replied {
            ctx.take_after_reply()
        } else {
            Vec::new()
        }
    }

    /// Runs post-reply actions, each exactly once, on this thread.
    pub(super) fn after_reply(&self, actions: Vec<AfterReply>) {
        for f in actions {
            if catch_unwind(AssertUnwindSafe(f)).is_err() {
                log::error!(
                    "{}: a post-reply action panicked",
                    Escape(&self.options.name)
                );
            }
        }
    }
}
