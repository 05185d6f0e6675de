//! Who set what: the claims plugins make on the fields they adjust or
//! update, per container, and the conflicts those claims reveal.
//!
//! Two record styles exist ([`OwnerStyle`]). v0.9 keeps a subject per item
//! (`annotation k`, `memory limit`) and forgets the owner of a removed item.
//! From v0.10 the record is `pkg/api`'s `OwningPlugins`, keyed by
//! [`Field`]: a removal marks the item as `-<remover>`, which only the
//! remover may set again, and the record itself is sent to validators.
//! Conflict messages follow the style: `plugins "b" and "a" both tried to
//! set annotation k` (v0.9) or `... to set Annotations k` (v0.10+; a field
//! without a key is followed by a space, as upstream prints it).

use std::collections::HashMap;

use crate::api::{Field, OwningPlugins};
use crate::runtime::emulation::{HooksOwner, OwnerStyle};
use crate::{Error, Result};

/// The claims of one merge.
pub(crate) struct Claims {
    style: OwnerStyle,
    hooks: HooksOwner,
    /// v0.9 record: container id → subject → plugin.
    subjects: HashMap<String, HashMap<String, String>>,
    /// v0.10+ record, as validators get it.
    fields: OwningPlugins,
}

impl Claims {
    pub(crate) fn new(style: OwnerStyle, hooks: HooksOwner) -> Claims {
        Claims {
            style,
            hooks,
            subjects: HashMap::new(),
            fields: OwningPlugins::new(),
        }
    }

    /// Claims `field` (the item `key` of it, for fields holding several
    /// items) of container `id` for `plugin`; fails with
    /// [`Error::Conflict`] when another plugin holds it.
    pub(crate) fn claim(
        &mut self,
        id: &str,
        field: Field,
        key: Option<&str>,
        plugin: &str,
    ) -> Result<()> {
        match (self.style, key) {
            (OwnerStyle::Subjects, _) => {
                let subject = subject(field, key);
                let owners = self.subjects.entry(id.to_string()).or_default();
                if let Some(other) = owners.get(&subject) {
                    return Err(Error::Conflict(format!(
                        "plugins {plugin:?} and {other:?} both tried to set {subject}"
                    )));
                }
                owners.insert(subject, plugin.to_string());
                Ok(())
            }
            (OwnerStyle::Fields, None) => self.fields.claim_simple(id, field, plugin),
            (OwnerStyle::Fields, Some(k)) => self.fields.claim_compound(id, field, k, plugin),
        }
    }

    /// Records that `plugin` removed the item (v0.9: forgets its owner;
    /// v0.10+: marks it as removed by `plugin`).
    pub(crate) fn clear(&mut self, id: &str, field: Field, key: Option<&str>, plugin: &str) {
        match (self.style, key) {
            (OwnerStyle::Subjects, _) => {
                if let Some(owners) = self.subjects.get_mut(id) {
                    owners.remove(&subject(field, key));
                }
            }
            (OwnerStyle::Fields, None) => {
                self.fields.owners_for_mut(id).clear_simple(field, plugin);
            }
            (OwnerStyle::Fields, Some(k)) => {
                self.fields
                    .owners_for_mut(id)
                    .clear_compound(field, k, plugin);
            }
        }
    }

    /// Records `plugin` among those that added OCI hooks (which never
    /// conflict).
    pub(crate) fn claim_hooks(&mut self, id: &str, plugin: &str) {
        if self.style != OwnerStyle::Fields {
            return;
        }
        let owners = self.fields.owners_for_mut(id);
        let claimed = owners.simple_owner(Field::OciHooks).is_some();
        match self.hooks {
            HooksOwner::None => {}
            HooksOwner::Accumulated => owners.accumulate_simple(Field::OciHooks, plugin),
            // v0.11 marks the field as removed by `plugin`, then claims it
            // for "current,plugin", which conflicts with that mark and is
            // ignored: the mark stays.
            HooksOwner::LatestAsRemover if claimed => {
                owners.clear_simple(Field::OciHooks, plugin);
            }
            HooksOwner::LatestAsRemover => {
                owners
                    .simple
                    .insert(Field::OciHooks.key(), plugin.to_string());
            }
        }
    }

    /// The v0.10+ record, for validators.
    pub(crate) fn owning_plugins(&self) -> OwningPlugins {
        self.fields.clone()
    }
}

