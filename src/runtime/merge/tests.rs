//! Merge rules, per version.

use super::*;
use crate::api::{
    Container, ContainerAdjustment, ContainerUpdate, CreateContainerRequest,
    CreateContainerResponse, Field, IOPrioClass, KeyValue, LinuxIOPriority, LinuxMemoryPolicy,
    LinuxNamespace, LinuxNetDevice, LinuxRdt, LinuxScheduler, LinuxSchedulerPolicy, LinuxSeccomp,
    MpolMode, OptionalBool, OptionalString, UpdateContainerRequest,
};
use crate::runtime::emulation::MergeRules;
use crate::runtime::Emulation;
use protobuf::MessageField;

fn rules(v: Emulation) -> MergeRules {
    v.profile().merge
}

fn create_req(id: &str) -> CreateContainerRequest {
    let mut ctr = Container::new();
    ctr.id = id.to_string();
    ctr.env = vec!["A=1".into(), "B=2".into()];
    CreateContainerRequest {
        container: MessageField::some(ctr),
        ..Default::default()
    }
}

fn reply(adjust: ContainerAdjustment) -> CreateContainerResponse {
    CreateContainerResponse {
        adjust: MessageField::some(adjust),
        ..Default::default()
    }
}

fn annotate(k: &str, v: &str) -> CreateContainerResponse {
    let mut adjust = ContainerAdjustment::new();
    adjust.add_annotation(k, v);
    reply(adjust)
}

/// A reply that removes the annotation `k` and sets it again: a take-over.
fn take_over_annotation(k: &str, v: &str) -> CreateContainerResponse {
    let mut adjust = ContainerAdjustment::new();
    adjust.remove_annotation(k).add_annotation(k, v);
    reply(adjust)
}

#[test]
fn same_annotation_from_two_plugins_conflicts_with_each_version_s_message() {
    for (v, what) in [
        (Emulation::V0_9_0, "annotation k"),
        (Emulation::V0_12_5, "Annotations k"),
    ] {
        let mut c = Collector::create(create_req("c"), rules(v));
        c.apply_create(&annotate("k", "1"), "10-a").unwrap();
        let err = c.apply_create(&annotate("k", "2"), "20-b").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("plugins \"20-b\" and \"10-a\" both tried to set {what}"),
            "{v}"
        );
    }
}

#[test]
fn removing_first_takes_over_an_annotation() {
    for v in Emulation::ALL {
        let mut c = Collector::create(create_req("c"), rules(v));
        c.apply_create(&annotate("k", "1"), "10-a").unwrap();
        c.apply_create(&take_over_annotation("k", "2"), "20-b")
            .unwrap();
        assert_eq!(c.create_request().unwrap().container.annotations["k"], "2");
        let resp = c.create_response();
        assert_eq!(resp.adjust.annotations["k"], "2");
        assert_eq!(resp.adjust.annotations["-k"], "");
    }
}

#[test]
fn after_a_take_over_a_third_plugin_conflicts_with_the_remover_from_v0_10() {
    let take_over = |c: &mut Collector| {
        c.apply_create(&annotate("k", "1"), "10-a").unwrap();
        c.apply_create(&take_over_annotation("k", "2"), "20-b")
            .unwrap();
        c.apply_create(&annotate("k", "3"), "30-c")
    };
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_9_0));
    let e = take_over(&mut c).unwrap_err();
    assert!(e.to_string().contains("\"30-c\" and \"20-b\""), "{e}");
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    let e = take_over(&mut c).unwrap_err();
    assert!(e.to_string().contains("\"30-c\" and \"20-b\""), "{e}");
    let owners = c.owners();
    let compound = &owners.owners["c"].compound[&(Field::Annotations as i32)];
    assert_eq!(compound.owners["k"], "20-b");
}

#[test]
fn env_adjustments_replace_request_entries() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
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
    c.apply_create(&reply(adjust), "10-a").unwrap();
    assert_eq!(c.create_request().unwrap().container.env, ["B=3"]);
}

#[test]
fn updates_of_the_created_container_are_refused() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    let mut u = ContainerUpdate::new();
    u.container_id = "c".into();
    let err = c.apply_updates(&[u], "10-a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin \"10-a\" asked update of \"c\" during creation"
    );
}

