//! The adversarial suite: hostile and broken peers, on either side of a
//! connection, each case asserting bounds on time, memory, threads and
//! descriptors. Cases live in `tests/adversarial/`, one file per family;
//! this file only lists them.

mod common;

#[path = "adversarial/inbound_memory.rs"]
mod inbound_memory;
#[path = "adversarial/runtime_connections.rs"]
mod runtime_connections;
#[path = "adversarial/runtime_logs.rs"]
mod runtime_logs;
#[path = "adversarial/runtime_registration.rs"]
mod runtime_registration;
#[path = "adversarial/runtime_replies.rs"]
mod runtime_replies;
#[path = "adversarial/runtime_set.rs"]
mod runtime_set;
#[path = "adversarial/runtime_support.rs"]
mod runtime_support;
#[path = "adversarial/runtime_updates.rs"]
mod runtime_updates;
#[path = "adversarial/synchronize_memory.rs"]
mod synchronize_memory;
#[path = "adversarial/wire_budget.rs"]
mod wire_budget;
#[path = "adversarial/wire_guard.rs"]
mod wire_guard;
#[path = "adversarial/wire_ids.rs"]
mod wire_ids;
#[path = "adversarial/wire_support.rs"]
mod wire_support;
#[path = "adversarial/wire_writes.rs"]
mod wire_writes;
