//! The plugin service a stub serves on each connection: Configure,
//! Synchronize, Shutdown and every event.

use std::sync::{Arc, Weak};

use crate::api::{rpc, ShutdownResponse};
use crate::ttrpc::Services;

use super::configure::configure;
use super::event_service::add_event_methods;
use super::handling::{Call, Served};
use super::lifecycle::Inner;
use super::plugin::Plugin;
use super::stats::{LifecycleRequest, Slot};
use super::synchronize::synchronize;
use crate::log_text::Escape;

/// The handlers of the plugin service for `plugin`, serving `stub`.
pub(super) fn services(plugin: &Arc<dyn Plugin>, stub: &Weak<Inner>) -> Services {
    let served = Served {
        stub: stub.clone(),
        plugin: plugin.clone(),
    };
    let mut s = Services::new();
    served.add(&mut s, rpc::CONFIGURE, configure);
    served.add_encoded(&mut s, rpc::SYNCHRONIZE, synchronize);
    served.add(&mut s, rpc::SHUTDOWN, |call, _| Ok(shutdown(call)));
    add_event_methods(&mut s, &served);
    s
}

/// Serves Shutdown: the plugin's handler runs, and nothing can fail it.
fn shutdown(call: &Call<'_>) -> ShutdownResponse {
    const SHUTDOWN: LifecycleRequest = LifecycleRequest::Shutdown;
    let _ = call.run(SHUTDOWN.name(), Slot::lifecycle(SHUTDOWN), |ctx, p| {
        p.shutdown(ctx);
        Ok(())
    });
    log::info!(
        "plugin {}: the runtime is shutting down",
        Escape(call.stub.name())
    );
    ShutdownResponse::new()
}
