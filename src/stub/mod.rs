//! The plugin side: implement [`Plugin`], build a [`Stub`], run it.
//!
//! The stub connects to the runtime (an explicit connection, else the fd in
//! `NRI_PLUGIN_SOCKET` for plugins the runtime launched, else the socket
//! path), serves the plugin service on logical connection 1 before it calls
//! RegisterPlugin on logical connection 2 (Configure may arrive before the
//! reply), and calls the plugin's handlers on its worker threads. Its event
//! service is expanded from the crate's event table: each event's RPC, and
//! `StateChange` for older runtimes, reach the one handler of the event.
//!
//! Differences from Go's `pkg/stub`, all deliberate:
//! - the library never exits the process: when the runtime goes away,
//!   [`Stub::run`] returns and the on-close callback runs;
//! - [`Stub::start`] never hangs: without Configure within the registration
//!   timeout it fails and closes the connection;
//! - [`Stub::update_containers`] is bounded by the request timeout and
//!   refuses to run inside a handler (it would deadlock a v0.9.0 runtime);
//!   [`Context::update_containers_after_reply`] is the safe form;
//! - opt-in [`Stub::run_supervised`] reconnects to a restarted runtime;
//! - an opt-in deadline guard answers for a handler about to miss the
//!   runtime's deadline, so the plugin is not dropped.

// Files in dependency order: each uses only files above it.
mod builder;
mod configure;
mod context;
mod dial;
mod event_service;
mod handling;
mod in_handler;
mod lifecycle;
mod negotiate;
mod plugin;
mod plugin_service;
mod registration;
mod stats;
mod supervise;
mod synchronize;
mod synchronize_state;

pub use crate::ttrpc::{DeadlineGuard, GuardReply};
pub use builder::{StubBuilder, DEFAULT_MAX_SYNC_STATE_BYTES};
pub use context::Context;
pub use dial::Dialer;
pub use lifecycle::Stub;
pub use negotiate::{NriVersionSource, RuntimeInfo};
pub use plugin::{HandlerError, HandlerResult, Plugin};
pub use stats::{ConnectionState, Latency, LifecycleRequest, RequestStats, Stats};
pub use supervise::Backoff;
pub use synchronize_state::{Items, SyncState};
