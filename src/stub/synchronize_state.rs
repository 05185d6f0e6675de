//! The state a runtime hands over in Synchronize, kept encoded until the
//! plugin reads it.
//!
//! A runtime with many containers sends megabytes of state, possibly in
//! several chunks. Decoding all of it up front costs a plugin several times
//! the encoded size in memory and most of the Synchronize time, even when
//! the plugin looks at a few fields or at nothing. [`SyncState`] keeps the
//! received bytes and decodes a pod or container only when it is asked for:
//! iterating costs one decoded item at a time, and a plugin that does not
//! read the state does not pay for it.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Mutex;

use protobuf::Message;

use crate::api::{Container, PodSandbox};
use crate::error::{Error, Result};
use crate::locking::lock;
use crate::pb::cost::{max_per_wire_byte, model_of, CostModel};
use crate::pb::wire::{self, Reader, WireError, WireType};

/// Field numbers of `SynchronizeRequest`.
const FIELD_PODS: u32 = 1;
const FIELD_CONTAINERS: u32 = 2;
const FIELD_MORE: u32 = 3;

/// Where one encoded item sits: chunk index and byte range.
#[derive(Clone, Copy, Debug)]
struct Span {
    chunk: u32,
    start: u32,
    end: u32,
}

/// Every pod and container of a Synchronize request, still encoded.
///
/// The stub collects the chunks of a chunked Synchronize here and hands the
/// whole state to [`crate::stub::Plugin::synchronize`] once. Items decode on
/// demand: [`SyncState::containers`] yields one decoded container at a
/// time, [`SyncState::into_decoded`] gives everything as vectors (the Go
/// stub's slices). A malformed item is reported when it is decoded, as an
/// [`Error::Protobuf`] (INTERNAL on the wire if the handler returns it).
///
/// ```
/// use nri::api::{Container, PodSandbox};
/// use nri::stub::SyncState;
///
/// # fn main() -> nri::Result<()> {
/// let pod = PodSandbox { id: "pod0".into(), ..Default::default() };
/// let ctr = Container { id: "ctr0".into(), pod_sandbox_id: "pod0".into(), ..Default::default() };
/// let state = SyncState::from_parts(&[pod], &[ctr])?;
/// assert_eq!(state.container_count(), 1);
/// for c in state.containers() {
///     let c = c?;
///     assert_eq!(c.pod_sandbox_id, "pod0");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SyncState {
    /// The received buffers, each holding one encoded request (and, from
    /// a runtime, the bytes of the ttrpc envelope around it).
    chunks: Vec<Vec<u8>>,
    pods: Vec<Span>,
    containers: Vec<Span>,
    /// Bytes of the encoded requests, all chunks together.
    encoded: usize,
}

impl SyncState {
    /// Builds a state from decoded pods and containers (for tests and for
    /// driving a plugin without a runtime).
    pub fn from_parts(pods: &[PodSandbox], containers: &[Container]) -> Result<SyncState> {
        let mut buf = Vec::new();
        for (field, items) in [
            (FIELD_PODS, encode_all(pods)?),
            (FIELD_CONTAINERS, encode_all(containers)?),
        ] {
            for item in items {
                wire::put_len_field(&mut buf, field, &item);
            }
        }
        let scan = scan_chunk(&buf)?;
        let mut state = SyncState::default();
        let all = 0..buf.len();
        state.push_chunk(buf, all, scan);
        Ok(state)
    }

    /// Wraps one encoded `SynchronizeRequest` (for example bytes captured
    /// from a runtime) without decoding its items. Fails when the framing of
    /// its top-level fields is broken.
    pub fn from_encoded(bytes: Vec<u8>) -> Result<SyncState> {
        let scan = scan_chunk(&bytes)?;
        let mut state = SyncState::default();
        let all = 0..bytes.len();
        state.push_chunk(bytes, all, scan);
        Ok(state)
    }

