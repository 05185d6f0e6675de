//! Resource fields that adjustments and updates share, folded from one
//! plugin's reply into the collected resources, each field claimed.

use std::collections::BTreeMap;

use protobuf::MessageField;

use super::claims::Claims;
use crate::api::{Field, LinuxResources};
use crate::Result;

/// Gives `res` its memory and cpu parts, empty unless already there: the
/// skeleton the reference fills in before merging into resources.
pub(super) fn fill_resources(res: &mut LinuxResources) {
    res.memory.mut_or_insert_default();
    res.cpu.mut_or_insert_default();
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
    owners: &mut Claims,
    id: &str,
    plugin: &str,
    src: &LinuxResources,
    targets: &mut [&mut LinuxResources],
) -> Result<()> {
    if let Some(mem) = src.memory.as_ref() {
        merge_optionals! { owners, id, plugin, mem, targets, memory, [
            (limit, Field::MemLimit), (reservation, Field::MemReservation),
            (swap, Field::MemSwapLimit), (kernel, Field::MemKernelLimit),
            (kernel_tcp, Field::MemTCPLimit), (swappiness, Field::MemSwappiness),
            (disable_oom_killer, Field::MemDisableOomKiller),
            (use_hierarchy, Field::MemUseHierarchy),
        ] }
    }
    if let Some(cpu) = src.cpu.as_ref() {
        merge_optionals! { owners, id, plugin, cpu, targets, cpu, [
            (shares, Field::CPUShares), (quota, Field::CPUQuota), (period, Field::CPUPeriod),
            (realtime_runtime, Field::CPURealtimeRuntime),
            (realtime_period, Field::CPURealtimePeriod),
        ] }
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
