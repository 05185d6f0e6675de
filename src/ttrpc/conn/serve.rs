//! The serving side: running the handler a request names, with its
//! deadline guard, panic catching and post-reply actions.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::read::Work;
use super::ConnectionState;
use crate::ttrpc::server::{Handler, Method, RequestContext};
use crate::ttrpc::session::Envelope;
use crate::ttrpc::{Code, Status};

impl ConnectionState {
    pub(super) fn process(self: &Arc<Self>, work: Work) {
        match work {
            Work::Refuse {
                conn_id,
                stream_id,
                status,
            } => {
                log::debug!(
                    "{}: refusing stream {stream_id}: {status}",
                    self.options.name
                );
                let _ = self.write_response(conn_id, stream_id, Err(status));
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
    ) {
        let timeout = envelope.timeout();
        let handler = match self.services.get(&conn_id) {
            Some(s) => s.lookup(&envelope.service, &envelope.method),
            None => Err(Status::new(
                Code::Unimplemented,
                format!("unknown service {:?}", envelope.service),
            )),
        };
        let Method { name, handler } = match handler {
            Ok(m) => m,
            Err(st) => {
                let _ = self.write_response(conn_id, stream_id, Err(st));
                return;
            }
        };
        let replied = self.watch_deadline(conn_id, stream_id, received, timeout, name);
        let ctx = RequestContext {
            service: envelope.service,
            method: envelope.method,
            stream_id,
            received,
            timeout,
            metadata: envelope.metadata,
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
            Handler::Owned(h) => {
                let mut data = data;
                data.truncate(payload.end);
                data.drain(..payload.start);
                h(&ctx, data)
            }
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
                    "{}: handler for {}/{} panicked: {what}",
                    self.options.name,
                    ctx.service,
                    ctx.method
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
        if let Some(flag) = replied {
            if flag.swap(true, Ordering::AcqRel) {
                log::warn!(
                    "{}: {}/{} finished after its deadline guard had answered; its result is discarded",
                    self.options.name,
                    ctx.service,
                    ctx.method
                );
                return;
            }
        }
        if self.write_response(conn_id, stream_id, result).is_ok() {
            for f in ctx.take_after_reply() {
                if catch_unwind(AssertUnwindSafe(f)).is_err() {
                    log::error!("{}: a post-reply action panicked", self.options.name);
                }
            }
        }
    }
}
