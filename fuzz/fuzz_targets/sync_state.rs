//! Fuzzes the Synchronize path a plugin takes: `SyncState` keeps the
//! runtime's bytes and finds the pods and containers in them without
//! decoding them, then decodes each item on demand.
//!
//! Differential against the protobuf decoder of the whole request:
//! - whatever the state accepts, with every item decoding, the protobuf
//!   decoder accepts too, with the same pods and containers in the same
//!   order (the scanner is never laxer than the real decoder);
//! - whatever both accept gives equal items;
//! - nothing panics, and item counts match the iterators' lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::api::SynchronizeRequest;
use nri::stub::SyncState;
use protobuf::Message;

fuzz_target!(|data: &[u8]| {
    let whole = SynchronizeRequest::parse_from_bytes(data);
    let Ok(state) = SyncState::from_encoded(data.to_vec()) else {
        return;
    };
    assert_eq!(state.pods().len(), state.pod_count());
    assert_eq!(state.containers().len(), state.container_count());
    assert_eq!(state.encoded_len(), data.len());
    let Ok((pods, containers)) = state.decode() else {
        assert!(
            state.clone().into_decoded().is_err(),
            "into_decoded accepted what decode refuses"
        );
        return;
    };
    let (p2, c2) = state
        .clone()
        .into_decoded()
        .unwrap_or_else(|e| panic!("into_decoded refused what decode accepts: {e}"));
    assert!(p2 == pods && c2 == containers, "into_decoded differs from decode");
    let whole = whole.unwrap_or_else(|e| {
        panic!("SyncState accepted what the protobuf decoder refuses: {e}")
    });
    assert!(whole.pods == pods, "pods differ");
    assert!(whole.containers == containers, "containers differ");
    // Random access agrees with iteration.
    if let Some(last) = containers.last() {
        let again = state
            .container(containers.len() - 1)
            .expect("in range")
            .expect("decoded once already");
        assert!(&again == last, "random access differs");
    }
    assert!(state.container(containers.len()).is_none());
});
