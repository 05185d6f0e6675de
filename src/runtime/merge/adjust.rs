//! Folding one plugin's [`ContainerAdjustment`] into the collected one and
//! into the container the next plugin sees, kind by kind, in the order the
//! reference takes them (which decides the conflict reported first).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use protobuf::MessageField;

use super::claims::Claims;
use super::fold_resources::merge_resources;
use crate::api::{
    clear_removal_marker, is_marked_for_removal, mark_for_removal, CDIDevice, Container,
    ContainerAdjustment, Field, Hooks, KeyValue, LinuxContainerAdjustment, LinuxDevice,
    LinuxNamespace, LinuxPids, LinuxRdt, LinuxResources, Mount, POSIXRlimit,
};
use crate::runtime::emulation::{MergeRules, SysctlRule};
use crate::{Error, Result};

/// What one adjustment is folded into.
pub(super) struct Target<'a> {
    /// Id of the container being created.
    pub(super) id: String,
    /// The request's container, as adjusted so far.
    pub(super) ctr: &'a mut Container,
    /// The collected adjustment.
    pub(super) reply: &'a mut ContainerAdjustment,
    pub(super) claims: &'a mut Claims,
    pub(super) rules: MergeRules,
}

impl Target<'_> {
    /// Folds in `adjust` from `plugin`.
    pub(super) fn apply(&mut self, adjust: &ContainerAdjustment, plugin: &str) -> Result<()> {
        let v010 = self.rules.v0_10_adjustments;
        self.annotations(&adjust.annotations, plugin)?;
        self.mounts(&adjust.mounts, plugin)?;
        self.env(&adjust.env, plugin)?;
        if v010 {
            self.args(&adjust.args, plugin)?;
        }
        if let Some(hooks) = adjust.hooks.as_ref() {
            self.hooks(hooks, plugin);
        }
        if let Some(linux) = adjust.linux.as_ref() {
            self.linux(linux, plugin)?;
        }
        self.rlimits(&adjust.rlimits, plugin)?;
        self.cdi_devices(&adjust.CDI_devices, plugin)
    }

    fn linux(&mut self, linux: &LinuxContainerAdjustment, plugin: &str) -> Result<()> {
        self.devices(&linux.devices, plugin)?;
        if let Some(res) = linux.resources.as_ref() {
            self.resources(res, plugin)?;
        }
        self.cgroups_path(&linux.cgroups_path, plugin)?;
        if let Some(oom) = linux.oom_score_adj.as_ref() {
            self.claim(Field::OomScoreAdj, None, plugin)?;
            self.ctr_linux().oom_score_adj = MessageField::some(oom.clone());
            self.reply_linux().oom_score_adj = MessageField::some(oom.clone());
        }
        if self.rules.v0_10_adjustments {
            if let Some(prio) = linux.io_priority.as_ref() {
                self.claim(Field::IoPriority, None, plugin)?;
                self.ctr_linux().io_priority = MessageField::some(prio.clone());
                self.reply_linux().io_priority = MessageField::some(prio.clone());
            }
            if let Some(seccomp) = linux.seccomp_policy.as_ref() {
                self.claim(Field::SeccompPolicy, None, plugin)?;
                self.ctr_linux().seccomp_policy = MessageField::some(seccomp.clone());
                self.reply_linux().seccomp_policy = MessageField::some(seccomp.clone());
            }
            self.namespaces(&linux.namespaces, plugin)?;
        }
        if self.rules.v0_11_adjustments {
            self.sysctl(&linux.sysctl, plugin)?;
            self.net_devices(&linux.net_devices, plugin)?;
            if let Some(sched) = linux.scheduler.as_ref() {
                self.claim(Field::LinuxSched, None, plugin)?;
                self.ctr_linux().scheduler = MessageField::some(sched.clone());
                self.reply_linux().scheduler = MessageField::some(sched.clone());
            }
            self.rdt(linux.rdt.as_ref(), plugin)?;
        }
        if self.rules.memory_policy {
            if let Some(policy) = linux.memory_policy.as_ref() {
                // As the reference: only the reply gets it.
                self.claim(Field::MemoryPolicy, None, plugin)?;
                self.reply_linux().memory_policy = MessageField::some(policy.clone());
            }
        }
        Ok(())
    }

    fn claim(&mut self, field: Field, key: Option<&str>, plugin: &str) -> Result<()> {
        self.claims.claim(&self.id, field, key, plugin)
    }

    fn clear(&mut self, field: Field, key: Option<&str>, plugin: &str) {
        self.claims.clear(&self.id, field, key, plugin);
    }

    fn ctr_linux(&mut self) -> &mut crate::api::LinuxContainer {
        self.ctr.linux.mut_or_insert_default()
    }

    fn reply_linux(&mut self) -> &mut LinuxContainerAdjustment {
        self.reply.linux.mut_or_insert_default()
    }

    fn annotations(&mut self, annotations: &HashMap<String, String>, plugin: &str) -> Result<()> {
        let (ctr, reply) = (&mut self.ctr.annotations, &mut self.reply.annotations);
        let removed = Keyed::new(Field::Annotations, ctr, reply).merge(
            self.claims,
            &self.id,
            annotations,
            plugin,
        )?;
        // As the reference: a plain removal only reaches the reply.
        mark_removed(&mut self.reply.annotations, removed);
        Ok(())
    }

    fn mounts(&mut self, mounts: &[Mount], plugin: &str) -> Result<()> {
        if mounts.is_empty() {
            return Ok(());
        }
        let mut add = Vec::new();
        let mut del = BTreeMap::new();
        let mut modified = BTreeSet::new();
        for m in mounts {
            match m.is_marked_for_removal() {
                Some(key) => {
                    del.insert(key.to_string(), m.clone());
                }
                None => {
                    add.push(m.clone());
                    modified.insert(m.destination.clone());
                }
            }
        }
        let list = Listed::new(Field::Mounts, &mut self.reply.mounts, |m: &Mount| {
            m.destination.as_str()
        });
        list.replace(self.claims, &self.id, plugin, |k| del.contains_key(k), &add)?;
        self.ctr
            .mounts
            .retain(|m| !del.contains_key(&m.destination) && !modified.contains(&m.destination));
        for m in del.values() {
            if !modified.contains(clear_removal_marker(&m.destination)) {
                self.reply.mounts.push(m.clone());
            }
        }
        self.ctr.mounts.extend(add);
        Ok(())
    }

    fn devices(&mut self, devices: &[LinuxDevice], plugin: &str) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let reply = &mut self.reply.linux.mut_or_insert_default().devices;
        let list = Listed::new(Field::Devices, reply, |d: &LinuxDevice| d.path.as_str());
        let change = list.fold(
            self.claims,
            &self.id,
            plugin,
            devices,
            LinuxDevice::is_marked_for_removal,
        )?;
        // As the reference: device removals do not reach the reply.
        let ctr = &mut self.ctr.linux.mut_or_insert_default().devices;
        ctr.retain(|d| !change.removed.contains(&d.path) && !change.set.contains(&d.path));
        ctr.extend(change.add);
        Ok(())
    }

    fn env(&mut self, env: &[KeyValue], plugin: &str) -> Result<()> {
        if env.is_empty() {
            return Ok(());
        }
        let list = Listed::new(Field::Env, &mut self.reply.env, |e: &KeyValue| {
            e.key.as_str()
        });
        let change = list.fold(
            self.claims,
            &self.id,
            plugin,
            env,
            KeyValue::is_marked_for_removal,
        )?;
        // As the reference: environment removals do not reach the reply.
        self.ctr.env.retain(|entry| {
            let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
            !change.removed.contains(key) && !change.set.contains(key)
        });
        self.ctr
            .env
            .extend(change.add.iter().map(KeyValue::to_env_string));
        Ok(())
    }

    fn args(&mut self, args: &[String], plugin: &str) -> Result<()> {
        let Some(first) = args.first() else {
            return Ok(());
        };
        // A leading empty argument asks to override whoever set them.
        let args = if first.is_empty() {
            self.clear(Field::Args, None, plugin);
            &args[1..]
        } else {
            args
        };
        self.claim(Field::Args, None, plugin)?;
        self.reply.args = args.to_vec();
        self.ctr.args = args.to_vec();
        Ok(())
    }

    fn hooks(&mut self, hooks: &Hooks, plugin: &str) {
        let any = !(hooks.prestart.is_empty()
            && hooks.poststart.is_empty()
            && hooks.poststop.is_empty()
            && hooks.create_runtime.is_empty()
            && hooks.create_container.is_empty()
            && hooks.start_container.is_empty());
        append_hooks(self.reply.hooks.mut_or_insert_default(), hooks);
        append_hooks(self.ctr.hooks.mut_or_insert_default(), hooks);
        if any {
            self.claims.claim_hooks(&self.id, plugin);
        }
    }

    fn resources(&mut self, res: &LinuxResources, plugin: &str) -> Result<()> {
        let keep_rules = self.rules.v0_10_adjustments;
        let ctr = self
            .ctr
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        let reply = self
            .reply
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        let mut targets = [ctr, reply];
        merge_resources(self.claims, &self.id, plugin, res, &mut targets)?;
        if keep_rules {
            // Device cgroup rules are appended, never claimed.
            for t in targets.iter_mut() {
                t.devices.extend(res.devices.iter().cloned());
            }
        }
        if let Some(pids) = res.pids.as_ref() {
            self.claims
                .claim(&self.id, Field::PidsLimit, None, plugin)?;
            for t in targets.iter_mut() {
                t.pids = MessageField::some(LinuxPids {
                    limit: pids.limit,
                    ..Default::default()
                });
            }
        }
        Ok(())
    }

    fn cgroups_path(&mut self, path: &str, plugin: &str) -> Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        self.claim(Field::CgroupsPath, None, plugin)?;
        self.ctr_linux().cgroups_path = path.to_string();
        self.reply_linux().cgroups_path = path.to_string();
        Ok(())
    }

    fn namespaces(&mut self, namespaces: &[LinuxNamespace], plugin: &str) -> Result<()> {
        for n in namespaces {
            let (key, marked) = match is_marked_for_removal(&n.type_) {
                Some(k) => (k.to_string(), true),
                None => (n.type_.clone(), false),
            };
            // As the reference: a removal claims the namespace too.
            self.claim(Field::Namespace, Some(&key), plugin)?;
            let ctr = &mut self.ctr_linux().namespaces;
            let at = ctr.iter().position(|c| c.type_ == key);
            match (marked, at) {
                (true, Some(i)) => {
                    ctr.remove(i);
                }
                (true, None) => {}
                (false, Some(i)) => ctr[i] = n.clone(),
                (false, None) => ctr.push(n.clone()),
            }
            self.reply_linux().namespaces.push(n.clone());
        }
        Ok(())
    }

    fn sysctl(&mut self, sysctl: &HashMap<String, String>, plugin: &str) -> Result<()> {
        if sysctl.is_empty() {
            return Ok(());
        }
        if self.rules.sysctl == SysctlRule::Broken {
            let (removed, set) = split_keyed(sysctl);
            if let Some(k) = set.keys().next() {
                return Err(Error::Handler(format!(
                    "plugin {plugin:?} adjusted sysctl {k:?} of container {:?}: a runtime on \
                     NRI v0.11 crashes on a sysctl adjustment (it writes to a map it never \
                     created), so the container cannot be created",
                    self.id
                )));
            }
            // As the reference: removals land among the annotations.
            mark_removed(&mut self.reply.annotations, removed);
            return Ok(());
        }
        let (ctr, reply) = (
            &mut self.ctr.linux.mut_or_insert_default().sysctl,
            &mut self.reply.linux.mut_or_insert_default().sysctl,
        );
        let removed =
            Keyed::new(Field::Sysctl, ctr, reply).merge(self.claims, &self.id, sysctl, plugin)?;
        if self.rules.sysctl == SysctlRule::MergedRemovalsAsAnnotations {
            // As the reference before v0.12.3.
            mark_removed(&mut self.reply.annotations, removed);
        } else {
            mark_removed(&mut self.reply_linux().sysctl, removed);
        }
        Ok(())
    }

    fn net_devices(
        &mut self,
        devices: &HashMap<String, crate::api::LinuxNetDevice>,
        plugin: &str,
    ) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let (ctr, reply) = (
            &mut self.ctr.linux.mut_or_insert_default().net_devices,
            &mut self.reply.linux.mut_or_insert_default().net_devices,
        );
        let removed = Keyed::new(Field::LinuxNetDevices, ctr, reply).merge(
            self.claims,
            &self.id,
            devices,
            plugin,
        )?;
        mark_removed(&mut self.reply_linux().net_devices, removed);
        Ok(())
    }

    fn rdt(&mut self, rdt: Option<&LinuxRdt>, plugin: &str) -> Result<()> {
        if self.rules.rdt_skeleton {
            // As the reference: the RDT step always runs for a `linux` part
            // and leaves an empty `linux.rdt` behind.
            self.reply_linux().rdt.mut_or_insert_default();
        }
        let Some(rdt) = rdt else {
            return Ok(());
        };
        if rdt.remove {
            for f in [
                Field::RdtClosID,
                Field::RdtSchemata,
                Field::RdtEnableMonitoring,
            ] {
                self.clear(f, None, plugin);
            }
            self.reply_linux().rdt = MessageField::some(LinuxRdt {
                remove: true,
                ..Default::default()
            });
        }
        if let Some(v) = rdt.clos_id.as_ref() {
            self.claim(Field::RdtClosID, None, plugin)?;
            let r = self.reply_linux().rdt.mut_or_insert_default();
            r.clos_id = MessageField::some(v.clone());
            r.remove = false;
        }
        if let Some(v) = rdt.schemata.as_ref() {
            self.claim(Field::RdtSchemata, None, plugin)?;
            let r = self.reply_linux().rdt.mut_or_insert_default();
            r.schemata = MessageField::some(v.clone());
            r.remove = false;
        }
        if let Some(v) = rdt.enable_monitoring.as_ref() {
            self.claim(Field::RdtEnableMonitoring, None, plugin)?;
            let r = self.reply_linux().rdt.mut_or_insert_default();
            r.enable_monitoring = MessageField::some(v.clone());
            r.remove = false;
        }
        Ok(())
    }

    fn rlimits(&mut self, rlimits: &[POSIXRlimit], plugin: &str) -> Result<()> {
        for l in rlimits {
            self.claim(Field::Rlimits, Some(&l.type_), plugin)?;
            self.ctr.rlimits.push(l.clone());
            self.reply.rlimits.push(l.clone());
        }
        Ok(())
    }

    fn cdi_devices(&mut self, devices: &[CDIDevice], plugin: &str) -> Result<()> {
        // As the reference: CDI devices only reach the reply.
        for d in devices {
            self.claim(Field::CdiDevices, Some(&d.name), plugin)?;
            self.reply.CDI_devices.push(d.clone());
        }
        Ok(())
    }
}

