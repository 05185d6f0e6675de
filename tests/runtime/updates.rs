//! Unsolicited UpdateContainers calls and the event lock.

use super::*;

#[test]
fn unsolicited_updates_reach_callback_and_failures_are_returned() {
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let r = received.clone();
    let rt = test_runtime()
        .on_update_containers(move |updates| {
            r.lock()
                .unwrap()
                .extend(updates.iter().map(|u| u.container_id.clone()));
            updates
                .iter()
                .filter(|u| u.container_id.starts_with("fail"))
                .cloned()
                .collect()
        })
        .build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("updater", "10", EventMask::ALL));
    let handle = handle.expect("plugin accepted");
    let reply = plugin
        .update_containers(vec![
            ContainerUpdate::for_container("ok-1"),
            ContainerUpdate::for_container("fail-1"),
        ])
        .expect("UpdateContainers");
    let failed: Vec<_> = reply
        .failed
        .iter()
        .map(|u| u.container_id.as_str())
        .collect();
    assert_eq!(failed, ["fail-1"]);
    assert_eq!(*received.lock().unwrap(), ["ok-1", "fail-1"]);
    let recorded = handle.wait_unsolicited_updates(2, STEP);
    let ids: Vec<_> = recorded.iter().map(|u| u.container_id.as_str()).collect();
    assert_eq!(ids, ["ok-1", "fail-1"]);
    assert_eq!(handle.unsolicited_updates().len(), 2);
    let taken = handle.take_unsolicited_updates();
    assert_eq!(taken.len(), 2);
    assert!(
        handle.unsolicited_updates().is_empty(),
        "taking empties the record"
    );
}

#[test]
fn the_record_of_unsolicited_updates_keeps_only_the_latest() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("updater", "10", EventMask::ALL));
    let handle = handle.expect("plugin accepted");
    let max = nri::runtime::MAX_RECORDED_UPDATES;
    // Two calls that together go 5 over the bound.
    for range in [0..max - 10, max - 10..max + 5] {
        let batch = range
            .map(|i| ContainerUpdate::for_container(format!("c{i}")))
            .collect();
        plugin.update_containers(batch).expect("UpdateContainers");
    }
    let recorded = handle.wait_unsolicited_updates(max, STEP);
    assert_eq!(recorded.len(), max);
    assert_eq!(recorded[0].container_id, "c5", "the 5 oldest were dropped");
    assert_eq!(recorded[max - 1].container_id, format!("c{}", max + 4));
    assert_eq!(handle.take_unsolicited_updates().len(), max);
    assert!(handle.unsolicited_updates().is_empty());
}

/// A CreateContainer handler that calls UpdateContainers and waits for the
/// reply before answering.
fn updating_in_handler(name: &str) -> Spec {
    Spec::new(name, "10", EventMask::V0_9_EVENTS).on_create(|p, req| {
        let updates = UpdateContainersRequest {
            update: vec![ContainerUpdate::for_container("other")],
            ..Default::default()
        };
        p.runtime
            .call::<_, UpdateContainersResponse>(
                RUNTIME_SERVICE,
                "UpdateContainers",
                &updates,
                Some(STEP),
            )
            .map_err(Status::from)?;
        let mut adjust = ContainerAdjustment::new();
        adjust
            .annotations
            .insert("seen".into(), req.container.id.clone());
        Ok(CreateContainerResponse {
            adjust: MessageField::some(adjust),
            ..Default::default()
        })
    })
}

#[test]
fn update_containers_inside_a_handler_deadlocks_until_timeout_like_v0_9_0() {
    let rt = test_runtime()
        .emulate(Emulation::V0_9_0)
        .request_timeout(Duration::from_millis(300))
        .build();
    assert!(rt.blocks_updates_during_events());
    let (handle, plugin) = accept_pair(&rt, updating_in_handler("deadlock"));
    let handle = handle.expect("plugin accepted");
    let started = Instant::now();
    match handle.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::DeadlineExceeded { .. }) => {}
        other => panic!("expected the v0.9.0 deadlock to end in a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!handle.is_connected(), "the plugin is dropped");
    assert!(plugin.closed_within(STEP));
}

