//! Several plugins behind a PluginSet: order, merging, failures.

use super::*;

fn annotating(name: &str, idx: &str, key: &'static str) -> Spec {
    Spec::new(name, idx, EventMask::ALL).on_create(move |_, req| {
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert(key.into(), req.container.id.clone());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    })
}

#[test]
fn plugin_set_calls_plugins_in_index_order_and_merges_adjustments() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let seen_by_b = Arc::new(Mutex::new(None));
    let s = seen_by_b.clone();
    let b_spec = Spec::new("b", "20", EventMask::ALL).on_create(move |_, req| {
        *s.lock().unwrap() = Some(req.container.annotations.clone());
        let mut adjust = ContainerAdjustment::new();
        adjust.annotations.insert("from-b".into(), "2".into());
        let mut other = ContainerUpdate::for_container("other");
        other.set_linux_cpuset_cpus("0-1");
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            update: vec![other],
            ..Default::default()
        })
    });
    let (b, plugin_b) = accept_pair(&rt, b_spec);
    let (a, plugin_a) = accept_pair(&rt, annotating("a", "10", "from-a"));
    set.add(b.expect("b accepted")).unwrap();
    set.add(a.expect("a accepted")).unwrap();
    assert_eq!(set.names(), ["10-a", "20-b"]);

    let reply = set
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("merged CreateContainer");
    let annotations = &reply.adjust.annotations;
    assert_eq!(annotations.get("from-a").map(String::as_str), Some("c"));
    assert_eq!(annotations.get("from-b").map(String::as_str), Some("2"));
    let seen = seen_by_b.lock().unwrap().clone().expect("b was called");
    assert_eq!(
        seen.get("from-a").map(String::as_str),
        Some("c"),
        "b sees a's adjustment in its request"
    );
    assert_eq!(reply.update.len(), 1);
    assert_eq!(reply.update[0].container_id, "other");
    assert_eq!(reply.update[0].linux.resources.cpu.cpus, "0-1");

    set.start_container(&pod("p"), &ctr("c", "p")).unwrap();
    assert!(plugin_a.rec.calls().contains(&"StartContainer".to_string()));
    assert!(plugin_b.rec.calls().contains(&"StartContainer".to_string()));
}

#[test]
fn plugin_set_conflicting_adjustments_fail_the_operation() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let (a, _pa) = accept_pair(&rt, annotating("a", "10", "same"));
    let (b, _pb) = accept_pair(&rt, annotating("b", "20", "same"));
    set.add(a.unwrap()).unwrap();
    set.add(b.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Conflict(message)) => {
            assert_eq!(
                message,
                "plugins \"20-b\" and \"10-a\" both tried to set Annotations same"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(set.len(), 2, "a conflict drops no plugin");
}

#[test]
fn plugin_set_skips_and_removes_a_plugin_that_times_out() {
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(300))
        .build();
    let set = PluginSet::new(&rt);
    let slow = Spec::new("slow", "10", EventMask::ALL).on_create(|_, _| {
        thread::sleep(Duration::from_millis(800));
        Ok(CreateContainerResponse::new())
    });
    let (a, _pa) = accept_pair(&rt, slow);
    let (b, _pb) = accept_pair(&rt, annotating("b", "20", "from-b"));
    set.add(a.unwrap()).unwrap();
    set.add(b.unwrap()).unwrap();
    let reply = set
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("the operation goes on without the dropped plugin");
    assert_eq!(
        reply.adjust.annotations.get("from-b").map(String::as_str),
        Some("c")
    );
    assert_eq!(set.names(), ["20-b"]);
}

#[test]
fn plugin_set_error_status_fails_the_operation_and_stops_the_relay() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let picky = Spec::new("picky", "10", EventMask::ALL)
        .on_create(|_, _| Err(Status::new(Code::PermissionDenied, "not here")));
    let (a, _pa) = accept_pair(&rt, picky);
    let (b, pb) = accept_pair(&rt, annotating("b", "20", "from-b"));
    set.add(a.unwrap()).unwrap();
    set.add(b.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Status { code, .. }) => assert_eq!(code, Code::PermissionDenied),
        other => panic!("expected the plugin's status, got {other:?}"),
    }
    assert!(
        !pb.rec.calls().contains(&"CreateContainer".to_string()),
        "later plugins are not called"
    );
    assert_eq!(set.len(), 2);
}

#[test]
fn plugin_set_refuses_a_plugin_of_another_runtime() {
    let rt = test_runtime().build();
    let other = test_runtime().build();
    let set = PluginSet::new(&rt);
    let (a, _pa) = accept_pair(&other, Spec::new("a", "10", EventMask::ALL));
    assert!(matches!(set.add(a.unwrap()), Err(Error::Config(_))));
    assert!(set.is_empty());
}

#[test]
fn runtime_types_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Runtime>();
    shared::<PluginHandle>();
    shared::<PluginSet>();
    shared::<nri::runtime::PluginListener>();
}