fn append_hooks(to: &mut Hooks, from: &Hooks) {
    to.prestart.extend(from.prestart.iter().cloned());
    to.poststart.extend(from.poststart.iter().cloned());
    to.poststop.extend(from.poststop.iter().cloned());
    to.create_runtime
        .extend(from.create_runtime.iter().cloned());
    to.create_container
        .extend(from.create_container.iter().cloned());
    to.start_container
        .extend(from.start_container.iter().cloned());
}

/// A map of the container and the same map of the collected reply, with
/// the field that claims their keys.
struct Keyed<'a, V> {
    field: Field,
    ctr: &'a mut HashMap<String, V>,
    reply: &'a mut HashMap<String, V>,
}

impl<'a, V: Clone + Default> Keyed<'a, V> {
    fn new(
        field: Field,
        ctr: &'a mut HashMap<String, V>,
        reply: &'a mut HashMap<String, V>,
    ) -> Self {
        Keyed { field, ctr, reply }
    }

    /// Folds in a map adjustment: a key removed and set again is cleared
    /// first (the reply keeps its removal mark), every key set is claimed.
    /// Returns the keys only removed, for the caller to mark in the reply
    /// as the version does.
    fn merge(
        self,
        claims: &mut Claims,
        id: &str,
        adjust: &HashMap<String, V>,
        plugin: &str,
    ) -> Result<BTreeSet<String>> {
        let (mut removed, set) = split_keyed(adjust);
        for (k, v) in set {
            if removed.remove(&k) {
                claims.clear(id, self.field, Some(&k), plugin);
                self.ctr.remove(&k);
                self.reply.insert(mark_for_removal(&k), V::default());
            }
            claims.claim(id, self.field, Some(&k), plugin)?;
            self.ctr.insert(k.clone(), v.clone());
            self.reply.insert(k, v);
        }
        Ok(removed)
    }
}

