//! Sending one request to one plugin and judging the outcome, as the
//! emulated runtime does.
//!
//! - A request for an event the plugin did not subscribe to is not sent
//!   ([`Sent::NotSubscribed`]).
//! - At most one request is in flight per plugin; the request timeout
//!   bounds each request (a `StateChange` fallback shares it).
//! - Notifications travel as per-event RPCs from v0.12 on; a plugin that
//!   answers UNIMPLEMENTED is switched to `StateChange` for the rest of its
//!   connection (one extra round trip per connection), and a warning is
//!   logged once per event. UpdatePodSandbox and ValidateContainerAdjustment
//!   have no fallback.
//! - A timeout, a closed connection or a protocol error is fatal: the plugin
//!   is dropped, unless its failure policy keeps it connected and the
//!   failure was a timeout. A status from the plugin only fails the
//!   request. Whether a fatal failure fails the operation is for the caller
//!   relaying to several plugins ([`PluginSet`](super::PluginSet)) to
//!   decide, with [`PluginHandle::failure_policy`].

use std::time::Instant;

use protobuf::{Message, MessageDyn};

use super::handle::PluginHandle;
use super::lock;
use crate::api::{Container, Empty, Event, PodSandbox, PLUGIN_SERVICE};
use crate::ttrpc::Code;
use crate::{Error, Result};

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

/// True for the notifications that have a `StateChange` form: every event
/// but CreateContainer, UpdateContainer, StopContainer, UpdatePodSandbox and
/// ValidateContainerAdjustment.
pub(crate) fn is_notification(event: Event) -> bool {
    matches!(
        event,
        Event::RUN_POD_SANDBOX
            | Event::POST_UPDATE_POD_SANDBOX
            | Event::STOP_POD_SANDBOX
            | Event::REMOVE_POD_SANDBOX
            | Event::POST_CREATE_CONTAINER
            | Event::START_CONTAINER
            | Event::POST_START_CONTAINER
            | Event::POST_UPDATE_CONTAINER
            | Event::REMOVE_CONTAINER
    )
}

/// Refuses events that are not notifications, and a container with a pod
/// event or none with a container event.
pub(crate) fn check_notification(event: Event, container: Option<&Container>) -> Result<()> {
    if !is_notification(event) {
        return Err(Error::Config(format!(
            "{event} is not a notification event (those are RunPodSandbox, \
             PostUpdatePodSandbox, StopPodSandbox, RemovePodSandbox, PostCreateContainer, \
             StartContainer, PostStartContainer, PostUpdateContainer and RemoveContainer; \
             the others have their own methods)"
        )));
    }
    if event.is_container_event() && container.is_none() {
        return Err(Error::Config(format!(
            "{event} is a container event: it needs a container"
        )));
    }
    Ok(())
}

impl PluginHandle {
    /// Sends one request and judges the outcome. With `take_event_lock`
    /// the call holds the runtime's event lock (when updates block during
    /// events); callers relaying to several plugins hold it themselves.
    pub(crate) fn relay<Req: EncodeRequest + ?Sized, Resp: Message>(
        &self,
        event: Option<Event>,
        method: &'static str,
        req: &Req,
        take_event_lock: bool,
    ) -> Result<Sent<Resp>> {
        self.exchange(event, method, take_event_lock, |deadline| {
            req.encode()
                .and_then(|payload| self.call(method, payload, deadline))
                .and_then(|out| decode::<Resp>(&out))
        })
    }

