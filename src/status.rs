//! gRPC status codes and the `Status` carried in ttrpc responses, public as
//! [`crate::ttrpc::Code`] and [`crate::ttrpc::Status`]; beneath the error
//! type, which carries a code.

use std::fmt;

use crate::proto::status::Status as StatusProto;

/// gRPC status code, as carried in `google.rpc.Status.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// 0: success.
    Ok,
    /// 1: the operation was cancelled.
    Cancelled,
    /// 2: unknown error (also any code outside 0..=16).
    Unknown,
    /// 3: the request is malformed.
    InvalidArgument,
    /// 4: the deadline expired before the operation completed.
    DeadlineExceeded,
    /// 5: something requested was not found.
    NotFound,
    /// 6: something already exists.
    AlreadyExists,
    /// 7: the caller lacks permission.
    PermissionDenied,
    /// 8: a resource (for example a size limit) is exhausted.
    ResourceExhausted,
    /// 9: the system is not in the state the operation needs.
    FailedPrecondition,
    /// 10: the operation was aborted.
    Aborted,
    /// 11: a value is out of range.
    OutOfRange,
    /// 12: the service or method is not implemented.
    Unimplemented,
    /// 13: an internal error.
    Internal,
    /// 14: the service is unavailable.
    Unavailable,
    /// 15: unrecoverable data loss.
    DataLoss,
    /// 16: the caller is not authenticated.
    Unauthenticated,
}

impl Code {
    /// The numeric value sent on the wire.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Maps a wire value to a code; values outside 0..=16 map to `Unknown`.
    pub fn from_i32(v: i32) -> Code {
        use Code::*;
        match v {
            0 => Ok,
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }
}

/// The outcome of a failed call: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// gRPC status code.
    pub code: Code,
    /// Message for people.
    pub message: String,
}

impl Status {
    /// Creates a status from a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }

    /// Converts to the wire message.
    pub fn to_proto(&self) -> StatusProto {
        StatusProto {
            code: self.code.as_i32(),
            message: self.message.clone(),
            ..Default::default()
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}