/// A list of the collected reply whose items have a key, with the field
/// that claims them.
struct Listed<'a, T> {
    field: Field,
    items: &'a mut Vec<T>,
    key: fn(&T) -> &str,
}

/// What a list adjustment asks for.
struct ListChange<T> {
    /// The items it adds.
    add: Vec<T>,
    /// The keys it removes (items marked with `-`).
    removed: BTreeSet<String>,
    /// The keys it adds.
    set: BTreeSet<String>,
}

impl<'a, T: Clone> Listed<'a, T> {
    fn new(field: Field, items: &'a mut Vec<T>, key: fn(&T) -> &str) -> Self {
        Listed { field, items, key }
    }

    /// Folds in a list adjustment: drops the items it removes, releasing
    /// their claims, then claims and appends the items it adds. Returns
    /// what it asked, for the container.
    fn fold(
        self,
        claims: &mut Claims,
        id: &str,
        plugin: &str,
        adjust: &[T],
        marked: fn(&T) -> Option<&str>,
    ) -> Result<ListChange<T>> {
        let mut change = ListChange {
            add: Vec::new(),
            removed: BTreeSet::new(),
            set: BTreeSet::new(),
        };
        for item in adjust {
            match marked(item) {
                Some(k) => {
                    change.removed.insert(k.to_string());
                }
                None => {
                    change.set.insert((self.key)(item).to_string());
                    change.add.push(item.clone());
                }
            }
        }
        let removed = |k: &str| change.removed.contains(k);
        self.replace(claims, id, plugin, removed, &change.add)?;
        Ok(change)
    }

