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

use crate::api::{rpc, Container, ContainerUpdate, PodSandbox, SynchronizeRequest};
use crate::ttrpc::codec::MAX_MESSAGE_LEN;
use crate::ttrpc::{Client, Request};
use crate::{Error, Result};

use super::encoding::decode_reply;
use crate::log_text::Escape;
use crate::pb::wire::{self, Tag, WireType};

/// Fewest objects (pods plus containers) per chunk, as in the reference.
const MIN_OBJECTS_PER_CHUNK: usize = 8;

/// Largest share of the refused size the next chunk is sized for.
const MAX_SHRINK_FACTOR: f64 = 0.9;

const SERVICE: &str = rpc::SYNCHRONIZE.service;
const METHOD: &str = rpc::SYNCHRONIZE.method;

/// Sends the state to the plugin, in chunks if needed, and returns the
/// plugin's updates from the last reply.
///
/// Sizes are computed once per object and chunks are encoded straight from
/// the borrowed state: nothing is cloned, and a refused size costs no
/// encoding. Each chunk after the first is encoded while the plugin reads
/// and answers the one before, into the buffer the one before was sent
/// from (written out by then).
pub(crate) fn synchronize(
    client: &Client,
    plugin: &str,
    timeout: Duration,
    pods: &[PodSandbox],
    containers: &[Container],
) -> Result<Vec<ContainerUpdate>> {
    let deadline = Instant::now() + timeout;
    let mut chunker = Chunker {
        plugin,
        timeout,
        deadline,
        pods,
        containers,
        pod_len: field_lens(FIELD_PODS, pods),
        ctr_len: field_lens(FIELD_CONTAINERS, containers),
        next: (0, 0),
        per_chunk: (pods.len(), containers.len()),
    };
    let mut buf = Vec::new();
    let mut more = chunker.next_chunk(&mut buf)?;
    let mut chunks = 0usize;
    loop {
        let pending = client.send_raw_until(SERVICE, METHOD, &buf, deadline, timeout)?;
        let following = more.then(|| chunker.next_chunk(&mut buf));
        let reply = decode_reply(rpc::SYNCHRONIZE, &pending.wait()?)?;
        chunks += 1;
        let Some(following) = following else {
            if chunks > 1 {
                log::debug!("plugin {} synchronized in {chunks} chunks", Escape(plugin));
            }
            return Ok(reply.update);
        };
        if !reply.update.is_empty() || !reply.more {
            return Err(Error::Protocol(format!(
                "plugin {plugin} does not handle split Synchronize requests: it answered chunk {chunks} \
                 (more=true) with more={} and {} update(s); intermediate chunks must be answered with \
                 more=true and no updates",
                reply.more,
                reply.update.len()
            )));
        }
        more = following?;
    }
}

/// Cuts the state into the chunks the reference would send.
struct Chunker<'a> {
    plugin: &'a str,
    timeout: Duration,
    deadline: Instant,
    pods: &'a [PodSandbox],
    containers: &'a [Container],
    /// Each object's encoded size as a field of the request.
    pod_len: Vec<usize>,
    ctr_len: Vec<usize>,
    /// The first pod and container not sent yet.
    next: (usize, usize),
    /// Pods and containers per chunk, as the reference shrinks them.
    per_chunk: (usize, usize),
}