    /// Number of pods.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Number of containers.
    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    /// True when the runtime has no pods and no containers.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.containers.is_empty()
    }

    /// Total encoded size of the state in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encoded
    }

    /// The pods, decoded one at a time, in the runtime's order.
    pub fn pods(&self) -> Items<'_, PodSandbox> {
        Items::new(self, &self.pods)
    }

    /// The containers, decoded one at a time, in the runtime's order.
    pub fn containers(&self) -> Items<'_, Container> {
        Items::new(self, &self.containers)
    }

    /// Decodes pod `i`, or `None` past the end.
    pub fn pod(&self, i: usize) -> Option<Result<PodSandbox>> {
        self.pods.get(i).map(|s| self.decode_span(*s))
    }

    /// Decodes container `i`, or `None` past the end.
    pub fn container(&self, i: usize) -> Option<Result<Container>> {
        self.containers.get(i).map(|s| self.decode_span(*s))
    }

    /// Decodes everything: all pods and all containers, keeping the state.
    /// [`SyncState::into_decoded`] needs less memory.
    pub fn decode(&self) -> Result<(Vec<PodSandbox>, Vec<Container>)> {
        Ok((
            self.pods().collect::<Result<_>>()?,
            self.containers().collect::<Result<_>>()?,
        ))
    }

    /// Decodes everything into the two vectors the Go stub hands its
    /// handlers, freeing each received chunk as soon as its items are
    /// decoded: the peak is the decoded state plus one chunk.
    pub fn into_decoded(self) -> Result<(Vec<PodSandbox>, Vec<Container>)> {
        let mut pods = Vec::with_capacity(self.pods.len());
        let mut containers = Vec::with_capacity(self.containers.len());
        let (mut p, mut c) = (
            self.pods.iter().peekable(),
            self.containers.iter().peekable(),
        );
        for (i, chunk) in self.chunks.into_iter().enumerate() {
            let i = i as u32;
            let item = |s: &Span| &chunk[s.start as usize..s.end as usize];
            while let Some(s) = p.next_if(|s| s.chunk == i) {
                pods.push(decode_item(item(s))?);
            }
            while let Some(s) = c.next_if(|s| s.chunk == i) {
                containers.push(decode_item(item(s))?);
            }
        }
        Ok((pods, containers))
    }

    /// Adds one received buffer and the positions [`scan_chunk`] found in
    /// the request it holds at `at`. `at` lies within `bytes`, which is at
    /// most 4 GiB.
    pub(crate) fn push_chunk(&mut self, bytes: Vec<u8>, at: Range<usize>, scan: Scan) {
        let (offset, len) = (at.start as u32, at.len());
        let chunk = self.chunks.len() as u32;
        let at = |(start, end): (u32, u32)| Span {
            chunk,
            start: start + offset,
            end: end + offset,
        };
        self.pods.extend(scan.pods.into_iter().map(at));
        self.containers.extend(scan.containers.into_iter().map(at));
        self.chunks.push(bytes);
        self.encoded += len;
    }

    fn decode_span<M: Message>(&self, s: Span) -> Result<M> {
        decode_item(&self.chunks[s.chunk as usize][s.start as usize..s.end as usize])
    }
}

fn decode_item<M: Message>(bytes: &[u8]) -> Result<M> {
    crate::pb::decode::<M>(bytes).map_err(|source| Error::Protobuf {
        what: "decoding",
        message: M::NAME,
        source,
    })
}

impl fmt::Debug for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncState")
            .field("pods", &self.pods.len())
            .field("containers", &self.containers.len())
            .field("chunks", &self.chunks.len())
            .field("encoded_len", &self.encoded_len())
            .finish()
    }
}

/// Collects the chunks of one Synchronize, within a bound of the memory
/// the state can hold: the received chunks, the index of their items, and
/// the decoded form of every item (bounded from its bytes, see
/// [`crate::ttrpc::decoded_size_bound`]), since the plugin may decode all
/// of it while it still holds the chunks ([`SyncState::decode`]).
///
/// A chunk's bytes and index are charged as it arrives, item by item, so a
/// chunk that takes the state over is refused before the rest of it is
/// looked at. The decoded forms exist only once the handler runs, so their
/// walk can wait: [`ChunkCollector::charge_decoded`] walks the chunks taken
/// so far, run after the reply to an intermediate chunk (while the runtime
/// prepares the next one), and the last chunk walks whatever is left before
/// the handler is called. A state found over the bound then is dropped, and
/// the next chunk (or the last one) refused.
pub(super) struct ChunkCollector {
    held: Mutex<Collected>,
    max_bytes: usize,
}

