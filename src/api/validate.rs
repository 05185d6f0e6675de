//! Helpers for adjustment validation (NRI v0.10+) and the failure policy
//! (v0.12.5): what a validator reads and answers, and how a runtime words a
//! rejection.
//!
//! ```
//! use nri::api::{ValidateContainerAdjustmentRequest, ValidateContainerAdjustmentResponse};
//!
//! let mut req = ValidateContainerAdjustmentRequest::new();
//! req.add_plugin("device-injector", "10");
//! assert!(req.took_part("device-injector"));
//! assert!(req.took_part("10-device-injector"));
//! assert!(!req.took_part("ulimit-adjuster"));
//!
//! let verdict = ValidateContainerAdjustmentResponse::rejection("hooks are not allowed");
//! let err = verdict.validation_result("20-policy").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"validator "20-policy" rejected container adjustment, reason: hooks are not allowed"#
//! );
//! ```

use std::collections::HashMap;

use super::{
    FailurePolicy, PluginInstance, ValidateContainerAdjustmentRequest,
    ValidateContainerAdjustmentResponse,
};
use crate::Error;

impl ValidateContainerAdjustmentRequest {
    /// Records a plugin consulted for the adjustment (runtime side).
    pub fn add_plugin(&mut self, name: impl Into<String>, index: impl Into<String>) -> &mut Self {
        self.plugins.push(PluginInstance {
            name: name.into(),
            index: index.into(),
            ..Default::default()
        });
        self
    }

    /// The consulted plugins by base name (`device-injector`) and by full
    /// name (`10-device-injector`), as upstream's `GetPluginMap`.
    pub fn plugin_map(&self) -> HashMap<String, &PluginInstance> {
        let mut map = HashMap::new();
        for p in &self.plugins {
            map.insert(p.name.clone(), p);
            map.insert(p.full_name(), p);
        }
        map
    }

    /// Whether the plugin, named by base name or by full `NN-name`, was
    /// consulted for this adjustment: a validator's check for a plugin
    /// every container must pass through.
    pub fn took_part(&self, plugin: &str) -> bool {
        self.plugins
            .iter()
            .any(|p| p.name == plugin || p.full_name() == plugin)
    }
}

impl PluginInstance {
    /// `NN-name`.
    pub fn full_name(&self) -> String {
        format!("{}-{}", self.index, self.name)
    }
}

impl ValidateContainerAdjustmentResponse {
    /// A rejection with its reason.
    pub fn rejection(reason: impl Into<String>) -> ValidateContainerAdjustmentResponse {
        ValidateContainerAdjustmentResponse {
            reject: true,
            reason: reason.into(),
            ..Default::default()
        }
    }

    /// The verdict as the runtime turns it into an error: `Ok` when
    /// accepted, else the rejection worded as upstream words it (an empty
    /// reason reads "unknown rejection reason").
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] for a rejection.
    pub fn validation_result(&self, plugin: &str) -> Result<(), Error> {
        if !self.reject {
            return Ok(());
        }
        let reason = if self.reason.is_empty() {
            "unknown rejection reason"
        } else {
            &self.reason
        };
        Err(Error::Rejected(format!(
            "validator {plugin:?} rejected container adjustment, reason: {reason}"
        )))
    }
}

impl FailurePolicy {
    /// A policy from its two decisions: `fail_request` fails the request a
    /// plugin times out on (or whose connection fails) instead of going on
    /// without the plugin; `keep_connected` keeps a plugin that timed out
    /// registered instead of dropping it.
    ///
    /// ```
    /// use nri::api::FailurePolicy;
    /// let strict = FailurePolicy::from_flags(true, false);
    /// assert!(strict.fail_request && !strict.keep_connected);
    /// ```
    pub fn from_flags(fail_request: bool, keep_connected: bool) -> FailurePolicy {
        FailurePolicy {
            fail_request,
            keep_connected,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_map_has_base_and_full_names() {
        let mut req = ValidateContainerAdjustmentRequest::new();
        req.add_plugin("a", "10").add_plugin("b", "20");
        let map = req.plugin_map();
        assert_eq!(map.len(), 4);
        assert_eq!(map["20-b"].name, "b");
        assert_eq!(map["a"].index, "10");
    }

    #[test]
    fn an_empty_reason_is_worded_as_unknown() {
        let verdict = ValidateContainerAdjustmentResponse::rejection("");
        let err = verdict.validation_result("x").unwrap_err().to_string();
        assert!(err.ends_with("reason: unknown rejection reason"), "{err}");
        assert!(ValidateContainerAdjustmentResponse::new()
            .validation_result("x")
            .is_ok());
    }
}