impl Chunker<'_> {
    /// Encodes the next chunk into `out` (replacing what it held): as many
    /// of the objects left as the current chunk size allows, shrunk
    /// (without encoding) while the request would be over the message
    /// limit. Returns whether more chunks follow.
    fn next_chunk(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let (pods, containers) = (self.pods, self.containers);
        loop {
            let (p0, c0) = self.next;
            let (pods_per_chunk, ctrs_per_chunk) = self.per_chunk;
            let (pods_left, ctrs_left) = (pods.len() - p0, containers.len() - c0);
            let more = pods_left > pods_per_chunk || ctrs_left > ctrs_per_chunk;
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::DeadlineExceeded {
                    service: SERVICE.to_string(),
                    method: METHOD.to_string(),
                    peer: format!("plugin {:?}", self.plugin),
                    timeout: self.timeout,
                });
            }
            let (pods_chunk, ctrs_chunk) = (p0..p0 + pods_per_chunk, c0..c0 + ctrs_per_chunk);
            let payload_len = self.pod_len[pods_chunk.clone()].iter().sum::<usize>()
                + self.ctr_len[ctrs_chunk.clone()].iter().sum::<usize>()
                + more_len(more);
            // The time left only shrinks, and the envelope with it: a
            // chunk that fits now still fits when it is sent.
            let envelope_len = envelope_len(payload_len, left);
            if envelope_len > MAX_MESSAGE_LEN {
                // What the reference's client refuses to send: shrink and retry.
                let (pods_per_chunk, ctrs_per_chunk) =
                    shrink(pods_per_chunk, ctrs_per_chunk, envelope_len).ok_or_else(|| {
                        Error::Protocol(format!(
                            "cannot split the Synchronize request for plugin {} into messages \
                             under {MAX_MESSAGE_LEN} bytes ({pods_per_chunk} pods and \
                             {ctrs_per_chunk} containers take {envelope_len} bytes)",
                            self.plugin
                        ))
                    })?;
                self.per_chunk = (pods_per_chunk.min(pods_left), ctrs_per_chunk.min(ctrs_left));
                log::debug!(
                    "Synchronize request of {envelope_len} bytes is oversized; retrying with chunks of \
                     {} pods and {} containers",
                    self.per_chunk.0,
                    self.per_chunk.1
                );
                continue;
            }
            log::debug!(
                "sending Synchronize chunk to plugin {}: {pods_per_chunk}/{pods_left} pods, \
                 {ctrs_per_chunk}/{ctrs_left} containers (more: {more})",
                Escape(self.plugin)
            );
            encode_chunk(
                Objects {
                    pods: &pods[pods_chunk.clone()],
                    pod_len: &self.pod_len[pods_chunk],
                    ctrs: &containers[ctrs_chunk.clone()],
                    ctr_len: &self.ctr_len[ctrs_chunk],
                },
                more,
                payload_len,
                out,
            )?;
            let next = (p0 + pods_per_chunk, c0 + ctrs_per_chunk);
            self.next = next;
            self.per_chunk = (
                pods_per_chunk.min(pods.len() - next.0),
                ctrs_per_chunk.min(containers.len() - next.1),
            );
            return Ok(more);
        }
    }
}

/// Field numbers of `SynchronizeRequest`.
const FIELD_PODS: u32 = 1;
const FIELD_CONTAINERS: u32 = 2;
const FIELD_MORE: u32 = 3;

/// Bytes one object takes as field `field`: tag, length, message.
fn field_len(field: u32, m: &impl Message) -> usize {
    wire::len_field_size(field, m.compute_size() as usize)
}

/// Objects from which [`field_lens`] shares the work with a second thread.
const SIZE_IN_TWO_FROM: usize = 2048;

/// [`field_len`] of every object in `objects`. A large state is sized by
/// two threads, one half each: the walk is bound by memory latency (every
/// object's strings and maps are separate allocations), so two walks
/// overlap their cache misses.
fn field_lens<M: Message + Sync>(field: u32, objects: &[M]) -> Vec<usize> {
    let sizes = |part: &[M]| part.iter().map(|m| field_len(field, m)).collect::<Vec<_>>();
    if objects.len() < SIZE_IN_TWO_FROM {
        return sizes(objects);
    }
    let (first, second) = objects.split_at(objects.len() / 2);
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("nri-sync-sizes".into())
            .spawn_scoped(scope, || sizes(second));
        let mut lens = sizes(first);
        // Without a helper thread (none could be started), one thread does
        // it all.
        lens.extend(match helper.map(|h| h.join()) {
            Ok(Ok(rest)) => rest,
            _ => sizes(second),
        });
        lens
    })
}

/// Bytes the `more` flag takes: nothing unless set.
fn more_len(more: bool) -> usize {
    let tag = Tag::new(FIELD_MORE, WireType::Varint);
    if more {
        wire::varint_len(u64::from(tag.key())) + 1
    } else {
        0
    }
}

/// Chunks from which [`encode_chunk`] shares the work with a second thread.
const ENCODE_IN_TWO_FROM: usize = 256 * 1024;

/// Borrowed pods and containers of one chunk, with each one's
/// [`field_len`] (which left its size cached in it).
#[derive(Clone, Copy)]
struct Objects<'a> {
    pods: &'a [PodSandbox],
    pod_len: &'a [usize],
    ctrs: &'a [Container],
    ctr_len: &'a [usize],
}