#[derive(Default)]
struct Collected {
    state: Option<SyncState>,
    /// What the state can hold in memory, as charged so far.
    bytes: u64,
    /// Chunks whose items' decoded forms are charged.
    walked: usize,
    /// The state went over the bound when its decoded forms were charged.
    over: Option<OverBound>,
}

/// A chunk that would take the collected state over its bound.
#[derive(Debug)]
pub(super) struct OverBound {
    /// Bytes charged before the chunk (now dropped).
    pub(super) held: u64,
    /// The chunk's encoded bytes.
    pub(super) chunk: usize,
    /// The bound.
    pub(super) max: usize,
}

/// Why a chunk was not taken.
#[derive(Debug)]
pub(super) enum Refused {
    /// Its top-level framing is broken.
    Malformed(Error),
    /// It would take the state over the bound.
    Over(OverBound),
}

/// What an item's place in the index can cost: its span in the state and
/// its position while the chunk is scanned, each in a vector that doubles
/// (three times, counting both blocks while it grows).
const INDEX_COST: u64 = 3 * (std::mem::size_of::<Span>() + 2 * std::mem::size_of::<u32>()) as u64;

/// What one item's decoded form can cost: a slot in a vector of decoded
/// items (three times, counting both blocks while it grows) and what its
/// fields hold, by `model` (the item type's cost model).
fn decoded_cost<M: Message>(model: Option<&CostModel>, bytes: &[u8]) -> u64 {
    let heap = model
        .and_then(|m| m.cost(bytes).ok())
        // Bytes that do not decode fail when decoded; until then the
        // decoder holds at most the bound per wire byte.
        .unwrap_or_else(|| (bytes.len() as u64).saturating_mul(max_per_wire_byte()));
    3 * std::mem::size_of::<M>() as u64 + heap
}

impl ChunkCollector {
    pub(super) fn new(max_bytes: usize) -> ChunkCollector {
        ChunkCollector {
            held: Mutex::new(Collected::default()),
            max_bytes,
        }
    }

    /// Forgets what a previous connection sent.
    pub(super) fn reset(&self) {
        *lock(&self.held) = Collected::default();
    }

    /// Adds one chunk; gives the whole state once the chunk is the last
    /// (its `more` unset), with every item charged. A chunk that would take
    /// the state over the bound drops everything.
    /// `frame` is the received buffer; the request lies at `at` in it.
    pub(super) fn push(
        &self,
        frame: Vec<u8>,
        at: Range<usize>,
    ) -> std::result::Result<Option<SyncState>, Refused> {
        if at.end > frame.len() || frame.len() > u32::MAX as usize {
            return Err(Refused::Malformed(Error::Protocol(format!(
                "a Synchronize request at bytes {at:?} of a {}-byte frame",
                frame.len()
            ))));
        }
        let chunk = &frame[at.clone()];
        let mut held = lock(&self.held);
        let max = self.max_bytes as u64;
        let over = |held: &mut Collected, before: u64, chunk: usize| {
            *held = Collected::default();
            Refused::Over(OverBound {
                held: before,
                chunk,
                max: self.max_bytes,
            })
        };
        if let Some(o) = held.over.take() {
            *held = Collected::default();
            return Err(Refused::Over(o));
        }
        let before = held.bytes;
        let mut charged = before.saturating_add(frame.capacity() as u64);
        if charged > max {
            return Err(over(&mut held, before, chunk.len()));
        }
        let scan = scan_chunk_with(chunk, |_, _| {
            charged = charged.saturating_add(INDEX_COST);
            charged <= max
        });
        let scan = match scan {
            Ok(Some(scan)) => scan,
            Ok(None) => return Err(over(&mut held, before, chunk.len())),
            Err(e) => return Err(Refused::Malformed(e)),
        };
        held.bytes = charged;
        let more = scan.more;
        let len = chunk.len();
        held.state
            .get_or_insert_with(SyncState::default)
            .push_chunk(frame, at, scan);
        if more {
            return Ok(None);
        }
        self.walk(&mut held, len);
        if let Some(o) = held.over.take() {
            *held = Collected::default();
            return Err(Refused::Over(o));
        }
        let state = held.state.take();
        *held = Collected::default();
        Ok(state)
    }

