//! Which plugin set which field of a container: [`OwningPlugins`],
//! [`FieldOwners`] and the [`Field`] they are keyed by (NRI v0.10+).
//!
//! The runtime records an owner for every field a plugin's adjustment
//! touches while it merges the adjustments of all plugins; a second plugin
//! setting the same field is a conflict that fails the container's creation.
//! Validators receive the record in
//! [`ValidateContainerAdjustmentRequest::owners`](super::ValidateContainerAdjustmentRequest)
//! and read it with [`OwningPlugins::simple_owner`] and
//! [`OwningPlugins::compound_owner`].
//!
//! Simple fields (the memory limit, the seccomp policy, ...) have one owner.
//! Compound fields (annotations, mounts, devices, env, rlimits, namespaces,
//! sysctls, ...) have one owner per entry, keyed by the entry's key
//! (annotation key, mount destination, device path, variable name, rlimit
//! type, namespace type, ...). An owner written with the removal marker
//! (`-10-plugin`) is a plugin that removed the entry; hooks accumulate the
//! owners of every plugin that added some, comma-separated.
//!
//! ```
//! use nri::api::{Field, OwningPlugins};
//!
//! let mut owners = OwningPlugins::new();
//! owners.claim_simple("ctr1", Field::MemLimit, "10-sizer")?;
//! owners.claim_compound("ctr1", Field::Annotations, "team", "20-labeler")?;
//! assert_eq!(owners.simple_owner("ctr1", Field::MemLimit), Some("10-sizer"));
//! assert_eq!(owners.compound_owner("ctr1", Field::Annotations, "team"), Some("20-labeler"));
//!
//! let err = owners.claim_simple("ctr1", Field::MemLimit, "30-other").unwrap_err();
//! assert_eq!(err.to_string(), r#"plugins "30-other" and "10-sizer" both tried to set MemLimit "#);
//! # Ok::<(), nri::Error>(())
//! ```

use std::collections::HashMap;

use super::{is_marked_for_removal, mark_for_removal, Field, FieldOwners, OwningPlugins};
use crate::Error;

impl Field {
    /// The key of this field in [`FieldOwners`]' maps (upstream `Key()`).
    pub fn key(self) -> i32 {
        self as i32
    }

    /// Whether the field is owned entry by entry (annotations, mounts,
    /// devices, CDI devices, env, hugepage limits, unified cgroup values,
    /// rlimits, namespaces, sysctls, network devices) rather than as a
    /// whole.
    pub fn is_compound(self) -> bool {
        matches!(
            self,
            Field::Annotations
                | Field::Mounts
                | Field::Devices
                | Field::CdiDevices
                | Field::Env
                | Field::HugepageLimits
                | Field::CgroupsUnified
                | Field::Rlimits
                | Field::Namespace
                | Field::Sysctl
                | Field::LinuxNetDevices
        )
    }

    /// The field's name as upstream prints it in conflicts (`MemLimit`).
    pub fn name(self) -> &'static str {
        macro_rules! names {
            ($($v:ident)*) => {
                match self {
                    $(Field::$v => stringify!($v),)*
                }
            };
        }
        names!(None Annotations Mounts OciHooks Devices CdiDevices Env Args MemLimit
            MemReservation MemSwapLimit MemKernelLimit MemTCPLimit MemSwappiness
            MemDisableOomKiller MemUseHierarchy CPUShares CPUQuota CPUPeriod
            CPURealtimeRuntime CPURealtimePeriod CPUSetCPUs CPUSetMems PidsLimit
            HugepageLimits BlockioClass RdtClass CgroupsUnified CgroupsPath OomScoreAdj
            Rlimits IoPriority SeccompPolicy Namespace Sysctl LinuxNetDevices LinuxSched
            RdtClosID RdtSchemata RdtEnableMonitoring MemoryPolicy)
    }
}

/// The conflict error upstream reports, word for word.
fn conflict(field: i32, plugin: &str, other: &str, qualifier: Option<&str>) -> Error {
    let name = <Field as protobuf::Enum>::from_i32(field)
        .map(Field::name)
        .unwrap_or("unknown field");
    Error::Conflict(format!(
        "plugins {plugin:?} and {other:?} both tried to set {name} {}",
        qualifier.unwrap_or("")
    ))
}

