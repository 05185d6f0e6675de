//! Sending one request to one plugin and judging the outcome, as the
//! emulated runtime does: [`Relay`], the sending half of a
//! [`PluginHandle`](super::PluginHandle).
//!
//! - A request for an event the plugin did not subscribe to is not sent
//!   ([`Sent::NotSubscribed`]).
//! - At most one request is in flight per plugin; the request timeout
//!   bounds each request, from the moment it waits for its turn (a
//!   `StateChange` fallback shares it).
//! - Notifications travel as per-event RPCs from the release the event
//!   table gives for them (v0.12); a plugin that answers UNIMPLEMENTED is
//!   switched to `StateChange` for the rest of its connection (one extra
//!   round trip per connection), and a warning is logged once per event.
//!   The events `StateChange` cannot carry have no fallback.
//! - A timeout, a closed connection or a protocol error is fatal: the plugin
//!   is dropped, unless its failure policy keeps it connected and the
//!   failure was a timeout. A status from the plugin only fails the
//!   request. Whether a fatal failure fails the operation is for the caller
//!   relaying to several plugins ([`PluginSet`](super::PluginSet)) to
//!   decide, with the plugin's failure policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protobuf::Message;

use crate::api::rpc::{self, Rpc};
use crate::api::{
    Container, Event, EventMask, FailurePolicy, HandlerKind, PodSandbox, PLUGIN_SERVICE,
};
use crate::ttrpc::{Client, Code, Connection};
use crate::{Error, Result};

use super::call_lock::CallLock;
use super::emulation::Emulation;
use super::encoding::{decode, shape, EncodeRequest};
use super::plugin_state::PluginState;
use crate::locking::lock;
use crate::log_text::Escape;

/// What became of a request.
#[derive(Debug)]
pub(crate) enum Sent<T> {
    /// The plugin answered.
    Reply(T),
    /// The plugin is not subscribed to the event: nothing was sent.
    NotSubscribed,
}

/// True for failures after which the reference drops the plugin (unless
/// its failure policy keeps it through a timeout): no reply in time, a
/// closed or broken connection, a protocol error. A status from the
/// plugin, an oversized message or an undecodable reply only fail the one
/// request.
pub(crate) fn is_fatal(e: &Error) -> bool {
    matches!(
        e,
        Error::DeadlineExceeded { .. }
            | Error::ConnectionClosed(_)
            | Error::Protocol(_)
            | Error::Io { .. }
            | Error::MuxFrameTooLarge { .. }
            | Error::NotConnected
    )
}

/// Whether `event` is a notification: a pod or a container in, nothing
/// out.
fn is_notification(event: Event) -> bool {
    event.facts().is_some_and(|f| {
        matches!(
            f.kind,
            HandlerKind::PodNotification | HandlerKind::ContainerNotification
        )
    })
}

/// Refuses events that are not notifications (they have methods of their
/// own), and a container event without a container.
pub(crate) fn check_notification(event: Event, container: Option<&Container>) -> Result<()> {
    if !is_notification(event) {
        let notifications: Vec<&str> = EventMask::ALL
            .events()
            .filter(|e| is_notification(*e))
            .map(Event::name)
            .collect();
        return Err(Error::Config(format!(
            "{event} is not a notification event (those are {}; the others have their own \
             methods)",
            notifications.join(", ")
        )));
    }
    if event.is_container_event() && container.is_none() {
        return Err(Error::Config(format!(
            "{event} is a container event: it needs a container"
        )));
    }
    Ok(())
}

/// How a [`Relay`] is made.
pub(crate) struct RelaySetup {
    pub(crate) state: Arc<PluginState>,
    pub(crate) conn: Connection,
    pub(crate) client: Client,
    pub(crate) emulation: Emulation,
    pub(crate) request_timeout: Duration,
    pub(crate) name: String,
    pub(crate) events: EventMask,
    pub(crate) policy: FailurePolicy,
}

