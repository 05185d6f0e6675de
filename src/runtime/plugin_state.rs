//! One plugin as the runtime keeps it while connected: its identity, why
//! it was dropped, its process, the updates it sent; and the runtime
//! service it calls once registered (`UpdateContainers`, and
//! `RegisterPlugin` again, which is refused: registration itself is read
//! before the connection starts, in `registration.rs`).

use super::process::Process;
use std::sync::{Arc, Condvar, Mutex};

use crate::api::{
    rpc, Empty, RegisterPluginRequest, UpdateContainersRequest, UpdateContainersResponse,
};
use crate::ttrpc::{Code, Services, Status};

use super::host_state::Hub;
use super::launch::kill_and_reap;
use super::recorded_updates::RecordedUpdates;
use crate::api::PluginId;
use crate::locking::lock;
use crate::log_text::Escape;

/// What the plugin's connection handlers and its handle share.
pub(crate) struct PluginState {
    /// External plugins name themselves; launched ones were named by us.
    pub(crate) external: bool,
    /// `NN-name`: from RegisterPlugin, or given at launch.
    pub(crate) name: String,
    /// Why the plugin was dropped, once it was.
    pub(crate) dropped: Mutex<Option<String>>,
    /// The process of a launched plugin.
    pub(crate) child: Mutex<Option<Process>>,
    /// Unsolicited updates received, the latest within the record's budget.
    pub(crate) updates: Mutex<RecordedUpdates>,
    pub(crate) updates_cv: Condvar,
    pub(crate) hub: Arc<Hub>,
}

impl PluginState {
    /// The state of a registered plugin: external (`child` `None`) or
    /// launched by the runtime.
    pub(crate) fn new(
        hub: Arc<Hub>,
        id: &PluginId,
        child: Option<Process>,
        max_recorded_update_bytes: usize,
    ) -> Arc<PluginState> {
        Arc::new(PluginState {
            external: child.is_none(),
            name: id.full_name(),
            dropped: Mutex::new(None),
            child: Mutex::new(child),
            updates: Mutex::new(RecordedUpdates::new(max_recorded_update_bytes)),
            updates_cv: Condvar::new(),
            hub,
        })
    }

    /// Refuses a second RegisterPlugin: a connection registers once. (The
    /// reference answers it and renames the plugin in its logs while it
    /// keeps invoking it under its first name.)
    fn register_again(&self, req: RegisterPluginRequest) -> std::result::Result<Empty, Status> {
        log::warn!(
            "plugin {} sent RegisterPlugin again (as {:?} with index {:?}); refused",
            Escape(&self.name),
            req.plugin_name,
            req.plugin_idx
        );
        Err(Status::new(
            Code::FailedPrecondition,
            format!(
                "plugin {} is already registered: a connection registers once",
                self.name
            ),
        ))
    }

    /// Serves UpdateContainers: hands the updates to the runtime's callback
    /// (after any event in flight, when updates block during events) and
    /// answers with the ones that failed.
    fn update_containers(&self, req: UpdateContainersRequest) -> UpdateContainersResponse {
        let _event = self.hub.event_guard();
        log::info!(
            "plugin {} requested {} container update(s)",
            Escape(&self.name),
            req.update.len()
        );
        let failed = (self.hub.update_fn)(&req.update);
        let dropped = lock(&self.updates).record(&req.update);
        drop(req);
        if dropped.oldest > 0 {
            log::debug!(
                "plugin {}: dropped the {} oldest recorded updates to stay within the record's \
                 budget",
                Escape(&self.name),
                dropped.oldest
            );
        }
        if dropped.too_large > 0 {
            log::warn!(
                "plugin {}: {} update(s) not recorded: each holds more memory than the record \
                 of unsolicited updates may",
                Escape(&self.name),
                dropped.too_large
            );
        }
        self.updates_cv.notify_all();
        UpdateContainersResponse {
            failed,
            ..Default::default()
        }
    }

    /// The connection closed: the plugin is dropped, its process killed.
    pub(crate) fn connection_closed(&self, reason: &str) {
        log::info!(
            "connection to plugin {} closed: {}",
            Escape(&self.name),
            Escape(reason)
        );
        self.mark_dropped(&format!("connection closed: {reason}"));
        self.kill_child();
    }

    /// Records why the plugin was dropped; the first reason stays.
    pub(crate) fn mark_dropped(&self, reason: &str) {
        let mut dropped = lock(&self.dropped);
        if dropped.is_none() {
            *dropped = Some(reason.to_string());
        }
    }

    /// Kills a launched plugin (SIGKILL) and reaps it, without waiting
    /// long for a process that does not die (see [`kill_and_reap`]). A
    /// concurrent caller waits until that is done, so that when either
    /// returns the process is gone or handed to its reaper.
    pub(crate) fn kill_child(&self) {
        let mut child = lock(&self.child);
        if let Some(c) = child.take() {
            kill_and_reap(c, &self.name);
        }
    }
}

/// The runtime service this plugin's connection serves.
pub(crate) fn runtime_services(state: &Arc<PluginState>) -> Services {
    let mut services = Services::new();
    let s = state.clone();
    let register = rpc::REGISTER_PLUGIN;
    services.add_unary(register.service, register.method, move |_, req| {
        s.register_again(req)
    });
    let s = state.clone();
    let update = rpc::UPDATE_CONTAINERS;
    services.add_unary(update.service, update.method, move |_, req| {
        Ok(s.update_containers(req))
    });
    services
}