/// Who holds an entry, seen by `plugin` about to claim it: the holder, or
/// `None` when `plugin` may claim it (free, or removed by `plugin` itself).
fn rival<'a>(holder: &'a str, plugin: &str) -> Option<&'a str> {
    match is_marked_for_removal(holder) {
        Some(clearer) if clearer == plugin => None,
        Some(clearer) => Some(clearer),
        None => Some(holder),
    }
}

impl FieldOwners {
    /// The owner of a simple field, as recorded (a removal is `-plugin`;
    /// hooks hold every contributor, comma-separated).
    pub fn simple_owner(&self, field: Field) -> Option<&str> {
        self.simple.get(&field.key()).map(String::as_str)
    }

    /// The owner of one entry of a compound field.
    pub fn compound_owner(&self, field: Field, key: &str) -> Option<&str> {
        self.compound
            .get(&field.key())
            .and_then(|c| c.owners.get(key))
            .map(String::as_str)
    }

    /// Every owned entry of a compound field, by entry key.
    pub fn compound_owners(&self, field: Field) -> Option<&HashMap<String, String>> {
        self.compound.get(&field.key()).map(|c| &c.owners)
    }

    /// Records `plugin` as the owner of a simple field.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] naming both plugins when another plugin owns the
    /// field (or removed it).
    pub fn claim_simple(&mut self, field: Field, plugin: &str) -> Result<(), Error> {
        if let Some(other) = self.simple.get(&field.key()).and_then(|h| rival(h, plugin)) {
            return Err(conflict(field.key(), plugin, other, None));
        }
        self.simple.insert(field.key(), plugin.to_string());
        Ok(())
    }

    /// Records `plugin` as the owner of entry `key` of a compound field.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] naming both plugins and the entry when another
    /// plugin owns the entry (or removed it).
    pub fn claim_compound(&mut self, field: Field, key: &str, plugin: &str) -> Result<(), Error> {
        let entries = &mut self.compound.entry(field.key()).or_default().owners;
        if let Some(other) = entries.get(key).and_then(|h| rival(h, plugin)) {
            return Err(conflict(field.key(), plugin, other, Some(key)));
        }
        entries.insert(key.to_string(), plugin.to_string());
        Ok(())
    }

    /// Records that `plugin` removed a simple field.
    pub fn clear_simple(&mut self, field: Field, plugin: &str) {
        self.simple.insert(field.key(), mark_for_removal(plugin));
    }

    /// Records that `plugin` removed entry `key` of a compound field.
    pub fn clear_compound(&mut self, field: Field, key: &str, plugin: &str) {
        self.compound
            .entry(field.key())
            .or_default()
            .owners
            .insert(key.to_string(), mark_for_removal(plugin));
    }

    /// Adds `plugin` to the owners of a field that several plugins may
    /// extend (hooks): the owners are kept comma-separated, never a
    /// conflict.
    pub fn accumulate_simple(&mut self, field: Field, plugin: &str) {
        let owners = self.simple.entry(field.key()).or_default();
        if !owners.is_empty() {
            owners.push(',');
        }
        owners.push_str(plugin);
    }
}

impl OwningPlugins {
    /// The owners recorded for one container.
    pub fn owners_for(&self, container_id: &str) -> Option<&FieldOwners> {
        self.owners.get(container_id)
    }

    /// The owners recorded for one container, created empty if missing.
    pub fn owners_for_mut(&mut self, container_id: &str) -> &mut FieldOwners {
        self.owners.entry(container_id.to_string()).or_default()
    }

    /// The owner of a simple field of a container (see
    /// [`FieldOwners::simple_owner`]).
    pub fn simple_owner(&self, container_id: &str, field: Field) -> Option<&str> {
        self.owners_for(container_id)?.simple_owner(field)
    }

