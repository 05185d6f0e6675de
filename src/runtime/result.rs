//! Merging the replies of several plugins to one request, as the reference
//! runtime does (`pkg/adaptation/result.go` in containerd/nri v0.9.0).
//!
//! Plugins are called one after another. Each reply is folded into the
//! collected result *and* into the request the next plugin gets, so a later
//! plugin sees the container as the earlier ones adjusted it. Every
//! adjusted or updated item is claimed by the plugin that set it; a second
//! plugin setting the same item of the same container is a conflict that
//! fails the whole operation. A plugin may take over an item by removing it
//! first (a key marked with `-`).
//!
//! Where the reference behaves oddly, this follows it so that plugins are
//! judged the same way; the spots are marked "as the reference".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use protobuf::MessageField;

use crate::api::{
    clear_removal_marker, is_marked_for_removal, mark_for_removal, CDIDevice, ContainerAdjustment,
    ContainerUpdate, CreateContainerRequest, CreateContainerResponse, Hooks, KeyValue,
    LinuxContainerUpdate, LinuxDevice, LinuxPids, LinuxResources, Mount, OptionalInt, POSIXRlimit,
    StopContainerResponse, UpdateContainerRequest, UpdateContainerResponse,
};
use crate::{Error, Result};

/// Which plugin set which item, per container.
#[derive(Default)]
struct Owners(HashMap<String, HashMap<String, String>>);

impl Owners {
    fn claim(&mut self, id: &str, subject: &str, plugin: &str) -> Result<()> {
        let owners = self.0.entry(id.to_string()).or_default();
        if let Some(other) = owners.get(subject) {
            return Err(Error::Handler(format!(
                "plugins {plugin:?} and {other:?} both tried to set {subject}"
            )));
        }
        owners.insert(subject.to_string(), plugin.to_string());
        Ok(())
    }

    fn clear(&mut self, id: &str, subject: &str) {
        if let Some(owners) = self.0.get_mut(id) {
            owners.remove(subject);
        }
    }
}

/// The request being relayed, as adjusted so far.
enum Request {
    Create(CreateContainerRequest),
    Update(UpdateContainerRequest),
    Stop,
}

/// Collects the replies of several plugins to one request.
pub(crate) struct Collector {
    request: Request,
    adjust: ContainerAdjustment,
    /// Updates by container id, in the order first touched.
    updates: Vec<ContainerUpdate>,
    index: HashMap<String, usize>,
    /// Ids of updates that go into the reply's update list.
    reply_updates: Vec<usize>,
    owners: Owners,
}

impl Collector {
    /// For CreateContainer. Fills in the request's empty parts the way the
    /// reference does before any plugin sees it.
    pub(crate) fn create(mut req: CreateContainerRequest) -> Collector {
        let ctr = req.container.mut_or_insert_default();
        ctr.hooks.mut_or_insert_default();
        let res = ctr
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        res.memory.mut_or_insert_default();
        res.cpu.mut_or_insert_default();
        let mut adjust = ContainerAdjustment::new();
        adjust.hooks = MessageField::some(Hooks::new());
        let res = adjust
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        res.memory.mut_or_insert_default();
        res.cpu.mut_or_insert_default();
        Collector::with(Request::Create(req), adjust)
    }

    /// For UpdateContainer. Fills in the requested resources' empty parts.
    pub(crate) fn update(mut req: UpdateContainerRequest) -> Collector {
        let res = req.linux_resources.mut_or_insert_default();
        res.memory.mut_or_insert_default();
        res.cpu.mut_or_insert_default();
        Collector::with(Request::Update(req), ContainerAdjustment::new())
    }

    /// For StopContainer.
    pub(crate) fn stop() -> Collector {
        Collector::with(Request::Stop, ContainerAdjustment::new())
    }

    fn with(request: Request, adjust: ContainerAdjustment) -> Collector {
        Collector {
            request,
            adjust,
            updates: Vec::new(),
            index: HashMap::new(),
            reply_updates: Vec::new(),
            owners: Owners::default(),
        }
    }

    /// The CreateContainer request as the next plugin gets it.
    pub(crate) fn create_request(&self) -> Option<&CreateContainerRequest> {
        match &self.request {
            Request::Create(r) => Some(r),
            _ => None,
        }
    }

