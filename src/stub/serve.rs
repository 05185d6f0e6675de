//! Serving the plugin service: Configure, Synchronize and every event, each
//! turned into a call of the plugin's handler.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::context::Context;
use super::plugin::{HandlerError, Plugin};
use super::sync::{scan_chunk, SyncState};
use crate::api::{
    ConfigureRequest, ConfigureResponse, Empty, EventMask, SynchronizeResponse, PLUGIN_SERVICE,
};
use crate::locking::lock;
use crate::ttrpc::{encode_result, Code, RequestContext, Services, Status};
use crate::{Error, Result};

use std::time::Instant;

use super::dispatch;
use super::lifecycle::{HandlerScope, Inner, Stub};
use super::negotiate::{self, RuntimeInfo};
use super::stats::{Outcome, Slot};

/// Full name of the Synchronize method, for messages.
const SYNCHRONIZE: &str = "nri.pkg.api.v1alpha1.Plugin/Synchronize";

impl Stub {
    /// Counts one served request in the stub's statistics; `started` is
    /// what [`Recorder::clock`](super::stats::Recorder::clock) gave before
    /// the handler ran (`None`: not counting).
    pub(super) fn record(
        &self,
        slot: Slot,
        rc: &RequestContext,
        started: Option<Instant>,
        failed: bool,
    ) {
        let Some(started) = started else { return };
        self.inner.stats.record(
            slot,
            Outcome {
                failed,
                took: started.elapsed(),
                timeout: rc.timeout(),
                guard_margin: self.inner.options.deadline_guard.as_ref().map(|g| g.margin),
            },
        );
    }

    pub(super) fn services(&self) -> Services {
        let mut s = Services::new();
        let w = Arc::downgrade(&self.inner);
        s.add_unary(PLUGIN_SERVICE, "Configure", handler(&w, Stub::configure));
        s.add_method_owned(
            PLUGIN_SERVICE,
            "Synchronize",
            Box::new(handler(&w, Stub::synchronize)),
        );
        s.add_unary(PLUGIN_SERVICE, "Shutdown", handler(&w, Stub::shutdown_req));
        dispatch::add_event_methods(&mut s, &w);
        s
    }

    fn configure(
        &self,
        rc: &RequestContext,
        req: ConfigureRequest,
    ) -> Result<ConfigureResponse, Status> {
        {
            let mut t = lock(&self.inner.timeouts);
            if req.registration_timeout > 0 {
                t.0 = Duration::from_millis(req.registration_timeout as u64);
            }
            if req.request_timeout > 0 {
                t.1 = Duration::from_millis(req.request_timeout as u64);
            }
        }
        let (runtime, note) = RuntimeInfo::from_configure(&req);
        if let Some(note) = note {
            log::debug!("plugin {}: {note}", self.name());
        }
        let runtime = Arc::new(runtime);
        *lock(&self.inner.runtime) = Some(runtime.clone());
        let ctx = Context {
            req: rc,
            stub: self,
            request: "Configure",
        };
        let started = self.inner.stats.clock();
        let result = {
            let _scope = HandlerScope::enter();
            self.inner
                .plugin
                .configure(&ctx, &req.config, &req.runtime_name, &req.runtime_version)
        };
        self.record(Slot::CONFIGURE, rc, started, result.is_err());
        let outcome = match result {
            Err(e) => {
                // start() reports it.
                let st = handler_status(e);
                Err((
                    st.clone(),
                    Error::Handler(format!("Configure failed: {}", st.message)),
                ))
            }
            Ok(mask) => self.subscription(mask, &runtime),
        };
        let (result, outcome) = match outcome {
            Ok(mask) => {
                *lock(&self.inner.subscribed) = mask;
                let mut reply = ConfigureResponse {
                    events: mask.bits(),
                    ..Default::default()
                };
                if let Some(policy) = &self.inner.failure_policy {
                    reply.failure_policy = protobuf::MessageField::some(policy.clone());
                }
                (Ok(reply), Ok(()))
            }
            Err((st, err)) => (Err(st), Err(err)),
        };
        // Tell start() only once the reply is on the wire: on failure it
        // closes the connection, which must not overtake the reply. The
        // runtime may close first, having read the error: the failure is
        // recorded now so that start() reports it rather than the close.
        if let Err(e) = outcome {
            *lock(&self.inner.configure_failure) = Some(e);
        }
        let inner = self.inner.clone();
        rc.after_reply(move || configured(&inner, None));
        result
    }