    /// Sends a notification event the way the emulated version does: its
    /// own RPC from v0.12 on (StateChange after the plugin answered
    /// UNIMPLEMENTED once), StateChange before.
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
    /// `event`, takes the event lock when asked and the plugin's call lock,
    /// refuses a dropped plugin, runs `send` within the request timeout and
    /// judges its outcome.
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
            self.shared.hub.event_guard()
        } else {
            None
        };
        let _call = lock(&self.call_lock);
        self.ensure_alive()?;
        let outcome = send(Instant::now() + self.request_timeout);
        self.judge(what, outcome).map(Sent::Reply)
    }

    fn notify_locked(
        &self,
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
        deadline: Instant,
    ) -> Result<()> {
        let per_event = self.version.profile().per_event_rpcs;
        if per_event && !self.state_change_fallback() {
            // {pod = 1, container = 2}: the request of every per-event RPC.
            let req = match container.filter(|_| event.is_container_event()) {
                Some(c) => Parts(&[Part::Message(1, pod), Part::Message(2, c)]).encode()?,
                None => Parts(&[Part::Message(1, pod)]).encode()?,
            };
            match self.call(event.name(), req, deadline) {
                Err(Error::Status {
                    code: Code::Unimplemented,
                    message,
                    ..
                }) => {
                    log::info!(
                        "plugin {} does not implement {event} ({message}): sending it and every \
                         later notification as StateChange on this connection",
                        self.name
                    );
                    self.fallback
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                other => return other.and_then(|out| decode::<Empty>(&out)).map(|_| ()),
            }
        }
        // StateChangeEvent{event = 1, pod = 2, container = 3}.
        let (kind, pod) = (Part::Enum(1, event as i32), Part::Message(2, pod));
        let req = match container {
            Some(c) => Parts(&[kind, pod, Part::Message(3, c)]).encode()?,
            None => Parts(&[kind, pod]).encode()?,
        };
        let out = self.call("StateChange", req, deadline)?;
        decode::<Empty>(&out)?;
        if per_event {
            let mut warned = lock(&self.warned);
            if !warned.is_set(event) {
                *warned |= event.mask();
                log::warn!(
                    "plugin {} uses deprecated StateChange instead of a dedicated {event} RPC call",
                    self.name
                );
            }
        }
        Ok(())
    }

    /// One call within `deadline`.
    fn call(&self, method: &str, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::DeadlineExceeded {
                service: PLUGIN_SERVICE.to_string(),
                method: method.to_string(),
                peer: format!("plugin {:?}", self.name),
                timeout: self.request_timeout,
            });
        }
        self.client.call_raw_until(
            PLUGIN_SERVICE,
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
                         connected: {e}",
                        self.name
                    );
                } else {
                    if self.policy.keep_connected {
                        log::warn!(
                            "plugin {}: keep_connected only covers timeouts, and {what} failed \
                             otherwise",
                            self.name
                        );
                    }
                    log::error!("dropping plugin {}: {what} failed: {e}", self.name);
                    self.drop_plugin(&format!("{what} failed: {e}"));
                }
                Err(e)
            }
            Err(e) => {
                log::warn!("plugin {} failed {what}: {e}", self.name);
                Err(e)
            }
        }
    }

    pub(crate) fn ensure_alive(&self) -> Result<()> {
        if let Some(reason) = lock(&self.shared.dropped).clone() {
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

    pub(crate) fn drop_plugin(&self, reason: &str) {
        self.shared.mark_dropped(reason);
        self.conn.close();
        self.shared.kill_child();
    }
}

/// Decodes a reply strictly.
pub(crate) fn decode<M: Message>(bytes: &[u8]) -> Result<M> {
    crate::pb::decode::<M>(bytes).map_err(|e| Error::Protobuf {
        what: "decoding",
        message: M::NAME,
        source: e,
    })
}

/// A request the runtime can send: any message, or [`Parts`] borrowed from
/// the caller.
pub(crate) trait EncodeRequest {
    /// The encoded request.
    fn encode(&self) -> Result<Vec<u8>>;
}

impl<M: Message> EncodeRequest for M {
    fn encode(&self) -> Result<Vec<u8>> {
        self.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: M::NAME,
            source: e,
        })
    }
}

/// One field of a request encoded from borrowed values.
pub(crate) enum Part<'a> {
    /// A message field: its number and value.
    Message(u32, &'a dyn MessageDyn),
    /// An enum field: its number and value (0, the default, is not written).
    Enum(u32, i32),
}

