//! Serving Configure: the runtime's timeouts and identity are taken, the
//! plugin's handler runs, and the subscription is negotiated.

use std::sync::Arc;

use crate::api::{ConfigureRequest, ConfigureResponse, EventMask};
use crate::locking::lock;
use crate::ttrpc::{Code, Status};
use crate::Error;

use super::handling::{handler_status, Call};
use super::negotiate::{self, RuntimeInfo};
use super::stats::{LifecycleRequest, Slot};
use crate::log_text::Escape;

const CONFIGURE: LifecycleRequest = LifecycleRequest::Configure;

/// Serves Configure. Its outcome reaches the `start()` waiting for it only
/// once the reply is on the wire: on failure `start()` closes the
/// connection, which must not overtake the reply.
pub(super) fn configure(
    call: &Call<'_>,
    req: &ConfigureRequest,
) -> Result<ConfigureResponse, Status> {
    let inner = &call.stub.inner;
    lock(&inner.timeouts).update_from_configure(req.registration_timeout, req.request_timeout);
    let (runtime, note) = RuntimeInfo::from_configure(req);
    if let Some(note) = note {
        log::debug!("plugin {}: {}", Escape(call.stub.name()), Escape(&note));
    }
    let runtime = Arc::new(runtime);
    inner.negotiated.set_runtime(runtime.clone());
    let asked = call.run(CONFIGURE.name(), Slot::lifecycle(CONFIGURE), |ctx, p| {
        p.configure(ctx, &req.config, &req.runtime_name, &req.runtime_version)
    });
    let outcome = match asked {
        Err(e) => {
            // start() reports it.
            let st = handler_status(e);
            let err = Error::Handler(format!("Configure failed: {}", st.message));
            Err((st, err))
        }
        Ok(mask) => subscription(call, mask, &runtime),
    };
    let reply = match outcome {
        Ok(mask) => {
            inner.negotiated.set_subscribed(mask);
            let mut reply = ConfigureResponse {
                events: mask.bits(),
                ..Default::default()
            };
            if let Some(policy) = &inner.wants.failure_policy {
                reply.failure_policy = protobuf::MessageField::some(policy.clone());
            }
            Ok(reply)
        }
        Err((status, err)) => {
            // Recorded now: the runtime may close first, having read the
            // error, and start() must report this rather than the close.
            inner.configure_wait.record_failure(err);
            Err(status)
        }
    };
    let inner = inner.clone();
    call.rc
        .after_reply(move || inner.configure_wait.finish(None));
    reply
}

/// The mask to subscribe to, given what Configure asked for (`None`:
/// everything handled) and what the runtime can deliver.
fn subscription(
    call: &Call<'_>,
    asked: Option<EventMask>,
    runtime: &RuntimeInfo,
) -> Result<EventMask, (Status, Error)> {
    let name = call.stub.name();
    let wants = &call.stub.inner.wants;
    let handled = wants.handled;
    let wanted = asked.filter(|m| !m.is_empty()).unwrap_or(handled);
    let extra = wanted & !handled;
    if !extra.is_empty() {
        let message = format!(
            "plugin {name} subscribed to events it does not handle: {extra} (handled: {handled})"
        );
        // start() reports it.
        return Err((
            Status::new(Code::Unknown, message.clone()),
            Error::Config(message),
        ));
    }
    match negotiate::subscribe(&name, wanted, wants.required, runtime) {
        Ok(sub) => {
            if !sub.undeliverable.is_empty() {
                log::warn!(
                    "plugin {}: runtime {} cannot deliver {} (handled by the plugin); \
                     subscribing to the rest",
                    Escape(&name),
                    Escape(&runtime),
                    sub.undeliverable
                );
            }
            log::info!(
                "plugin {} configured by runtime {}, subscribed to {}",
                Escape(&name),
                Escape(&runtime),
                sub.mask
            );
            Ok(sub.mask)
        }
        // start() reports it.
        Err(e) => Err((Status::new(e.code(), e.to_string()), e)),
    }
}
