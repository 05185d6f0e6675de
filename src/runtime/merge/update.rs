//! Container updates (`ContainerUpdate`) in replies, and the resource
//! fields that adjustments and updates share.

use std::collections::BTreeMap;

use protobuf::MessageField;

use super::owners::Owners;
use super::{fill_resources, Collector, Request};
use crate::api::{ContainerUpdate, Field, LinuxContainerUpdate, LinuxPids, LinuxResources};
use crate::{Error, Result};

impl Collector {
    /// The collected update of `u`'s container, made on first use.
    pub(super) fn update_slot(&mut self, u: &ContainerUpdate, plugin: &str) -> Result<usize> {
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
        let i = self.updates.len();
        self.updates.push(update);
        self.index.insert(id.clone(), i);
        Ok(i)
    }

    /// Merges the resources of `u` into the collected update in `slot` (and
    /// into the request, for the container an UpdateContainer is about).
    pub(super) fn update_resources(
        &mut self,
        slot: usize,
        u: &ContainerUpdate,
        plugin: &str,
    ) -> Result<()> {
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
        if !self.rules.update_keeps_device_rules {
            // As the reference (v0.9): its copy leaves out the device rules.
            res.devices.clear();
        }
        merge_resources(&mut self.owners, id, plugin, wanted, &mut [&mut res])?;
        // As the reference: the pids limit is looked up on the collected
        // resources, not on the plugin's update, so an update never sets it
        // but claims it whenever the container already has one.
        if let Some(pids) = res.pids.as_ref() {
            let limit = pids.limit;
            self.owners.claim(id, Field::PidsLimit, None, plugin)?;
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

/// Sets every optional field present in `$src.$part` on each target's
/// `$part`, claiming it first.
macro_rules! merge_optionals {
    ($owners:expr, $id:expr, $plugin:expr, $src:expr, $targets:expr, $part:ident, [$(($field:ident, $owner:expr)),* $(,)?]) => {
        $(
            if let Some(v) = $src.$field.as_ref() {
                $owners.claim($id, $owner, None, $plugin)?;
                for t in $targets.iter_mut() {
                    t.$part.mut_or_insert_default().$field = MessageField::some(v.clone());
                }
            }
        )*
    };
}

/// Folds `src` into each of `targets`: memory, CPU, hugepage limits,
/// unified, block I/O and RDT class. Device rules and the pids limit are
/// handled by the callers, which differ there.
pub(super) fn merge_resources(
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
                (limit, Field::MemLimit),
                (reservation, Field::MemReservation),
                (swap, Field::MemSwapLimit),
                (kernel, Field::MemKernelLimit),
                (kernel_tcp, Field::MemTCPLimit),
                (swappiness, Field::MemSwappiness),
                (disable_oom_killer, Field::MemDisableOomKiller),
                (use_hierarchy, Field::MemUseHierarchy),
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
                (shares, Field::CPUShares),
                (quota, Field::CPUQuota),
                (period, Field::CPUPeriod),
                (realtime_runtime, Field::CPURealtimeRuntime),
                (realtime_period, Field::CPURealtimePeriod),
            ]
        );
        if !cpu.cpus.is_empty() {
            owners.claim(id, Field::CPUSetCPUs, None, plugin)?;
            for t in targets.iter_mut() {
                t.cpu.mut_or_insert_default().cpus = cpu.cpus.clone();
            }
        }
        if !cpu.mems.is_empty() {
            owners.claim(id, Field::CPUSetMems, None, plugin)?;
            for t in targets.iter_mut() {
                t.cpu.mut_or_insert_default().mems = cpu.mems.clone();
            }
        }
    }
    for l in &src.hugepage_limits {
        owners.claim(id, Field::HugepageLimits, Some(&l.page_size), plugin)?;
        for t in targets.iter_mut() {
            t.hugepage_limits.push(l.clone());
        }
    }
    let unified: BTreeMap<_, _> = src.unified.iter().collect();
    for (k, v) in unified {
        owners.claim(id, Field::CgroupsUnified, Some(k), plugin)?;
        for t in targets.iter_mut() {
            t.unified.insert(k.clone(), v.clone());
        }
    }
    if let Some(v) = src.blockio_class.as_ref() {
        owners.claim(id, Field::BlockioClass, None, plugin)?;
        for t in targets.iter_mut() {
            t.blockio_class = MessageField::some(v.clone());
        }
    }
    if let Some(v) = src.rdt_class.as_ref() {
        owners.claim(id, Field::RdtClass, None, plugin)?;
        for t in targets.iter_mut() {
            t.rdt_class = MessageField::some(v.clone());
        }
    }
    Ok(())
}