#[test]
fn updates_of_one_container_merge_and_conflict_per_field() {
    let mut c = Collector::stop(rules(Emulation::V0_12_5));
    let mut u1 = ContainerUpdate::for_container("x");
    u1.set_linux_memory_limit(100);
    let mut u2 = ContainerUpdate::for_container("x");
    u2.set_linux_cpuset_cpus("0-1");
    c.apply_updates(&[u1.clone()], "10-a").unwrap();
    c.apply_updates(&[u2], "20-b").unwrap();
    let e = c.apply_updates(&[u1.clone()], "30-c").unwrap_err();
    assert_eq!(
        e.to_string(),
        "plugins \"30-c\" and \"10-a\" both tried to set MemLimit "
    );
    u1.ignore_failure = true;
    c.apply_updates(&[u1], "30-c").expect("ignored failure");
    let resp = c.stop_response();
    assert_eq!(resp.update.len(), 1);
    let res = resp.update[0].linux.resources.get_or_default();
    assert_eq!(res.memory.limit.value, 100);
    assert_eq!(res.cpu.cpus, "0-1");
    assert!(!resp.update[0].ignore_failure);
}

/// Every adjustment kind added since v0.9, set by one plugin.
fn v012_adjustment(t: &str) -> ContainerAdjustment {
    let mut a = ContainerAdjustment::new();
    a.args = vec![format!("/bin/{t}"), "--x".into()];
    let l = a.linux.mut_or_insert_default();
    l.io_priority = MessageField::some(LinuxIOPriority {
        class: IOPrioClass::IOPRIO_CLASS_BE.into(),
        priority: 4,
        ..Default::default()
    });
    l.seccomp_policy = MessageField::some(LinuxSeccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        ..Default::default()
    });
    l.namespaces.push(LinuxNamespace {
        type_: "network".into(),
        path: format!("/var/run/netns/{t}"),
        ..Default::default()
    });
    l.sysctl.insert("net.core.somaxconn".into(), "1024".into());
    l.net_devices.insert(
        format!("{t}-host0"),
        LinuxNetDevice {
            name: format!("{t}-eth0"),
            ..Default::default()
        },
    );
    l.scheduler = MessageField::some(LinuxScheduler {
        policy: LinuxSchedulerPolicy::SCHED_BATCH.into(),
        nice: 5,
        ..Default::default()
    });
    l.rdt = MessageField::some(LinuxRdt {
        clos_id: MessageField::some(OptionalString {
            value: format!("{t}-clos"),
            ..Default::default()
        }),
        enable_monitoring: MessageField::some(OptionalBool {
            value: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    l.memory_policy = MessageField::some(LinuxMemoryPolicy {
        mode: MpolMode::MPOL_BIND.into(),
        nodes: "0".into(),
        ..Default::default()
    });
    a
}

#[test]
fn v0_12_adjustments_reach_the_reply_and_the_next_plugin_s_request() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    c.apply_create(&reply(v012_adjustment("a")), "10-a")
        .unwrap();
    let ctr = &c.create_request().unwrap().container;
    assert_eq!(ctr.args, ["/bin/a", "--x"]);
    let cl = ctr.linux.get_or_default();
    assert_eq!(cl.namespaces.len(), 1);
    assert_eq!(cl.sysctl["net.core.somaxconn"], "1024");
    assert!(cl.rdt.is_none(), "as upstream, RDT only reaches the reply");
    let owners = c.owners();
    let simple = &owners.owners["c"].simple;
    for f in [
        Field::Args,
        Field::IoPriority,
        Field::SeccompPolicy,
        Field::LinuxSched,
        Field::RdtClosID,
        Field::RdtEnableMonitoring,
        Field::MemoryPolicy,
    ] {
        assert_eq!(simple[&(f as i32)], "10-a", "{f:?}");
    }
    // A second plugin setting the same is refused, on the first field.
    let e = c
        .apply_create(&reply(v012_adjustment("b")), "20-b")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "plugins \"20-b\" and \"10-a\" both tried to set Args "
    );
    // The reply is the first plugin's alone.
    let resp = c.create_response();
    let a = resp.adjust.get_or_default();
    assert_eq!(a.args, ["/bin/a", "--x"]);
    let l = a.linux.get_or_default();
    assert_eq!(l.io_priority.priority, 4);
    assert_eq!(l.seccomp_policy.default_action, "SCMP_ACT_ALLOW");
    assert_eq!(l.namespaces[0].path, "/var/run/netns/a");
    assert_eq!(l.sysctl["net.core.somaxconn"], "1024");
    assert_eq!(l.net_devices["a-host0"].name, "a-eth0");
    assert_eq!(l.scheduler.nice, 5);
    assert_eq!(l.rdt.clos_id.value, "a-clos");
    assert!(l.rdt.schemata.is_none());
    assert_eq!(l.memory_policy.nodes, "0");
}

#[test]
fn v0_9_drops_the_newer_adjustments_and_v0_11_the_memory_policy() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_9_0));
    let mut a = v012_adjustment("a");
    a.linux.mut_or_insert_default().sysctl.clear();
    c.apply_create(&reply(a.clone()), "10-a").unwrap();
    assert!(c.owners().owners.is_empty());
    let resp = c.create_response();
    assert!(resp.adjust.args.is_empty());
    assert!(resp.adjust.linux.io_priority.is_none());
    assert!(
        resp.adjust.linux.rdt.is_none(),
        "no RDT skeleton before v0.11"
    );

    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_11_0));
    c.apply_create(&reply(a), "10-a").unwrap();
    let resp = c.create_response();
    assert_eq!(resp.adjust.args, ["/bin/a", "--x"]);
    assert!(resp.adjust.linux.memory_policy.is_none());
}

