//! One plugin as the runtime keeps it while connected: its identity, why
//! it was dropped, its process, the updates it sent; and the runtime
//! service it calls (`RegisterPlugin`, `UpdateContainers`).

use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::api::{
    rpc, Empty, RegisterPluginRequest, UpdateContainersRequest, UpdateContainersResponse,
};
use crate::ttrpc::{Code, Services, Status};

use super::host_state::Hub;
use super::recorded_updates::RecordedUpdates;
use crate::locking::lock;

/// A plugin's index and name.
#[derive(Clone, Debug, Default)]
pub(crate) struct PluginId {
    /// Two digits.
    pub(crate) index: String,
    /// The name without the index.
    pub(crate) base: String,
}

/// The outcome of RegisterPlugin: `Err` carries the refusal.
pub(crate) type Registration = std::result::Result<(), String>;

/// What the plugin's connection handlers and its handle share.
pub(crate) struct PluginState {
    /// External plugins name themselves; launched ones were named by us.
    pub(crate) external: bool,
    /// Who the plugin is: from RegisterPlugin, or given at launch.
    pub(crate) id: Mutex<PluginId>,
    /// The NRI version the plugin registered with (empty: not sent).
    pub(crate) nri_version: Mutex<String>,
    registered: Sender<Registration>,
    /// Dropped (closing the channel) when the connection closes.
    closed: Mutex<Option<Sender<()>>>,
    /// Why the plugin was dropped, once it was.
    pub(crate) dropped: Mutex<Option<String>>,
    /// The process of a launched plugin.
    pub(crate) child: Mutex<Option<Child>>,
    /// Unsolicited updates received, the latest within the record's budget.
    pub(crate) updates: Mutex<RecordedUpdates>,
    pub(crate) updates_cv: Condvar,
    pub(crate) hub: Arc<Hub>,
}

/// The ends a connection's setup waits on.
pub(crate) struct Waits {
    /// The outcome of RegisterPlugin.
    pub(crate) registered: Receiver<Registration>,
    /// Disconnects when the connection closes.
    pub(crate) closed: Receiver<()>,
}

impl PluginState {
    /// The state of a new connection: an external plugin (`launched`
    /// `None`) or one the runtime launched as `id`.
    pub(crate) fn new(
        hub: Arc<Hub>,
        launched: Option<(PluginId, Child)>,
        max_recorded_update_bytes: usize,
    ) -> (Arc<PluginState>, Waits) {
        let (reg_tx, registered) = crossbeam_channel::bounded(1);
        let (closed_tx, closed) = crossbeam_channel::bounded::<()>(0);
        let external = launched.is_none();
        let (id, child) = match launched {
            Some((id, child)) => (id, Some(child)),
            None => (PluginId::default(), None),
        };
        let state = PluginState {
            external,
            id: Mutex::new(id),
            nri_version: Mutex::new(String::new()),
            registered: reg_tx,
            closed: Mutex::new(Some(closed_tx)),
            dropped: Mutex::new(None),
            child: Mutex::new(child),
            updates: Mutex::new(RecordedUpdates::new(max_recorded_update_bytes)),
            updates_cv: Condvar::new(),
            hub,
        };
        (Arc::new(state), Waits { registered, closed })
    }

    /// `NN-name`, with placeholders for what is not known yet.
    pub(crate) fn full_name(&self) -> String {
        let id = lock(&self.id);
        let index = if id.index.is_empty() {
            "??"
        } else {
            id.index.as_str()
        };
        let base = if id.base.is_empty() {
            "plugin"
        } else {
            id.base.as_str()
        };
        format!("{index}-{base}")
    }

    /// Serves RegisterPlugin, checking an external plugin's identity like
    /// the reference. A refusal is an UNKNOWN status; the connection stays.
    fn register(&self, req: RegisterPluginRequest) -> std::result::Result<Empty, Status> {
        if self.external {
            let refusal = if req.plugin_name.is_empty() {
                Some("invalid (empty) plugin name".to_string())
            } else if crate::api::validate_plugin_index(&req.plugin_idx).is_err() {
                Some(format!(
                    "invalid plugin index: invalid plugin index {:?}, must be 2 digits (00-99)",
                    req.plugin_idx
                ))
            } else {
                None
            };
            if let Some(message) = refusal {
                log::warn!(
                    "refusing registration of plugin {:?} with index {:?}: {message}",
                    req.plugin_name,
                    req.plugin_idx
                );
                let _ = self.registered.try_send(Err(message.clone()));
                return Err(Status::new(Code::Unknown, message));
            }
            *lock(&self.id) = PluginId {
                index: req.plugin_idx,
                base: req.plugin_name,
            };
        }
        let version = if req.NRI_version.is_empty() {
            "unknown"
        } else {
            req.NRI_version.as_str()
        };
        log::info!(
            "plugin {} registered (with NRI version {version})",
            self.full_name()
        );
        *lock(&self.nri_version) = req.NRI_version;
        let _ = self.registered.try_send(Ok(()));
        Ok(Empty::new())
    }

    /// Serves UpdateContainers: hands the updates to the runtime's callback
    /// (after any event in flight, when updates block during events) and
    /// answers with the ones that failed.
    fn update_containers(&self, req: UpdateContainersRequest) -> UpdateContainersResponse {
        let _event = self.hub.event_guard();
        log::info!(
            "plugin {} requested {} container update(s)",
            self.full_name(),
            req.update.len()
        );
        let failed = (self.hub.update_fn)(&req.update);
        let dropped = lock(&self.updates).record(&req.update);
        drop(req);
        if dropped.oldest > 0 {
            log::debug!(
                "plugin {}: dropped the {} oldest recorded updates to stay within the record's \
                 budget",
                self.full_name(),
                dropped.oldest
            );
        }
        if dropped.too_large > 0 {
            log::warn!(
                "plugin {}: {} update(s) not recorded: each holds more memory than the record \
                 of unsolicited updates may",
                self.full_name(),
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
        log::info!("connection to plugin {} closed: {reason}", self.full_name());
        self.mark_dropped(&format!("connection closed: {reason}"));
        lock(&self.closed).take();
        self.kill_child();
    }

    /// Records why the plugin was dropped; the first reason stays.
    pub(crate) fn mark_dropped(&self, reason: &str) {
        let mut dropped = lock(&self.dropped);
        if dropped.is_none() {
            *dropped = Some(reason.to_string());
        }
    }

    pub(crate) fn kill_child(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            log::debug!("killing plugin {} (pid {})", self.full_name(), child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The runtime service this plugin's connection serves.
pub(crate) fn runtime_services(state: &Arc<PluginState>) -> Services {
    let mut services = Services::new();
    let s = state.clone();
    let register = rpc::REGISTER_PLUGIN;
    services.add_unary(register.service, register.method, move |_, req| {
        s.register(req)
    });
    let s = state.clone();
    let update = rpc::UPDATE_CONTAINERS;
    services.add_unary(update.service, update.method, move |_, req| {
        Ok(s.update_containers(req))
    });
    services
}