/// A request message written field by field from borrowed values, so the
/// runtime need not clone a pod and a container into a request just to
/// encode it. Fields must be listed in field-number order.
pub(crate) struct Parts<'a>(pub(crate) &'a [Part<'a>]);

impl EncodeRequest for Parts<'_> {
    fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut os = protobuf::CodedOutputStream::vec(&mut out);
        let res = self.0.iter().try_for_each(|f| match f {
            Part::Message(n, m) => os
                .write_tag(*n, protobuf::rt::WireType::LengthDelimited)
                .and_then(|()| os.write_message_no_tag_dyn(*m)),
            Part::Enum(_, 0) => Ok(()),
            Part::Enum(n, v) => os.write_enum(*n, *v),
        });
        res.and_then(|()| os.flush()).map_err(|e| Error::Protobuf {
            what: "encoding",
            message: "request fields",
            source: e,
        })?;
        drop(os);
        Ok(out)
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    fn state_change_event(
        event: Event,
        pod: &PodSandbox,
        container: Option<&Container>,
    ) -> StateChangeEvent {
        StateChangeEvent {
            event: EnumOrUnknown::new(event),
            pod: MessageField::some(pod.clone()),
            container: MessageField::from_option(container.cloned()),
            ..Default::default()
        }
    }

    use crate::api::{
        CreateContainerRequest, LinuxResources, PostCreateContainerRequest, RunPodSandboxRequest,
        StateChangeEvent, UpdateContainerRequest,
    };
    use protobuf::{EnumOrUnknown, MessageField};

    fn sample() -> (PodSandbox, Container, LinuxResources) {
        let mut pod = PodSandbox::new();
        pod.id = "pod-1".into();
        pod.labels.insert("app".into(), "web".into());
        let mut ctr = Container::new();
        ctr.id = "ctr-1".into();
        ctr.env = vec!["A=1".into(), "B=2".into()];
        let mut res = LinuxResources::new();
        res.cpu.mut_or_insert_default().cpus = "0-3".into();
        (pod, ctr, res)
    }

    #[test]
    fn borrowed_parts_encode_exactly_like_the_request_messages() {
        let (pod, ctr, res) = sample();
        let owned = CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            ..Default::default()
        };
        let parts = Parts(&[Part::Message(1, &pod), Part::Message(2, &ctr)]);
        assert_eq!(parts.encode().unwrap(), owned.encode().unwrap());
        let owned = PostCreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            ..Default::default()
        };
        assert_eq!(parts.encode().unwrap(), owned.encode().unwrap());
        let owned = RunPodSandboxRequest {
            pod: MessageField::some(pod.clone()),
            ..Default::default()
        };
        assert_eq!(
            Parts(&[Part::Message(1, &pod)]).encode().unwrap(),
            owned.encode().unwrap()
        );

        let owned = UpdateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            linux_resources: MessageField::some(res.clone()),
            ..Default::default()
        };
        let parts = Parts(&[
            Part::Message(1, &pod),
            Part::Message(2, &ctr),
            Part::Message(3, &res),
        ]);
        assert_eq!(parts.encode().unwrap(), owned.encode().unwrap());

        for container in [None, Some(&ctr)] {
            let owned = state_change_event(Event::START_CONTAINER, &pod, container);
            let mut f = vec![
                Part::Enum(1, Event::START_CONTAINER as i32),
                Part::Message(2, &pod),
            ];
            if let Some(c) = container {
                f.push(Part::Message(3, c));
            }
            assert_eq!(Parts(&f).encode().unwrap(), owned.encode().unwrap());
        }
    }

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
            assert!(check_notification(e, None).is_err(), "{e}");
        }
        assert!(check_notification(Event::POST_UPDATE_POD_SANDBOX, None).is_ok());
        let e = check_notification(Event::START_CONTAINER, None).unwrap_err();
        assert!(e.to_string().contains("needs a container"), "{e}");
        assert!(check_notification(Event::START_CONTAINER, Some(&Container::new())).is_ok());
    }
}