/// The v0.9 name of an item (`annotation k`, `memory limit`); fields v0.9
/// does not merge are named like v0.10 names them.
fn subject(field: Field, key: Option<&str>) -> String {
    let name = match field {
        Field::Annotations => "annotation",
        Field::Mounts => "mount",
        Field::Devices => "device",
        Field::CdiDevices => "CDI device",
        Field::Env => "env",
        Field::MemLimit => "memory limit",
        Field::MemReservation => "memory reservation",
        Field::MemSwapLimit => "memory swap limit",
        Field::MemKernelLimit => "memory kernel limit",
        Field::MemTCPLimit => "memory TCP limit",
        Field::MemSwappiness => "memory swappiness",
        Field::MemDisableOomKiller => "memory disable OOM killer",
        Field::MemUseHierarchy => "memory 'UseHierarchy'",
        Field::CPUShares => "CPU shares",
        Field::CPUQuota => "CPU quota",
        Field::CPUPeriod => "CPU period",
        Field::CPURealtimeRuntime => "CPU realtime runtime",
        Field::CPURealtimePeriod => "CPU realtime period",
        Field::CPUSetCPUs => "CPU pinning",
        Field::CPUSetMems => "memory pinning",
        Field::PidsLimit => "pids pinning",
        Field::HugepageLimits => "hugepage limit of size",
        Field::BlockioClass => "block I/O class",
        Field::RdtClass => "RDT class",
        Field::CgroupsUnified => "unified resource",
        Field::CgroupsPath => "cgroups path",
        Field::OomScoreAdj => "oom score adj",
        Field::Rlimits => "rlimit",
        other => other.name(),
    };
    match key {
        Some(k) => format!("{name} {k}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Claims {
        Claims::new(OwnerStyle::Fields, HooksOwner::Accumulated)
    }

    #[test]
    fn simple_field_conflict_names_both_plugins_and_the_field_with_its_trailing_space() {
        let mut o = fields();
        o.claim("c", Field::MemLimit, None, "10-a").unwrap();
        let e = o.claim("c", Field::MemLimit, None, "20-b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugins \"20-b\" and \"10-a\" both tried to set MemLimit "
        );
    }

    #[test]
    fn a_removal_lets_only_the_remover_set_the_item_again() {
        let mut o = fields();
        o.claim("c", Field::Annotations, Some("k"), "10-a").unwrap();
        o.clear("c", Field::Annotations, Some("k"), "20-b");
        o.claim("c", Field::Annotations, Some("k"), "20-b").unwrap();
        let e = o
            .claim("c", Field::Annotations, Some("k"), "30-c")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugins \"30-c\" and \"20-b\" both tried to set Annotations k"
        );
        let mut o = fields();
        o.clear("c", Field::Env, Some("E"), "20-b");
        let e = o.claim("c", Field::Env, Some("E"), "30-c").unwrap_err();
        assert!(e.to_string().contains("\"30-c\" and \"20-b\""), "{e}");
    }

    #[test]
    fn v0_9_subjects_forget_a_removed_item() {
        let mut o = Claims::new(OwnerStyle::Subjects, HooksOwner::None);
        o.claim("c", Field::Annotations, Some("k"), "10-a").unwrap();
        o.clear("c", Field::Annotations, Some("k"), "20-b");
        o.claim("c", Field::Annotations, Some("k"), "30-c").unwrap();
        let e = o
            .claim("c", Field::CPUSetCPUs, None, "10-a")
            .and_then(|()| o.claim("c", Field::CPUSetCPUs, None, "20-b"));
        assert_eq!(
            e.unwrap_err().to_string(),
            "plugins \"20-b\" and \"10-a\" both tried to set CPU pinning"
        );
        assert!(o.owning_plugins().owners.is_empty());
    }

    #[test]
    fn hooks_owners_accumulate_from_v0_12_and_end_as_a_removal_mark_in_v0_11() {
        let key = Field::OciHooks as i32;
        let mut o = fields();
        for p in ["10-a", "20-b", "30-c"] {
            o.claim_hooks("c", p);
        }
        assert_eq!(
            o.owning_plugins().owners["c"].simple[&key],
            "10-a,20-b,30-c"
        );
        let mut o = Claims::new(OwnerStyle::Fields, HooksOwner::LatestAsRemover);
        o.claim_hooks("c", "10-a");
        assert_eq!(o.owning_plugins().owners["c"].simple[&key], "10-a");
        o.claim_hooks("c", "20-b");
        o.claim_hooks("c", "30-c");
        assert_eq!(o.owning_plugins().owners["c"].simple[&key], "-30-c");
    }
}