/// Sends requests to one plugin and judges their outcome.
pub(crate) struct Relay {
    pub(crate) state: Arc<PluginState>,
    pub(crate) conn: Connection,
    client: Client,
    pub(crate) emulation: Emulation,
    pub(crate) request_timeout: Duration,
    /// `NN-name`.
    pub(crate) name: String,
    /// The events the plugin subscribed to.
    pub(crate) events: EventMask,
    /// The failure policy applied to the plugin.
    pub(crate) policy: FailurePolicy,
    /// At most one request in flight.
    call_lock: CallLock,
    /// Set once the plugin answered UNIMPLEMENTED to a per-event RPC:
    /// notifications then go as StateChange for the rest of the connection.
    fallback: AtomicBool,
    /// Events whose StateChange fallback was already warned about.
    warned: Mutex<EventMask>,
}

impl Relay {
    pub(crate) fn new(s: RelaySetup) -> Relay {
        Relay {
            state: s.state,
            conn: s.conn,
            client: s.client,
            emulation: s.emulation,
            request_timeout: s.request_timeout,
            name: s.name,
            events: s.events,
            policy: s.policy,
            call_lock: CallLock::default(),
            fallback: AtomicBool::new(false),
            warned: Mutex::new(EventMask::EMPTY),
        }
    }

    /// True when the plugin subscribed to `event`.
    pub(crate) fn is_subscribed(&self, event: Event) -> bool {
        self.events.is_set(event)
    }

    /// True once notifications go as StateChange for the rest of the
    /// connection.
    pub(crate) fn state_change_fallback(&self) -> bool {
        self.fallback.load(Ordering::Acquire)
    }

    /// Sends `req` as method `rpc` and judges the outcome; for `event`, a
    /// plugin not subscribed is skipped. With `take_event_lock` the call
    /// holds the runtime's event lock (when updates block during events);
    /// callers relaying to several plugins hold it themselves.
    pub(crate) fn request<Req, Resp: Message>(
        &self,
        rpc: Rpc<Req, Resp>,
        event: Option<Event>,
        req: &impl EncodeRequest<Req>,
        take_event_lock: bool,
    ) -> Result<Sent<Resp>> {
        self.exchange(event, rpc.method, take_event_lock, |deadline| {
            req.encode()
                .and_then(|payload| self.call(rpc.method, payload, deadline))
                .and_then(|out| decode::<Resp>(&out))
                .map_err(|e| match event {
                    Some(event) => no_fallback(e, &self.name, event),
                    None => e,
                })
        })
    }

    /// Sends a notification event the way the emulated version does: its
    /// own RPC once the version has it (StateChange after the plugin
    /// answered UNIMPLEMENTED once), StateChange before.
    pub(crate) fn notify(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
        take_event_lock: bool,
    ) -> Result<Sent<()>> {
        check_notification(event, container)?;
        self.exchange(Some(event), event.name(), take_event_lock, |deadline| {
            self.notify_locked(event, pod, container, deadline)
        })
    }

    /// The frame of every request: skips a plugin not subscribed to
    /// `event`, takes the event lock when asked, then the plugin's turn and
    /// sends within one request timeout (the wait for the turn included),
    /// refuses a dropped plugin and judges the outcome.
    fn exchange<T>(
        &self,
        event: Option<Event>,
        what: &str,
        take_event_lock: bool,
        send: impl FnOnce(Instant) -> Result<T>,
    ) -> Result<Sent<T>> {
        if event.is_some_and(|e| !self.is_subscribed(e)) {
            return Ok(Sent::NotSubscribed);
        }
        let _event = if take_event_lock {
            self.state.hub.event_guard()
        } else {
            None
        };
        let deadline = Instant::now() + self.request_timeout;
        let Some(_turn) = self.call_lock.lock_until(deadline) else {
            // The request ahead of this one is judged on its own.
            log::warn!(
                "plugin {}: {what} not sent: the request before it was still in flight after \
                 {:?}",
                Escape(&self.name),
                self.request_timeout
            );
            return Err(Error::DeadlineExceeded {
                service: PLUGIN_SERVICE.to_string(),
                method: what.to_string(),
                peer: format!("plugin {:?}", self.name),
                timeout: self.request_timeout,
            });
        };
        self.ensure_alive()?;
        let outcome = send(deadline);
        self.judge(what, outcome).map(Sent::Reply)
    }

