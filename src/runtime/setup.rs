//! Taking a connected plugin from its first byte to a [`PluginHandle`]:
//! its registration (read before the connection starts, see
//! `registration.rs`), then a [`Connection`] serving its `UpdateContainers`
//! calls, `Configure` (NRI versions both ways, the event mask checked
//! against the emulated version, the failure policy) and `Synchronize`.

use super::process::Process;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{rpc, ConfigureRequest, ConfigureResponse, EventMask, FailurePolicy};
use crate::mux::{PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN};
use crate::ttrpc::{ConnectionBuilder, ConnectionOptions, Framing};
use crate::{Error, Result};

use super::encoding::{decode_reply, EncodeRequest};
use super::handle::{PluginHandle, Registered};
use super::host_state::HostState;
use super::launch::kill_and_reap;
use super::plugin_state::{self, PluginState};
use super::registration::{register_within, Outcome, Registration};
use super::relay::{Relay, RelaySetup};
use super::synchronize_chunks::synchronize;
use crate::api::PluginId;
use crate::log_text::Escape;

/// A plugin the runtime started itself.
pub(crate) struct Launched {
    /// The identity it was started with.
    pub(crate) id: PluginId,
    /// Its configuration.
    pub(crate) config: String,
    pub(crate) child: Process,
}

/// Takes a connected plugin through registration (on this thread, within
/// the registration timeout), Configure and Synchronize.
pub(crate) fn start(
    host: &HostState,
    stream: UnixStream,
    launched: Option<Launched>,
) -> Result<PluginHandle> {
    let timeout = host.settings.registration_timeout;
    match register_within(stream, launched.is_none(), timeout) {
        Outcome::Registered(r) => finish(host, r, launched),
        Outcome::Refused(e, stream) => {
            // Like the reference: refuse, but leave closing to the plugin.
            host.refused.hold(stream);
            Err(e)
        }
        Outcome::Failed(e) => {
            let timed_out = matches!(e, Error::DeadlineExceeded { .. });
            match launched {
                Some(l) => {
                    let name = l.id.full_name();
                    if timed_out {
                        log::warn!("plugin {name} did not register within {timeout:?}");
                    }
                    kill_and_reap(l.child, &name);
                }
                None if timed_out => {
                    log::warn!("a plugin connection did not register within {timeout:?}")
                }
                None => {}
            }
            Err(e)
        }
    }
}

/// Takes a registered plugin on: answers its registration, starts its
/// connection, configures and synchronizes it.
pub(crate) fn finish(
    host: &HostState,
    registration: Registration,
    launched: Option<Launched>,
) -> Result<PluginHandle> {
    let settings = &host.settings;
    let (config, launched) = match launched {
        Some(l) => (Some(l.config), Some((l.id, l.child))),
        None => (None, None),
    };
    let request = &registration.request;
    let (id, child) = match launched {
        Some((id, child)) => (id, Some(child)),
        None => (
            PluginId {
                index: request.plugin_idx.clone(),
                name: request.plugin_name.clone(),
            },
            None,
        ),
    };
    let name = id.full_name();
    let nri_version = request.NRI_version.clone();
    log::info!(
        "plugin {} registered (with NRI version {})",
        Escape(&name),
        Escape(if nri_version.is_empty() {
            "unknown"
        } else {
            nri_version.as_str()
        })
    );
    let stream = match registration.accept(settings.request_timeout) {
        Ok((stream, _)) => stream,
        Err(e) => {
            if let Some(child) = child {
                kill_and_reap(child, &name);
            }
            return Err(e);
        }
    };
    let state = PluginState::new(
        host.hub.clone(),
        &id,
        child,
        settings.max_recorded_update_bytes,
    );
    let services = plugin_state::runtime_services(&state);
    let s = state.clone();
    let conn = ConnectionBuilder::new(stream, Framing::Mux)
        .options(ConnectionOptions {
            workers: settings.workers,
            name: "nri-runtime".to_string(),
            peer: format!("plugin {name:?}"),
            // A plugin that takes nothing for a request timeout has stopped
            // reading: its requests could not be answered in time anyway.
            write_timeout: settings.request_timeout.max(Duration::from_millis(1)),
            ..Default::default()
        })
        .serve(RUNTIME_SERVICE_CONN, Arc::new(services))
        .open(PLUGIN_SERVICE_CONN)
        .on_close(move |reason| s.connection_closed(reason))
        .start();
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            state.kill_child();
            return Err(e);
        }
    };
    let fail = |e: Error| {
        conn.close();
        state.kill_child();
        e
    };
    let client = conn.client(PLUGIN_SERVICE_CONN).map_err(fail)?;

    let profile = settings.emulation.profile();
    let config = config.unwrap_or_else(|| settings.config_for(&id.index, &id.name));
    let req = ConfigureRequest {
        config,
        runtime_name: settings.name.clone(),
        runtime_version: settings.version.clone(),
        registration_timeout: millis(settings.registration_timeout),
        request_timeout: millis(settings.request_timeout),
        NRI_version: if profile.sends_nri_version {
            profile.tag.to_string()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let configure = rpc::CONFIGURE;
    let reply = req
        .encode()
        .and_then(|payload| {
            client.call_raw(
                configure.service,
                configure.method,
                payload,
                Some(settings.request_timeout),
                Vec::new(),
            )
        })
        .and_then(|out| decode_reply(configure, &out))
        .and_then(|reply| {
            let events = subscription(&name, reply.events, profile.valid_events, profile.tag)?;
            Ok((reply, events))
        });
    let (reply, events) = reply.map_err(|e| {
        log::warn!(
            "failed to configure plugin {}: {}",
            Escape(&name),
            Escape(&e)
        );
        fail(e)
    })?;
    let policy = failure_policy(&name, &reply, profile.failure_policy, profile.tag);
    log::info!(
        "plugin {} configured, subscribed to {events}",
        Escape(&name)
    );

    let inventory = crate::locking::lock(&host.inventory).clone();
    let sync_updates = synchronize(
        &client,
        &name,
        settings.request_timeout,
        &inventory.pods,
        &inventory.containers,
    )
    .map_err(|e| {
        log::warn!(
            "failed to synchronize plugin {}: {}",
            Escape(&name),
            Escape(&e)
        );
        fail(e)
    })?;
    log::info!("plugin {} connected and synchronized", Escape(&name));

    let relay = Relay::new(RelaySetup {
        state,
        conn,
        client,
        emulation: settings.emulation,
        request_timeout: settings.request_timeout,
        name,
        events,
        policy,
    });
    let registered = Registered {
        id,
        sync_updates,
        nri_version,
    };
    Ok(PluginHandle::new(relay, registered))
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
            "plugin {} sent a failure policy (fail_request={}, keep_connected={}); a runtime \
             on NRI {version} ignores it",
            Escape(plugin),
            policy.fail_request,
            policy.keep_connected
        );
        return FailurePolicy::new();
    }
    log::info!(
        "plugin {} failure policy: fail_request={}, keep_connected={}",
        Escape(plugin),
        policy.fail_request,
        policy.keep_connected
    );
    FailurePolicy {
        fail_request: policy.fail_request,
        keep_connected: policy.keep_connected,
        ..Default::default()
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
