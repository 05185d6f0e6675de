//! The NRI API: protobuf messages of `nri.pkg.api.v1alpha1` and helpers.
//!
//! The message types are generated at build time from `proto/nri.proto` and
//! are wire-identical to containerd/nri v0.9.0. The helper modules add the
//! vocabulary of Go's `pkg/api`: event masks, adjustment and update builders,
//! optional values, plugin identity rules and removal markers.

#[doc(inline)]
pub use crate::proto::nri::*;

/// Fully qualified ttrpc name of the service plugins implement.
pub const PLUGIN_SERVICE: &str = "nri.pkg.api.v1alpha1.Plugin";
/// Fully qualified ttrpc name of the service the runtime implements.
pub const RUNTIME_SERVICE: &str = "nri.pkg.api.v1alpha1.Runtime";