    /// Charges the decoded forms of the items of the chunks taken so far
    /// (see the type's docs).
    pub(super) fn charge_decoded(&self) {
        let mut held = lock(&self.held);
        self.walk(&mut held, 0);
    }

    fn walk(&self, held: &mut Collected, chunk_len: usize) {
        let max = self.max_bytes as u64;
        let Some(state) = &held.state else { return };
        let from = held.walked as u32;
        let mut charged = held.bytes;
        let mut within = true;
        let (pod_model, ctr_model) = (model_of::<PodSandbox>(), model_of::<Container>());
        for (spans, pods) in [(&state.pods, true), (&state.containers, false)] {
            let first = spans.partition_point(|s| s.chunk < from);
            for s in &spans[first..] {
                let item = &state.chunks[s.chunk as usize][s.start as usize..s.end as usize];
                charged = charged.saturating_add(if pods {
                    decoded_cost::<PodSandbox>(pod_model.as_ref(), item)
                } else {
                    decoded_cost::<Container>(ctr_model.as_ref(), item)
                });
                if charged > max {
                    within = false;
                    break;
                }
            }
            if !within {
                break;
            }
        }
        if within {
            held.walked = state.chunks.len();
            held.bytes = charged;
        } else {
            let before = held.bytes;
            *held = Collected {
                over: Some(OverBound {
                    held: before,
                    chunk: chunk_len,
                    max: self.max_bytes,
                }),
                ..Default::default()
            };
        }
    }
}

/// Iterator over the pods or containers of a [`SyncState`], decoding each
/// item as it is reached.
pub struct Items<'a, M> {
    state: &'a SyncState,
    spans: std::slice::Iter<'a, Span>,
    _item: PhantomData<fn() -> M>,
}

impl<'a, M> Items<'a, M> {
    fn new(state: &'a SyncState, spans: &'a [Span]) -> Self {
        Items {
            state,
            spans: spans.iter(),
            _item: PhantomData,
        }
    }
}

impl<M: Message> Iterator for Items<'_, M> {
    type Item = Result<M>;

    fn next(&mut self) -> Option<Result<M>> {
        self.spans.next().map(|s| self.state.decode_span(*s))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl<M: Message> ExactSizeIterator for Items<'_, M> {}

impl<M> fmt::Debug for Items<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("left", &self.spans.len())
            .finish()
    }
}

/// The top-level layout of one encoded `SynchronizeRequest`.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pods: Vec<(u32, u32)>,
    containers: Vec<(u32, u32)>,
    /// The request's `more` flag: further chunks follow.
    pub(crate) more: bool,
}

/// Finds the pods, containers and `more` flag of an encoded
/// `SynchronizeRequest` without decoding the items. Checks the framing of
/// every top-level field (tags, wire types, lengths within the buffer,
/// groups closed by their own end tag). Unknown fields, and known ones with
/// an unexpected wire type, are skipped, as the protobuf decoders (Go's and
/// Rust's) do.
pub(crate) fn scan_chunk(buf: &[u8]) -> Result<Scan> {
    scan_chunk_with(buf, |_, _| true).map(|scan| scan.unwrap_or_default())
}

/// Like [`scan_chunk`], asking `take` about every item found (its field
/// number and bytes) before it is indexed; `Ok(None)` as soon as `take`
/// says no.
fn scan_chunk_with(buf: &[u8], mut take: impl FnMut(u32, &[u8]) -> bool) -> Result<Option<Scan>> {
    let bad = |at: usize, what: &dyn std::fmt::Display| {
        Error::Protocol(format!(
            "malformed SynchronizeRequest at byte {at} of {}: {what}",
            buf.len()
        ))
    };
    if buf.len() > u32::MAX as usize {
        return Err(bad(
            0,
            &format!("{} bytes is over the 4 GiB limit", buf.len()),
        ));
    }
    let wire_error = |e: WireError| bad(e.at, &e.kind);
    let mut scan = Scan::default();
    let mut r = Reader::new(buf);
    while let Some(tag) = r.read_tag().map_err(wire_error)? {
        match (tag.field, tag.wire) {
            (FIELD_MORE, WireType::Varint) => {
                scan.more = r.read_varint(tag).map_err(wire_error)? != 0;
            }
            (FIELD_PODS | FIELD_CONTAINERS, WireType::Len) => {
                let range = r.read_len_range(tag).map_err(wire_error)?;
                if !take(tag.field, &buf[range.clone()]) {
                    return Ok(None);
                }
                // Within the 4 GiB checked above.
                let span = (range.start as u32, range.end as u32);
                if tag.field == FIELD_PODS {
                    scan.pods.push(span);
                } else {
                    scan.containers.push(span);
                }
            }
            _ => r.skip(tag).map_err(wire_error)?,
        }
    }
    Ok(Some(scan))
}

