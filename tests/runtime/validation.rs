//! Validation of merged adjustments (NRI v0.10+) by plugins subscribed to
//! ValidateContainerAdjustment.

use super::*;
use nri::api::{Field, OptionalInt64, ValidateContainerAdjustmentResponse};

fn validator(name: &str, idx: &str) -> Spec {
    Spec::new(name, idx, Event::VALIDATE_CONTAINER_ADJUSTMENT.mask())
}

fn reject(
    reason: &str,
) -> impl Fn(
    &common::plugin::Peer<'_>,
    nri::api::ValidateContainerAdjustmentRequest,
) -> Result<ValidateContainerAdjustmentResponse, Status>
       + Send
       + Sync
       + 'static {
    let reason = reason.to_string();
    move |_, _| {
        Ok(ValidateContainerAdjustmentResponse {
            reject: true,
            reason: reason.clone(),
            ..Default::default()
        })
    }
}

/// 10-a annotates and sets a memory limit, 20-b adds an env variable and
/// updates another container.
fn adjusters(rt: &Runtime, set: &PluginSet) -> Vec<TestPlugin> {
    let a = Spec::new("a", "10", Event::CREATE_CONTAINER.mask()).on_create(|_, req| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("from-a".into(), req.container.id.clone());
        adjust
            .linux
            .mut_or_insert_default()
            .resources
            .mut_or_insert_default()
            .memory
            .mut_or_insert_default()
            .limit = MessageField::some(OptionalInt64 {
            value: 1 << 20,
            ..Default::default()
        });
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    });
    let b = Spec::new("b", "20", Event::CREATE_CONTAINER.mask()).on_create(|_, _| {
        let mut adjust = ContainerAdjustment::new();
        adjust.add_env("FROM_B", "yes");
        let mut u = ContainerUpdate::for_container("other");
        u.set_linux_cpuset_cpus("1");
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            update: vec![u],
            ..Default::default()
        })
    });
    let (ha, pa) = accept_pair(rt, a);
    let (hb, pb) = accept_pair(rt, b);
    set.add(ha.unwrap()).unwrap();
    set.add(hb.unwrap()).unwrap();
    vec![pa, pb]
}

#[test]
fn validators_get_the_pristine_container_the_merged_result_the_owners_and_the_plugins() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let _adjusters = adjusters(&rt, &set);
    let (hv, pv) = accept_pair(&rt, validator("v", "30"));
    set.add(hv.unwrap()).unwrap();
    assert_eq!(set.validators(), ["30-v"]);

    let mut c = ctr("c", "p");
    c.annotations.insert("orig".into(), "1".into());
    let resp = set.create_container(&pod("p"), &c).expect("accepted");
    let seen = pv.rec.validations.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.pod.id, "p");
    // Pristine: as sent, with the reference's skeleton, no adjustment.
    assert_eq!(req.container.annotations.len(), 1);
    assert!(req.container.env.is_empty());
    assert!(req.container.hooks.is_some());
    assert!(req.container.linux.resources.memory.is_some());
    assert!(req.container.linux.resources.memory.limit.is_none());
    // The merged adjustment and updates, exactly as returned.
    assert_eq!(req.adjust, resp.adjust);
    assert_eq!(req.update, resp.update);
    assert_eq!(req.update[0].container_id, "other");
    // Owners of every claimed field.
    let owners = &req.owners.owners;
    let mine = &owners["c"];
    assert_eq!(mine.simple[&(Field::MemLimit as i32)], "10-a");
    assert_eq!(
        mine.compound[&(Field::Annotations as i32)].owners["from-a"],
        "10-a"
    );
    assert_eq!(mine.compound[&(Field::Env as i32)].owners["FROM_B"], "20-b");
    assert_eq!(owners["other"].simple[&(Field::CPUSetCPUs as i32)], "20-b");
    // Every plugin that took part, validators included, in order.
    let plugins: Vec<_> = req
        .plugins
        .iter()
        .map(|p| format!("{}-{}", p.index, p.name))
        .collect();
    assert_eq!(plugins, ["10-a", "20-b", "30-v"]);
}

