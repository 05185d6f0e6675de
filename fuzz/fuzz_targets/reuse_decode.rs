//! Fuzzes `nri::api::ReusedMessage::decode`, the decoding of the stub's
//! requests into the message the previous request of the same type left:
//! the result must be what a strict fresh decode of the same bytes gives
//! (the same message, unknown fields included), or both must fail.
//!
//! Input layout: byte 0 picks the message type (modulo the number of
//! types below), byte 1 splits the rest: its first `byte1 * len / 256`
//! bytes are decoded first (whatever comes of it), then the remaining
//! bytes, into the same kept message. The remaining bytes are also decoded
//! into a new kept message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::api::{
    ConfigureRequest, Container, CreateContainerRequest, PodSandbox, PostCreateContainerRequest,
    PostUpdatePodSandboxRequest, RemoveContainerRequest, Reusable, ReusedMessage,
    RunPodSandboxRequest, ShutdownRequest, StateChangeEvent, StopContainerRequest,
    SynchronizeRequest, UpdateContainerRequest, UpdatePodSandboxRequest,
    ValidateContainerAdjustmentRequest,
};
#[path = "../../tests/common/strict_decode.rs"]
mod strict_decode;

use strict_decode::fresh;

fn check<M: Reusable>(prior: &[u8], bytes: &[u8]) {
    let want = fresh::<M>(bytes);
    let mut kept = ReusedMessage::<M>::new();
    let _ = kept.decode(prior);
    let mut new = ReusedMessage::<M>::new();
    for (what, got) in [("reused", kept.decode(bytes)), ("new", new.decode(bytes))] {
        match (&want, got) {
            (Ok(w), Ok(g)) => {
                assert!(g == w, "{} {what}: differs from a fresh decode", M::NAME);
                assert!(
                    g.special_fields().unknown_fields() == w.special_fields().unknown_fields(),
                    "{} {what}: unknown fields differ",
                    M::NAME
                );
            }
            (Err(_), Err(_)) => {}
            (w, g) => panic!(
                "{} {what}: fresh decode ok: {}, reused decode ok: {}",
                M::NAME,
                w.is_ok(),
                g.is_ok()
            ),
        }
    }
}

const TYPES: u8 = 16;

fuzz_target!(|data: &[u8]| {
    let [pick, split, rest @ ..] = data else {
        return;
    };
    let at = rest.len() * usize::from(*split) / 256;
    let (prior, bytes) = rest.split_at(at);
    match pick % TYPES {
        0 => check::<CreateContainerRequest>(prior, bytes),
        1 => check::<UpdateContainerRequest>(prior, bytes),
        2 => check::<StopContainerRequest>(prior, bytes),
        3 => check::<RemoveContainerRequest>(prior, bytes),
        4 => check::<PostCreateContainerRequest>(prior, bytes),
        5 => check::<RunPodSandboxRequest>(prior, bytes),
        6 => check::<UpdatePodSandboxRequest>(prior, bytes),
        7 => check::<PostUpdatePodSandboxRequest>(prior, bytes),
        8 => check::<ValidateContainerAdjustmentRequest>(prior, bytes),
        9 => check::<StateChangeEvent>(prior, bytes),
        10 => check::<ConfigureRequest>(prior, bytes),
        11 => check::<SynchronizeRequest>(prior, bytes),
        12 => check::<ShutdownRequest>(prior, bytes),
        13 => check::<Container>(prior, bytes),
        14 => check::<PodSandbox>(prior, bytes),
        _ => check::<nri::api::LinuxContainer>(prior, bytes),
    }
});
