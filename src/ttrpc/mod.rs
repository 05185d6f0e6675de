//! ttrpc: framing, status codes, client and server.
//!
//! ttrpc is containerd's light RPC protocol: protobuf-encoded
//! `Request`/`Response` envelopes in 10-byte-header frames over a stream
//! socket. This module holds the sans-IO [`codec`], the status [`Code`]s,
//! the service registry a server answers from ([`Services`]) and the
//! [`Connection`] that runs both the serving and the calling side of one
//! socket, plain or multiplexed.

pub mod codec;
mod conn;
pub(crate) use server::encode_result;
mod server;

pub use crate::proto::ttrpc::{KeyValue, Request, Response};
pub use crate::status::{Code, Status};
pub use conn::{
    Client, Connection, ConnectionBuilder, ConnectionOptions, DeadlineGuard, Framing, GuardReply,
    OnClose,
};
pub use server::{MethodHandler, OwnedMethodHandler, RequestContext, Services};
