//! The ttrpc protocol of one socket, without I/O.
//!
//! Everything ttrpc and NRI's trunk require of the bytes on a socket is
//! decided here, on plain values: the connection in `conn/` only moves
//! bytes, waits and runs handlers, and calls in here for every rule. The
//! layer takes bytes and yields decoded messages, and takes messages and
//! yields frames, in the manner of a sans-IO deframer; it is tested on its
//! own, without sockets or threads.
//!
//! # Where each rule lives
//!
//! - **What a received frame means**: [`Inbound`] (`inbound.rs`) splits
//!   what the socket delivered by logical connection, decodes frames and
//!   turns each into one [`Incoming`]: a request to serve, a request to
//!   refuse (with the status to send), a reply for a waiting caller, or
//!   something ignored (said why, for the log). Message types, oversized
//!   frames and the rules for request stream ids are decided there and
//!   nowhere else.
//! - **Framing an outgoing message**: [`Outbound::frame`]
//!   (`outbound.rs`): the 10-byte ttrpc header, and on a trunk the shape Go
//!   readers need (one frame up to 4096 bytes, else the first 4096 bytes
//!   and the rest; see [`crate::mux`]).
//! - **Stream ids**: `stream_ids.rs` holds both counters: `CallIds` hands
//!   out the ids of the calls this side makes (odd, increasing, and never
//!   wrapping past 2^32 - 1), `RequestIds` checks the ids of the requests
//!   the peer makes. [`Outbound`] owns the first (it allocates under the
//!   lock that also writes, so ids reach the wire in order), [`Inbound`]
//!   the second.
//! - **Envelopes**: `envelope.rs` decodes a `ttrpc.Request` around its
//!   payload ([`Envelope`]) and encodes the requests this side sends
//!   ([`RequestEnvelope`]); `reply.rs` encodes responses ([`Reply`]),
//!   including the rule that a reply too large to send becomes a
//!   RESOURCE_EXHAUSTED status.

mod envelope;
mod inbound;
mod outbound;
mod reply;
mod stream_ids;

pub(crate) use envelope::{timeout_nano, EncodedRequest, Envelope, RequestEnvelope};
pub(crate) use inbound::{Direct, Ignored, Inbound, Incoming};
pub(crate) use outbound::{Outbound, Outgoing};
pub(crate) use reply::Reply;

/// How ttrpc frames travel on the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Plain ttrpc: the socket is one logical connection (id 0).
    Raw,
    /// NRI's multiplexer: logical connections with ids from 1.
    Mux,
}

impl Framing {
    /// The logical connection id that `conn_id` stands for under this
    /// framing: itself on a trunk, 0 on a plain socket.
    pub(crate) fn conn_id(self, conn_id: u32) -> u32 {
        match self {
            Framing::Raw => 0,
            Framing::Mux => conn_id,
        }
    }
}