    fn notify_locked(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
        deadline: Instant,
    ) -> Result<()> {
        let own_rpc = self.emulation.profile().sends_own_rpc(event);
        let has_state_change = event.facts().is_some_and(|f| f.state_change);
        if own_rpc && !(has_state_change && self.state_change_fallback()) {
            let req = match container.filter(|_| event.is_container_event()) {
                Some(c) => shape::numbered::<(), 2>([pod, c]).encode()?,
                None => shape::numbered::<(), 1>([pod]).encode()?,
            };
            match self.call(event.name(), req, deadline) {
                Err(Error::Status {
                    code: Code::Unimplemented,
                    message,
                    ..
                }) if has_state_change => {
                    log::info!(
                        "plugin {} does not implement {event} ({}): sending it and every \
                         later notification as StateChange on this connection",
                        Escape(&self.name),
                        Escape(&message)
                    );
                    self.fallback.store(true, Ordering::Release);
                }
                other => {
                    return other
                        .and_then(|out| decode_empty(&out))
                        .map_err(|e| no_fallback(e, &self.name, event))
                }
            }
        } else if !has_state_change {
            return Err(Error::State(format!(
                "a runtime on NRI {} has no way to send {event}",
                self.emulation
            )));
        }
        let req = shape::state_change(event, pod, container).encode()?;
        let out = self.call(rpc::STATE_CHANGE.method, req, deadline)?;
        decode_empty(&out)?;
        if own_rpc {
            let mut warned = lock(&self.warned);
            if !warned.is_set(event) {
                *warned |= event;
                log::warn!(
                    "plugin {} uses deprecated StateChange instead of a dedicated {event} RPC call",
                    Escape(&self.name)
                );
            }
        }
        Ok(())
    }