    /// Drops the items whose key is `removed`, releasing their claims,
    /// then claims each of `added` and appends it.
    fn replace(
        self,
        claims: &mut Claims,
        id: &str,
        plugin: &str,
        removed: impl Fn(&str) -> bool,
        added: &[T],
    ) -> Result<()> {
        for item in self.items.iter().filter(|item| removed((self.key)(item))) {
            claims.clear(id, self.field, Some((self.key)(item)), plugin);
        }
        self.items.retain(|item| !removed((self.key)(item)));
        for item in added {
            claims.claim(id, self.field, Some((self.key)(item)), plugin)?;
            self.items.push(item.clone());
        }
        Ok(())
    }
}

/// Marks `keys` as removed in `map`.
fn mark_removed<V: Default>(map: &mut HashMap<String, V>, keys: BTreeSet<String>) {
    for k in keys {
        map.insert(mark_for_removal(&k), V::default());
    }
}

/// Splits a map adjustment into the keys it removes (marked with `-`) and
/// the entries it sets, both in key order.
fn split_keyed<V: Clone>(items: &HashMap<String, V>) -> (BTreeSet<String>, BTreeMap<String, V>) {
    let mut del = BTreeSet::new();
    let mut add = BTreeMap::new();
    for (k, v) in items {
        match is_marked_for_removal(k) {
            Some(key) => {
                del.insert(key.to_string());
            }
            None => {
                add.insert(k.clone(), v.clone());
            }
        }
    }
    (del, add)
}
