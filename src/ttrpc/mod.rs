//! ttrpc: framing, status codes, client and server.

pub mod codec;
mod status;

pub use crate::proto::ttrpc::{KeyValue, Request, Response};
pub use status::{Code, Status};