    /// One call within `deadline`.
    fn call(&self, method: &str, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>> {
        let service = PLUGIN_SERVICE;
        if deadline <= Instant::now() {
            return Err(Error::DeadlineExceeded {
                service: service.to_string(),
                method: method.to_string(),
                peer: format!("plugin {:?}", self.name),
                timeout: self.request_timeout,
            });
        }
        self.client.call_raw_until(
            service,
            method,
            payload,
            deadline,
            self.request_timeout,
            Vec::new(),
        )
    }

    /// Applies the failure rules to an outcome: fatal failures drop the
    /// plugin unless its policy keeps it through a timeout.
    fn judge<T>(&self, what: &str, outcome: Result<T>) -> Result<T> {
        match outcome {
            Ok(v) => Ok(v),
            Err(e) if is_fatal(&e) => {
                let timeout = matches!(e, Error::DeadlineExceeded { .. });
                if timeout && self.policy.keep_connected {
                    log::warn!(
                        "plugin {} did not handle {what} in time; its failure policy keeps it \
                         connected: {}",
                        Escape(&self.name),
                        Escape(&e)
                    );
                } else {
                    if self.policy.keep_connected {
                        log::warn!(
                            "plugin {}: keep_connected only covers timeouts, and {what} failed \
                             otherwise",
                            Escape(&self.name)
                        );
                    }
                    log::error!(
                        "dropping plugin {}: {what} failed: {}",
                        Escape(&self.name),
                        Escape(&e)
                    );
                    self.drop_plugin(&format!("{what} failed: {e}"));
                }
                Err(e)
            }
            Err(e) => {
                log::warn!(
                    "plugin {} failed {what}: {}",
                    Escape(&self.name),
                    Escape(&e)
                );
                Err(e)
            }
        }
    }

    /// Fails at once for a plugin that was dropped or whose connection
    /// closed (dropping it then).
    pub(crate) fn ensure_alive(&self) -> Result<()> {
        if let Some(reason) = lock(&self.state.dropped).clone() {
            return Err(Error::ConnectionClosed(format!(
                "plugin {} was dropped: {reason}",
                self.name
            )));
        }
        if self.conn.is_closed() {
            let reason = self
                .conn
                .close_reason()
                .unwrap_or_else(|| "connection closed".into());
            self.drop_plugin(&format!("connection closed: {reason}"));
            return Err(Error::ConnectionClosed(format!(
                "plugin {} was dropped: connection closed: {reason}",
                self.name
            )));
        }
        Ok(())
    }

    /// Drops the plugin: its connection is closed, a launched one killed.
    pub(crate) fn drop_plugin(&self, reason: &str) {
        self.state.mark_dropped(reason);
        self.conn.close();
        self.state.kill_child();
    }

    /// True while the connection is open and the plugin was not dropped.
    pub(crate) fn is_connected(&self) -> bool {
        !self.conn.is_closed() && lock(&self.state.dropped).is_none()
    }

    /// The error for a request to an event the plugin did not subscribe to.
    pub(crate) fn not_subscribed(&self, event: Event) -> Error {
        let unknown = if self.emulation.valid_events().is_set(event) {
            String::new()
        } else {
            format!(
                "; a runtime on NRI {} does not have this event",
                self.emulation
            )
        };
        Error::State(format!(
            "plugin {} is not subscribed to {event} (it subscribed to {}), so the request was \
             not sent{unknown}",
            self.name,
            if self.events.is_empty() {
                "nothing".to_string()
            } else {
                self.events.to_string()
            }
        ))
    }

    /// The reply, or the error saying the request was not sent.
    pub(crate) fn delivered<T>(&self, event: Event, sent: Sent<T>) -> Result<T> {
        match sent {
            Sent::Reply(r) => Ok(r),
            Sent::NotSubscribed => Err(self.not_subscribed(event)),
        }
    }
}

/// Decodes the empty reply of a notification.
fn decode_empty(bytes: &[u8]) -> Result<()> {
    decode::<crate::api::Empty>(bytes).map(|_| ())
}

/// Adds the rule to an UNIMPLEMENTED answer for an event `StateChange`
/// cannot carry.
fn no_fallback(e: Error, plugin: &str, event: Event) -> Error {
    match e {
        Error::Status {
            service,
            method,
            code: Code::Unimplemented,
            message,
        } if event.facts().is_some_and(|f| !f.state_change) => Error::Status {
            service,
            method,
            code: Code::Unimplemented,
            message: format!(
                "plugin {plugin} subscribed to {event} but does not implement it ({message}); \
                 {event} has no StateChange fallback"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_events_with_a_state_change_form_are_notifications() {
        for e in [
            Event::CREATE_CONTAINER,
            Event::UPDATE_CONTAINER,
            Event::STOP_CONTAINER,
            Event::UPDATE_POD_SANDBOX,
            Event::VALIDATE_CONTAINER_ADJUSTMENT,
            Event::UNKNOWN,
        ] {
            let err = check_notification(e, None).unwrap_err().to_string();
            assert!(err.contains("RunPodSandbox, StopPodSandbox"), "{err}");
        }
        assert!(check_notification(Event::POST_UPDATE_POD_SANDBOX, None).is_ok());
        let e = check_notification(Event::START_CONTAINER, None).unwrap_err();
        assert!(e.to_string().contains("needs a container"), "{e}");
        assert!(check_notification(Event::START_CONTAINER, Some(&Container::new())).is_ok());
    }

    #[test]
    fn the_no_fallback_note_is_for_events_state_change_cannot_carry() {
        let status = |method: &str| Error::Status {
            service: "s".into(),
            method: method.into(),
            code: Code::Unimplemented,
            message: "no".into(),
        };
        let e = no_fallback(
            status("UpdatePodSandbox"),
            "10-p",
            Event::UPDATE_POD_SANDBOX,
        );
        assert!(
            e.to_string()
                .contains("UpdatePodSandbox has no StateChange fallback"),
            "{e}"
        );
        let e = no_fallback(status("StartContainer"), "10-p", Event::START_CONTAINER);
        assert!(!e.to_string().contains("fallback"), "{e}");
    }
}
