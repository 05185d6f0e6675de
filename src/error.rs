//! The crate's single error type.
//!
//! Every fallible operation in `nri` returns [`Result`]. Messages say what
//! happened and name the offending value or limit, so that they can be logged
//! as they are.

use std::io;
use std::time::Duration;

use crate::event_mask::EventMask;
use crate::status::{Code, Status};

/// The exit status for a plugin that cannot work as configured (`EX_CONFIG`
/// of `sysexits.h`); see [`Error::exit_code`]. A systemd unit can stop
/// restarting on it with `RestartPreventExitStatus=78`.
pub const EXIT_CONFIG: u8 = 78;

/// Shorthand for `std::result::Result<T, nri::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `nri`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the library was doing.
        context: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },

    /// A peer declared a ttrpc message larger than the limit.
    #[error("ttrpc message of {len} bytes exceeds the {limit}-byte limit")]
    MessageTooLarge {
        /// Declared or actual length in bytes.
        len: u64,
        /// The limit in force.
        limit: u64,
    },

    /// A peer declared a multiplexer frame larger than the limit.
    #[error(
        "multiplexer frame of {len} bytes on logical connection {conn_id} exceeds the {limit}-byte limit"
    )]
    MuxFrameTooLarge {
        /// Logical connection id of the frame.
        conn_id: u32,
        /// Declared payload length.
        len: u32,
        /// The limit in force.
        limit: u32,
    },

    /// Bytes from a peer that break the framing rules.
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// A protobuf message could not be encoded or decoded.
    #[error("protobuf {what} failed for {message}: {source}")]
    Protobuf {
        /// "encoding" or "decoding".
        what: &'static str,
        /// Name of the message type.
        message: &'static str,
        /// The protobuf library's error.
        #[source]
        source: protobuf::Error,
    },

    /// The peer answered a call with a non-OK status.
    #[error("{service}/{method} failed with {code:?}: {message}")]
    Status {
        /// Fully qualified service name of the call.
        service: String,
        /// Method name of the call.
        method: String,
        /// gRPC status code returned by the peer.
        code: Code,
        /// Status message returned by the peer.
        message: String,
    },

    /// A call did not get its reply within its timeout.
    #[error("{service}/{method} got no reply{} within {timeout:?}", from_peer(.peer))]
    DeadlineExceeded {
        /// Fully qualified service name of the call.
        service: String,
        /// Method name of the call.
        method: String,
        /// Who was called, as the connection names its peer (for example
        /// `plugin "10-foo"`); empty when there is no such name.
        peer: String,
        /// The timeout that expired: the one the caller set, not the time
        /// that was left of it.
        timeout: Duration,
    },

    /// Received messages waiting to be taken would hold more memory than
    /// the connection's budget allows (`max_pending_bytes`).
    #[error(
        "a {what} of {len} bytes does not fit in the {limit}-byte budget for received messages \
         waiting to be taken ({held} bytes held)"
    )]
    OverBudget {
        /// What was refused ("reply", "request").
        what: &'static str,
        /// The bytes it would hold.
        len: u64,
        /// The bytes already held.
        held: u64,
        /// The budget.
        limit: u64,
    },

    /// A received message would hold more memory once decoded than the
    /// limit allows, so it was not decoded: a few bytes on the wire can
    /// stand for a large value (an empty element of a repeated field takes
    /// two bytes and a whole struct once decoded).
    #[error(
        "a {message} of {wire} bytes could hold up to {decoded} bytes once decoded, over the \
         {limit}-byte limit; it was not decoded"
    )]
    DecodedTooLarge {
        /// The message's type.
        message: &'static str,
        /// Its length on the wire.
        wire: u64,
        /// An upper bound of the memory its decoded form holds.
        decoded: u64,
        /// The limit.
        limit: u64,
    },

    /// The connection is closed (by the peer, by `stop`, or after an error).
    #[error("connection closed: {0}")]
    ConnectionClosed(String),

    /// An operation that needs a connected plugin was called without one.
    #[error("stub: no service/connection (the plugin is not started or has been disconnected)")]
    NotConnected,

    /// A plugin name that breaks the naming rule.
    #[error("plugin name {name:?} is invalid: {rule}")]
    InvalidPluginName {
        /// The offending name.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },

    /// A plugin index that is not exactly two digits.
    #[error("plugin index {index:?} is invalid: it must be exactly two digits (00-99)")]
    InvalidPluginIndex {
        /// The offending index.
        index: String,
    },

    /// An event name that is not part of the NRI vocabulary.
    #[error("unknown event {0:?} (known, in any case: {known})", known = crate::event_table::KnownEventNames)]
    UnknownEvent(String),

    /// An invalid configuration value or option.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The runtime refused the plugin's registration.
    #[error("the runtime refused to register plugin {plugin}: {message}")]
    RegistrationRefused {
        /// Full plugin name (`NN-name`).
        plugin: String,
        /// The runtime's message.
        message: String,
    },

    /// The plugin was not configured within the registration timeout.
    #[error("plugin {plugin} was not configured by the runtime within {timeout:?}")]
    ConfigureTimeout {
        /// Full plugin name (`NN-name`).
        plugin: String,
        /// The registration timeout.
        timeout: Duration,
    },

    /// The runtime cannot deliver events the plugin requires (or any event
    /// the plugin handles): it embeds an NRI version that predates them.
    #[error(
        "plugin {plugin} requires events {events} that runtime {runtime} cannot deliver; \
         use a runtime embedding NRI v0.10 or newer (containerd 2.2, CRI-O 1.34)"
    )]
    EventsUnavailable {
        /// Full plugin name (`NN-name`).
        plugin: String,
        /// The events the runtime cannot deliver.
        events: EventMask,
        /// The runtime, its version and its NRI version.
        runtime: String,
    },

    /// Two plugins set the same field of a container (or one set what
    /// another removed); the message names both, as upstream words it.
    #[error("{0}")]
    Conflict(String),

    /// A validator rejected a container's adjustment; the message names the
    /// validator and its reason, as upstream words it.
    #[error("{0}")]
    Rejected(String),

    /// A plugin's handler returned an error.
    #[error("{0}")]
    Handler(String),

    /// The stub is in the wrong state for the call (for example started twice).
    #[error("{0}")]
    State(String),
}

