//! Serving Synchronize: chunks are collected still encoded (see
//! [`SyncState`](super::SyncState)), and the plugin's handler runs once, on the last chunk.

use std::ops::Range;

use crate::api::{rpc, SynchronizeResponse};
use crate::ttrpc::{encode_result, Code, Status};

use super::handling::Call;
use super::stats::{LifecycleRequest, Slot};
use super::synchronize_state::Refused;

const SYNCHRONIZE: LifecycleRequest = LifecycleRequest::Synchronize;

/// Serves one chunk of Synchronize, taken encoded and by value: the frame
/// it came in, and where the request lies in it.
pub(super) fn synchronize(
    call: &Call<'_>,
    frame: Vec<u8>,
    at: Range<usize>,
) -> Result<Vec<u8>, Status> {
    let method = rpc::SYNCHRONIZE.method;
    let collected =
        call.stub
            .inner
            .synchronize
            .push(frame, at)
            .map_err(|refused| match refused {
                Refused::Malformed(e) => Status::new(Code::Internal, e.to_string()),
                Refused::Over(over) => Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "plugin {}: the Synchronize state would hold more than {} bytes in memory \
                     (received chunks, their index and the decoded items; {} held before a chunk \
                     of {} bytes)",
                        call.stub.name(),
                        over.max,
                        over.held,
                        over.chunk
                    ),
                ),
            })?;
    let Some(state) = collected else {
        // Charge the decoded forms of this chunk's items once the reply is
        // out, while the runtime prepares the next chunk.
        let inner = call.stub.inner.clone();
        call.rc
            .after_reply(move || inner.synchronize.charge_decoded());
        let more = SynchronizeResponse {
            more: true,
            ..Default::default()
        };
        return encode_result(method, &more);
    };
    let update = call
        .run(
            SYNCHRONIZE.name(),
            Slot::lifecycle(SYNCHRONIZE),
            |ctx, p| p.synchronize(ctx, state),
        )
        .map_err(|e| call.failed(method, &WholeState, e))?;
    let reply = SynchronizeResponse {
        update,
        more: false,
        ..Default::default()
    };
    encode_result(method, &reply)
}

/// The subject of Synchronize in log lines.
struct WholeState;

impl std::fmt::Display for WholeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the runtime's state")
    }
}