    /// The UpdateContainer request as the next plugin gets it.
    pub(crate) fn update_request(&self) -> Option<&UpdateContainerRequest> {
        match &self.request {
            Request::Update(r) => Some(r),
            _ => None,
        }
    }

    /// Folds in one plugin's CreateContainer reply.
    pub(crate) fn apply_create(
        &mut self,
        reply: &CreateContainerResponse,
        plugin: &str,
    ) -> Result<()> {
        if let Some(adjust) = reply.adjust.as_ref() {
            self.adjust(adjust, plugin)?;
        }
        self.apply_updates(&reply.update, plugin)
    }

    /// Folds in one plugin's UpdateContainer or StopContainer updates.
    pub(crate) fn apply_updates(
        &mut self,
        updates: &[ContainerUpdate],
        plugin: &str,
    ) -> Result<()> {
        for u in updates {
            let slot = self.update_slot(u, plugin)?;
            if let Err(e) = self.update_resources(slot, u, plugin) {
                if !u.ignore_failure {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn create_response(self) -> CreateContainerResponse {
        let update = self.reply_update_list();
        CreateContainerResponse {
            adjust: MessageField::some(self.adjust),
            update,
            ..Default::default()
        }
    }

    /// The updates of other containers, then the merged update of the
    /// container being updated, if any plugin touched it. (The reference
    /// appends that entry even when no plugin touched it, as a nil.)
    pub(crate) fn update_response(self) -> UpdateContainerResponse {
        let mut update = self.reply_update_list();
        if let Request::Update(req) = &self.request {
            if let Some(&i) = self.index.get(&req.container.id) {
                update.push(self.updates[i].clone());
            }
        }
        UpdateContainerResponse {
            update,
            ..Default::default()
        }
    }

    pub(crate) fn stop_response(self) -> StopContainerResponse {
        StopContainerResponse {
            update: self.reply_update_list(),
            ..Default::default()
        }
    }

    fn reply_update_list(&self) -> Vec<ContainerUpdate> {
        self.reply_updates
            .iter()
            .map(|&i| self.updates[i].clone())
            .collect()
    }

    fn adjust(&mut self, adjust: &ContainerAdjustment, plugin: &str) -> Result<()> {
        self.adjust_annotations(&adjust.annotations, plugin)?;
        self.adjust_mounts(&adjust.mounts, plugin)?;
        self.adjust_env(&adjust.env, plugin)?;
        if let Some(hooks) = adjust.hooks.as_ref() {
            self.adjust_hooks(hooks);
        }
        if let Some(linux) = adjust.linux.as_ref() {
            self.adjust_devices(&linux.devices, plugin)?;
            if let Some(res) = linux.resources.as_ref() {
                self.adjust_resources(res, plugin)?;
            }
            self.adjust_cgroups_path(&linux.cgroups_path, plugin)?;
            if let Some(oom) = linux.oom_score_adj.as_ref() {
                self.adjust_oom_score_adj(oom, plugin)?;
            }
        }
        self.adjust_rlimits(&adjust.rlimits, plugin)?;
        self.adjust_cdi_devices(&adjust.CDI_devices, plugin)
    }

    /// The container being created and its id. Only called for creation.
    fn creation(&mut self) -> (&mut crate::api::Container, String) {
        match &mut self.request {
            Request::Create(req) => {
                let ctr = req.container.mut_or_insert_default();
                let id = ctr.id.clone();
                (ctr, id)
            }
            _ => unreachable!("container adjustments are only collected for CreateContainer"),
        }
    }

    fn adjust_annotations(
        &mut self,
        annotations: &HashMap<String, String>,
        plugin: &str,
    ) -> Result<()> {
        if annotations.is_empty() {
            return Ok(());
        }
        let mut del = BTreeSet::new();
        let mut add = BTreeMap::new();
        for (k, v) in annotations {
            match is_marked_for_removal(k) {
                Some(key) => {
                    del.insert(key.to_string());
                }
                None => {
                    add.insert(k.clone(), v.clone());
                }
            }
        }
        let (ctr, id) = self.creation();
        let mut ctr_annotations = std::mem::take(&mut ctr.annotations);
        let result = (|| {
            for (k, v) in add {
                let subject = format!("annotation {k}");
                if del.remove(&k) {
                    self.owners.clear(&id, &subject);
                    ctr_annotations.remove(&k);
                    self.adjust
                        .annotations
                        .insert(mark_for_removal(&k), String::new());
                }
                self.owners.claim(&id, &subject, plugin)?;
                ctr_annotations.insert(k.clone(), v.clone());
                self.adjust.annotations.insert(k, v);
            }
            // As the reference: a plain removal only reaches the reply.
            for k in &del {
                self.adjust
                    .annotations
                    .insert(mark_for_removal(k), String::new());
            }
            Ok(())
        })();
        self.creation().0.annotations = ctr_annotations;
        result
    }

    fn adjust_mounts(&mut self, mounts: &[Mount], plugin: &str) -> Result<()> {
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
        let (_, id) = self.creation();
        let owners = &mut self.owners;
        self.adjust.mounts.retain(|m| {
            let removed = del.contains_key(&m.destination);
            if removed {
                owners.clear(&id, &format!("mount {}", m.destination));
            }
            !removed
        });
        self.creation()
            .0
            .mounts
            .retain(|m| !del.contains_key(&m.destination) && !modified.contains(&m.destination));
        for m in &add {
            self.owners
                .claim(&id, &format!("mount {}", m.destination), plugin)?;
            self.adjust.mounts.push(m.clone());
        }
        for m in del.values() {
            if !modified.contains(clear_removal_marker(&m.destination)) {
                self.adjust.mounts.push(m.clone());
            }
        }
        self.creation().0.mounts.extend(add);
        Ok(())
    }

    fn adjust_devices(&mut self, devices: &[LinuxDevice], plugin: &str) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let (add, del, modified) =
            split_removals(devices, |d| d.is_marked_for_removal(), |d| d.path.as_str());
        let (_, id) = self.creation();
        let owners = &mut self.owners;
        let reply = &mut self.adjust.linux.mut_or_insert_default().devices;
        reply.retain(|d| {
            let removed = del.contains(&d.path);
            if removed {
                owners.clear(&id, &format!("device {}", d.path));
            }
            !removed
        });
        let ctr_devices = &mut self.creation().0.linux.mut_or_insert_default().devices;
        ctr_devices.retain(|d| !del.contains(&d.path) && !modified.contains(&d.path));
        for d in &add {
            self.owners
                .claim(&id, &format!("device {}", d.path), plugin)?;
            self.adjust
                .linux
                .mut_or_insert_default()
                .devices
                .push(d.clone());
        }
        // As the reference: device removals do not reach the reply.
        self.creation()
            .0
            .linux
            .mut_or_insert_default()
            .devices
            .extend(add);
        Ok(())
    }

    fn adjust_cdi_devices(&mut self, devices: &[CDIDevice], plugin: &str) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let (_, id) = self.creation();
        for d in devices {
            self.owners
                .claim(&id, &format!("CDI device {}", d.name), plugin)?;
            self.adjust.CDI_devices.push(d.clone());
        }
        Ok(())
    }

    fn adjust_env(&mut self, env: &[KeyValue], plugin: &str) -> Result<()> {
        if env.is_empty() {
            return Ok(());
        }
        let (add, del, modified) =
            split_removals(env, |e| e.is_marked_for_removal(), |e| e.key.as_str());
        let (_, id) = self.creation();
        let owners = &mut self.owners;
        self.adjust.env.retain(|e| {
            let removed = del.contains(&e.key);
            if removed {
                owners.clear(&id, &format!("env {}", e.key));
            }
            !removed
        });
        self.creation().0.env.retain(|entry| {
            let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
            !del.contains(key) && !modified.contains(key)
        });
        for e in &add {
            self.owners.claim(&id, &format!("env {}", e.key), plugin)?;
            self.adjust.env.push(e.clone());
        }
        // As the reference: environment removals do not reach the reply.
        self.creation()
            .0
            .env
            .extend(add.iter().map(KeyValue::to_env_string));
        Ok(())
    }

    fn adjust_hooks(&mut self, hooks: &Hooks) {
        let reply = self.adjust.hooks.mut_or_insert_default();
        append_hooks(reply, hooks);
        let ctr = self.creation().0.hooks.mut_or_insert_default();
        append_hooks(ctr, hooks);
    }

    fn adjust_resources(&mut self, res: &LinuxResources, plugin: &str) -> Result<()> {
        let (_, id) = self.creation();
        let Request::Create(req) = &mut self.request else {
            unreachable!("container adjustments are only collected for CreateContainer")
        };
        let ctr = req
            .container
            .mut_or_insert_default()
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        let reply = self
            .adjust
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        let mut targets = [ctr, reply];
        merge_resources(&mut self.owners, &id, plugin, res, &mut targets)?;
        if let Some(pids) = res.pids.as_ref() {
            self.owners.claim(&id, "pids pinning", plugin)?;
            for t in targets.iter_mut() {
                t.pids = MessageField::some(LinuxPids {
                    limit: pids.limit,
                    ..Default::default()
                });
            }
        }
        Ok(())
    }

    fn adjust_cgroups_path(&mut self, path: &str, plugin: &str) -> Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        let (_, id) = self.creation();
        self.owners.claim(&id, "cgroups path", plugin)?;
        self.creation().0.linux.mut_or_insert_default().cgroups_path = path.to_string();
        self.adjust.linux.mut_or_insert_default().cgroups_path = path.to_string();
        Ok(())
    }

    fn adjust_oom_score_adj(&mut self, oom: &OptionalInt, plugin: &str) -> Result<()> {
        let (_, id) = self.creation();
        self.owners.claim(&id, "oom score adj", plugin)?;
        self.creation()
            .0
            .linux
            .mut_or_insert_default()
            .oom_score_adj = MessageField::some(oom.clone());
        self.adjust.linux.mut_or_insert_default().oom_score_adj = MessageField::some(oom.clone());
        Ok(())
    }

    fn adjust_rlimits(&mut self, rlimits: &[POSIXRlimit], plugin: &str) -> Result<()> {
        let (_, id) = self.creation();
        for l in rlimits {
            self.owners
                .claim(&id, &format!("rlimit {}", l.type_), plugin)?;
            self.creation().0.rlimits.push(l.clone());
            self.adjust.rlimits.push(l.clone());
        }
        Ok(())
    }

    /// The collected update of `u`'s container, made on first use.
    fn update_slot(&mut self, u: &ContainerUpdate, plugin: &str) -> Result<usize> {
        let id = &u.container_id;
        if let Request::Create(req) = &self.request {
            if &req.container.id == id {
                return Err(Error::Handler(format!(
                    "plugin {plugin:?} asked update of {id:?} during creation"
                )));
            }
        }
        if let Some(&i) = self.index.get(id) {
            let slot = &mut self.updates[i];
            slot.ignore_failure = slot.ignore_failure && u.ignore_failure;
            return Ok(i);
        }
        let mut res = LinuxResources::new();
        res.memory.mut_or_insert_default();
        res.cpu.mut_or_insert_default();
        let update = ContainerUpdate {
            container_id: id.clone(),
            linux: MessageField::some(LinuxContainerUpdate {
                resources: MessageField::some(res),
                ..Default::default()
            }),
            ignore_failure: u.ignore_failure,
            ..Default::default()
        };
        let i = self.updates.len();
        self.updates.push(update);
        self.index.insert(id.clone(), i);
        let is_requested = matches!(&self.request, Request::Update(req) if &req.container.id == id);
        if !is_requested {
            self.reply_updates.push(i);
        }
        Ok(i)
    }

    fn update_resources(&mut self, slot: usize, u: &ContainerUpdate, plugin: &str) -> Result<()> {
        let Some(wanted) = u.linux.as_ref().and_then(|l| l.resources.as_ref()) else {
            return Ok(());
        };
        let id = u.container_id.as_str();
        let requested = matches!(&self.request, Request::Update(req) if req.container.id == id);
        // Work on a copy: a failed (ignored) update changes nothing.
        let mut res = match &self.request {
            Request::Update(req) if requested => req.linux_resources.get_or_default().clone(),
            _ => self.updates[slot]
                .linux
                .get_or_default()
                .resources
                .get_or_default()
                .clone(),
        };
        // As the reference: its copy leaves out the device cgroup rules.
        res.devices.clear();
        merge_resources(&mut self.owners, id, plugin, wanted, &mut [&mut res])?;
        // As the reference: the pids limit is looked up on the collected
        // resources, not on the plugin's update, so an update never sets it
        // but claims it whenever the container already has one.
        if let Some(pids) = res.pids.as_ref() {
            let limit = pids.limit;
            self.owners.claim(id, "pids pinning", plugin)?;
            res.pids = MessageField::some(LinuxPids {
                limit,
                ..Default::default()
            });
        }
        self.updates[slot].linux.mut_or_insert_default().resources =
            MessageField::some(res.clone());
        if let Request::Update(req) = &mut self.request {
            if requested {
                req.linux_resources = MessageField::some(res);
            }
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

/// Sets every optional field present in `$src.$part` on each target's
/// `$part`, claiming it first.
macro_rules! merge_optionals {
    ($owners:expr, $id:expr, $plugin:expr, $src:expr, $targets:expr, $part:ident, [$(($field:ident, $subject:literal)),* $(,)?]) => {
        $(
            if let Some(v) = $src.$field.as_ref() {
                $owners.claim($id, $subject, $plugin)?;
                for t in $targets.iter_mut() {
                    t.$part.mut_or_insert_default().$field = MessageField::some(v.clone());
                }
            }
        )*
    };
}

/// Folds `src` into each of `targets`: memory, CPU, hugepage limits,
/// unified, block I/O and RDT class. The pids limit is handled by the
/// callers, which differ there.
fn merge_resources(
    owners: &mut Owners,
    id: &str,
    plugin: &str,
    src: &LinuxResources,
    targets: &mut [&mut LinuxResources],
) -> Result<()> {
    if let Some(mem) = src.memory.as_ref() {
        merge_optionals!(
            owners,
            id,
            plugin,
            mem,
            targets,
            memory,
            [
                (limit, "memory limit"),
                (reservation, "memory reservation"),
                (swap, "memory swap limit"),
                (kernel, "memory kernel limit"),
                (kernel_tcp, "memory TCP limit"),
                (swappiness, "memory swappiness"),
                (disable_oom_killer, "memory disable OOM killer"),
                (use_hierarchy, "memory 'UseHierarchy'"),
            ]
        );
    }
    if let Some(cpu) = src.cpu.as_ref() {
        merge_optionals!(
            owners,
            id,
            plugin,
            cpu,
            targets,
            cpu,
            [
                (shares, "CPU shares"),
                (quota, "CPU quota"),
                (period, "CPU period"),
                (realtime_runtime, "CPU realtime runtime"),
                (realtime_period, "CPU realtime period"),
            ]
        );
        if !cpu.cpus.is_empty() {
            owners.claim(id, "CPU pinning", plugin)?;
            for t in targets.iter_mut() {
                t.cpu.mut_or_insert_default().cpus = cpu.cpus.clone();
            }
        }
        if !cpu.mems.is_empty() {
            owners.claim(id, "memory pinning", plugin)?;
            for t in targets.iter_mut() {
                t.cpu.mut_or_insert_default().mems = cpu.mems.clone();
            }
        }
    }
    for l in &src.hugepage_limits {
        owners.claim(
            id,
            &format!("hugepage limit of size {}", l.page_size),
            plugin,
        )?;
        for t in targets.iter_mut() {
            t.hugepage_limits.push(l.clone());
        }
    }
    let unified: BTreeMap<_, _> = src.unified.iter().collect();
    for (k, v) in unified {
        owners.claim(id, &format!("unified resource {k}"), plugin)?;
        for t in targets.iter_mut() {
            t.unified.insert(k.clone(), v.clone());
        }
    }
    if let Some(v) = src.blockio_class.as_ref() {
        owners.claim(id, "block I/O class", plugin)?;
        for t in targets.iter_mut() {
            t.blockio_class = MessageField::some(v.clone());
        }
    }
    if let Some(v) = src.rdt_class.as_ref() {
        owners.claim(id, "RDT class", plugin)?;
        for t in targets.iter_mut() {
            t.rdt_class = MessageField::some(v.clone());
        }
    }
    Ok(())
}

/// Splits a plugin's items into the ones it adds (and the keys they set)
/// and the keys it asks to remove (those marked with `-`).
fn split_removals<T: Clone>(
    items: &[T],
    marked: impl Fn(&T) -> Option<&str>,
    key: impl Fn(&T) -> &str,
) -> (Vec<T>, BTreeSet<String>, BTreeSet<String>) {
    let (mut add, mut del, mut set) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
    for item in items {
        match marked(item) {
            Some(k) => {
                del.insert(k.to_string());
            }
            None => {
                set.insert(key(item).to_string());
                add.push(item.clone());
            }
        }
    }
    (add, del, set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Container, OptionalInt64};

    fn create_req(id: &str) -> CreateContainerRequest {
        let mut ctr = Container::new();
        ctr.id = id.to_string();
        ctr.env = vec!["A=1".into(), "B=2".into()];
        CreateContainerRequest {
            container: MessageField::some(ctr),
            ..Default::default()
        }
    }

    fn annotate(k: &str, v: &str) -> CreateContainerResponse {
        let mut adjust = ContainerAdjustment::new();
        adjust.annotations.insert(k.into(), v.into());
        CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        }
    }

    #[test]
    fn same_annotation_from_two_plugins_conflicts() {
        let mut c = Collector::create(create_req("c"));
        c.apply_create(&annotate("k", "1"), "10-a").unwrap();
        let err = c.apply_create(&annotate("k", "2"), "20-b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugins \"20-b\" and \"10-a\" both tried to set annotation k"
        );
    }

    #[test]
    fn removing_first_takes_over_an_annotation() {
        let mut c = Collector::create(create_req("c"));
        c.apply_create(&annotate("k", "1"), "10-a").unwrap();
        let mut reply = annotate("k", "2");
        reply
            .adjust
            .mut_or_insert_default()
            .annotations
            .insert("-k".into(), String::new());
        c.apply_create(&reply, "20-b").unwrap();
        assert_eq!(c.create_request().unwrap().container.annotations["k"], "2");
        let resp = c.create_response();
        assert_eq!(resp.adjust.annotations["k"], "2");
        assert_eq!(resp.adjust.annotations["-k"], "");
    }

    #[test]
    fn env_adjustments_replace_request_entries() {
        let mut c = Collector::create(create_req("c"));
        let mut adjust = ContainerAdjustment::new();
        adjust.env.push(KeyValue {
            key: "B".into(),
            value: "3".into(),
            ..Default::default()
        });
        adjust.env.push(KeyValue {
            key: "-A".into(),
            ..Default::default()
        });
        let reply = CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        };
        c.apply_create(&reply, "10-a").unwrap();
        assert_eq!(c.create_request().unwrap().container.env, ["B=3"]);
    }

    #[test]
    fn updates_of_the_created_container_are_refused() {
        let mut c = Collector::create(create_req("c"));
        let mut u = ContainerUpdate::new();
        u.container_id = "c".into();
        let err = c.apply_updates(&[u], "10-a").unwrap_err();
        assert!(err.to_string().contains("during creation"), "{err}");
    }

    #[test]
    fn updates_of_one_container_merge_and_conflict_per_field() {
        let mut c = Collector::stop();
        let mut u1 = ContainerUpdate::new();
        u1.container_id = "x".into();
        let res = u1
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default();
        res.memory.mut_or_insert_default().limit = MessageField::some(OptionalInt64 {
            value: 100,
            ..Default::default()
        });
        let mut u2 = ContainerUpdate::new();
        u2.container_id = "x".into();
        u2.linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default()
            .cpu
            .mut_or_insert_default()
            .cpus = "0-1".into();
        c.apply_updates(&[u1.clone()], "10-a").unwrap();
        c.apply_updates(&[u2], "20-b").unwrap();
        assert!(c.apply_updates(&[u1.clone()], "30-c").is_err());
        u1.ignore_failure = true;
        c.apply_updates(&[u1], "30-c").expect("ignored failure");
        let resp = c.stop_response();
        assert_eq!(resp.update.len(), 1);
        let res = resp.update[0].linux.resources.get_or_default();
        assert_eq!(res.memory.limit.value, 100);
        assert_eq!(res.cpu.cpus, "0-1");
        assert!(!resp.update[0].ignore_failure);
    }
}
