//! Hostile and broken peers: each module plays one against the crate and
//! asserts bounds on time and memory.

mod adversarial {
    mod inbound_memory;
    mod synchronize_memory;
}
