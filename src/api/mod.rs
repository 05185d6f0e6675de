//! The NRI API: protobuf messages of `nri.pkg.api.v1alpha1` and helpers.
//!
//! The message types are generated at build time from `proto/nri.proto` and
//! are wire-identical to containerd/nri v0.12.5 (`tests/proto.rs` compares
//! the two files). The helper modules add the
//! vocabulary of Go's `pkg/api`: event masks, adjustment and update builders,
//! optional values, plugin identity rules and removal markers. Everything is
//! re-exported here, so `use nri::api::{EventMask, ContainerAdjustment};`
//! is all a plugin needs.
//!
//! Every message, field and enum value carries the documentation of
//! `proto/nri.proto`. Values plugins build often have constructors, so that
//! common adjustments need no struct literals: [`LinuxDevice::char_device`],
//! [`Mount::bind`], [`Hook::command`], [`POSIXRlimit::limit`],
//! [`CDIDevice::named`], [`KeyValue::pair`], [`LinuxNamespace::join`].
//! [`fixtures`] builds realistic pods and containers for tests;
//! [`annotations`] finds a container's annotation as upstream's sample
//! plugins do (`<kind>.noderesource.dev/container.<name>`, `/pod`...);
//! [`Dump`] writes any message as compact YAML-like text for logs. The
//! protobuf runtime types the messages are made of ([`MessageField`],
//! [`Message`], [`EnumOrUnknown`], [`Enum`]) are re-exported here, and the
//! whole `protobuf` crate as [`crate::protobuf`], so a plugin needs no
//! dependency of its own on it.
//!
//! Upstream helpers that convert to and from OCI runtime-spec or CRI types
//! (`ToOCI`, `FromOCI*`, `FromCRILinuxResources`, `ToCRI`) are not provided:
//! this crate does not model those types.

#[doc(inline)]
pub use crate::proto::nri::*;

mod adjustment;
mod adjustment_linux;
pub mod annotations;
mod cdi;
mod consts;
mod device;
pub mod dump;
mod env;
mod event;
pub mod fixtures;
mod hooks;
mod identity;
mod mount;
mod namespace;
mod optional;
mod owners;
pub(crate) mod releases;
mod removal;
mod resources;
mod rlimit;
pub(crate) mod rpc;
mod update;
mod validate;
pub(crate) mod version;

pub use protobuf::{Enum, EnumOrUnknown, Message, MessageField};

pub use crate::pb::reuse::{Reusable, ReusedMessage};

pub use consts::{
    DEFAULT_REGISTRATION_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SOCKET_PATH, PLUGIN_IDX_ENV_VAR,
    PLUGIN_NAME_ENV_VAR, PLUGIN_SOCKET_ENV_VAR,
};
pub use dump::Dump;
pub use env::{from_env_strings, to_env_strings};
#[cfg(test)]
pub(crate) use event::EventFacts;
pub(crate) use event::HandlerKind;
pub use event::{EventMask, ShutdownRequest, ShutdownResponse, StateChangeResponse};
pub(crate) use identity::PluginId;
pub use identity::{parse_plugin_name, validate_plugin_index, validate_plugin_name};
pub use mount::SELINUX_RELABEL;
pub use optional::{optional, OptionalExt, OptionalMessage};
pub use removal::{clear_removal_marker, is_marked_for_removal, mark_for_removal, REMOVAL_MARKER};
pub use version::{NriVersion, DEVEL_VERSION, NRI_VERSION, UNKNOWN_VERSION};

/// Fully qualified ttrpc name of the service plugins implement.
pub const PLUGIN_SERVICE: &str = "nri.pkg.api.v1alpha1.Plugin";
/// Fully qualified ttrpc name of the service the runtime implements.
pub const RUNTIME_SERVICE: &str = "nri.pkg.api.v1alpha1.Runtime";
