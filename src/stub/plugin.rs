//! The handler trait plugins implement.

use crate::api::{
    Container, ContainerAdjustment, ContainerUpdate, EventMask, LinuxResources, PodSandbox,
    ValidateContainerAdjustmentRequest,
};

use super::context::Context;
use super::synchronize_state::SyncState;

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

    /// A pod sandbox's resources are being updated: `overhead` is the pod's
    /// own overhead, `resources` the sum of its containers' resources. An
    /// error fails the update. Runtimes embedding NRI v0.10 or newer send
    /// it; older ones cannot (see [`crate::stub::StubBuilder::require_events`]).
    fn update_pod_sandbox(
        &self,
        ctx: &Context<'_>,
        pod: &PodSandbox,
        overhead: &LinuxResources,
        resources: &LinuxResources,
    ) -> HandlerResult<()> {
        Ok(())
    }

    /// A pod sandbox's resources were updated (NRI v0.10 or newer).
    fn post_update_pod_sandbox(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
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

    /// Validates the adjustments every plugin made to a container being
    /// created (NRI v0.10 or newer), after the runtime merged them: `Ok(())`
    /// accepts, an error rejects the creation with the error's text as the
    /// reason (as Go's stub turns a validator's error into a rejection). To
    /// fail the request instead of rejecting (the validator itself could not
    /// decide), return a [`crate::ttrpc::Status`]: it goes to the runtime as
    /// the reply's status, which also fails the creation.
    ///
    /// The request holds the pod, the container as it was before any plugin
    /// touched it, the merged adjustment, the updates to other containers,
    /// which plugin set each field (`owners`, see
    /// [`crate::api::OwningPlugins`]) and every plugin consulted (`plugins`).
    /// A validator is useless against a runtime that cannot send this
    /// request: require the event with
    /// [`crate::stub::StubBuilder::require_events`].
    fn validate_container_adjustment(
        &self,
        ctx: &Context<'_>,
        request: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        Ok(())
    }
}

/// One forwarding method of the `Arc` impl below, by handler kind.
macro_rules! forward {
    (PodNotification $h:ident $req:ident) => {
        fn $h(&self, ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
            (**self).$h(ctx, pod)
        }
    };
    (PodUpdate $h:ident $req:ident) => {
        fn $h(
            &self,
            ctx: &Context<'_>,
            pod: &PodSandbox,
            overhead: &LinuxResources,
            resources: &LinuxResources,
        ) -> HandlerResult<()> {
            (**self).$h(ctx, pod, overhead, resources)
        }
    };
    (ContainerNotification $h:ident $req:ident) => {
        fn $h(&self, ctx: &Context<'_>, pod: &PodSandbox, c: &Container) -> HandlerResult<()> {
            (**self).$h(ctx, pod, c)
        }
    };
    (Create $h:ident $req:ident) => {
        fn $h(
            &self,
            ctx: &Context<'_>,
            pod: &PodSandbox,
            c: &Container,
        ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
            (**self).$h(ctx, pod, c)
        }
    };
    (UpdateWithUpdates $h:ident $req:ident) => {
        fn $h(
            &self,
            ctx: &Context<'_>,
            pod: &PodSandbox,
            c: &Container,
            resources: &LinuxResources,
        ) -> HandlerResult<Vec<ContainerUpdate>> {
            (**self).$h(ctx, pod, c, resources)
        }
    };
    (StopWithUpdates $h:ident $req:ident) => {
        fn $h(
            &self,
            ctx: &Context<'_>,
            pod: &PodSandbox,
            c: &Container,
        ) -> HandlerResult<Vec<ContainerUpdate>> {
            (**self).$h(ctx, pod, c)
        }
    };
    (Validation $h:ident $req:ident) => {
        fn $h(&self, ctx: &Context<'_>, request: &$req) -> HandlerResult<()> {
            (**self).$h(ctx, request)
        }
    };
}

/// A shared plugin is a plugin: every handler forwards, the event handlers
/// from the event table by their kind.
macro_rules! forward_to_shared {
    ($({ name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
         rpc: $req:ident => $resp:ident, $($rest:tt)* })*) => {
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

            $(forward!($kind $handler $req);)*
        }
    };
}

crate::event_table::for_each_event!(forward_to_shared);
