//! Taking a connected plugin from its first byte to a [`PluginHandle`]:
//! serving its `RegisterPlugin` and `UpdateContainers` calls, checking its
//! identity, `Configure` (NRI versions both ways, the event mask checked
//! against the emulated version, the failure policy) and `Synchronize`.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::handle::{PluginHandle, MAX_RECORDED_UPDATES};
use super::{lock, Hub, RuntimeInner};
use crate::api::{
    ConfigureRequest, ConfigureResponse, ContainerUpdate, Empty, EventMask, FailurePolicy,
    RegisterPluginRequest, UpdateContainersRequest, UpdateContainersResponse, PLUGIN_SERVICE,
    RUNTIME_SERVICE,
};
use crate::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{
    Code, Connection, ConnectionBuilder, ConnectionOptions, Framing, Services, Status,
};
use crate::{Error, Result};

/// A plugin the runtime started itself.
pub(crate) struct Launched {
    pub(crate) base: String,
    pub(crate) index: String,
    pub(crate) config: String,
    pub(crate) child: Child,
}

/// What the plugin's connection handlers and the handle share.
pub(crate) struct PluginShared {
    /// External plugins name themselves; launched ones were named by us.
    pub(crate) external: bool,
    /// `(index, base name)`.
    pub(crate) identity: Mutex<(String, String)>,
    /// The NRI version the plugin registered with (empty: not sent).
    pub(crate) nri_version: Mutex<String>,
    registered: Sender<std::result::Result<(), String>>,
    /// Dropped (closing the channel) when the connection closes.
    closed: Mutex<Option<Sender<()>>>,
    /// Why the plugin was dropped, once it was.
    pub(crate) dropped: Mutex<Option<String>>,
    pub(crate) child: Mutex<Option<Child>>,
    pub(crate) updates: Mutex<VecDeque<ContainerUpdate>>,
    pub(crate) updates_cv: Condvar,
    pub(crate) hub: Arc<Hub>,
}

