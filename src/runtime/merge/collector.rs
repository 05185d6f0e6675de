//! [`Collector`]: the replies of several plugins to one request, folded
//! together in the order the plugins answered.

use protobuf::MessageField;

use super::adjust::Target;
use super::claims::Claims;
use super::container_updates::{Against, Requested, Updates};
use super::fold_resources::fill_resources;
use crate::api::{
    Container, ContainerAdjustment, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Hooks, LinuxResources, OwningPlugins, PodSandbox,
    StopContainerResponse, UpdateContainerRequest, UpdateContainerResponse,
};
use crate::runtime::emulation::MergeRules;
use crate::{Error, Result};

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
    /// Updates of other containers. Never one of the container being
    /// created (refused); the one of the container being updated, if any,
    /// goes last into the reply.
    updates: Updates,
    claims: Claims,
}

impl Collector {
    /// For CreateContainer of `container` in `pod`.
    pub(crate) fn create_for(
        pod: &PodSandbox,
        container: &Container,
        rules: MergeRules,
    ) -> Collector {
        let (pod, container) = owned(pod, container);
        let req = CreateContainerRequest {
            pod,
            container,
            ..Default::default()
        };
        Collector::create(req, rules)
    }

    /// For UpdateContainer of `container` in `pod` to `resources`.
    pub(crate) fn update_for(
        pod: &PodSandbox,
        container: &Container,
        resources: &LinuxResources,
        rules: MergeRules,
    ) -> Collector {
        let (pod, container) = owned(pod, container);
        let linux_resources = MessageField::some(resources.clone());
        let req = UpdateContainerRequest {
            pod,
            container,
            linux_resources,
            ..Default::default()
        };
        Collector::update(req, rules)
    }

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
            updates: Updates::default(),
            claims: Claims::new(rules.owners, rules.hooks_owner),
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
        let (creating, updating) = match &mut self.request {
            Request::Create(req) => (Some(req.container.id.as_str()), None),
            Request::Update(req) => (
                None,
                Some(Requested {
                    id: req.container.id.as_str(),
                    resources: &mut req.linux_resources,
                }),
            ),
            Request::Stop => (None, None),
        };
        let mut against = Against {
            claims: &mut self.claims,
            creating,
            updating,
            keep_device_rules: self.rules.update_keeps_device_rules,
        };
        self.updates.apply(updates, plugin, &mut against)
    }

    /// The claims so far, as validators get them (v0.10+ record).
    pub(crate) fn owners(&self) -> OwningPlugins {
        self.claims.owning_plugins()
    }

    /// The merged adjustment and updates, as the reference hands them to
    /// the runtime (the adjustment always carries its empty skeleton).
    pub(crate) fn create_response(self) -> CreateContainerResponse {
        CreateContainerResponse {
            adjust: MessageField::some(self.adjust),
            update: self.updates.into_list(None),
            ..Default::default()
        }
    }

    /// The updates of other containers, then the merged update of the
    /// container being updated, if any plugin touched it. (The reference
    /// appends that entry even when no plugin touched it, as a nil.)
    pub(crate) fn update_response(self) -> UpdateContainerResponse {
        let updated = match &self.request {
            Request::Update(req) => Some(req.container.id.as_str()),
            _ => None,
        };
        UpdateContainerResponse {
            update: self.updates.into_list(updated),
            ..Default::default()
        }
    }

    pub(crate) fn stop_response(self) -> StopContainerResponse {
        StopContainerResponse {
            update: self.updates.into_list(None),
            ..Default::default()
        }
    }

    /// The container being created, the collected adjustment and the
    /// owners: what an adjustment step works on.
    fn creation(&mut self) -> Result<Target<'_>> {
        match &mut self.request {
            Request::Create(req) => {
                let ctr = req.container.mut_or_insert_default();
                Ok(Target {
                    id: ctr.id.clone(),
                    ctr,
                    reply: &mut self.adjust,
                    claims: &mut self.claims,
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

/// Copies of a pod and a container, as request fields.
fn owned(pod: &PodSandbox, c: &Container) -> (MessageField<PodSandbox>, MessageField<Container>) {
    (
        MessageField::some(pod.clone()),
        MessageField::some(c.clone()),
    )
}

/// The container of a request, for callers that keep a copy of it as the
/// reference's validators get it (before any plugin adjusted it).
pub(crate) fn pristine_container(c: &Collector) -> Option<Container> {
    c.create_request()
        .map(|r| r.container.get_or_default().clone())
}
