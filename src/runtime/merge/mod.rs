//! Merging the replies of several plugins to one request, as the reference
//! runtime does (`pkg/adaptation/result.go` of the emulated NRI version).
//!
//! Plugins are called one after another. Each reply is folded into the
//! collected result *and* into the request the next plugin gets, so a later
//! plugin sees the container as the earlier ones adjusted it. Every
//! adjusted or updated field is claimed by the plugin that set it
//! ([`claims`]); a second plugin setting the same field of the same
//! container is a conflict that fails the whole operation, naming both. A
//! plugin may take over an item by removing it first (a key marked with
//! `-`).
//!
//! The version's [`MergeRules`] say which adjustment kinds are merged and
//! how owners are recorded. Where the reference behaves oddly, this follows
//! it so that plugins are judged the same way; the spots are marked "as the
//! reference". Where the reference iterates a Go map, items are taken in
//! key order here, so a reply that conflicts on several keys of one map is
//! reported for its smallest key (the reference reports any of them).

// Files in dependency order: each uses only files above it.
mod adjust;
pub(crate) mod claims;
mod collector;
mod container_updates;
mod fold_resources;

pub(crate) use collector::{pristine_container, Collector};

#[cfg(test)]
mod tests;
