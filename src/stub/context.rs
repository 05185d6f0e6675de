//! What a handler knows about the request it serves: [`Context`].

use std::time::{Duration, Instant};

use crate::api::ContainerUpdate;
use crate::ttrpc::{KeyValue, RequestContext};

use super::lifecycle::Stub;
use super::negotiate::RuntimeInfo;
use crate::log_text::Escape;

/// What a handler knows about the request it serves, and the safe way to
/// send updates from inside a handler.
pub struct Context<'a> {
    pub(crate) req: &'a RequestContext,
    pub(crate) stub: &'a Stub,
    /// The request's NRI name (`CreateContainer`, `StartContainer`, ...).
    pub(crate) request: &'static str,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("request", &self.request)
            .field("timeout", &self.req.timeout())
            .finish()
    }
}

impl<'a> Context<'a> {
    /// The runtime's timeout for this request, if it sent one.
    pub fn timeout(&self) -> Option<Duration> {
        self.req.timeout()
    }

    /// The instant after which the runtime stops waiting for this reply
    /// (and a v0.9.0 runtime drops the plugin).
    pub fn deadline(&self) -> Option<Instant> {
        self.req.deadline()
    }

    /// Time left before the deadline (`None` without a deadline).
    pub fn time_left(&self) -> Option<Duration> {
        self.req.time_left()
    }

    /// The request's ttrpc metadata (NRI runtimes send none today).
    pub fn metadata(&self) -> &[KeyValue] {
        self.req.metadata()
    }

    /// The request being served, by its NRI name: `Configure`,
    /// `Synchronize`, `Shutdown`, or the event (`CreateContainer`,
    /// `StartContainer`, `ValidateContainerAdjustment`, ...). An event has
    /// the same name whether the runtime sent it through its own RPC (NRI
    /// v0.12 and newer) or through `StateChange` (older runtimes).
    pub fn method(&self) -> &str {
        self.request
    }

    /// What the stub knows of the runtime: its name and version, its NRI
    /// version (sent or inferred) and the events it can deliver. `None`
    /// only before Configure has been handled.
    pub fn runtime(&self) -> Option<std::sync::Arc<RuntimeInfo>> {
        self.stub.runtime()
    }

    /// The stub serving this request: for its name, timeouts, or
    /// [`Stub::update_containers`] from a thread of your own.
    pub fn stub(&self) -> &Stub {
        self.stub
    }

    /// The safe way to update other containers from inside a handler:
    /// `updates` are sent with UpdateContainers right after this handler's
    /// reply has been written, when the runtime no longer holds the lock it
    /// keeps while waiting for the reply. Updates the runtime could not
    /// apply, and errors, are logged.
    ///
    /// Calling [`Stub::update_containers`] directly from a handler would
    /// deadlock a v0.9.0 runtime until the request times out, and the
    /// runtime would then drop the plugin.
    pub fn update_containers_after_reply(&self, updates: Vec<ContainerUpdate>) {
        self.after_reply(move |stub| match stub.update_containers(updates) {
            Ok(failed) if failed.is_empty() => {}
            Ok(failed) => {
                let ids: Vec<&str> = failed.iter().map(|u| u.container_id.as_str()).collect();
                log::warn!(
                    "{}: runtime failed to apply updates for containers {ids:?}",
                    Escape(stub.name())
                );
            }
            Err(e) => log::error!(
                "{}: unsolicited update failed: {}",
                Escape(stub.name()),
                Escape(&e)
            ),
        });
    }

    /// Runs `f` on this worker right after the reply to this request has been
    /// written; use it to send updates and look at their results yourself.
    /// It runs once, after the handler returned and a reply is on the wire
    /// (the handler's, or the deadline guard's if it answered first); not at
    /// all if no reply could be written (the connection closed).
    pub fn after_reply(&self, f: impl FnOnce(&Stub) + Send + 'static) {
        let stub = self.stub.clone();
        self.req.after_reply(move || f(&stub));
    }
}