impl<'a> Objects<'a> {
    /// Splits where the first part's encoding reaches `at` bytes; gives the
    /// two parts and the first one's exact length.
    fn split(self, at: usize) -> (Objects<'a>, Objects<'a>, usize) {
        let pods_len: usize = self.pod_len.iter().sum();
        if at <= pods_len {
            let (k, len) = cut(self.pod_len, at);
            let first = Objects {
                pods: &self.pods[..k],
                pod_len: &self.pod_len[..k],
                ctrs: &[],
                ctr_len: &[],
            };
            let second = Objects {
                pods: &self.pods[k..],
                pod_len: &self.pod_len[k..],
                ..self
            };
            return (first, second, len);
        }
        let (k, len) = cut(self.ctr_len, at - pods_len);
        let first = Objects {
            ctrs: &self.ctrs[..k],
            ctr_len: &self.ctr_len[..k],
            ..self
        };
        let second = Objects {
            pods: &[],
            pod_len: &[],
            ctrs: &self.ctrs[k..],
            ctr_len: &self.ctr_len[k..],
        };
        (first, second, pods_len + len)
    }
}

/// The fewest leading `lens` that add up to at least `at`, and their sum.
fn cut(lens: &[usize], at: usize) -> (usize, usize) {
    let mut sum = 0;
    for (i, len) in lens.iter().enumerate() {
        if sum >= at {
            return (i, sum);
        }
        sum += len;
    }
    (lens.len(), sum)
}

/// Encodes `SynchronizeRequest{pods, containers, more}` from borrowed
/// slices into `out`, which ends up `len` bytes long (its precomputed
/// length); what `out` held is overwritten, and only bytes it did not have
/// yet are zeroed first. A large chunk is encoded by two threads, each
/// into its own part of the buffer: every object's size is known, so where
/// the second part starts is too.
fn encode_chunk(objects: Objects<'_>, more: bool, len: usize, out: &mut Vec<u8>) -> Result<()> {
    out.resize(len, 0);
    if len < ENCODE_IN_TWO_FROM {
        return encode_objects(objects, more, out);
    }
    let (first, second, at) = objects.split(len / 2);
    let (head, tail) = out.split_at_mut(at);
    // The helper takes the second part from here; when no helper could be
    // started, this thread takes it back and does it all.
    let tail = std::sync::Mutex::new(Some(tail));
    let encode_tail = || match tail.lock().ok().and_then(|mut t| t.take()) {
        Some(tail) => encode_objects(second, more, tail),
        None => Err(Error::Protocol(
            "the second part of a Synchronize chunk was taken twice".into(),
        )),
    };
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("nri-sync-encode".into())
            .spawn_scoped(scope, encode_tail);
        encode_objects(first, false, head)?;
        match helper {
            Ok(h) => h.join().unwrap_or_else(|_| {
                Err(Error::Protocol(
                    "the thread encoding half of a Synchronize chunk panicked".into(),
                ))
            }),
            Err(_) => encode_tail(),
        }
    })
}

/// Encodes `objects` (and `more` when set) as fields of a
/// `SynchronizeRequest` into `out`, which they must fill exactly.
fn encode_objects(objects: Objects<'_>, more: bool, out: &mut [u8]) -> Result<()> {
    let len = out.len();
    let mut os = protobuf::CodedOutputStream::bytes(out);
    // Every object's size was computed (and cached in it) by `field_len`:
    // write with the cached sizes instead of computing them again.
    let res = (|| {
        for p in objects.pods {
            os.write_tag(FIELD_PODS, protobuf::rt::WireType::LengthDelimited)?;
            os.write_raw_varint32(p.cached_size())?;
            p.write_to_with_cached_sizes(&mut os)?;
        }
        for c in objects.ctrs {
            os.write_tag(FIELD_CONTAINERS, protobuf::rt::WireType::LengthDelimited)?;
            os.write_raw_varint32(c.cached_size())?;
            c.write_to_with_cached_sizes(&mut os)?;
        }
        if more {
            os.write_bool(FIELD_MORE, true)?;
        }
        os.flush()
    })();
    let written = os.total_bytes_written();
    drop(os);
    res.map_err(|e| Error::Protobuf {
        what: "encoding",
        message: SynchronizeRequest::NAME,
        source: e,
    })?;
    if written != len as u64 {
        return Err(Error::Protocol(format!(
            "Synchronize objects encoded to {written} bytes, not the {len} their sizes add up to"
        )));
    }
    Ok(())
}

