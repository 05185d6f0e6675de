//! Fuzzes protobuf decoding of the NRI messages that arrive from a peer:
//! the requests a runtime sends a plugin (`Configure`, `Synchronize`,
//! `CreateContainer`, `UpdateContainer`, `StopContainer`, `StateChange`,
//! and NRI v0.12's per-event requests, `UpdatePodSandbox` and
//! `ValidateContainerAdjustment`), the replies and calls a plugin sends a
//! runtime (the `*Response` types, `RegisterPlugin`, `UpdateContainers`),
//! and the ttrpc envelopes around them. The whole input is decoded as each
//! type.
//!
//! For every message that decodes, the round trip must be stable:
//! re-encoding succeeds with the size `compute_size` promised, the result
//! decodes again to an equal message, and encoding that gives the same
//! number of bytes. (Byte equality is not required: map entries and
//! unknown fields are written in hash-map order.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::api::{
    ConfigureRequest, ConfigureResponse, CreateContainerRequest, CreateContainerResponse,
    PostCreateContainerRequest, PostUpdatePodSandboxRequest, RegisterPluginRequest,
    RemoveContainerRequest, RunPodSandboxRequest, StateChangeEvent, StopContainerRequest,
    StopContainerResponse, SynchronizeRequest, SynchronizeResponse, UpdateContainerRequest,
    UpdateContainerResponse, UpdateContainersRequest, UpdateContainersResponse,
    UpdatePodSandboxRequest, ValidateContainerAdjustmentRequest,
    ValidateContainerAdjustmentResponse,
};
use nri::ttrpc::{Request, Response};
use protobuf::Message;

fn round_trip<M: Message + PartialEq>(data: &[u8]) {
    let Ok(first) = M::parse_from_bytes(data) else {
        return;
    };
    let size = first.compute_size();
    let bytes = first
        .write_to_bytes()
        .unwrap_or_else(|e| panic!("decoded {} does not re-encode: {e}", M::NAME));
    assert_eq!(
        bytes.len() as u64,
        size,
        "{}: compute_size disagrees",
        M::NAME
    );
    let second = M::parse_from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("re-encoded {} does not decode: {e}", M::NAME));
    assert!(
        first == second,
        "{}: round trip changed the message",
        M::NAME
    );
    let again = second
        .write_to_bytes()
        .unwrap_or_else(|e| panic!("{} does not re-encode twice: {e}", M::NAME));
    assert_eq!(
        again.len(),
        bytes.len(),
        "{}: encoded size not stable",
        M::NAME
    );
}

fuzz_target!(|data: &[u8]| {
    // Runtime -> plugin.
    round_trip::<ConfigureRequest>(data);
    round_trip::<SynchronizeRequest>(data);
    round_trip::<CreateContainerRequest>(data);
    round_trip::<UpdateContainerRequest>(data);
    round_trip::<StopContainerRequest>(data);
    round_trip::<StateChangeEvent>(data);
    round_trip::<UpdateContainersResponse>(data);
    round_trip::<RunPodSandboxRequest>(data);
    round_trip::<UpdatePodSandboxRequest>(data);
    round_trip::<PostUpdatePodSandboxRequest>(data);
    round_trip::<PostCreateContainerRequest>(data);
    round_trip::<RemoveContainerRequest>(data);
    round_trip::<ValidateContainerAdjustmentRequest>(data);
    // Plugin -> runtime.
    round_trip::<ConfigureResponse>(data);
    round_trip::<SynchronizeResponse>(data);
    round_trip::<CreateContainerResponse>(data);
    round_trip::<UpdateContainerResponse>(data);
    round_trip::<StopContainerResponse>(data);
    round_trip::<RegisterPluginRequest>(data);
    round_trip::<UpdateContainersRequest>(data);
    round_trip::<ValidateContainerAdjustmentResponse>(data);
    // ttrpc envelopes.
    round_trip::<Request>(data);
    round_trip::<Response>(data);
});
