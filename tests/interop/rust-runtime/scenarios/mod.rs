//! The scenarios, grouped by what they exercise, and their registry.

use crate::*;

mod adjustments;
mod events;
mod failures;
mod registration;
mod sizes;
mod sync;
mod two_plugins;
mod updates;
mod v012;

pub(crate) use adjustments::*;
pub(crate) use events::*;
pub(crate) use failures::*;
pub(crate) use registration::*;
pub(crate) use sizes::*;
pub(crate) use sync::*;
pub(crate) use two_plugins::*;
pub(crate) use updates::*;
pub(crate) use v012::*;

pub(crate) type Scenario = fn(&mut Ctx) -> R;

pub(crate) const SCENARIOS: &[(&str, Scenario)] = &[
    ("external-register", sc_external_register),
    ("launched-config", sc_launched_config),
    ("synchronize-small", sc_synchronize_small),
    ("synchronize-chunked", sc_synchronize_chunked),
    ("lifecycle-events", sc_lifecycle_events),
    ("event-subscription", sc_event_subscription),
    ("create-full-adjustment", sc_create_full_adjustment),
    ("update-and-stop-replies", sc_update_and_stop_replies),
    ("message-sizes", sc_message_sizes),
    ("message-size-limits", sc_message_size_limits),
    ("unsolicited-update", sc_unsolicited_update),
    ("handler-failure", sc_handler_failure),
    ("slow-handler-dropped", sc_slow_handler_dropped),
    ("plugin-restart", sc_plugin_restart),
    ("launched-plugin-killed", sc_launched_plugin_killed),
    ("shutdown", sc_shutdown),
    ("registration-refused", sc_registration_refused),
    ("registration-timeout", sc_registration_timeout),
    ("configure-failure", sc_configure_failure),
    ("oversized-reply-dropped", sc_oversized_reply_dropped),
    ("serialized-requests", sc_serialized_requests),
    ("unsolicited-during-relay", sc_unsolicited_during_relay),
    ("two-plugins-ordering", sc_two_plugins_ordering),
    ("two-plugins-updates", sc_two_plugins_updates),
    ("two-plugins-one-dies", sc_two_plugins_one_dies),
];

/// Scenarios of what NRI v0.10+ added, run when the emulated version has it.
const SINCE_V0_10: &[(&str, Scenario)] = &[
    (
        "versions-and-per-event-rpcs",
        sc_versions_and_per_event_rpcs,
    ),
    ("pod-update-events", sc_pod_update_events),
    ("v012-adjustments", sc_v012_adjustments),
    ("validation", sc_validation),
];

/// The scenarios for this run: all of [`SCENARIOS`], then those of the
/// emulated version's additions (the StateChange fallback of a v0.9.0
/// plugin needs `-old-plugin`).
pub(crate) fn scenarios(old_plugin: bool) -> Vec<(&'static str, Scenario)> {
    let mut all = SCENARIOS.to_vec();
    if pod_updates() {
        all.extend_from_slice(SINCE_V0_10);
    }
    if nri().has_per_event_rpcs() && old_plugin {
        all.push((
            "old-plugin-falls-back-to-state-change",
            sc_old_plugin_falls_back_to_state_change,
        ));
    }
    if nri().has_failure_policy() {
        all.push(("failure-policy", sc_failure_policy));
    }
    all
}
