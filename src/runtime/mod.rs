//! A small, synchronous runtime side of NRI: drive a plugin through its
//! lifecycle without containerd.
//!
//! This module plays the part containerd or CRI-O play through the Go
//! reference runtime (`pkg/adaptation` of containerd/nri), in the version
//! chosen with [`RuntimeBuilder::emulate`]: v0.12.5 by default, or any
//! older release whose behaviour differs, back to v0.9.0, to test a plugin
//! against older runtimes ([`Emulation`] lists them and what differs). It accepts a plugin, waits for
//! `RegisterPlugin`, calls `Configure` and `Synchronize`, relays pod and
//! container events to the plugin and serves the plugin's unsolicited
//! `UpdateContainers` calls. It judges the plugin the way the reference
//! does, so that a plugin's own tests fail where production would:
//!
//! - registration must arrive within the registration timeout (default 5 s);
//!   an external plugin with an empty name or an index that is not two
//!   digits gets an error reply with code UNKNOWN, and the runtime leaves
//!   the connection open (the plugin must close it); a second
//!   `RegisterPlugin` on a registered connection is refused (the reference
//!   answers it and renames the plugin in its logs only);
//! - `Configure` carries the emulated NRI version (v0.12+) and the plugin's
//!   registration carries its own ([`PluginHandle::plugin_nri_version`]);
//!   a reply with event mask 0 subscribes to every event the version knows;
//!   bits outside them are refused (v0.9.0 refuses the pod update and
//!   validation events, naming them);
//! - `Synchronize` is split into chunks when the whole state would exceed the
//!   4 MiB ttrpc limit, with one deadline for all chunks;
//! - notifications go as per-event RPCs from v0.12 on; a plugin that answers
//!   UNIMPLEMENTED gets `StateChange` for the rest of its connection;
//! - at most one runtime→plugin request is in flight per plugin; a request
//!   that misses the request timeout (default 2 s), a closed connection or a
//!   broken connection is *fatal*: the plugin is dropped (its connection
//!   closed, a launched plugin killed) and every later call fails at once,
//!   unless its failure policy (v0.12.4 on) keeps it through a timeout; a
//!   non-OK status from the plugin only fails that call;
//! - up to v0.12.0 an `UpdateContainers` call from the plugin waits while an
//!   event is in flight, like the reference's global lock, so a plugin that
//!   calls it synchronously from inside a handler deadlocks here too until
//!   the request times out and is then dropped.
//!
//! Plugins come in three ways, each returning a [`PluginHandle`] once the
//! plugin is registered, configured and synchronized:
//! [`Runtime::accept_stream`] (an already-connected socket, such as one end
//! of [`UnixStream::pair`](std::os::unix::net::UnixStream::pair)), [`Runtime::listen`] + [`PluginListener::accept`]
//! (external plugins dialing a socket path) and [`Runtime::launch`] (spawn a
//! plugin binary with the socket as fd 3, like pre-installed plugins).
//!
//! A [`PluginSet`] holds several plugins of one runtime and relays each
//! event to all of them in index order, merging their replies with the
//! version's conflict rules, having validators check merged adjustments and
//! applying failure policies, as the reference does.
//!
//! # Hostile plugins
//!
//! A plugin may be broken or hostile; what it can cost is bounded:
//!
//! - **Time.** Every request to a plugin, from the moment it waits for its
//!   turn, ends within the request timeout: the wait for the plugin's
//!   previous request, for the connection's writer, the write and the reply
//!   all count. A [`PluginSet`] calls its plugins one after another (the
//!   protocol needs it: a request carries what the plugins before adjusted,
//!   and a status from one plugin stops the relay before the later ones
//!   are asked, as with the reference), so a plugin that does not answer
//!   holds the others up by at most its request timeout; by default it is
//!   then dropped and costs later events nothing (see [`PluginSet`],
//!   "Isolation"). Killing a launched plugin never waits for it.
//! - **Connections.** Until it has registered, a connection costs one
//!   descriptor and at most [`MAX_REGISTRATION_MESSAGE`] bytes, and no
//!   thread: a [`PluginListener`] reads every registration at once on one
//!   thread, each within the registration timeout, so idle connections do
//!   not delay a plugin that registers. At most
//!   [`RuntimeBuilder::max_unregistered_connections`] wait (512 by
//!   default); refused connections held open count, and one thread watches
//!   them all and releases each the moment its plugin closes it.
//! - **Memory.** The unsolicited updates recorded for a plugin hold at
//!   most [`RuntimeBuilder::max_recorded_update_bytes`] (16 MiB by
//!   default), counted in bytes held, not in updates; what a message can
//!   cost on the wire and in memory is in `docs/GUARANTEES.md`.
//!
//! The event methods of [`PluginHandle`] and [`PluginSet`] are expanded
//! from the crate's event table, one per event; the version-dependent
//! behaviour comes from the release table, through [`Emulation`].
//!
//! What this module does not do: discover plugins in a directory or read
//! drop-in configuration files, act on container adjustments or updates
//! itself (adjustments are returned to the caller; unsolicited updates go
//! to the [`RuntimeBuilder::on_update_containers`] callback), run
//! upstream's built-in default validator or any builtin plugin, record
//! metrics or deprecations (a plugin falling back to StateChange is only
//! logged), or speak anything but ttrpc over NRI's multiplexer (no WASM
//! plugins). A runtime deadline shorter than the request timeout (Go's
//! request context) has no counterpart: every request gets the full
//! request timeout.
//!
//! # Example
//!
//! ```no_run
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use nri::api::{Container, PodSandbox};
//! use nri::runtime::Runtime;
//!
//! let runtime = Runtime::builder()
//!     .name("test-runtime")
//!     .version("0.1.0")
//!     .request_timeout(Duration::from_millis(500))
//!     .build();
//! let (runtime_end, plugin_end) = UnixStream::pair()?;
//! // Start the plugin under test on `plugin_end` on another thread (a stub
//! // takes it with `StubBuilder::connection`), then let the runtime take it
//! // through registration, Configure and Synchronize.
//! # let _plugin_end = plugin_end;
//! let plugin = runtime.accept_stream(runtime_end)?;
//! println!("{} subscribed to {}", plugin.name(), plugin.events());
//!
//! let mut pod = PodSandbox::new();
//! pod.id = "pod-1".into();
//! let mut ctr = Container::new();
//! ctr.id = "ctr-1".into();
//! ctr.pod_sandbox_id = pod.id.clone();
//! let reply = plugin.create_container(&pod, &ctr)?;
//! println!("adjustment: {:?}", reply.adjust);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The files' graph is free of cycles (tests/architecture.rs).
mod acceptor;
mod call_lock;
mod emulation;
mod encoding;
mod fair_lock;
mod handle;
mod host;
mod host_state;
mod launch;
mod listener;
mod merge;
mod plugin_state;
mod poll;
mod process;
mod recorded_updates;
mod refused;
mod registration;
mod registration_reader;
mod relay;
mod reply;
mod set;
mod setup;
mod synchronize_chunks;
mod validators;

pub use emulation::Emulation;
pub use handle::PluginHandle;
pub use host::{Runtime, RuntimeBuilder, DEFAULT_MAX_UNREGISTERED_CONNECTIONS};
pub use host_state::{PluginOutput, UpdateContainersFn};
pub use listener::PluginListener;
pub use recorded_updates::{DEFAULT_MAX_RECORDED_UPDATE_BYTES, MAX_RECORDED_UPDATES};
pub use registration::MAX_REGISTRATION_MESSAGE;
pub use reply::CreateContainerReply;
pub use set::PluginSet;
