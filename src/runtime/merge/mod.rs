//! Merging the replies of several plugins to one request, as the reference
//! runtime does (`pkg/adaptation/result.go` of the emulated NRI version).
//!
//! Plugins are called one after another. Each reply is folded into the
//! collected result *and* into the request the next plugin gets, so a later
//! plugin sees the container as the earlier ones adjusted it. Every
//! adjusted or updated field is claimed by the plugin that set it
//! ([`owners`]); a second plugin setting the same field of the same
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

mod adjust;
pub(crate) mod owners;
mod update;

use std::collections::HashMap;

use protobuf::MessageField;

use crate::api::{
    Container, ContainerAdjustment, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Hooks, LinuxResources, OwningPlugins, StopContainerResponse,
    UpdateContainerRequest, UpdateContainerResponse,
};
use crate::runtime::version::MergeRules;
use crate::{Error, Result};
use owners::Owners;

/// The request being relayed, as adjusted so far.
enum Request {
    Create(CreateContainerRequest),
    Update(UpdateContainerRequest),
    Stop,
}

/// Collects the replies of several plugins to one request.
pub(crate) struct Collector {
    rules: MergeRules,
    request: Request,
    adjust: ContainerAdjustment,
    /// Updates by container id, in the order first touched. Never one of
    /// the container being created (refused); the one of the container
    /// being updated, if any, goes last into the reply.
    updates: Vec<ContainerUpdate>,
    index: HashMap<String, usize>,
    owners: Owners,
}

impl Collector {
    /// For CreateContainer. Fills in the request's empty parts the way the
    /// reference does before any plugin sees it.
    pub(crate) fn create(mut req: CreateContainerRequest, rules: MergeRules) -> Collector {
        let ctr = req.container.mut_or_insert_default();
        ctr.hooks.mut_or_insert_default();
        fill_resources(
            ctr.linux
                .mut_or_insert_default()
                .resources
                .mut_or_insert_default(),
        );
        let mut adjust = ContainerAdjustment::new();
        adjust.hooks = MessageField::some(Hooks::new());
        fill_resources(
            adjust
                .linux
                .mut_or_insert_default()
                .resources
                .mut_or_insert_default(),
        );
        Collector::with(Request::Create(req), adjust, rules)
    }

    /// For UpdateContainer. Fills in the requested resources' empty parts.
    pub(crate) fn update(mut req: UpdateContainerRequest, rules: MergeRules) -> Collector {
        fill_resources(req.linux_resources.mut_or_insert_default());
        Collector::with(Request::Update(req), ContainerAdjustment::new(), rules)
    }

    /// For StopContainer.
    pub(crate) fn stop(rules: MergeRules) -> Collector {
        Collector::with(Request::Stop, ContainerAdjustment::new(), rules)
    }

    fn with(request: Request, adjust: ContainerAdjustment, rules: MergeRules) -> Collector {
        Collector {
            rules,
            request,
            adjust,
            updates: Vec::new(),
            index: HashMap::new(),
            owners: Owners::new(rules.owners, rules.hooks_owner),
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
            self.apply_adjustment(adjust, plugin)?;
        }
        self.apply_updates(&reply.update, plugin)
    }

    /// Folds in one plugin's UpdateContainer or StopContainer updates (or
    /// the updates of a CreateContainer reply).
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

    /// The claims so far, as validators get them (v0.10+ record).
    pub(crate) fn owners(&self) -> OwningPlugins {
        self.owners.owning_plugins()
    }

    /// The merged adjustment and updates, as the reference hands them to
    /// the runtime (the adjustment always carries its empty skeleton).
    pub(crate) fn create_response(self) -> CreateContainerResponse {
        CreateContainerResponse {
            adjust: MessageField::some(self.adjust),
            update: self.updates,
            ..Default::default()
        }
    }

    /// The updates of other containers, then the merged update of the
    /// container being updated, if any plugin touched it. (The reference
    /// appends that entry even when no plugin touched it, as a nil.)
    pub(crate) fn update_response(self) -> UpdateContainerResponse {
        let mut update = self.updates;
        if let Request::Update(req) = &self.request {
            if let Some(&i) = self.index.get(&req.container.id) {
                let requested = update.remove(i);
                update.push(requested);
            }
        }
        UpdateContainerResponse {
            update,
            ..Default::default()
        }
    }

    pub(crate) fn stop_response(self) -> StopContainerResponse {
        StopContainerResponse {
            update: self.updates,
            ..Default::default()
        }
    }

    /// The container being created, the collected adjustment and the
    /// owners: what an adjustment step works on.
    fn creation(&mut self) -> Result<adjust::Target<'_>> {
        match &mut self.request {
            Request::Create(req) => {
                let ctr = req.container.mut_or_insert_default();
                Ok(adjust::Target {
                    id: ctr.id.clone(),
                    ctr,
                    reply: &mut self.adjust,
                    owners: &mut self.owners,
                    rules: self.rules,
                })
            }
            _ => Err(Error::State(
                "internal error: a container adjustment outside CreateContainer".into(),
            )),
        }
    }

    fn apply_adjustment(&mut self, adjust: &ContainerAdjustment, plugin: &str) -> Result<()> {
        let mut t = self.creation()?;
        t.apply(adjust, plugin)
    }
}

/// Gives `res` its memory and cpu parts, empty unless already there: the
/// skeleton the reference fills in before merging into resources.
fn fill_resources(res: &mut LinuxResources) {
    res.memory.mut_or_insert_default();
    res.cpu.mut_or_insert_default();
}

/// The container of a request, for callers that keep a copy of it as the
/// reference's validators get it (before any plugin adjusted it).
pub(crate) fn pristine_container(c: &Collector) -> Option<Container> {
    c.create_request()
        .map(|r| r.container.get_or_default().clone())
}

#[cfg(test)]
mod tests;
