//! Synchronize, split into chunks when the whole state does not fit in one
//! ttrpc message.
//!
//! The reference first sends everything in one request. When its ttrpc
//! client refuses that request as oversized, it shrinks the number of pods
//! and containers per request by the ratio of the limit to the refused
//! length (at most 0.9), with a floor of 8 objects, and sends the state in
//! consecutive chunks: every chunk but the last has `more` set, and the
//! plugin must answer those with `more` set and no updates. One deadline
//! covers every chunk. Any failure is fatal to the plugin.

use std::time::{Duration, Instant};

use protobuf::Message;

use crate::api::{
    Container, ContainerUpdate, PodSandbox, SynchronizeRequest, SynchronizeResponse, PLUGIN_SERVICE,
};
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::ttrpc::{Client, Request};
use crate::{Error, Result};

/// Fewest objects (pods plus containers) per chunk, as in the reference.
const MIN_OBJECTS_PER_CHUNK: usize = 8;

/// Largest share of the refused size the next chunk is sized for.
const MAX_SHRINK_FACTOR: f64 = 0.9;

const METHOD: &str = "Synchronize";

/// Sends the state to the plugin, in chunks if needed, and returns the
/// plugin's updates from the last reply.
pub(crate) fn synchronize(
    client: &Client,
    plugin: &str,
    timeout: Duration,
    pods: &[PodSandbox],
    containers: &[Container],
) -> Result<Vec<ContainerUpdate>> {
    let deadline = Instant::now() + timeout;
    let (mut pods_left, mut ctrs_left) = (pods, containers);
    let (mut pods_per_chunk, mut ctrs_per_chunk) = (pods.len(), containers.len());
    let mut chunks = 0usize;
    loop {
        let more = pods_left.len() > pods_per_chunk || ctrs_left.len() > ctrs_per_chunk;
        let req = SynchronizeRequest {
            pods: pods_left[..pods_per_chunk].to_vec(),
            containers: ctrs_left[..ctrs_per_chunk].to_vec(),
            more,
            ..Default::default()
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::DeadlineExceeded {
                service: PLUGIN_SERVICE.to_string(),
                method: METHOD.to_string(),
                timeout,
            });
        }
        let payload = req.write_to_bytes().map_err(|e| Error::Protobuf {
            what: "encoding",
            message: SynchronizeRequest::NAME,
            source: e,
        })?;
        let (envelope_len, payload) = envelope_len(payload, left);
        if envelope_len > MAX_MESSAGE_LEN {
            // What the reference's client refuses to send: shrink and retry.
            (pods_per_chunk, ctrs_per_chunk) = shrink(pods_per_chunk, ctrs_per_chunk, envelope_len)
                .ok_or_else(|| {
                    Error::Protocol(format!(
                        "cannot split the Synchronize request for plugin {plugin} into messages under \
                         {MAX_MESSAGE_LEN} bytes ({pods_per_chunk} pods and {ctrs_per_chunk} containers \
                         take {envelope_len} bytes)"
                    ))
                })?;
            pods_per_chunk = pods_per_chunk.min(pods_left.len());
            ctrs_per_chunk = ctrs_per_chunk.min(ctrs_left.len());
            log::debug!(
                "Synchronize request of {envelope_len} bytes is oversized; retrying with chunks of \
                 {pods_per_chunk} pods and {ctrs_per_chunk} containers"
            );
            continue;
        }
        log::debug!(
            "sending Synchronize chunk to plugin {plugin}: {}/{} pods, {}/{} containers (more: {more})",
            req.pods.len(),
            pods_left.len(),
            req.containers.len(),
            ctrs_left.len()
        );
        let reply = client.call_raw(PLUGIN_SERVICE, METHOD, payload, Some(left), Vec::new())?;
        let reply = SynchronizeResponse::parse_from_bytes(&reply).map_err(|e| Error::Protobuf {
            what: "decoding",
            message: SynchronizeResponse::NAME,
            source: e,
        })?;
        chunks += 1;
        if !more {
            if chunks > 1 {
                log::debug!("plugin {plugin} synchronized in {chunks} chunks");
            }
            return Ok(reply.update);
        }
        if !reply.update.is_empty() || !reply.more {
            return Err(Error::Protocol(format!(
                "plugin {plugin} does not handle split Synchronize requests: it answered chunk {chunks} \
                 (more=true) with more={} and {} update(s); intermediate chunks must be answered with \
                 more=true and no updates",
                reply.more,
                reply.update.len()
            )));
        }
        pods_left = &pods_left[pods_per_chunk..];
        ctrs_left = &ctrs_left[ctrs_per_chunk..];
        pods_per_chunk = pods_per_chunk.min(pods_left.len());
        ctrs_per_chunk = ctrs_per_chunk.min(ctrs_left.len());
    }
}

/// The encoded length of the ttrpc request envelope that will carry
/// `payload`: what the 4 MiB limit applies to. Gives the payload back.
fn envelope_len(payload: Vec<u8>, timeout: Duration) -> (usize, Vec<u8>) {
    let mut req = Request {
        service: PLUGIN_SERVICE.to_string(),
        method: METHOD.to_string(),
        payload,
        timeout_nano: timeout.as_nanos().min(i64::MAX as u128) as i64,
        ..Default::default()
    };
    let len = req.compute_size() as usize;
    (len, std::mem::take(&mut req.payload))
}

/// The reference's new chunk size after a refused request of `refused_len`
/// bytes, or `None` when it gives up.
fn shrink(pods: usize, ctrs: usize, refused_len: usize) -> Option<(usize, usize)> {
    if pods + ctrs <= MIN_OBJECTS_PER_CHUNK || refused_len <= MAX_MESSAGE_LEN {
        return None;
    }
    let factor = (MAX_MESSAGE_LEN as f64 / refused_len as f64).min(MAX_SHRINK_FACTOR);
    let pods = (pods as f64 * factor) as usize;
    let ctrs = (ctrs as f64 * factor) as usize;
    if pods + ctrs < MIN_OBJECTS_PER_CHUNK {
        return Some((MIN_OBJECTS_PER_CHUNK / 2, MIN_OBJECTS_PER_CHUNK / 2));
    }
    Some((pods, ctrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_scales_by_limit_ratio_capped_at_nine_tenths() {
        assert_eq!(shrink(0, 1000, 2 * MAX_MESSAGE_LEN), Some((0, 500)));
        assert_eq!(shrink(100, 1000, MAX_MESSAGE_LEN + 1), Some((90, 900)));
    }

    #[test]
    fn shrink_gives_up_at_eight_objects_and_floors_at_four_plus_four() {
        assert_eq!(shrink(4, 4, 10 * MAX_MESSAGE_LEN), None);
        assert_eq!(shrink(0, 20, 10 * MAX_MESSAGE_LEN), Some((4, 4)));
    }
}
