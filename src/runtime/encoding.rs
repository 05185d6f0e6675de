//! Requests encoded from borrowed values, and replies decoded strictly.
//!
//! The runtime sends the same pod and container to many plugins: a request
//! is written field by field from the caller's values instead of cloning
//! them into a request message first. Each such request carries the type of
//! the message it stands for, so that it goes only to a method taking that
//! message; the tests below check that the bytes are the message's.

use std::marker::PhantomData;

use protobuf::{Message, MessageDyn};

use crate::api::rpc::Rpc;
use crate::api::{Container, Event, LinuxResources, PodSandbox, StateChangeEvent};
use crate::{Error, Result};

/// Decodes a reply strictly.
pub(crate) fn decode<M: Message>(bytes: &[u8]) -> Result<M> {
    crate::pb::decode::<M>(bytes).map_err(|e| Error::Protobuf {
        what: "decoding",
        message: M::NAME,
        source: e,
    })
}

/// Decodes the reply of method `rpc` strictly.
pub(crate) fn decode_reply<Req, Resp: Message>(_rpc: Rpc<Req, Resp>, bytes: &[u8]) -> Result<Resp> {
    decode(bytes)
}

/// A request of type `Req` the runtime can send: the message itself, or
/// [`Borrowed`] fields standing for it.
pub(crate) trait EncodeRequest<Req> {
    /// The encoded request.
    fn encode(&self) -> Result<Vec<u8>>;
}

impl<M: Message> EncodeRequest<M> for M {
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
    /// A field left unset.
    Unset,
}

/// A request message of type `Req` written field by field from borrowed
/// values, so the runtime need not clone a pod and a container into a
/// request just to encode it. Fields must be listed in field-number order.
pub(crate) struct Borrowed<'a, Req, const N: usize> {
    fields: [Part<'a>; N],
    request: PhantomData<fn() -> Req>,
}

impl<'a, Req, const N: usize> Borrowed<'a, Req, N> {
    /// The request made of `fields`.
    pub(crate) fn new(fields: [Part<'a>; N]) -> Self {
        Borrowed {
            fields,
            request: PhantomData,
        }
    }
}

impl<Req, const N: usize> EncodeRequest<Req> for Borrowed<'_, Req, N> {
    fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut os = protobuf::CodedOutputStream::vec(&mut out);
        let res = self.fields.iter().try_for_each(|f| match f {
            Part::Message(n, m) => os
                .write_tag(*n, protobuf::rt::WireType::LengthDelimited)
                .and_then(|()| os.write_message_no_tag_dyn(*m)),
            Part::Enum(_, 0) | Part::Unset => Ok(()),
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

/// The request shapes of the event RPCs, by the fields they carry. Every
/// per-event request numbers its fields from 1 in this order.
pub(crate) mod shape {
    use super::*;

    /// `{pod = 1}`.
    pub(crate) fn pod<Req>(pod: &PodSandbox) -> Borrowed<'_, Req, 1> {
        Borrowed::new([Part::Message(1, pod)])
    }

    /// `{pod = 1, container = 2}`.
    pub(crate) fn pod_container<'a, Req>(
        pod: &'a PodSandbox,
        container: &'a Container,
    ) -> Borrowed<'a, Req, 2> {
        Borrowed::new([Part::Message(1, pod), Part::Message(2, container)])
    }

    /// `{pod = 1, container = 2, linux_resources = 3}`.
    pub(crate) fn pod_container_resources<'a, Req>(
        pod: &'a PodSandbox,
        container: &'a Container,
        resources: &'a LinuxResources,
    ) -> Borrowed<'a, Req, 3> {
        Borrowed::new([
            Part::Message(1, pod),
            Part::Message(2, container),
            Part::Message(3, resources),
        ])
    }

    /// `{pod = 1, overhead_linux_resources = 2, linux_resources = 3}`.
    pub(crate) fn pod_resources<'a, Req>(
        pod: &'a PodSandbox,
        overhead: &'a LinuxResources,
        resources: &'a LinuxResources,
    ) -> Borrowed<'a, Req, 3> {
        Borrowed::new([
            Part::Message(1, pod),
            Part::Message(2, overhead),
            Part::Message(3, resources),
        ])
    }

    /// `StateChangeEvent{event = 1, pod = 2, container = 3}`.
    pub(crate) fn state_change<'a>(
        event: Event,
        pod: &'a PodSandbox,
        container: Option<&'a Container>,
    ) -> Borrowed<'a, StateChangeEvent, 3> {
        Borrowed::new([
            Part::Enum(1, event as i32),
            Part::Message(2, pod),
            container.map_or(Part::Unset, |c| Part::Message(3, c)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        CreateContainerRequest, RunPodSandboxRequest, UpdateContainerRequest,
        UpdatePodSandboxRequest,
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

    fn bytes<Req>(r: &impl EncodeRequest<Req>) -> Vec<u8> {
        r.encode().unwrap()
    }

    #[test]
    fn borrowed_shapes_encode_exactly_like_the_request_messages() {
        let (pod, ctr, res) = sample();
        let owned = RunPodSandboxRequest {
            pod: MessageField::some(pod.clone()),
            ..Default::default()
        };
        assert_eq!(
            bytes(&shape::pod::<RunPodSandboxRequest>(&pod)),
            bytes(&owned)
        );
        let owned = CreateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            ..Default::default()
        };
        let borrowed = shape::pod_container::<CreateContainerRequest>(&pod, &ctr);
        assert_eq!(bytes(&borrowed), bytes(&owned));
        let owned = UpdateContainerRequest {
            pod: MessageField::some(pod.clone()),
            container: MessageField::some(ctr.clone()),
            linux_resources: MessageField::some(res.clone()),
            ..Default::default()
        };
        let borrowed = shape::pod_container_resources::<UpdateContainerRequest>(&pod, &ctr, &res);
        assert_eq!(bytes(&borrowed), bytes(&owned));
        let overhead = LinuxResources::new();
        let owned = UpdatePodSandboxRequest {
            pod: MessageField::some(pod.clone()),
            overhead_linux_resources: MessageField::some(overhead.clone()),
            linux_resources: MessageField::some(res.clone()),
            ..Default::default()
        };
        let borrowed = shape::pod_resources::<UpdatePodSandboxRequest>(&pod, &overhead, &res);
        assert_eq!(bytes(&borrowed), bytes(&owned));
        for container in [None, Some(&ctr)] {
            let owned = StateChangeEvent {
                event: EnumOrUnknown::new(Event::START_CONTAINER),
                pod: MessageField::some(pod.clone()),
                container: MessageField::from_option(container.cloned()),
                ..Default::default()
            };
            let borrowed = shape::state_change(Event::START_CONTAINER, &pod, container);
            assert_eq!(bytes(&borrowed), bytes(&owned));
        }
    }

    #[test]
    fn a_strict_decode_names_the_message() {
        let err = decode::<RunPodSandboxRequest>(&[0x0a, 0x05]).unwrap_err();
        assert!(err.to_string().contains("RunPodSandboxRequest"), "{err}");
    }
}
