//! NRI's connection multiplexer: several logical byte streams over one
//! socket (the "trunk").
//!
//! Logical connection 1 carries the plugin service (the plugin is the ttrpc
//! server), logical connection 2 the runtime service (the plugin is the
//! client). This module
//! owns the trunk framing ([`codec`]) and [`Trunk`], which exposes logical
//! connections as byte streams ([`LogicalConn`]: `Read + Write`). NRI's own
//! traffic goes through [`crate::ttrpc::Connection`] instead, which reads
//! the trunk itself and feeds each logical connection's ttrpc decoder
//! directly, without a thread or a buffer per logical connection.
//!
//! # Writing for Go readers
//!
//! The Go side reads each logical connection through a 4096-byte buffered
//! reader and fails on a frame larger than the space it offers. Every message
//! this crate writes therefore goes as one frame when it is at most 4096
//! bytes (ttrpc header included), else as exactly two frames: its first 4096
//! bytes, then the rest. No frame carries bytes of two messages, and no
//! frame is empty. Frames we read may have any size up to the limit.

pub mod codec;
mod trunk;

pub use trunk::{LogicalConn, Trunk, MAX_QUEUED_PIECES};

/// Logical connection of the plugin service (runtime calls the plugin).
pub const PLUGIN_SERVICE_CONN: u32 = 1;
/// Logical connection of the runtime service (plugin calls the runtime).
pub const RUNTIME_SERVICE_CONN: u32 = 2;
