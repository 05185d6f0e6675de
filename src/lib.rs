//! Synchronous NRI plugins in Rust.
//!
//! [NRI](https://github.com/containerd/nri), the Node Resource Interface,
//! lets small out-of-process plugins watch and adjust pods and containers
//! inside containerd and CRI-O. This crate writes such plugins with plain
//! blocking threads: no async runtime, five small dependencies, and a wire
//! implementation (ttrpc and NRI's multiplexer) written for this crate and
//! proven against the Go reference runtime.
//!
//! # A whole plugin
//!
//! ```no_run
//! use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
//! use nri::stub::{Context, HandlerResult, Plugin, Stub};
//!
//! /// Tells every container which pod it runs in.
//! struct PodNameInjector;
//!
//! impl Plugin for PodNameInjector {
//!     fn events(&self) -> EventMask {
//!         Event::CREATE_CONTAINER.into()
//!     }
//!
//!     fn create_container(
//!         &self,
//!         _ctx: &Context<'_>,
//!         pod: &PodSandbox,
//!         _container: &Container,
//!     ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
//!         let mut adjust = ContainerAdjustment::new();
//!         adjust.add_env("POD_NAME", pod.name.as_str());
//!         Ok((adjust, Vec::new()))
//!     }
//! }
//!
//! fn main() -> nri::Result<()> {
//!     let stub = Stub::builder(PodNameInjector)
//!         .plugin_name("pod-name")
//!         .plugin_index("10")
//!         .build()?;
//!     // Blocks until the runtime goes away or stub.stop() is called.
//!     stub.run()
//! }
//! ```
//!
//! # Map
//!
//! - [`stub`]: the plugin side: the [`stub::Plugin`] trait, the
//!   [`stub::Stub`] and its builder, supervised mode, the deadline guard.
//! - [`api`]: NRI's messages, documented field by field, and helpers (event
//!   masks, adjustment and update builders, constructors, optional values,
//!   plugin identity rules); [`api::fixtures`] builds realistic pods and
//!   containers for tests.
//! - [`runtime`]: a small synchronous runtime side for tests and demos: drive
//!   a plugin through its lifecycle without containerd.
//! - [`cli`]: what a plugin binary shares: Go-sample-style flags, logging
//!   set up from them, a clean stop on SIGTERM/SIGINT, exit statuses, and
//!   metrics and readiness files.
//! - `decode` (cargo feature `go-yaml`): annotations and configuration text
//!   decoded into your own serde types exactly as Go plugins decode them
//!   (`sigs.k8s.io/yaml`, `encoding/json`).
//! - [`logging`]: an opt-in logger (stderr, file or syslog) that the
//!   runtime's configuration text can redirect.
//! - [`protobuf`]: the protobuf crate the messages are built on.
//! - [`ttrpc`] and [`mux`]: the wire: sans-IO codecs, and a connection that
//!   serves and calls over one socket with a leader/follower worker pool.
//! - [`Error`]: the one error type.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The code protobuf-codegen generates from `proto/` (see `build.rs`), with
/// the `.proto` comments as rustdoc. Public through [`api`] and [`ttrpc`].
mod proto {
    #![deny(missing_docs)]
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

#[macro_use]
mod setters;

pub mod api;
pub mod cli;
#[cfg(feature = "go-yaml")]
#[cfg_attr(docsrs, doc(cfg(feature = "go-yaml")))]
pub mod decode;
mod error;
mod event_mask;
mod event_table;
mod locking;
mod log_text;
pub mod logging;
pub mod mux;
mod pb;
pub mod runtime;
mod socket;
mod status;
pub mod stub;
pub mod ttrpc;

pub use error::{Error, Result, EXIT_CONFIG};

/// The `protobuf` crate (v3) the API's messages are built on, re-exported so
/// that a plugin names its types (`nri::protobuf::MessageField`,
/// `nri::protobuf::Message`) without a dependency of its own, which would
/// have to match this crate's version exactly. The types plugins use most
/// are also in [`api`].
pub use protobuf;
