//! `wire-sizes`: the bytes one CreateContainer request and reply of the
//! benchmark occupy on the socket (mux + ttrpc headers and envelopes).

use nri::api::{CreateContainerRequest, CreateContainerResponse, PLUGIN_SERVICE};
use nri::ttrpc::{Request, Response};
use protobuf::{Message, MessageField};

use crate::common;

/// Bytes of one ttrpc message on the NRI trunk: mux header(s), ttrpc
/// header, envelope. Messages over 4096 bytes travel as two mux frames.
fn on_trunk(envelope: usize) -> usize {
    let msg = 10 + envelope;
    if msg <= 4096 {
        msg + 8
    } else {
        msg + 16
    }
}

pub fn wire_sizes() -> (usize, usize) {
    let pod = common::pod(1);
    let ctr = common::container(1, &pod);
    let req = CreateContainerRequest {
        pod: MessageField::some(pod),
        container: MessageField::some(ctr),
        ..Default::default()
    };
    let envelope = Request {
        service: PLUGIN_SERVICE.to_string(),
        method: "CreateContainer".to_string(),
        payload: req.write_to_bytes().unwrap_or_default(),
        timeout_nano: 2_000_000_000,
        ..Default::default()
    };
    let reply = CreateContainerResponse {
        adjust: MessageField::some(common::adjust()),
        ..Default::default()
    };
    let mut resp = Response {
        payload: reply.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    };
    resp.status = MessageField::some(Default::default());
    (
        on_trunk(envelope.compute_size() as usize),
        on_trunk(resp.compute_size() as usize),
    )
}
