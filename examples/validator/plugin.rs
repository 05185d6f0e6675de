//! The validator: rejects container adjustments that a configured policy
//! forbids. A port of upstream's default validator
//! (`plugins/default-validator` of containerd/nri v0.12.5), run as a plugin
//! of its own, with one addition: plugins on an allow list may make the
//! restricted adjustments.
//!
//! Configuration (the Configure text, YAML; every key optional):
//!
//! ```yaml
//! rejectOCIHookAdjustment: true                 # hooks injected by any plugin
//! rejectRuntimeDefaultSeccompAdjustment: true   # seccomp policy changed on a RuntimeDefault container
//! rejectUnconfinedSeccompAdjustment: false      # ... on an unconfined container (or none set)
//! rejectCustomSeccompAdjustment: true           # ... on a Localhost-profile container
//! rejectNamespaceAdjustment: true               # namespaces joined, replaced or removed
//! rejectSysctlAdjustment: true                  # sysctls set
//! requiredPlugins: [device-injector]            # plugins every container must pass through
//! tolerateMissingPluginsAnnotation: tolerate-missing-plugins.example.com
//! allowedPlugins: [10-hook-injector]            # may make the restricted adjustments (not upstream)
//! ```
//!
//! Pods may require more plugins with the annotation
//! `required-plugins.noderesource.dev` (or `.../pod`, or
//! `.../container.<name>` for one container): a YAML list of plugin names,
//! base (`device-injector`) or full (`10-device-injector`). A container
//! whose pod sets the toleration annotation to `true` passes without them.
//!
//! The configuration and the `required-plugins` annotation are read with
//! `nri::decode`, the rules of `sigs.k8s.io/yaml` that upstream's other
//! samples use, where upstream's validator uses `yaml.v3`: keys match in
//! any case here (`rejectocihookadjustment`), and YAML 1.1 spellings of
//! booleans (`yes`, `on`) are booleans wherever they appear.
//!
//! Rejections carry upstream's wording. The validator requires the
//! ValidateContainerAdjustment event: against a runtime too old to send it
//! (before NRI v0.10: containerd 2.1, CRI-O 1.33) it refuses to register
//! instead of running and letting every adjustment through.

use std::sync::Mutex;

use nri::api::annotations::{self, ALL_SCOPES};
use nri::api::security_profile::ProfileType;
use nri::api::{Event, EventMask, Field, PodSandbox, ValidateContainerAdjustmentRequest};
use nri::stub::{Context, HandlerResult, Plugin};
use serde::Deserialize;

/// Pods and containers name extra required plugins with this annotation.
pub const REQUIRED_PLUGINS_ANNOTATION: &str = "required-plugins.noderesource.dev";

/// The validator's policy, as its configuration names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Reject OCI hooks injected by any plugin.
    #[serde(rename = "rejectOCIHookAdjustment")]
    pub reject_oci_hooks: bool,
    /// Reject seccomp policy changes on RuntimeDefault containers.
    #[serde(rename = "rejectRuntimeDefaultSeccompAdjustment")]
    pub reject_runtime_default_seccomp: bool,
    /// Reject seccomp policy changes on unconfined containers.
    #[serde(rename = "rejectUnconfinedSeccompAdjustment")]
    pub reject_unconfined_seccomp: bool,
    /// Reject seccomp policy changes on Localhost-profile containers.
    #[serde(rename = "rejectCustomSeccompAdjustment")]
    pub reject_custom_seccomp: bool,
    /// Reject namespace changes.
    #[serde(rename = "rejectNamespaceAdjustment")]
    pub reject_namespaces: bool,
    /// Reject sysctl changes.
    #[serde(rename = "rejectSysctlAdjustment")]
    pub reject_sysctls: bool,
    /// Plugins every container must pass through.
    #[serde(rename = "requiredPlugins")]
    pub required_plugins: Vec<String>,
    /// Annotation that lets a container tolerate missing required plugins.
    #[serde(rename = "tolerateMissingPluginsAnnotation")]
    pub tolerate_missing_annotation: String,
    /// Plugins allowed to make the restricted adjustments.
    #[serde(rename = "allowedPlugins")]
    pub allowed_plugins: Vec<String>,
}

impl Policy {
    /// Reads a policy from the configuration text (other keys, such as
    /// the logging ones, are ignored).
    pub fn parse(text: &str) -> Result<Policy, String> {
        nri::decode::from_yaml(text).map_err(|e| format!("invalid configuration: {e}"))
    }

    fn allowed(&self, plugin: &str) -> bool {
        self.allowed_plugins.iter().any(|a| a == plugin)
    }

    /// The policy's verdict on one request: `Err(reason)` rejects.
    pub fn check(&self, req: &ValidateContainerAdjustmentRequest) -> Result<(), String> {
        if req.adjust.is_some() {
            self.check_hooks(req)?;
            self.check_seccomp(req)?;
            self.check_namespaces(req)?;
        }
        self.check_required_plugins(req)?;
        if req.adjust.is_some() {
            self.check_sysctls(req)?;
        }
        Ok(())
    }

    fn check_hooks(&self, req: &ValidateContainerAdjustmentRequest) -> Result<(), String> {
        if !self.reject_oci_hooks {
            return Ok(());
        }
        let id = &req.container.id;
        let Some(owners) = req.owners.simple_owner(id, Field::OciHooks) else {
            return Ok(());
        };
        let offenders: Vec<&str> = owners.split(',').filter(|p| !self.allowed(p)).collect();
        match offenders.as_slice() {
            [] => Ok(()),
            [one] => Err(format!(
                "validation error: plugin {one:?} attempted restricted OCI hook injection"
            )),
            many => Err(format!(
                "validation error: plugins {:?} attempted restricted OCI hook injection",
                many.join(",")
            )),
        }
    }