    /// The mask to subscribe to, given what Configure asked for (`None`:
    /// everything handled) and what the runtime can deliver.
    fn subscription(
        &self,
        asked: Option<EventMask>,
        runtime: &RuntimeInfo,
    ) -> Result<EventMask, (Status, Error)> {
        let handled = self.inner.events;
        let wanted = asked.filter(|m| !m.is_empty()).unwrap_or(handled);
        let extra = wanted & !handled;
        if !extra.is_empty() {
            let message = format!(
                "plugin {} subscribed to events it does not handle: {extra} (handled: {handled})",
                self.name()
            );
            // start() reports it.
            return Err((
                Status::new(Code::Unknown, message.clone()),
                Error::Config(message),
            ));
        }
        match negotiate::subscribe(&self.name(), wanted, self.inner.required, runtime) {
            Ok(sub) => {
                if !sub.undeliverable.is_empty() {
                    log::warn!(
                        "plugin {}: runtime {runtime} cannot deliver {} (handled by the plugin); \
                         subscribing to the rest",
                        self.name(),
                        sub.undeliverable
                    );
                }
                log::info!(
                    "plugin {} configured by runtime {runtime}, subscribed to {}",
                    self.name(),
                    sub.mask
                );
                Ok(sub.mask)
            }
            // start() reports it.
            Err(e) => Err((Status::new(e.code(), e.to_string()), e)),
        }
    }

    /// Synchronize, served raw: chunks are kept encoded (see [`SyncState`])
    /// and the handler runs once, on the final chunk.
    fn synchronize(&self, rc: &RequestContext, payload: Vec<u8>) -> Result<Vec<u8>, Status> {
        let scan = scan_chunk(&payload).map_err(|e| Status::new(Code::Internal, e.to_string()))?;
        let more = scan.more;
        let state = {
            let mut acc = lock(&self.inner.sync);
            let held = acc.as_ref().map_or(0, SyncState::encoded_len);
            if held.saturating_add(payload.len()) > self.inner.max_sync_bytes {
                acc.take();
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "plugin {}: the Synchronize state exceeds {} bytes ({held} held, a chunk of {} more)",
                        self.name(),
                        self.inner.max_sync_bytes,
                        payload.len()
                    ),
                ));
            }
            acc.get_or_insert_with(SyncState::default)
                .push_chunk(payload, scan);
            if more {
                None
            } else {
                acc.take()
            }
        };
        let Some(state) = state else {
            return encode_result(
                SYNCHRONIZE,
                &SynchronizeResponse {
                    more: true,
                    ..Default::default()
                },
            );
        };
        let ctx = Context {
            req: rc,
            stub: self,
            request: "Synchronize",
        };
        let started = self.inner.stats.clock();
        let update = {
            let _scope = HandlerScope::enter();
            self.inner.plugin.synchronize(&ctx, state)
        };
        self.record(Slot::SYNCHRONIZE, rc, started, update.is_err());
        let update = update.map_err(|e| {
            let status = handler_status(e);
            log::warn!(
                "plugin {}: Synchronize handler failed: {}",
                self.name(),
                status.message
            );
            status
        })?;
        encode_result(
            SYNCHRONIZE,
            &SynchronizeResponse {
                update,
                more: false,
                ..Default::default()
            },
        )
    }

    fn shutdown_req(&self, rc: &RequestContext, _req: Empty) -> Result<Empty, Status> {
        let ctx = Context {
            req: rc,
            stub: self,
            request: "Shutdown",
        };
        let started = self.inner.stats.clock();
        {
            let _scope = HandlerScope::enter();
            self.inner.plugin.shutdown(&ctx);
        }
        self.record(Slot::SHUTDOWN, rc, started, false);
        log::info!("plugin {}: the runtime is shutting down", self.name());
        Ok(Empty::new())
    }
}

pub(super) fn handler<Req, Resp>(
    weak: &Weak<Inner>,
    f: fn(&Stub, &RequestContext, Req) -> Result<Resp, Status>,
) -> impl Fn(&RequestContext, Req) -> Result<Resp, Status> + Send + Sync + 'static
where
    Req: 'static,
    Resp: 'static,
{
    let weak = weak.clone();
    move |rc, req| {
        let inner = weak
            .upgrade()
            .ok_or_else(|| Status::new(Code::Unavailable, "the plugin stub is gone"))?;
        f(&Stub { inner }, rc, req)
    }
}

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

/// Hands start() the outcome of Configure: the recorded Configure failure if
/// there is one, else `closed` (the connection closed first) or success.
pub(super) fn configured(inner: &Inner, closed: Option<&str>) {
    if let Some(tx) = lock(&inner.configured).take() {
        let outcome = match (lock(&inner.configure_failure).take(), closed) {
            (Some(failure), _) => Err(failure),
            (None, Some(reason)) => Err(Error::ConnectionClosed(reason.to_string())),
            (None, None) => Ok(()),
        };
        let _ = tx.try_send(outcome);
    }
}
