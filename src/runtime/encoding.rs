//! Requests encoded from borrowed values, and replies decoded strictly and
//! within a memory limit.
//!
//! The runtime sends the same pod and container to many plugins: a request
//! is written field by field from the caller's values instead of cloning
//! them into a request message first. Each such request carries the type of
//! the message it stands for, so that it goes only to a method taking that
//! message; the tests below check that the bytes are the message's.
//!
//! A plugin's reply is at most 4 MiB on the wire, but a few bytes can stand
//! for a large value once decoded (4 MiB of empty mounts in an adjustment
//! decode to over 200 MB). Before a reply is decoded, the memory its
//! decoded form can hold is bounded from its bytes (with the crate's cost
//! model, the one that bounds the requests a plugin serves); a reply over
//! 64 MiB is not decoded and fails its request with
//! [`Error::DecodedTooLarge`], which, like an oversized message, does not
//! drop the plugin.

use std::marker::PhantomData;

use protobuf::{Message, MessageDyn};

use crate::api::rpc::Rpc;
use crate::api::{Container, Event, PodSandbox, StateChangeEvent};
use crate::{Error, Result};

/// Decodes a reply strictly, unless it could hold more than
/// [`DEFAULT_MAX_DECODED_BYTES`](crate::ttrpc::DEFAULT_MAX_DECODED_BYTES)
/// once decoded (see the module docs).
pub(crate) fn decode<M: Message>(bytes: &[u8]) -> Result<M> {
    crate::ttrpc::decode_reply::<M>(bytes)
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

/// The request shapes of the event RPCs.
pub(crate) mod shape {
    use super::*;

    /// A per-event request: every one of them holds messages only (pod,
    /// container, resources), numbered from 1 in the order given here.
    pub(crate) fn numbered<'a, Req, const N: usize>(
        fields: [&'a dyn MessageDyn; N],
    ) -> Borrowed<'a, Req, N> {
        let mut n = 0;
        Borrowed::new(fields.map(|field| {
            n += 1;
            Part::Message(n, field)
        }))
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
        ContainerAdjustment, CreateContainerResponse, LinuxResources, Mount, RunPodSandboxRequest,
        UpdatePodSandboxRequest,
    };
    use protobuf::{EnumOrUnknown, MessageField};

    #[test]
    fn a_reply_that_would_decode_to_hundreds_of_megabytes_is_not_decoded() {
        // CreateContainerResponse { adjust: { mounts: [{}, {}, ...] } }:
        // two bytes per empty mount, 2 million of them.
        let n = 2_000_000usize;
        let mounts_len = 2 * n;
        let mut adjust = Vec::with_capacity(mounts_len + 8);
        for _ in 0..n {
            adjust.extend([0x1a, 0x00]); // ContainerAdjustment.mounts = 3
        }
        let mut wire = vec![0x0a]; // CreateContainerResponse.adjust = 1
        let mut len = mounts_len;
        while len >= 0x80 {
            wire.push((len as u8) | 0x80);
            len >>= 7;
        }
        wire.push(len as u8);
        wire.extend(adjust);
        match decode::<CreateContainerResponse>(&wire) {
            Err(Error::DecodedTooLarge {
                message,
                wire: w,
                decoded,
                limit,
            }) => {
                assert_eq!(message, "CreateContainerResponse");
                assert_eq!(w, wire.len() as u64);
                assert!(decoded > 200 << 20, "{decoded}");
                assert_eq!(limit, crate::ttrpc::DEFAULT_MAX_DECODED_BYTES as u64);
            }
            other => panic!("{:?}", other.map(|r| r.adjust.mounts.len())),
        }
    }

    #[test]
    fn a_large_ordinary_reply_decodes() {
        let mut adjust = ContainerAdjustment::new();
        for i in 0..20_000 {
            adjust.mounts.push(Mount {
                destination: format!("/mnt/{i}/{}", "d".repeat(64)),
                source: format!("/src/{i}/{}", "s".repeat(64)),
                type_: "bind".into(),
                options: vec!["rbind".into(), "ro".into()],
                ..Default::default()
            });
        }
        let reply = CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        };
        let wire = reply.write_to_bytes().unwrap();
        assert!(wire.len() > 3 << 20, "{}", wire.len());
        assert_eq!(decode::<CreateContainerResponse>(&wire).unwrap(), reply);
    }

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

    /// Each event's kind and request, the request's field numbers, and
    /// whether every field is a message.
    macro_rules! request_fields {
        ($({ name: $name:ident, event: $event:ident, handler: $handler:ident, kind: $kind:ident,
             rpc: $req:ident => $resp:ident, $($rest:tt)* })*) => {
            vec![$({
                let d = <crate::api::$req as protobuf::MessageFull>::descriptor();
                let numbers: Vec<i32> = d.fields().map(|f| f.number()).collect();
                let messages = d.fields().all(|f| matches!(
                    f.runtime_field_type(),
                    protobuf::reflect::RuntimeFieldType::Singular(
                        protobuf::reflect::RuntimeType::Message(_)
                    )
                ));
                (stringify!($kind), stringify!($req), numbers, messages)
            }),*]
        };
    }

    #[test]
    fn every_event_request_sent_borrowed_holds_messages_numbered_from_one() {
        for (kind, request, numbers, messages) in
            crate::event_table::for_each_event!(request_fields)
        {
            if kind == "Validation" {
                // Sent as the message itself.
                continue;
            }
            let from_one: Vec<i32> = (1..=numbers.len() as i32).collect();
            assert_eq!(numbers, from_one, "{request}");
            assert!(messages, "{request} holds a field that is not a message");
        }
    }

    #[test]
    fn borrowed_requests_encode_exactly_like_the_request_messages() {
        let (pod, ctr, res) = sample();
        let overhead = LinuxResources::new();
        let owned = UpdatePodSandboxRequest {
            pod: MessageField::some(pod.clone()),
            overhead_linux_resources: MessageField::some(overhead.clone()),
            linux_resources: MessageField::some(res.clone()),
            ..Default::default()
        };
        let borrowed = shape::numbered::<UpdatePodSandboxRequest, 3>([&pod, &overhead, &res]);
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