#[test]
fn updates_wait_for_events_up_to_v0_12_0_and_not_from_v0_12_1() {
    for (v, blocks) in [
        (Emulation::V0_9_0, true),
        (Emulation::V0_10_0, true),
        (Emulation::V0_11_0, true),
        (Emulation::V0_12_0, true),
        (Emulation::V0_12_1, false),
        (Emulation::V0_12_3, false),
        (Emulation::V0_12_4, false),
        (Emulation::V0_12_5, false),
    ] {
        let rt = test_runtime().emulate(v).build();
        assert_eq!(rt.blocks_updates_during_events(), blocks, "{v}");
    }
    // And v0.12.0 deadlocks a plugin updating from inside its handler.
    let rt = test_runtime()
        .emulate(Emulation::V0_12_0)
        .request_timeout(Duration::from_millis(300))
        .build();
    let (handle, _plugin) = accept_pair(&rt, updating_in_handler("deadlock"));
    let handle = handle.expect("plugin accepted");
    match handle.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::DeadlineExceeded { .. }) => {}
        other => panic!("expected the v0.12.0 deadlock to end in a timeout, got {other:?}"),
    }
}

#[test]
fn update_containers_inside_a_handler_works_from_v0_12_and_when_updates_do_not_block() {
    let v0_12 = test_runtime().request_timeout(Duration::from_millis(1000));
    let unblocked = test_runtime()
        .emulate(Emulation::V0_9_0)
        .request_timeout(Duration::from_millis(1000))
        .block_updates_during_events(false);
    for rt in [v0_12.build(), unblocked.build()] {
        assert!(!rt.blocks_updates_during_events());
        let (handle, _plugin) = accept_pair(&rt, updating_in_handler("nolock"));
        let handle = handle.expect("plugin accepted");
        let reply = handle
            .create_container(&pod("p"), &ctr("c", "p"))
            .expect("CreateContainer");
        assert_eq!(
            reply.adjust.annotations.get("seen").map(String::as_str),
            Some("c")
        );
        assert_eq!(handle.unsolicited_updates().len(), 1);
        assert!(handle.is_connected());
    }
}

#[test]
fn update_containers_after_the_reply_waits_for_the_event_then_succeeds() {
    // The safe pattern: reply first, then send the updates (here from a
    // thread the handler starts, which sends while the event is in flight).
    let rt = test_runtime()
        .emulate(Emulation::V0_9_0)
        .request_timeout(Duration::from_millis(1000))
        .build();
    let done = Arc::new(Mutex::new(None));
    let d = done.clone();
    let spec = Spec::new("polite", "10", EventMask::V0_9_EVENTS).on_create(move |p, _| {
        let runtime = p.runtime.clone();
        let d = d.clone();
        thread::spawn(move || {
            let req = UpdateContainersRequest {
                update: vec![ContainerUpdate::for_container("later")],
                ..Default::default()
            };
            let r = runtime.call::<_, UpdateContainersResponse>(
                RUNTIME_SERVICE,
                "UpdateContainers",
                &req,
                Some(STEP),
            );
            *d.lock().unwrap() = Some(r.is_ok());
        });
        thread::sleep(Duration::from_millis(100));
        Ok(CreateContainerResponse::new())
    });
    let (handle, _plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    handle
        .create_container(&pod("p"), &ctr("c", "p"))
        .expect("CreateContainer");
    assert_eq!(handle.wait_unsolicited_updates(1, STEP).len(), 1);
    assert!(handle.is_connected());
    let deadline = Instant::now() + STEP;
    while done.lock().unwrap().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*done.lock().unwrap(), Some(true));
}
