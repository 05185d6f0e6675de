//! The methods of NRI's two ttrpc services, each with its request and
//! response types: a call or a registration names the method once, and the
//! compiler checks the messages on both ends. The per-event methods come
//! from the event table (`src/event_table.rs`).

use std::marker::PhantomData;

use super::*;

/// One method of the plugin or the runtime service: `Req` in, `Resp` out.
pub(crate) struct Rpc<Req, Resp> {
    /// The service's fully qualified name.
    pub(crate) service: &'static str,
    /// The method's name, which for an event is the event's name.
    pub(crate) method: &'static str,
    messages: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Clone for Rpc<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp> Copy for Rpc<Req, Resp> {}

impl<Req, Resp> Rpc<Req, Resp> {
    /// A method of the service plugins implement.
    const fn plugin(method: &'static str) -> Self {
        Rpc {
            service: PLUGIN_SERVICE,
            method,
            messages: PhantomData,
        }
    }

    /// A method of the service the runtime implements.
    const fn runtime(method: &'static str) -> Self {
        Rpc {
            service: RUNTIME_SERVICE,
            method,
            messages: PhantomData,
        }
    }
}

/// Configure: the runtime configures the plugin.
pub(crate) const CONFIGURE: Rpc<ConfigureRequest, ConfigureResponse> = Rpc::plugin("Configure");
/// Synchronize: the runtime's pods and containers, possibly in chunks.
pub(crate) const SYNCHRONIZE: Rpc<SynchronizeRequest, SynchronizeResponse> =
    Rpc::plugin("Synchronize");
/// Shutdown: the runtime is going away.
pub(crate) const SHUTDOWN: Rpc<ShutdownRequest, ShutdownResponse> = Rpc::plugin("Shutdown");
/// StateChange: a notification, as runtimes before v0.12 send them.
pub(crate) const STATE_CHANGE: Rpc<StateChangeEvent, StateChangeResponse> =
    Rpc::plugin("StateChange");
/// RegisterPlugin: the plugin registers with the runtime.
pub(crate) const REGISTER_PLUGIN: Rpc<RegisterPluginRequest, Empty> =
    Rpc::runtime("RegisterPlugin");
/// UpdateContainers: the plugin's unsolicited container updates.
pub(crate) const UPDATE_CONTAINERS: Rpc<UpdateContainersRequest, UpdateContainersResponse> =
    Rpc::runtime("UpdateContainers");

macro_rules! event_rpcs {
    ($({ name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
         rpc: $req:ident => $resp:ident, $($rest:tt)* })*) => {
        $(
            #[doc = concat!("The per-event method of ", stringify!($name), ".")]
            pub(crate) const $event: Rpc<$req, $resp> = Rpc::plugin(stringify!($name));
        )*
    };
}

crate::event_table::for_each_event!(event_rpcs);