#[test]
fn v0_10_merges_its_own_adjustments_and_drops_those_of_v0_11() {
    // A v0.10 runtime reads a reply without the fields it does not know:
    // sysctls, net devices, scheduler and RDT are dropped (no panic, no
    // error), the adjustments of v0.10 are merged.
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_10_0));
    c.apply_create(&reply(v012_adjustment("a")), "10-a")
        .unwrap();
    let cl = c.create_request().unwrap().container.linux.get_or_default();
    assert!(cl.sysctl.is_empty() && cl.net_devices.is_empty());
    let resp = c.create_response();
    let a = resp.adjust.get_or_default();
    assert_eq!(a.args, ["/bin/a", "--x"]);
    let l = a.linux.get_or_default();
    assert_eq!(l.io_priority.priority, 4);
    assert_eq!(l.namespaces.len(), 1);
    assert!(l.sysctl.is_empty() && l.net_devices.is_empty());
    assert!(l.scheduler.is_none() && l.memory_policy.is_none());
    assert!(
        l.rdt.is_none(),
        "no RDT step, so no RDT skeleton, before v0.11"
    );
}

#[test]
fn a_sysctl_removal_lands_among_the_annotations_before_v0_12_3() {
    let removal = || {
        let mut a = ContainerAdjustment::new();
        let l = a.linux.mut_or_insert_default();
        l.sysctl.insert("-net.a".into(), String::new());
        l.sysctl.insert("-net.b".into(), String::new());
        l.sysctl.insert("net.b".into(), "1".into());
        reply(a)
    };
    for (v, in_sysctl) in [
        (Emulation::V0_11_0, false),
        (Emulation::V0_12_0, false),
        (Emulation::V0_12_1, false),
        (Emulation::V0_12_3, true),
        (Emulation::V0_12_5, true),
    ] {
        let mut c = Collector::create(create_req("c"), rules(v));
        let mut r = removal();
        if v == Emulation::V0_11_0 {
            // v0.11 crashes on the setting: only the removal is tried.
            r.adjust
                .mut_or_insert_default()
                .linux
                .mut_or_insert_default()
                .sysctl
                .remove("net.b");
            r.adjust
                .mut_or_insert_default()
                .linux
                .mut_or_insert_default()
                .sysctl
                .remove("-net.b");
        }
        c.apply_create(&r, "10-a").unwrap();
        let a = c.create_response().adjust.unwrap();
        let sysctl = &a.linux.sysctl;
        assert_eq!(sysctl.contains_key("-net.a"), in_sysctl, "{v}");
        assert_eq!(a.annotations.contains_key("-net.a"), !in_sysctl, "{v}");
        if v != Emulation::V0_11_0 {
            // Removed and set again: the mark stays with the sysctls.
            assert_eq!(sysctl["net.b"], "1", "{v}");
            assert!(sysctl.contains_key("-net.b"), "{v}");
        }
    }
}

#[test]
fn any_linux_part_leaves_an_empty_rdt_in_the_merged_adjustment_from_v0_11() {
    let mut a = ContainerAdjustment::new();
    a.linux.mut_or_insert_default().cgroups_path = "/x".into();
    for (v, rdt) in [
        (Emulation::V0_9_0, false),
        (Emulation::V0_10_0, false),
        (Emulation::V0_11_0, true),
        (Emulation::V0_12_5, true),
    ] {
        let mut c = Collector::create(create_req("c"), rules(v));
        c.apply_create(&reply(a.clone()), "10-a").unwrap();
        let resp = c.create_response();
        assert_eq!(resp.adjust.linux.rdt.is_some(), rdt, "{v}");
        assert_eq!(resp.adjust.linux.rdt.get_or_default(), &LinuxRdt::new());
    }
    // Without a linux part, nothing.
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    c.apply_create(&annotate("k", "v"), "10-a").unwrap();
    assert!(c.create_response().adjust.linux.rdt.is_none());
}

