//! The one table of NRI's pod and container events: every fact about an
//! event is written here once, and the rest of the crate is expanded from
//! it.
//!
//! # Why a macro table
//!
//! The table is an X-macro: [`for_each_event!`] hands every row to a
//! callback macro, which expands it into what its module needs (a `match`,
//! a `const`, a registration per row, a method per row). Rust's own macro
//! expander does the work, so the derived code is type-checked where it is
//! used, shows up in rustdoc and in error messages at the right place, and
//! needs no code generator of its own. A table read by `build.rs` would need
//! a parser for its format and would emit code nobody reads; the rows here
//! are plain tokens, and only the expansion site resolves their names
//! (`RunPodSandboxRequest` means `crate::api::RunPodSandboxRequest` there).
//! That is also why this module sits at the bottom of the crate, beside
//! `error`: it imports nothing, so the error messages can be derived from
//! it too.
//!
//! # A row
//!
//! ```text
//! {
//!     name: RunPodSandbox,                  // display name, RPC method name, stats name
//!     event: RUN_POD_SANDBOX,               // the api::Event value; its mask bit is
//!                                           //   1 << (value - 1), upstream's rule
//!     handler: run_pod_sandbox,             // Plugin, PluginHandle and PluginSet method
//!     kind: PodNotification,                // the handler's shape (below)
//!     rpc: RunPodSandboxRequest => RunPodSandboxResponse,
//!     since: (0, 2, 0),                     // first NRI release with the event
//!     rpc_since: (0, 12, 0),                // first release whose runtime calls its RPC
//!     state_change: yes,                    // StateChange can carry it (older runtimes)
//! }
//! ```
//!
//! Kinds, each one handler shape:
//!
//! | kind | handler takes | handler returns |
//! |---|---|---|
//! | `PodNotification` | pod | nothing |
//! | `PodUpdate` | pod, overhead, resources | nothing |
//! | `ContainerNotification` | pod, container | nothing |
//! | `Create` | pod, container | adjustment and updates |
//! | `UpdateWithUpdates` | pod, container, resources | updates |
//! | `StopWithUpdates` | pod, container | updates |
//! | `Validation` | the validation request | a verdict |
//!
//! Rows are in wire order (event number). `since` and `rpc_since` must be
//! releases of the release table (`crate::api::releases`), which a
//! compile-time check enforces.
//!
//! Adding an event: a message pair and an enum value in `proto/nri.proto`,
//! a row here, and (the plugin-facing surface being hand-written) a method
//! of `stub::Plugin`. Everything else follows from the row.

/// Hands every row of the event table to `$callback!`, in wire order.
macro_rules! for_each_event {
    ($callback:ident) => {
        $callback! {
            {
                name: RunPodSandbox, event: RUN_POD_SANDBOX, handler: run_pod_sandbox,
                kind: PodNotification, rpc: RunPodSandboxRequest => RunPodSandboxResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: StopPodSandbox, event: STOP_POD_SANDBOX, handler: stop_pod_sandbox,
                kind: PodNotification, rpc: StopPodSandboxRequest => StopPodSandboxResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: RemovePodSandbox, event: REMOVE_POD_SANDBOX, handler: remove_pod_sandbox,
                kind: PodNotification, rpc: RemovePodSandboxRequest => RemovePodSandboxResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: CreateContainer, event: CREATE_CONTAINER, handler: create_container,
                kind: Create, rpc: CreateContainerRequest => CreateContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 2, 0), state_change: no,
            }
            {
                name: PostCreateContainer, event: POST_CREATE_CONTAINER,
                handler: post_create_container, kind: ContainerNotification,
                rpc: PostCreateContainerRequest => PostCreateContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: StartContainer, event: START_CONTAINER, handler: start_container,
                kind: ContainerNotification, rpc: StartContainerRequest => StartContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: PostStartContainer, event: POST_START_CONTAINER,
                handler: post_start_container, kind: ContainerNotification,
                rpc: PostStartContainerRequest => PostStartContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: UpdateContainer, event: UPDATE_CONTAINER, handler: update_container,
                kind: UpdateWithUpdates, rpc: UpdateContainerRequest => UpdateContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 2, 0), state_change: no,
            }
            {
                name: PostUpdateContainer, event: POST_UPDATE_CONTAINER,
                handler: post_update_container, kind: ContainerNotification,
                rpc: PostUpdateContainerRequest => PostUpdateContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: StopContainer, event: STOP_CONTAINER, handler: stop_container,
                kind: StopWithUpdates, rpc: StopContainerRequest => StopContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 2, 0), state_change: no,
            }
            {
                name: RemoveContainer, event: REMOVE_CONTAINER, handler: remove_container,
                kind: ContainerNotification, rpc: RemoveContainerRequest => RemoveContainerResponse,
                since: (0, 2, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: UpdatePodSandbox, event: UPDATE_POD_SANDBOX, handler: update_pod_sandbox,
                kind: PodUpdate, rpc: UpdatePodSandboxRequest => UpdatePodSandboxResponse,
                since: (0, 10, 0), rpc_since: (0, 10, 0), state_change: no,
            }
            {
                name: PostUpdatePodSandbox, event: POST_UPDATE_POD_SANDBOX,
                handler: post_update_pod_sandbox, kind: PodNotification,
                rpc: PostUpdatePodSandboxRequest => PostUpdatePodSandboxResponse,
                since: (0, 10, 0), rpc_since: (0, 12, 0), state_change: yes,
            }
            {
                name: ValidateContainerAdjustment, event: VALIDATE_CONTAINER_ADJUSTMENT,
                handler: validate_container_adjustment, kind: Validation,
                rpc: ValidateContainerAdjustmentRequest => ValidateContainerAdjustmentResponse,
                since: (0, 10, 0), rpc_since: (0, 10, 0), state_change: no,
            }
        }
    };
}

pub(crate) use for_each_event;

/// Expands the rows into their names, in wire order.
macro_rules! names {
    ($({ name: $name:ident, $($rest:tt)* })*) => {
        &[$(stringify!($name)),*]
    };
}

/// Every event's name, in wire order (`"RunPodSandbox"`, ...).
pub(crate) const EVENT_NAMES: &[&str] = for_each_event!(names);

/// The group names an event mask's text form accepts besides the event
/// names, each with what it stands for: every event whose lower-case name
/// holds the second string (upstream's rule; `""` holds for every event).
pub(crate) const EVENT_GROUPS: [(&str, &str); 4] = [
    ("all", ""),
    ("pod", "pod"),
    ("podsandbox", "pod"),
    ("container", "container"),
];

/// Writes every name an event mask's text form accepts: the events, then
/// the groups (for `Error::UnknownEvent`).
pub(crate) struct KnownEventNames;

impl std::fmt::Display for KnownEventNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups = EVENT_GROUPS.iter().map(|(name, _)| name);
        for (i, name) in EVENT_NAMES.iter().chain(groups).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}