impl Error {
    /// Wraps an I/O error with what the library was doing.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a handler error from any message: the form plugin handlers use
    /// to fail a request (the runtime then fails the operation).
    pub fn handler(message: impl Into<String>) -> Self {
        Error::Handler(message.into())
    }

    /// The exit status a plugin process should end with after this error,
    /// as the examples do and as systemd and Kubernetes read it:
    /// [`EXIT_CONFIG`] (78, `EX_CONFIG`) when restarting the plugin as it is
    /// cannot help (a bad name, index, option or configuration, a refused
    /// registration, a runtime too old for a required event), and 1 for the
    /// rest (the runtime went away, could not be reached, or misbehaved),
    /// where a restart is the cure. A plugin that ended normally (stopped by
    /// a signal, or launched by the runtime and released by it) exits 0.
    ///
    /// ```
    /// use nri::{Error, EXIT_CONFIG};
    /// assert_eq!(Error::Config("bad".into()).exit_code(), EXIT_CONFIG);
    /// assert_eq!(Error::ConnectionClosed("gone".into()).exit_code(), 1);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidPluginName { .. }
            | Error::InvalidPluginIndex { .. }
            | Error::UnknownEvent(_)
            | Error::Config(_)
            | Error::RegistrationRefused { .. }
            | Error::EventsUnavailable { .. } => EXIT_CONFIG,
            _ => 1,
        }
    }

    /// The gRPC status code this error maps to when it is sent to a peer.
    pub fn code(&self) -> Code {
        match self {
            Error::Status { code, .. } => *code,
            Error::DeadlineExceeded { .. } | Error::ConfigureTimeout { .. } => {
                Code::DeadlineExceeded
            }
            Error::MessageTooLarge { .. }
            | Error::MuxFrameTooLarge { .. }
            | Error::OverBudget { .. }
            | Error::DecodedTooLarge { .. } => Code::ResourceExhausted,
            Error::ConnectionClosed(_) | Error::NotConnected => Code::Unavailable,
            Error::InvalidPluginName { .. }
            | Error::InvalidPluginIndex { .. }
            | Error::UnknownEvent(_)
            | Error::Config(_) => Code::InvalidArgument,
            Error::EventsUnavailable { .. } => Code::FailedPrecondition,
            Error::Protobuf { .. } | Error::Protocol(_) => Code::Internal,
            _ => Code::Unknown,
        }
    }
}

/// `" from <peer>"`, or nothing for an unnamed peer.
fn from_peer(peer: &str) -> String {
    if peer.is_empty() {
        String::new()
    } else {
        format!(" from {peer}")
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Status { code, message, .. } => Status { code, message },
            other => Status::new(other.code(), other.to_string()),
        }
    }
}