fn encode_all<M: Message>(items: &[M]) -> Result<Vec<Vec<u8>>> {
    items
        .iter()
        .map(|m| {
            m.write_to_bytes().map_err(|source| Error::Protobuf {
                what: "encoding",
                message: M::NAME,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SynchronizeRequest;
    use crate::pb::wire::{put_varint, MAX_GROUP_DEPTH};

    fn sample(n: usize) -> (Vec<PodSandbox>, Vec<Container>) {
        let pods = (0..n)
            .map(|i| PodSandbox {
                id: format!("pod{i}"),
                name: format!("name{i}"),
                ..Default::default()
            })
            .collect();
        let ctrs = (0..2 * n)
            .map(|i| Container {
                id: format!("ctr{i}"),
                pod_sandbox_id: format!("pod{}", i / 2),
                args: vec!["sleep".into(), i.to_string()],
                ..Default::default()
            })
            .collect();
        (pods, ctrs)
    }

    #[test]
    fn scan_finds_what_the_protobuf_decoder_finds() {
        let (pods, containers) = sample(5);
        let req = SynchronizeRequest {
            pods: pods.clone(),
            containers: containers.clone(),
            more: true,
            ..Default::default()
        };
        let bytes = req.write_to_bytes().unwrap();
        let scan = scan_chunk(&bytes).unwrap();
        assert!(scan.more);
        let mut state = SyncState::default();
        let all = 0..bytes.len();
        state.push_chunk(bytes, all, scan);
        let (p, c) = state.decode().unwrap();
        assert_eq!(p, pods);
        assert_eq!(c, containers);
        assert_eq!(state.container(3).unwrap().unwrap().id, "ctr3");
        assert!(state.container(10).is_none());
        assert_eq!(state.containers().len(), 10);
    }

    #[test]
    fn chunks_concatenate_in_order() {
        let (pods, containers) = sample(4);
        let mut state = SyncState::default();
        for (ps, cs) in [
            (&pods[..2], &containers[..3]),
            (&pods[2..], &containers[3..]),
        ] {
            let bytes = SynchronizeRequest {
                pods: ps.to_vec(),
                containers: cs.to_vec(),
                ..Default::default()
            }
            .write_to_bytes()
            .unwrap();
            let scan = scan_chunk(&bytes).unwrap();
            assert!(!scan.more);
            let all = 0..bytes.len();
            state.push_chunk(bytes, all, scan);
        }
        let (p, c) = state.decode().unwrap();
        assert_eq!(p, pods);
        assert_eq!(c, containers);
        let (p, c) = state.clone().into_decoded().unwrap();
        assert_eq!(p, pods);
        assert_eq!(c, containers);
        assert!(format!("{state:?}").contains("chunks: 2"), "{state:?}");
    }

    #[test]
    fn unknown_fields_are_skipped_and_more_takes_the_last_value() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 3 << 3);
        buf.push(1);
        put_varint(&mut buf, 9 << 3 | 1);
        buf.extend_from_slice(&[0; 8]);
        put_varint(&mut buf, 10 << 3 | 5);
        buf.extend_from_slice(&[0; 4]);
        put_varint(&mut buf, 11 << 3 | 2);
        buf.extend_from_slice(&[2, 7, 7]);
        put_varint(&mut buf, 3 << 3);
        buf.push(0);
        // A group holding a nested group and a varint.
        buf.extend_from_slice(&[
            12 << 3 | 3,
            13 << 3 | 3,
            13 << 3 | 4,
            14 << 3,
            5,
            12 << 3 | 4,
        ]);
        // Known fields with another wire type are skipped too.
        put_varint(&mut buf, 1 << 3);
        buf.push(1);
        put_varint(&mut buf, 3 << 3 | 2);
        buf.extend_from_slice(&[1, 1]);
        let scan = scan_chunk(&buf).unwrap();
        assert!(!scan.more);
        assert!(scan.pods.is_empty() && scan.containers.is_empty());
        let req = SynchronizeRequest::parse_from_bytes(&buf).unwrap();
        assert!(!req.more);
        assert!(req.pods.is_empty() && req.containers.is_empty());
    }

    #[test]
    fn malformed_framing_is_an_error_naming_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x0a, 0x05, 1, 2], "declares 5 bytes but only 2 remain"),
            (&[0x0a], "truncated or invalid length of field 1"),
            (&[0x80], "truncated or invalid tag"),
            // A tag longer than 5 bytes, and a 5-byte tag over 32 bits.
            (
                &[0xe9, 0x8b, 0x8f, 0xd2, 0x8a, 0x00],
                "truncated or invalid tag",
            ),
            (&[0x81, 0x80, 0x80, 0x80, 0x10], "truncated or invalid tag"),
            (
                &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x1f],
                "invalid length of field 1",
            ),
            (&[0x00, 0x00], "invalid field number 0"),
            (&[0x24], "unsupported wire type 4"),
            (&[0x21, 1, 2], "truncated fixed field 4"),
            (
                &[
                    0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                ],
                "truncated varint",
            ),
        ];
        for (bytes, want) in cases {
            let err = scan_chunk(bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{bytes:?}: {err}");
            assert!(
                crate::pb::decode::<SynchronizeRequest>(bytes).is_err(),
                "{bytes:?} should be refused by the protobuf decoder too"
            );
        }
        // Groups must be closed by their own end tag, as Go's decoder
        // requires (the Rust protobuf decoder is laxer here).
        for (bytes, want) in [
            (&[0x23][..], "group 4 is not closed"),
            (&[0x23, 0x2c], "end of group 5 inside group 4"),
        ] {
            let err = scan_chunk(bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{bytes:?}: {err}");
        }
        let deep: Vec<u8> = std::iter::repeat(0x23).take(MAX_GROUP_DEPTH + 1).collect();
        let err = scan_chunk(&deep).unwrap_err().to_string();
        assert!(err.contains("nested deeper than 100"), "{err}");
    }

    #[test]
    fn a_malformed_item_is_reported_when_decoded() {
        // A container whose body is a truncated field.
        let buf = vec![0x12, 0x02, 0x0a, 0x05];
        let scan = scan_chunk(&buf).unwrap();
        let mut state = SyncState::default();
        let all = 0..buf.len();
        state.push_chunk(buf, all, scan);
        assert_eq!(state.container_count(), 1);
        let err = state.containers().next().unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Protobuf {
                    what: "decoding",
                    ..
                }
            ),
            "{err}"
        );
        assert!(state.decode().is_err());
        assert!(state.into_decoded().is_err());
    }

    fn chunk(pods: &[PodSandbox], containers: &[Container], more: bool) -> Vec<u8> {
        SynchronizeRequest {
            pods: pods.to_vec(),
            containers: containers.to_vec(),
            more,
            ..Default::default()
        }
        .write_to_bytes()
        .unwrap()
    }

    #[test]
    fn the_collector_charges_chunks_index_and_decoded_items() {
        let (pods, containers) = sample(50);
        let (a, b) = (
            chunk(&pods[..25], &containers[..50], true),
            chunk(&pods[25..], &containers[50..], false),
        );
        let encoded = (a.capacity() + b.capacity()) as u64;
        let (pm, cm) = (model_of::<PodSandbox>(), model_of::<Container>());
        let decoded: u64 = pods
            .iter()
            .map(|p| {
                INDEX_COST + decoded_cost::<PodSandbox>(pm.as_ref(), &p.write_to_bytes().unwrap())
            })
            .chain(containers.iter().map(|c| {
                INDEX_COST + decoded_cost::<Container>(cm.as_ref(), &c.write_to_bytes().unwrap())
            }))
            .sum();
        let needed = (encoded + decoded) as usize;
        // Just enough: both chunks are taken and the state comes out whole.
        let c = ChunkCollector::new(needed);
        assert!(c.push(a.clone(), 0..a.len()).unwrap().is_none());
        let state = c
            .push(b.clone(), 0..b.len())
            .unwrap()
            .expect("the last chunk");
        assert_eq!((state.pod_count(), state.container_count()), (50, 100));
        // One byte less: the second chunk is refused and everything dropped.
        let c = ChunkCollector::new(needed - 1);
        assert!(c.push(a.clone(), 0..a.len()).unwrap().is_none());
        match c.push(b.clone(), 0..b.len()) {
            Err(Refused::Over(o)) => {
                assert_eq!(o.max, needed - 1);
                assert!(o.held > 0 && o.held < needed as u64, "{o:?}");
            }
            other => panic!("{other:?}"),
        }
        // After the refusal the collector starts afresh.
        let c2 = c
            .push(b.clone(), 0..b.len())
            .unwrap()
            .expect("a one-chunk state");
        assert_eq!(c2.container_count(), 50);
    }

    /// The stub hands the collector each received frame whole, with where
    /// the request lies in it: what surrounds the request is never read
    /// as items, and the encoded length counts the requests only.
    #[test]
    fn requests_inside_larger_frames_are_indexed_where_they_lie() {
        let (pods, containers) = sample(6);
        let (a, b) = (
            chunk(&pods[..3], &containers[..5], true),
            chunk(&pods[3..], &containers[5..], false),
        );
        let framed = |req: &[u8]| {
            // Bytes before and after that would not scan as a request.
            let mut f = vec![0xff; 37];
            f.extend_from_slice(req);
            f.extend_from_slice(&[0xff; 11]);
            (f, 37..37 + req.len())
        };
        let c = ChunkCollector::new(64 << 20);
        let (fa, ra) = framed(&a);
        assert!(c.push(fa, ra).unwrap().is_none());
        let (fb, rb) = framed(&b);
        let state = c.push(fb, rb).unwrap().expect("the last chunk");
        assert_eq!(state.encoded_len(), a.len() + b.len());
        let (p, cs) = state.decode().unwrap();
        assert_eq!(p, pods);
        assert_eq!(cs, containers);
        let (p, cs) = state.into_decoded().unwrap();
        assert_eq!((p, cs), (pods, containers));
        // A range past the frame is refused, not read.
        assert!(matches!(
            c.push(vec![0x12, 0x00], 1..3),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn many_tiny_items_are_charged_their_decoded_size() {
        // 100,000 empty containers: 2 bytes each on the wire, a whole
        // Container struct each once decoded.
        let mut buf = Vec::new();
        for _ in 0..100_000 {
            buf.extend_from_slice(&[0x12, 0x00]);
        }
        let per_item = std::mem::size_of::<Container>() as u64;
        let c = ChunkCollector::new(8 << 20);
        match c.push(buf.clone(), 0..buf.len()) {
            Err(Refused::Over(o)) => assert!(o.held < 8 << 20, "{o:?}"),
            other => panic!("200 kB of empty containers must be refused: {other:?}"),
        }
        let c = ChunkCollector::new((100_000 * 4 * per_item) as usize);
        let state = c
            .push(buf.clone(), 0..buf.len())
            .unwrap()
            .expect("one chunk");
        assert_eq!(state.container_count(), 100_000);
        // As an intermediate chunk, its bytes and index fit; the walk after
        // the reply finds its decoded forms over, and the next chunk is
        // refused.
        let mut first = buf;
        first.extend_from_slice(&[0x18, 0x01]); // more
        let c = ChunkCollector::new(8 << 20);
        assert!(c.push(first.clone(), 0..first.len()).unwrap().is_none());
        c.charge_decoded();
        match c.push(vec![0x12, 0x00], 0..2) {
            Err(Refused::Over(o)) => assert_eq!(o.max, 8 << 20),
            other => panic!("the state went over: {other:?}"),
        }
        // And the collector starts afresh after that.
        assert_eq!(
            c.push(vec![0x12, 0x00], 0..2)
                .unwrap()
                .unwrap()
                .container_count(),
            1
        );
    }
}