    fn check_seccomp(&self, req: &ValidateContainerAdjustmentRequest) -> Result<(), String> {
        let id = &req.container.id;
        let Some(owner) = req.owners.simple_owner(id, Field::SeccompPolicy) else {
            return Ok(());
        };
        if self.allowed(owner) {
            return Ok(());
        }
        let profile = &req.container.linux.seccomp_profile;
        let kind = profile
            .as_ref()
            .map(|p| p.profile_type.enum_value_or_default());
        let (rejected, what) = match kind {
            None | Some(ProfileType::UNCONFINED) => (self.reject_unconfined_seccomp, " unconfined"),
            Some(ProfileType::RUNTIME_DEFAULT) => {
                (self.reject_runtime_default_seccomp, "runtime default")
            }
            Some(ProfileType::LOCALHOST) => (self.reject_custom_seccomp, " custom"),
        };
        if rejected {
            return Err(format!(
                "validation error: plugin {owner} attempted restricted {what} seccomp policy adjustment"
            ));
        }
        Ok(())
    }

    fn check_namespaces(&self, req: &ValidateContainerAdjustmentRequest) -> Result<(), String> {
        if !self.reject_namespaces {
            return Ok(());
        }
        let id = &req.container.id;
        let Some(owners) = req
            .owners
            .owners_for(id)
            .and_then(|o| o.compound_owners(Field::Namespace))
        else {
            return Ok(());
        };
        let mut offenders: Vec<String> = owners
            .iter()
            .filter(|(_, plugin)| !self.allowed(plugin))
            .map(|(ns, plugin)| format!("{plugin:?} (namespace {ns:?})"))
            .collect();
        if offenders.is_empty() {
            return Ok(());
        }
        offenders.sort();
        Err(format!(
            "validation error: attempted restricted namespace adjustment by plugin(s) {}",
            offenders.join(", ")
        ))
    }

    fn check_sysctls(&self, req: &ValidateContainerAdjustmentRequest) -> Result<(), String> {
        if !self.reject_sysctls {
            return Ok(());
        }
        let id = &req.container.id;
        let mut keys: Vec<&String> = req.adjust.linux.sysctl.keys().collect();
        keys.sort();
        let owners: Vec<&str> = keys
            .into_iter()
            .filter_map(|k| req.owners.compound_owner(id, Field::Sysctl, k))
            .filter(|p| !self.allowed(p))
            .collect();
        if owners.is_empty() {
            return Ok(());
        }
        Err(format!(
            "validation error: attempted restricted sysctl adjustment by plugin(s) {}",
            owners.join(", ")
        ))
    }

    fn check_required_plugins(
        &self,
        req: &ValidateContainerAdjustmentRequest,
    ) -> Result<(), String> {
        let pod = req.pod.get_or_default();
        let container = &req.container.name;
        if !self.tolerate_missing_annotation.is_empty() {
            if let Some(value) =
                effective_annotation(pod, &self.tolerate_missing_annotation, container)
            {
                match parse_go_bool(value) {
                    Some(true) => return Ok(()),
                    Some(false) => {}
                    None => {
                        return Err(format!(
                            "invalid {} annotation {value:?}: not a boolean",
                            self.tolerate_missing_annotation
                        ))
                    }
                }
            }
        }
        let mut annotated = Vec::new();
        if let Some(value) = effective_annotation(pod, REQUIRED_PLUGINS_ANNOTATION, container) {
            annotated = nri::decode::from_yaml(value).map_err(|e| {
                format!("invalid {REQUIRED_PLUGINS_ANNOTATION} annotation {value:?}: {e}")
            })?;
        }
        let missing: Vec<&str> = self
            .required_plugins
            .iter()
            .chain(&annotated)
            .filter(|r| !req.took_part(r))
            .map(String::as_str)
            .collect();
        match missing.as_slice() {
            [] => Ok(()),
            [one] => Err(format!(
                "validation error: required plugin {one:?} not present"
            )),
            many => Err(format!(
                "validation error: required plugins {:?} not present",
                many.join(",")
            )),
        }
    }
}

/// An annotation of the pod that applies to `container`: the
/// container-scoped key first, then the pod-scoped one, then the bare key.
fn effective_annotation<'a>(pod: &'a PodSandbox, key: &str, container: &str) -> Option<&'a str> {
    annotations::lookup_in(&pod.annotations, &[key], container, &ALL_SCOPES).map(|a| a.value)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The validator plugin.
#[derive(Default)]
pub struct Validator {
    policy: Mutex<Policy>,
}

impl Validator {
    /// A validator with `policy` until Configure brings one.
    pub fn new(policy: Policy) -> Self {
        Validator {
            policy: Mutex::new(policy),
        }
    }

    /// The policy in force.
    #[allow(dead_code)]
    pub fn policy(&self) -> Policy {
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Plugin for Validator {
    fn events(&self) -> EventMask {
        Event::VALIDATE_CONTAINER_ADJUSTMENT.into()
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        if !config.trim().is_empty() {
            nri::logging::configure_from_text(config)?;
            let policy = Policy::parse(config)?;
            log::info!("policy: {policy:?}");
            *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
        }
        Ok(None)
    }

    fn validate_container_adjustment(
        &self,
        _ctx: &Context<'_>,
        request: &ValidateContainerAdjustmentRequest,
    ) -> HandlerResult<()> {
        let verdict = self
            .policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(request);
        if let Err(reason) = &verdict {
            log::warn!(
                "rejecting the adjustment of {}/{}: {reason}",
                request.pod.name,
                request.container.name
            );
        }
        Ok(verdict?)
    }
}