    /// The owner of one entry of a compound field of a container.
    pub fn compound_owner(&self, container_id: &str, field: Field, key: &str) -> Option<&str> {
        self.owners_for(container_id)?.compound_owner(field, key)
    }

    /// Records `plugin` as the owner of a simple field of a container.
    ///
    /// # Errors
    ///
    /// See [`FieldOwners::claim_simple`].
    pub fn claim_simple(
        &mut self,
        container_id: &str,
        field: Field,
        plugin: &str,
    ) -> Result<(), Error> {
        self.owners_for_mut(container_id)
            .claim_simple(field, plugin)
    }

    /// Records `plugin` as the owner of entry `key` of a compound field.
    ///
    /// # Errors
    ///
    /// See [`FieldOwners::claim_compound`].
    pub fn claim_compound(
        &mut self,
        container_id: &str,
        field: Field,
        key: &str,
        plugin: &str,
    ) -> Result<(), Error> {
        self.owners_for_mut(container_id)
            .claim_compound(field, key, plugin)
    }

    /// Every plugin that has a say in a container, whichever field: useful
    /// to a validator checking that a required plugin took part.
    pub fn plugins_of(&self, container_id: &str) -> Vec<String> {
        let Some(f) = self.owners_for(container_id) else {
            return Vec::new();
        };
        let mut all: Vec<String> = f
            .simple
            .values()
            .flat_map(|v| v.split(','))
            .chain(
                f.compound
                    .values()
                    .flat_map(|c| c.owners.values().map(String::as_str)),
            )
            .map(|p| is_marked_for_removal(p).unwrap_or(p).to_string())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_name_both_plugins_and_the_entry_like_upstream() {
        let mut f = FieldOwners::new();
        f.claim_compound(Field::Annotations, "k", "10-a").unwrap();
        let err = f
            .claim_compound(Field::Annotations, "k", "20-b")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"plugins "20-b" and "10-a" both tried to set Annotations k"#
        );
        f.claim_simple(Field::CPUShares, "10-a").unwrap();
        let err = f.claim_simple(Field::CPUShares, "20-b").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"plugins "20-b" and "10-a" both tried to set CPUShares "#
        );
    }

    #[test]
    fn a_plugin_may_set_what_it_removed_itself_but_not_what_another_removed() {
        let mut f = FieldOwners::new();
        f.clear_compound(Field::Env, "PATH", "10-a");
        f.claim_compound(Field::Env, "PATH", "10-a").unwrap();
        assert_eq!(f.compound_owner(Field::Env, "PATH"), Some("10-a"));
        f.clear_simple(Field::Args, "10-a");
        assert_eq!(f.simple_owner(Field::Args), Some("-10-a"));
        let err = f.claim_simple(Field::Args, "20-b").unwrap_err();
        assert!(err.to_string().contains(r#""20-b" and "10-a""#), "{err}");
        // The same plugin claiming twice conflicts with itself, as upstream.
        f.claim_simple(Field::OomScoreAdj, "10-a").unwrap();
        assert!(f.claim_simple(Field::OomScoreAdj, "10-a").is_err());
    }

    #[test]
    fn hooks_accumulate_and_owners_are_read_per_container() {
        let mut o = OwningPlugins::new();
        o.owners_for_mut("c")
            .accumulate_simple(Field::OciHooks, "10-a");
        o.owners_for_mut("c")
            .accumulate_simple(Field::OciHooks, "20-b");
        assert_eq!(o.simple_owner("c", Field::OciHooks), Some("10-a,20-b"));
        o.claim_compound("c", Field::Mounts, "/data", "30-c")
            .unwrap();
        assert_eq!(o.plugins_of("c"), ["10-a", "20-b", "30-c"]);
        assert_eq!(o.simple_owner("other", Field::OciHooks), None);
        assert!(o.plugins_of("other").is_empty());
    }

    #[test]
    fn fields_know_their_kind_and_name() {
        assert!(Field::Rlimits.is_compound());
        assert!(!Field::MemoryPolicy.is_compound());
        assert_eq!(Field::LinuxSched.name(), "LinuxSched");
        assert_eq!(Field::RdtClosID.key(), 37);
    }
}
