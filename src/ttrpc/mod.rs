//! ttrpc: framing, status codes, client and server.
//!
//! ttrpc is containerd's light RPC protocol: protobuf-encoded
//! `Request`/`Response` envelopes in 10-byte-header frames over a stream
//! socket. This module holds, bottom up:
//!
//! - the sans-IO frame [`codec`];
//! - the session layer (crate-private, `session/`): every protocol rule of
//!   one socket (what a received frame means, stream ids, envelopes,
//!   replies, framing for Go readers), on plain values, without I/O;
//! - the status [`Code`]s and the service registry a server answers from
//!   ([`Services`]);
//! - the [`Connection`] (`conn/`), which runs both the serving and the
//!   calling side of one socket, plain or multiplexed: it moves bytes,
//!   waits and runs handlers, and asks the session layer for every rule.

pub mod codec;
mod conn;
mod decode_budget;
mod reused;
pub(crate) use server::encode_result;
mod server;
mod session;

pub use crate::proto::ttrpc::{KeyValue, Request, Response};
pub use crate::status::{Code, Status};
pub use conn::{
    Client, Connection, ConnectionBuilder, ConnectionOptions, DeadlineGuard, GuardReply, OnClose,
};
pub(crate) use decode_budget::decode_reply;
pub use decode_budget::{decoded_size_bound, DEFAULT_MAX_DECODED_BYTES};
pub use server::{MethodHandler, OwnedMethodHandler, RequestContext, Services};
pub use session::Framing;