#[test]
fn a_leading_empty_argument_overrides_earlier_args() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    let args = |v: &[&str]| {
        reply(ContainerAdjustment {
            args: v.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    };
    c.apply_create(&args(&["/a"]), "10-a").unwrap();
    assert!(c.apply_create(&args(&["/b"]), "20-b").is_err());
    c.apply_create(&args(&["", "/b", "x"]), "20-b").unwrap();
    assert_eq!(c.create_request().unwrap().container.args, ["/b", "x"]);
    assert_eq!(c.create_response().adjust.args, ["/b", "x"]);
}

#[test]
fn removing_a_namespace_claims_it_too() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    let ns = |t: &str| {
        let mut a = ContainerAdjustment::new();
        a.linux
            .mut_or_insert_default()
            .namespaces
            .push(LinuxNamespace {
                type_: t.into(),
                ..Default::default()
            });
        reply(a)
    };
    c.apply_create(&ns("-ipc"), "10-a").unwrap();
    let e = c.apply_create(&ns("ipc"), "20-b").unwrap_err();
    assert_eq!(
        e.to_string(),
        "plugins \"20-b\" and \"10-a\" both tried to set Namespace ipc"
    );
}

#[test]
fn a_sysctl_adjustment_fails_under_v0_11_and_merges_from_v0_12() {
    let mut a = ContainerAdjustment::new();
    a.set_linux_sysctl("net.ipv4.ip_forward", "1");
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_11_0));
    let e = c.apply_create(&reply(a.clone()), "10-a").unwrap_err();
    assert!(
        e.to_string().contains("\"10-a\"") && e.to_string().contains("v0.11"),
        "{e}"
    );
    // A removal alone lands among the annotations there.
    let mut r = ContainerAdjustment::new();
    r.linux
        .mut_or_insert_default()
        .sysctl
        .insert("-net.ipv4.ip_forward".into(), String::new());
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_11_0));
    c.apply_create(&reply(r.clone()), "10-a").unwrap();
    assert_eq!(
        c.create_response().adjust.annotations["-net.ipv4.ip_forward"],
        ""
    );
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    c.apply_create(&reply(a), "10-a").unwrap();
    c.apply_create(&reply(r), "20-b").unwrap();
    let resp = c.create_response();
    assert_eq!(resp.adjust.linux.sysctl["net.ipv4.ip_forward"], "1");
    assert_eq!(resp.adjust.linux.sysctl["-net.ipv4.ip_forward"], "");
}

#[test]
fn updates_of_other_containers_are_claimed_in_the_owners_record() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    let mut u = ContainerUpdate::for_container("other");
    u.set_linux_cpuset_cpus("1");
    let r = CreateContainerResponse {
        update: vec![u],
        ..Default::default()
    };
    c.apply_create(&r, "10-a").unwrap();
    let owners = c.owners();
    assert_eq!(
        owners.owners["other"].simple[&(Field::CPUSetCPUs as i32)],
        "10-a"
    );
    assert!(!owners.owners.contains_key("c"));
}

#[test]
fn rdt_removal_marks_the_three_fields_for_the_remover() {
    let mut c = Collector::create(create_req("c"), rules(Emulation::V0_12_5));
    c.apply_create(&reply(v012_adjustment("a")), "10-a")
        .unwrap();
    let mut rm = ContainerAdjustment::new();
    rm.linux.mut_or_insert_default().rdt = MessageField::some(LinuxRdt {
        remove: true,
        ..Default::default()
    });
    c.apply_create(&reply(rm), "20-b").unwrap();
    let owners = c.owners();
    let resp = c.create_response();
    assert!(resp.adjust.linux.rdt.remove);
    assert!(resp.adjust.linux.rdt.clos_id.is_none());
    assert_eq!(
        owners.owners["c"].simple[&(Field::RdtClosID as i32)],
        "-20-b"
    );
}

#[test]
fn the_update_of_the_updated_container_comes_last_in_the_reply() {
    let mut ctr = Container::new();
    ctr.id = "c".into();
    let req = UpdateContainerRequest {
        container: MessageField::some(ctr),
        ..Default::default()
    };
    let mut c = Collector::update(req, rules(Emulation::V0_12_5));
    let mut own = ContainerUpdate::for_container("c");
    own.set_linux_cpuset_cpus("0");
    let mut x = ContainerUpdate::for_container("x");
    x.set_linux_cpuset_cpus("1");
    c.apply_updates(&[own, x], "10-a").unwrap();
    let mut y = ContainerUpdate::for_container("y");
    y.set_linux_cpuset_cpus("2");
    c.apply_updates(&[y], "20-b").unwrap();
    assert_eq!(c.update_request().unwrap().linux_resources.cpu.cpus, "0");
    let ids: Vec<_> = c
        .update_response()
        .update
        .iter()
        .map(|u| u.container_id.clone())
        .collect();
    assert_eq!(ids, ["x", "y", "c"]);
}
