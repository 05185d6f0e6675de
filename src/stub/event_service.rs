//! The events of the plugin service, expanded from the event table.
//!
//! An event reaches the stub in one of two ways: through its own RPC (NRI
//! v0.12 runtimes: `RunPodSandbox`, `StartContainer`, ...) or, for the
//! events the table marks `state_change: yes`, through `StateChange` (v0.9
//! to v0.11 runtimes, and v0.12 runtimes talking to an older plugin). Each
//! RPC is registered with its own request and response types and calls the
//! plugin's handler for the event directly, in the shape of the event's
//! kind; `StateChange` calls the same handlers. A plugin writes each handler
//! once and never learns which way an event came.

use protobuf::MessageField;

use crate::api::rpc;
use crate::api::*;
use crate::ttrpc::{Services, Status};

use super::context::Context;
use super::handling::{Call, Served, Subject};
use super::plugin::{HandlerResult, Plugin};
use super::stats::Slot;
use crate::log_text::Escape;

/// Serves request `$r` of event `$event` (named `$name`, handled by
/// `$h`) in the shape of its kind, replying with a `$resp`. Each kind says
/// what the request holds, how to call the handler and what the reply
/// carries; `@serve` does the rest.
macro_rules! serve_event {
    (@serve $call:ident $name:ident $event:ident $pod:ident $ctr:expr, |$ctx:ident, $p:ident| $invoke:expr) => {
        $call.event(stringify!($name), const { Slot::event(Event::$event) },
                    Subject { pod: $pod, container: $ctr }, |$ctx, $p| $invoke)
    };
    (PodNotification; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let pod = $r.pod.get_or_default();
        serve_event!(@serve $call $name $event pod None, |ctx, p| p.$h(ctx, pod)).map(|()| $resp::new())
    }};
    (PodUpdate; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let (pod, resources) = ($r.pod.get_or_default(), $r.linux_resources.get_or_default());
        let overhead = $r.overhead_linux_resources.get_or_default();
        serve_event!(@serve $call $name $event pod None, |ctx, p| p.$h(ctx, pod, overhead, resources))
            .map(|()| $resp::new())
    }};
    (ContainerNotification; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let (pod, c) = ($r.pod.get_or_default(), $r.container.get_or_default());
        serve_event!(@serve $call $name $event pod Some(c), |ctx, p| p.$h(ctx, pod, c)).map(|()| $resp::new())
    }};
    (Create; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let (pod, c) = ($r.pod.get_or_default(), $r.container.get_or_default());
        serve_event!(@serve $call $name $event pod Some(c), |ctx, p| p.$h(ctx, pod, c)).map(|(adjust, update)| {
            $resp { adjust: MessageField::some(adjust), update, ..Default::default() }
        })
    }};
    (UpdateWithUpdates; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let (pod, c, res) = ($r.pod.get_or_default(), $r.container.get_or_default(), $r.linux_resources.get_or_default());
        serve_event!(@serve $call $name $event pod Some(c), |ctx, p| p.$h(ctx, pod, c, res))
            .map(|update| $resp { update, ..Default::default() })
    }};
    (StopWithUpdates; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let (pod, c) = ($r.pod.get_or_default(), $r.container.get_or_default());
        serve_event!(@serve $call $name $event pod Some(c), |ctx, p| p.$h(ctx, pod, c))
            .map(|update| $resp { update, ..Default::default() })
    }};
    (Validation; $call:ident, $name:ident, $event:ident, $h:ident, $r:ident, $resp:ident) => {{
        let (pod, c) = ($r.pod.get_or_default(), $r.container.get_or_default());
        let subject = Subject { pod, container: Some(c) };
        let slot = const { Slot::event(Event::$event) };
        $call.verdict(stringify!($name), slot, subject, |ctx, p| p.$h(ctx, $r)).map(|rejection| match rejection {
            None => $resp::new(),
            Some(reason) => $resp { reject: true, reason, ..Default::default() },
        })
    }};
}

/// Serves a `StateChange` of event `$event` when the table says
/// `StateChange` carries it (`yes`); expands to nothing for the others.
macro_rules! state_change_arm {
    (yes $kind:ident; $call:ident, $got:ident, $name:ident, $event:ident, $h:ident, $r:ident) => {
        if $got == Ok(Event::$event) {
            return serve_event!($kind; $call, $name, $event, $h, $r, StateChangeResponse);
        }
    };
    (no $kind:ident; $($rest:tt)*) => {};
}

macro_rules! event_service {
    ($({ name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
         rpc: $req:ident => $resp:ident, since: $since:expr, rpc_since: $rpc_since:expr,
         state_change: $state_change:ident, })*) => {
        /// Registers every event's RPC, and `StateChange`, as guarded: a
        /// deadline guard's empty reply to an event means "no changes".
        pub(super) fn add_event_methods(services: &mut Services, served: &Served) {
            $(
                served.add(services, rpc::$event, |call, r: &$req| {
                    serve_event!($kind; call, $name, $event, $handler, r, $resp)
                });
                services.set_guarded(rpc::$event.service, rpc::$event.method, true);
            )*
            served.add(services, rpc::STATE_CHANGE, state_change);
            services.set_guarded(rpc::STATE_CHANGE.service, rpc::STATE_CHANGE.method, true);
        }

        /// Serves a `StateChange`: the notifications of runtimes before
        /// v0.12. An event `StateChange` never carries (a runtime bug, or an
        /// event of a newer NRI) is logged and acknowledged, as Go's stub
        /// does.
        fn state_change(call: &Call<'_>, r: &StateChangeEvent) -> Result<StateChangeResponse, Status> {
            let got = r.event.enum_value();
            $(state_change_arm!($state_change $kind; call, got, $name, $event, $handler, r);)*
            log::debug!(
                "plugin {}: ignoring a StateChange for event {} (not a state change event)",
                Escape(call.stub.name()),
                r.event.value()
            );
            Ok(StateChangeResponse::new())
        }
    };
}

crate::event_table::for_each_event!(event_service);

impl Call<'_> {
    /// Runs the handler of event `name`, counted in `slot`; an error fails
    /// the request and is logged naming `subject`.
    fn event<T>(
        &self,
        name: &'static str,
        slot: Slot,
        subject: Subject<'_>,
        handler: impl FnOnce(&Context<'_>, &dyn Plugin) -> HandlerResult<T>,
    ) -> Result<T, Status> {
        self.run(name, slot, handler)
            .map_err(|e| self.failed(name, &subject, e))
    }

    /// Runs a validator's handler: `None` accepts, `Some(reason)` rejects
    /// (a validator's error is its rejection, as in Go's stub); only a
    /// [`Status`] fails the request itself.
    fn verdict(
        &self,
        name: &'static str,
        slot: Slot,
        subject: Subject<'_>,
        handler: impl FnOnce(&Context<'_>, &dyn Plugin) -> HandlerResult<()>,
    ) -> Result<Option<String>, Status> {
        match self.run(name, slot, handler) {
            Ok(()) => Ok(None),
            Err(e) if e.is::<Status>() => Err(self.failed(name, &subject, e)),
            Err(e) => {
                log::info!(
                    "plugin {}: rejected the adjustment of {}: {}",
                    Escape(self.stub.name()),
                    Escape(&subject),
                    Escape(&e)
                );
                Ok(Some(e.to_string()))
            }
        }
    }
}
