//! The handler trait plugins implement and the context each handler gets.

use std::time::{Duration, Instant};

use crate::api::{
    Container, ContainerAdjustment, ContainerUpdate, EventMask, LinuxResources, PodSandbox,
};
use crate::ttrpc::{KeyValue, RequestContext};

use super::lifecycle::Stub;
use super::sync::SyncState;

/// The error type handlers return: any error converts with `?`.
///
/// A [`crate::ttrpc::Status`] keeps its code on the wire, an [`crate::Error`]
/// maps to its [`crate::Error::code`], anything else is sent as UNKNOWN with
/// the error's text (as Go's ttrpc does). Whatever the code, the runtime
/// fails the pod or container operation.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result of a handler.
pub type HandlerResult<T> = std::result::Result<T, HandlerError>;

/// An NRI plugin: a set of handlers for the runtime's requests and events.
///
/// Every handler has a default that does nothing and changes nothing;
/// implement the ones the plugin needs and list their events in
/// [`Plugin::events`], the one place that says what the plugin handles. The
/// stub subscribes to exactly those events (unless Configure narrows them)
/// and refuses to build for a plugin whose `events` is empty.
///
/// Handlers run on the stub's worker threads, several at once when the
/// runtime allows it, so the plugin must be `Send + Sync`; use a `Mutex`
/// for mutable state. A handler that panics fails its request with an
/// INTERNAL status; the plugin goes on serving.
///
/// The v0.9.0 runtime waits for every reply under a global lock and drops a
/// plugin that misses the request timeout (2 s by default): keep handlers
/// short, or turn on the stub's deadline guard.
#[allow(unused_variables)]
pub trait Plugin: Send + Sync + 'static {
    /// The events this plugin handles; it is subscribed to these.
    fn events(&self) -> EventMask;

    /// Configure: the runtime's configuration text for this plugin (from
    /// `/etc/nri/conf.d` for pre-registered plugins, empty otherwise) and
    /// the runtime's name and version. Return `Some(mask)` to subscribe to a
    /// subset of [`Plugin::events`] (asking for an event the plugin does
    /// not handle is an error), or `None` to keep them all.
    fn configure(
        &self,
        ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        Ok(None)
    }

    /// Synchronize: every existing pod and container, once, after
    /// Configure (a state the runtime sent in chunks is reassembled first).
    /// May return updates to existing containers.
    ///
    /// The state arrives still encoded and decodes as it is read:
    /// `state.containers()` yields one container at a time, and
    /// `state.into_decoded()?` gives the Go stub's two slices. A plugin that
    /// reads only part of it, or none, does not pay for the rest.
    fn synchronize(
        &self,
        ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        Ok(Vec::new())
    }

    /// Shutdown: the runtime is going away. The v0.9.0 runtime never sends
    /// it: plugins learn of a runtime's end from the connection closing (see
    /// the stub's on-close callback and supervised mode).
    fn shutdown(&self, ctx: &Context<'_>) {}

    /// A pod sandbox is being started.
    fn run_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        Ok(())
    }

    /// A pod sandbox was stopped.
    fn stop_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        Ok(())
    }

    /// A pod sandbox was removed.
    fn remove_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        Ok(())
    }

    /// A container is being created: return the adjustment to apply to it
    /// and updates for other (running) containers.
    fn create_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        Ok((ContainerAdjustment::new(), Vec::new()))
    }

    /// A container was created.
    fn post_create_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }

    /// A container is being started.
    fn start_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }

    /// A container was started.
    fn post_start_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }

    /// A container's resources are being updated to `resources`. Return
    /// updates: one for this container replaces the requested update;
    /// others apply to other containers.
    fn update_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        Ok(Vec::new())
    }

    /// A container's resources were updated.
    fn post_update_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }

    /// A container is being stopped; may return updates for other containers.
    fn stop_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        Ok(Vec::new())
    }

    /// A container was removed.
    fn remove_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }
}

impl<P: Plugin + ?Sized> Plugin for std::sync::Arc<P> {
    fn events(&self) -> EventMask {
        (**self).events()
    }
    fn configure(
        &self,
        ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        (**self).configure(ctx, config, runtime, version)
    }
    fn synchronize(
        &self,
        ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        (**self).synchronize(ctx, state)
    }
    fn shutdown(&self, ctx: &Context<'_>) {
        (**self).shutdown(ctx)
    }
    fn run_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        (**self).run_pod_sandbox(ctx, pod)
    }
    fn stop_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        (**self).stop_pod_sandbox(ctx, pod)
    }
    fn remove_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        (**self).remove_pod_sandbox(ctx, pod)
    }
    fn create_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        (**self).create_container(ctx, pod, container)
    }
    fn post_create_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        (**self).post_create_container(ctx, pod, c)
    }
    fn start_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        (**self).start_container(ctx, pod, c)
    }
    fn post_start_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        (**self).post_start_container(ctx, pod, c)
    }
    fn update_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
        resources: &LinuxResources,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        (**self).update_container(ctx, pod, c, resources)
    }
    fn post_update_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        (**self).post_update_container(ctx, pod, c)
    }
    fn stop_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        (**self).stop_container(ctx, pod, c)
    }
    fn remove_container(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        c: &Container,
    ) -> HandlerResult<()> {
        (**self).remove_container(ctx, pod, c)
    }
}

/// What a handler knows about the request it serves, and the safe way to
/// send updates from inside a handler.
pub struct Context<'a> {
    pub(crate) req: &'a RequestContext,
    pub(crate) stub: &'a Stub,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("method", &self.req.method())
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

    /// The ttrpc method being served (`CreateContainer`, `StateChange`, …).
    pub fn method(&self) -> &str {
        self.req.method()
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
                    stub.name()
                );
            }
            Err(e) => log::error!("{}: unsolicited update failed: {e}", stub.name()),
        });
    }

    /// Runs `f` on this worker right after the reply to this request has been
    /// written; use it to send updates and look at their results yourself.
    /// Not run if the reply is never written by this handler (the connection
    /// closed, or the deadline guard answered first).
    pub fn after_reply(&self, f: impl FnOnce(&Stub) + Send + 'static) {
        let stub = self.stub.clone();
        self.req.after_reply(move || f(&stub));
    }
}