impl PluginShared {
    pub(crate) fn full_name(&self) -> String {
        let id = lock(&self.identity);
        let index = if id.0.is_empty() { "??" } else { id.0.as_str() };
        let base = if id.1.is_empty() {
            "plugin"
        } else {
            id.1.as_str()
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
            *lock(&self.identity) = (req.plugin_idx, req.plugin_name);
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
        {
            let mut record = lock(&self.updates);
            record.extend(req.update);
            if record.len() > MAX_RECORDED_UPDATES {
                let excess = record.len() - MAX_RECORDED_UPDATES;
                record.drain(..excess);
                log::debug!(
                    "plugin {}: dropped the {excess} oldest recorded updates (the record keeps {MAX_RECORDED_UPDATES})",
                    self.full_name()
                );
            }
        }
        self.updates_cv.notify_all();
        UpdateContainersResponse {
            failed,
            ..Default::default()
        }
    }

    fn connection_closed(&self, reason: &str) {
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

/// Takes a connected plugin through registration, Configure and
/// Synchronize.
pub(crate) fn start(
    rt: &RuntimeInner,
    stream: UnixStream,
    launched: Option<Launched>,
) -> Result<PluginHandle> {
    let (reg_tx, reg_rx) = crossbeam_channel::bounded(1);
    let (closed_tx, closed_rx) = crossbeam_channel::bounded::<()>(0);
    let (identity, config, child) = match launched {
        Some(l) => ((l.index, l.base), Some(l.config), Some(l.child)),
        None => ((String::new(), String::new()), None, None),
    };
    let shared = Arc::new(PluginShared {
        external: config.is_none(),
        identity: Mutex::new(identity),
        nri_version: Mutex::new(String::new()),
        registered: reg_tx,
        closed: Mutex::new(Some(closed_tx)),
        dropped: Mutex::new(None),
        child: Mutex::new(child),
        updates: Mutex::new(VecDeque::new()),
        updates_cv: Condvar::new(),
        hub: rt.hub.clone(),
    });

    let mut services = Services::new();
    let s = shared.clone();
    services.add_unary(
        RUNTIME_SERVICE,
        "RegisterPlugin",
        move |_ctx, req: RegisterPluginRequest| s.register(req),
    );
    let s = shared.clone();
    services.add_unary(
        RUNTIME_SERVICE,
        "UpdateContainers",
        move |_ctx, req: UpdateContainersRequest| Ok(s.update_containers(req)),
    );
    let s = shared.clone();
    let conn = ConnectionBuilder::new(stream, Framing::Mux)
        .options(ConnectionOptions {
            workers: rt.workers,
            name: "nri-runtime".to_string(),
            ..Default::default()
        })
        .serve(RUNTIME_SERVICE_CONN, Arc::new(services))
        .open(PLUGIN_SERVICE_CONN)
        .on_close(move |reason| s.connection_closed(reason))
        .start();
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            shared.kill_child();
            return Err(e);
        }
    };
    let fail = |e: Error| {
        conn.close();
        shared.kill_child();
        e
    };
    let client = conn.client(PLUGIN_SERVICE_CONN).map_err(fail)?;

    wait_registration(rt, &shared, &conn, &reg_rx, &closed_rx)?;

    let (index, base) = lock(&shared.identity).clone();
    let name = format!("{index}-{base}");
    conn.set_peer(format!("plugin {name:?}"));
    let profile = rt.nri.profile();
    let config = config.unwrap_or_else(|| rt.config_for(&index, &base));
    let req = ConfigureRequest {
        config,
        runtime_name: rt.name.clone(),
        runtime_version: rt.version.clone(),
        registration_timeout: millis(rt.registration_timeout),
        request_timeout: millis(rt.request_timeout),
        NRI_version: if profile.sends_nri_version {
            profile.tag.to_string()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let reply: ConfigureResponse = client
        .call(PLUGIN_SERVICE, "Configure", &req, Some(rt.request_timeout))
        .map_err(|e| {
            log::warn!("failed to configure plugin {name}: {e}");
            fail(e)
        })?;
    let events =
        subscription(&name, reply.events, profile.valid_events, profile.tag).map_err(|e| {
            log::warn!("failed to configure plugin {name}: {e}");
            fail(e)
        })?;
    let policy = failure_policy(&name, &reply, profile.failure_policy, profile.tag);
    log::info!("plugin {name} configured, subscribed to {events}");

    let state = lock(&rt.state).clone();
    let sync_updates = super::sync::synchronize(
        &client,
        &name,
        rt.request_timeout,
        &state.pods,
        &state.containers,
    )
    .map_err(|e| {
        log::warn!("failed to synchronize plugin {name}: {e}");
        fail(e)
    })?;
    log::info!("plugin {name} connected and synchronized");

    let nri_version = lock(&shared.nri_version).clone();
    Ok(PluginHandle::new(
        shared,
        conn,
        client,
        super::handle::Setup {
            version: rt.nri,
            request_timeout: rt.request_timeout,
            name,
            index,
            base,
            events,
            policy,
            sync_updates,
            nri_version,
        },
    ))
}

/// The events a plugin subscribed to with `bits`: 0 means every event
/// the version knows; bits outside `valid` are refused, naming them.
pub(crate) fn subscription(
    plugin: &str,
    bits: i32,
    valid: EventMask,
    version: &str,
) -> Result<EventMask> {
    let events = EventMask::from_bits(bits);
    if events.is_empty() {
        return Ok(valid);
    }
    let extra = bits & !valid.bits();
    if extra == 0 {
        return Ok(events);
    }
    let names = EventMask::from_bits(extra & EventMask::ALL.bits()).to_string();
    let unknown = extra & !EventMask::ALL.bits();
    let mut what = names;
    if unknown != 0 {
        if !what.is_empty() {
            what.push_str(" and ");
        }
        what.push_str(&format!("unknown bits 0x{unknown:x}"));
    }
    Err(Error::Protocol(format!(
        "plugin {plugin}: invalid plugin events: 0x{extra:x} ({what}); a runtime on NRI \
         {version} accepts only events within 0x{:x}",
        valid.bits()
    )))
}

/// The failure policy the runtime applies to the plugin: the one in its
/// Configure reply when the version honours policies, else the default
/// (drop the plugin, let the request proceed).
fn failure_policy(
    plugin: &str,
    reply: &ConfigureResponse,
    honoured: bool,
    version: &str,
) -> FailurePolicy {
    let Some(policy) = reply.failure_policy.as_ref() else {
        return FailurePolicy::new();
    };
    if !honoured {
        log::debug!(
            "plugin {plugin} sent a failure policy (fail_request={}, keep_connected={}); a runtime \
             on NRI {version} ignores it",
            policy.fail_request,
            policy.keep_connected
        );
        return FailurePolicy::new();
    }
    log::info!(
        "plugin {plugin} failure policy: fail_request={}, keep_connected={}",
        policy.fail_request,
        policy.keep_connected
    );
    FailurePolicy {
        fail_request: policy.fail_request,
        keep_connected: policy.keep_connected,
        ..Default::default()
    }
}

fn wait_registration(
    rt: &RuntimeInner,
    shared: &PluginShared,
    conn: &Connection,
    reg_rx: &Receiver<std::result::Result<(), String>>,
    closed_rx: &Receiver<()>,
) -> Result<()> {
    let timeout = rt.registration_timeout;
    crossbeam_channel::select! {
        recv(reg_rx) -> r => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => {
                // Like the reference: refuse, but leave closing to the plugin.
                rt.keep_refused(conn.clone());
                Err(Error::RegistrationRefused { plugin: shared.full_name(), message })
            }
            Err(_) => Err(Error::ConnectionClosed("plugin registration channel closed".into())),
        },
        recv(closed_rx) -> _ => Err(Error::ConnectionClosed(format!(
            "plugin connection closed before registration: {}",
            conn.close_reason().unwrap_or_else(|| "connection closed".into())
        ))),
        default(timeout) => {
            log::warn!("plugin {} did not register within {timeout:?}", shared.full_name());
            conn.close();
            shared.kill_child();
            Err(Error::DeadlineExceeded {
                service: RUNTIME_SERVICE.to_string(),
                method: "RegisterPlugin".to_string(),
                peer: String::new(),
                timeout,
            })
        }
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    #[test]
    fn a_v0_9_subscription_to_pod_updates_is_refused_naming_the_bits_and_the_rule() {
        let bits = (Event::CREATE_CONTAINER.mask()
            | Event::UPDATE_POD_SANDBOX.mask()
            | Event::POST_UPDATE_POD_SANDBOX.mask())
        .bits();
        let e = subscription("10-ext", bits, EventMask::V0_9_EVENTS, "v0.9.0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol violation: plugin 10-ext: invalid plugin events: 0x1800 \
             (UpdatePodSandbox,PostUpdatePodSandbox); a runtime on NRI v0.9.0 accepts only \
             events within 0x7ff"
        );
        assert_eq!(
            subscription("10-ext", bits, EventMask::ALL, "v0.12.5").unwrap(),
            EventMask::from_bits(bits)
        );
    }

    #[test]
    fn a_zero_mask_means_every_event_of_the_version_and_unknown_bits_are_named() {
        assert_eq!(
            subscription("p", 0, EventMask::V0_9_EVENTS, "v0.9.0").unwrap(),
            EventMask::V0_9_EVENTS
        );
        let e = subscription("p", 1 << 20, EventMask::ALL, "v0.12.5").unwrap_err();
        assert!(e.to_string().contains("unknown bits 0x100000"), "{e}");
    }
}