#[test]
fn a_rejection_fails_the_creation_with_the_validator_s_reason() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let adjusters = adjusters(&rt, &set);
    let long = format!("too much {}", "x".repeat(16 << 10));
    for (name, reason, want) in [
        (
            "plain",
            "no memory limits here",
            "no memory limits here".to_string(),
        ),
        ("silent", "", "unknown rejection reason".to_string()),
        ("long", long.as_str(), long.clone()),
    ] {
        let (hv, _pv) = accept_pair(&rt, validator(name, "30").on_validate(reject(reason)));
        set.add(hv.unwrap()).unwrap();
        match set.create_container(&pod("p"), &ctr("c", "p")) {
            Err(Error::Rejected(m)) => assert_eq!(
                m,
                format!("validator \"30-{name}\" rejected container adjustment, reason: {want}")
            ),
            other => panic!("{name}: expected a rejection, got {other:?}"),
        }
        assert_eq!(set.len(), 3, "a rejection drops nobody");
        drop(set.remove(&format!("30-{name}")));
    }
    set.create_container(&pod("p"), &ctr("c2", "p"))
        .expect("without the validator the creation goes through");
    assert!(
        adjusters[0]
            .rec
            .calls()
            .iter()
            .filter(|c| *c == "CreateContainer")
            .count()
            == 4
    );
}

#[test]
fn validators_run_concurrently_and_every_one_must_accept() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let slow = |name: &str, idx: &str| {
        validator(name, idx).before(|_, _| {
            thread::sleep(Duration::from_millis(400));
            Ok(())
        })
    };
    let (h1, p1) = accept_pair(&rt, slow("v1", "30"));
    let (h2, p2) = accept_pair(&rt, slow("v2", "31").on_validate(reject("v2 says no")));
    set.add(h1.unwrap()).unwrap();
    set.add(h2.unwrap()).unwrap();
    let started = Instant::now();
    let r = set.create_container(&pod("p"), &ctr("c", "p"));
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(750),
        "two 400 ms validators took {took:?}: not concurrent"
    );
    match r {
        Err(Error::Rejected(m)) => {
            assert!(m.contains("\"31-v2\"") && m.contains("v2 says no"), "{m}")
        }
        other => panic!("expected v2's rejection, got {other:?}"),
    }
    assert_eq!(p1.rec.validations.lock().unwrap().len(), 1);
    assert_eq!(p2.rec.validations.lock().unwrap().len(), 1);
}

#[test]
fn a_validator_that_fails_or_does_not_implement_validation_fails_the_creation() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let failing = validator("v", "30").before(|_, _| Err(Status::new(Code::Internal, "boom")));
    let (hv, _pv) = accept_pair(&rt, failing);
    set.add(hv.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Handler(m)) => {
            assert!(
                m.starts_with("validator plugin 30-v failed:") && m.contains("boom"),
                "{m}"
            )
        }
        other => panic!("expected the validator's failure, got {other:?}"),
    }
    assert_eq!(set.names(), ["30-v"], "a status drops nobody");
    drop(set.remove("30-v"));

    // A v0.9-style plugin claiming the validation bit it cannot serve.
    let old = validator("old", "31").v0_9();
    let (ho, _po) = accept_pair(&rt, old);
    set.add(ho.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Handler(m)) => assert!(
            m.contains("validator plugin 31-old failed")
                && m.contains("Unimplemented")
                && m.contains("no StateChange fallback"),
            "{m}"
        ),
        other => panic!("expected the missing validator to fail, got {other:?}"),
    }
}

#[test]
fn a_handle_returns_the_verdict_as_the_plugin_answered_it() {
    let rt = test_runtime().build();
    let (h, _p) = accept_pair(&rt, validator("v", "30").on_validate(reject("")));
    let verdict = h
        .unwrap()
        .validate_container_adjustment(&Default::default())
        .expect("answered");
    assert!(verdict.reject);
    assert!(verdict.reason.is_empty());
}

#[test]
fn without_validators_nothing_is_validated_and_v0_9_refuses_the_bit() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let adjusters = adjusters(&rt, &set);
    set.create_container(&pod("p"), &ctr("c", "p")).unwrap();
    for p in &adjusters {
        assert!(!p
            .rec
            .calls()
            .contains(&"ValidateContainerAdjustment".into()));
    }
    let old = test_runtime().emulate(Emulation::V0_9_0).build();
    let (h, p) = accept_pair(&old, validator("v", "30"));
    match h {
        Err(Error::Protocol(m)) => assert_eq!(
            m,
            "plugin 30-v: invalid plugin events: 0x2000 (ValidateContainerAdjustment); a \
             runtime on NRI v0.9.0 accepts only events within 0x7ff"
        ),
        other => panic!("expected the mask to be refused, got {other:?}"),
    }
    assert!(p.closed_within(STEP));
}