/// The encoded length of the ttrpc request envelope that will carry a
/// payload of `payload_len` bytes: what the 4 MiB limit applies to.
fn envelope_len(payload_len: usize, timeout: Duration) -> usize {
    let req = Request {
        service: SERVICE.to_string(),
        method: METHOD.to_string(),
        timeout_nano: timeout.as_nanos().min(i64::MAX as u128) as i64,
        ..Default::default()
    };
    // Request.payload = 3, left out when empty.
    let payload_field = if payload_len == 0 {
        0
    } else {
        wire::len_field_size(3, payload_len)
    };
    req.compute_size() as usize + payload_field
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

    /// The `SynchronizeRequest` the protobuf crate encodes.
    fn request_bytes(pods: &[PodSandbox], ctrs: &[Container], more: bool) -> Vec<u8> {
        SynchronizeRequest {
            pods: pods.to_vec(),
            containers: ctrs.to_vec(),
            more,
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap()
    }

    /// Runs `f` on `pods` and `ctrs` with their field lengths, as the
    /// chunker hands them to `encode_chunk`.
    fn with_objects<R>(
        pods: &[PodSandbox],
        ctrs: &[Container],
        f: impl FnOnce(Objects<'_>) -> R,
    ) -> R {
        let (pod_len, ctr_len) = (
            field_lens(FIELD_PODS, pods),
            field_lens(FIELD_CONTAINERS, ctrs),
        );
        f(Objects {
            pods,
            pod_len: &pod_len,
            ctrs,
            ctr_len: &ctr_len,
        })
    }

    #[test]
    fn a_chunk_encoded_by_two_threads_is_the_request_message() {
        let pods: Vec<PodSandbox> = (0..40)
            .map(|i| PodSandbox {
                id: format!("pod-{i}"),
                labels: [("app".to_string(), "y".repeat(i * 100))].into(),
                ..Default::default()
            })
            .collect();
        let ctrs: Vec<Container> = (0..400)
            .map(|i| Container {
                id: format!("ctr-{i}"),
                pod_sandbox_id: format!("pod-{}", i % 40),
                env: vec![format!("V={}", "z".repeat(i % 50)); 20],
                ..Default::default()
            })
            .collect();
        with_objects(&pods, &ctrs, |objects| {
            for more in [false, true] {
                let want = request_bytes(&pods, &ctrs, more);
                assert!(want.len() >= ENCODE_IN_TWO_FROM, "{} bytes", want.len());
                let mut out = vec![0xee; 1000];
                encode_chunk(objects, more, want.len(), &mut out).unwrap();
                assert_eq!(out, want);
                // Sizes that do not add up are an error, not a short message.
                assert!(encode_chunk(objects, more, want.len() + 1, &mut out).is_err());
            }
        });
    }

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

    #[test]
    fn chunks_encode_like_the_request_message_and_sizes_add_up() {
        let pods: Vec<PodSandbox> = (0..3)
            .map(|i| PodSandbox {
                id: format!("pod-{i}"),
                name: "x".repeat(200 * i),
                ..Default::default()
            })
            .collect();
        let ctrs: Vec<Container> = (0..5)
            .map(|i| Container {
                id: format!("ctr-{i}"),
                env: vec!["A=1".into(); i],
                ..Default::default()
            })
            .collect();
        for more in [false, true] {
            let want = request_bytes(&pods, &ctrs, more);
            let len = pods.iter().map(|p| field_len(FIELD_PODS, p)).sum::<usize>()
                + ctrs
                    .iter()
                    .map(|c| field_len(FIELD_CONTAINERS, c))
                    .sum::<usize>()
                + more_len(more);
            assert_eq!(len, want.len());
            with_objects(&pods, &ctrs, |objects| {
                // Into an empty buffer, and over a longer one's leftovers.
                for mut out in [Vec::new(), vec![0xee; len + 100]] {
                    encode_chunk(objects, more, len, &mut out).unwrap();
                    assert_eq!(out, want);
                }
                // Split anywhere, the two parts encode to the same bytes.
                for at in 0..=len {
                    let (first, second, split) = objects.split(at);
                    assert!(
                        split >= at.min(len - more_len(more)),
                        "split {split} before {at}"
                    );
                    let mut out = vec![0u8; len];
                    let (head, tail) = out.split_at_mut(split);
                    encode_objects(first, false, head).unwrap();
                    encode_objects(second, more, tail).unwrap();
                    assert_eq!(out, want, "split at {at}");
                }
            });
            let t = Duration::from_millis(1500);
            let envelope = Request {
                service: SERVICE.to_string(),
                method: METHOD.to_string(),
                payload: want.clone(),
                timeout_nano: t.as_nanos() as i64,
                ..Default::default()
            };
            assert_eq!(envelope_len(len, t), envelope.compute_size() as usize);
        }
        assert_eq!(
            envelope_len(0, Duration::ZERO),
            Request {
                service: SERVICE.to_string(),
                method: METHOD.to_string(),
                ..Default::default()
            }
            .compute_size() as usize
        );
    }
}
