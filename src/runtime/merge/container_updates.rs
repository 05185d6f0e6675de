//! Container updates (`ContainerUpdate`) in replies: collected per
//! container, each merged over what the earlier plugins left.

use std::collections::HashMap;

use protobuf::MessageField;

use super::claims::Claims;
use super::fold_resources::{fill_resources, merge_resources};
use crate::api::{ContainerUpdate, Field, LinuxContainerUpdate, LinuxPids, LinuxResources};
use crate::{Error, Result};

/// The collected updates, one per container, in the order first touched.
#[derive(Default)]
pub(super) struct Updates {
    list: Vec<ContainerUpdate>,
    /// Container id → index in `list`.
    index: HashMap<String, usize>,
}

/// What the updates of one reply are merged against.
pub(super) struct Against<'a> {
    /// The claims of the whole merge.
    pub(super) claims: &'a mut Claims,
    /// The container being created (CreateContainer): updating it is
    /// refused.
    pub(super) creating: Option<&'a str>,
    /// The container being updated (UpdateContainer), whose requested
    /// resources an update of it merges over, and changes.
    pub(super) updating: Option<Requested<'a>>,
    /// The copy an update is merged into keeps the device cgroup rules.
    pub(super) keep_device_rules: bool,
}

/// The container an UpdateContainer is about, and its requested resources.
pub(super) struct Requested<'a> {
    pub(super) id: &'a str,
    pub(super) resources: &'a mut MessageField<LinuxResources>,
}

impl Updates {
    /// Folds in one plugin's updates; a failing update with
    /// `ignore_failure` set is passed over.
    pub(super) fn apply(
        &mut self,
        updates: &[ContainerUpdate],
        plugin: &str,
        against: &mut Against<'_>,
    ) -> Result<()> {
        for u in updates {
            let slot = self.slot(u, plugin, against.creating)?;
            if let Err(e) = self.merge(slot, u, plugin, against) {
                if !u.ignore_failure {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The updates, the one of container `last` (if any) moved to the end.
    pub(super) fn into_list(mut self, last: Option<&str>) -> Vec<ContainerUpdate> {
        if let Some(&i) = last.and_then(|id| self.index.get(id)) {
            let update = self.list.remove(i);
            self.list.push(update);
        }
        self.list
    }

    /// The collected update of `u`'s container, made on first use.
    fn slot(&mut self, u: &ContainerUpdate, plugin: &str, creating: Option<&str>) -> Result<usize> {
        let id = &u.container_id;
        if creating == Some(id.as_str()) {
            return Err(Error::Handler(format!(
                "plugin {plugin:?} asked update of {id:?} during creation"
            )));
        }
        if let Some(&i) = self.index.get(id) {
            let slot = &mut self.list[i];
            slot.ignore_failure = slot.ignore_failure && u.ignore_failure;
            return Ok(i);
        }
        let mut res = LinuxResources::new();
        fill_resources(&mut res);
        let update = ContainerUpdate {
            container_id: id.clone(),
            linux: MessageField::some(LinuxContainerUpdate {
                resources: MessageField::some(res),
                ..Default::default()
            }),
            ignore_failure: u.ignore_failure,
            ..Default::default()
        };
        let i = self.list.len();
        self.list.push(update);
        self.index.insert(id.clone(), i);
        Ok(i)
    }

    /// Merges the resources of `u` into the collected update in `slot` (and
    /// into the request, for the container an UpdateContainer is about).
    fn merge(
        &mut self,
        slot: usize,
        u: &ContainerUpdate,
        plugin: &str,
        against: &mut Against<'_>,
    ) -> Result<()> {
        let Some(wanted) = u.linux.as_ref().and_then(|l| l.resources.as_ref()) else {
            return Ok(());
        };
        let id = u.container_id.as_str();
        let requested = against.updating.as_mut().filter(|r| r.id == id);
        // Work on a copy: a failed (ignored) update changes nothing.
        let mut res = match &requested {
            Some(r) => r.resources.get_or_default().clone(),
            None => self.list[slot]
                .linux
                .get_or_default()
                .resources
                .get_or_default()
                .clone(),
        };
        if !against.keep_device_rules {
            // As the reference (v0.9): its copy leaves out the device rules.
            res.devices.clear();
        }
        merge_resources(against.claims, id, plugin, wanted, &mut [&mut res])?;
        // As the reference: the pids limit is looked up on the collected
        // resources, not on the plugin's update, so an update never sets it
        // but claims it whenever the container already has one.
        if let Some(pids) = res.pids.as_ref() {
            let limit = pids.limit;
            against.claims.claim(id, Field::PidsLimit, None, plugin)?;
            res.pids = MessageField::some(LinuxPids {
                limit,
                ..Default::default()
            });
        }
        self.list[slot].linux.mut_or_insert_default().resources = MessageField::some(res.clone());
        if let Some(r) = requested {
            *r.resources = MessageField::some(res);
        }
        Ok(())
    }
}
