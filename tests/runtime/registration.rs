//! Registration, Configure and subscriptions.

use super::*;

#[test]
fn registers_configures_and_synchronizes_over_socket_pair() {
    let rt = test_runtime()
        .registration_timeout(Duration::from_millis(1500))
        .request_timeout(Duration::from_millis(700))
        .plugin_config("test", "by base name")
        .plugin_config("05-test", "by full name")
        .build();
    rt.set_state(
        vec![pod("pod-a"), pod("pod-b")],
        vec![ctr("c1", "pod-a"), ctr("c2", "pod-a"), ctr("c3", "pod-b")],
    );
    let events = EventMask::from_events(&[Event::CREATE_CONTAINER, Event::START_CONTAINER]);
    let spec = Spec::new("test", "05", events).on_sync(|_, req| {
        Ok(SynchronizeResponse {
            update: req
                .containers
                .iter()
                .take(1)
                .map(|c| ContainerUpdate::for_container(&c.id))
                .collect(),
            more: req.more,
            ..Default::default()
        })
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    plugin.registration().expect("registration accepted");

    assert_eq!(handle.name(), "05-test");
    assert_eq!(handle.index(), "05");
    assert_eq!(handle.base_name(), "test");
    assert_eq!(handle.events(), events);
    assert!(!handle.is_launched());
    assert!(handle.is_connected());

    let cfg = plugin
        .rec
        .configure
        .lock()
        .unwrap()
        .clone()
        .expect("Configure received");
    assert_eq!(cfg.config, "by full name");
    assert_eq!(cfg.runtime_name, "test-runtime");
    assert_eq!(cfg.runtime_version, "9.9.9");
    assert_eq!(cfg.registration_timeout, 1500);
    assert_eq!(cfg.request_timeout, 700);
    assert_eq!(cfg.NRI_version, "v0.12.5", "the emulated version is sent");
    assert_eq!(handle.plugin_nri_version(), Some("v0.12.5"));
    assert_eq!(handle.emulation(), Emulation::V0_12_5);

    assert_eq!(*plugin.rec.sync_chunks.lock().unwrap(), vec![(2, 3, false)]);
    assert_eq!(plugin.rec.calls(), vec!["Configure", "Synchronize"]);
    let ids: Vec<_> = handle
        .sync_updates()
        .iter()
        .map(|u| u.container_id.clone())
        .collect();
    assert_eq!(ids, vec!["c1"]);

    let reply = handle
        .create_container(&pod("pod-a"), &ctr("c4", "pod-a"))
        .expect("CreateContainer");
    assert_eq!(
        reply.adjust.annotations.get("seen").map(String::as_str),
        Some("c4")
    );
}

#[test]
fn external_plugin_config_falls_back_to_base_name() {
    let rt = test_runtime().plugin_config("logger", "base").build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("logger", "10", EventMask::ALL));
    let _handle = handle.expect("plugin accepted");
    let cfg = plugin
        .rec
        .configure
        .lock()
        .unwrap()
        .clone()
        .expect("Configure received");
    assert_eq!(cfg.config, "base");
}

#[test]
fn registers_over_socket_path() {
    let dir = temp_dir("listen");
    let path = dir.join("sub").join("nri.sock");
    let rt = test_runtime().build();
    let listener = rt.listen(&path).expect("listen");
    assert_eq!(listener.path(), path.as_path());
    let mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "socket directory is created with mode 0700"
    );

    let stream = UnixStream::connect(&path).expect("dial the runtime socket");
    let plugin = TestPlugin::start(stream, Spec::new("dialer", "20", EventMask::ALL));
    let handle = listener.accept().expect("plugin accepted");
    plugin.registration().expect("registration accepted");
    assert_eq!(handle.name(), "20-dialer");
    assert_eq!(handle.events(), EventMask::ALL);

    // Nobody else dials: a bounded accept gives up.
    let started = Instant::now();
    match listener.accept_timeout(Duration::from_millis(100)) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "accept"),
        other => panic!("expected an accept timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    let stream = UnixStream::connect(&path).expect("dial the runtime socket again");
    let _second = TestPlugin::start(stream, Spec::new("second", "21", EventMask::ALL));
    let handle2 = listener
        .accept_timeout(STEP)
        .expect("second plugin accepted");
    assert_eq!(handle2.name(), "21-second");
    assert!(handle2.is_connected());

    drop(listener);
    assert!(!path.exists(), "socket file removed with the listener");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_index_gets_unknown_error_and_connection_stays_open() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("badidx", "7", EventMask::ALL));
    match handle {
        Err(Error::RegistrationRefused { message, .. }) => {
            assert!(message.contains("\"7\""), "{message}")
        }
        other => panic!("expected RegistrationRefused, got {other:?}"),
    }
    match plugin.registration() {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unknown);
            assert!(
                message.contains("invalid plugin index") && message.contains("\"7\""),
                "{message}"
            );
        }
        other => panic!("expected an UNKNOWN status, got {other:?}"),
    }
    // The runtime does not close the connection itself.
    assert!(!plugin.closed_within(Duration::from_millis(300)));
    assert!(
        plugin.rec.calls().is_empty(),
        "no Configure after a refusal"
    );
    // ... but it does when it goes away.
    drop(rt);
    assert!(plugin.closed_within(STEP));
}

#[test]
fn refused_empty_name_gets_unknown_error() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("", "10", EventMask::ALL));
    assert!(
        matches!(handle, Err(Error::RegistrationRefused { .. })),
        "{handle:?}"
    );
    match plugin.registration() {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unknown);
            assert!(message.contains("empty"), "{message}");
        }
        other => panic!("expected an UNKNOWN status, got {other:?}"),
    }
    assert!(!plugin.closed_within(Duration::from_millis(200)));
}

#[test]
fn plugin_that_never_registers_times_out_and_is_closed() {
    let rt = test_runtime()
        .registration_timeout(Duration::from_millis(300))
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().unwrap();
    let plugin = TestPlugin::start_with(plugin_end, Spec::new("mute", "10", EventMask::ALL), false);
    let started = Instant::now();
    match rt.accept_stream(rt_end) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "RegisterPlugin"),
        other => panic!("expected a registration timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(plugin.closed_within(STEP));
}

/// Sends every event of a lifecycle to `handle` and returns nothing: what
/// arrived is in the plugin's record.
fn whole_lifecycle(handle: &PluginHandle, with_pod_updates: bool) {
    let (p, c) = (pod("p"), ctr("c", "p"));
    handle.run_pod_sandbox(&p).unwrap();
    if with_pod_updates {
        let res = LinuxResources::new();
        handle.update_pod_sandbox(&p, &res, &res).unwrap();
        handle.post_update_pod_sandbox(&p).unwrap();
    }
    handle.create_container(&p, &c).unwrap();
    handle.post_create_container(&p, &c).unwrap();
    handle.start_container(&p, &c).unwrap();
    handle.post_start_container(&p, &c).unwrap();
    handle
        .update_container(&p, &c, &LinuxResources::new())
        .unwrap();
    handle.post_update_container(&p, &c).unwrap();
    handle.stop_container(&p, &c).unwrap();
    handle.remove_container(&p, &c).unwrap();
    handle.stop_pod_sandbox(&p).unwrap();
    handle.remove_pod_sandbox(&p).unwrap();
}

#[test]
fn zero_event_mask_subscribes_to_every_event_of_the_emulated_version() {
    // v0.9.0: eleven events, notifications as StateChange.
    let rt = test_runtime().emulate(Emulation::V0_9_0).build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("all", "10", EventMask::EMPTY).v0_9());
    let handle = handle.expect("plugin accepted");
    assert_eq!(handle.events(), EventMask::V0_9_EVENTS);
    whole_lifecycle(&handle, false);
    assert_eq!(
        plugin.rec.event_calls(),
        [
            "StateChange:RUN_POD_SANDBOX",
            "CreateContainer",
            "StateChange:POST_CREATE_CONTAINER",
            "StateChange:START_CONTAINER",
            "StateChange:POST_START_CONTAINER",
            "UpdateContainer",
            "StateChange:POST_UPDATE_CONTAINER",
            "StopContainer",
            "StateChange:REMOVE_CONTAINER",
            "StateChange:STOP_POD_SANDBOX",
            "StateChange:REMOVE_POD_SANDBOX",
        ]
    );
    assert!(!handle.state_change_fallback());

    // v0.12.5: fourteen events, each notification as its own RPC.
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("all", "10", EventMask::EMPTY));
    let handle = handle.expect("plugin accepted");
    assert_eq!(handle.events(), EventMask::ALL);
    whole_lifecycle(&handle, true);
    assert_eq!(
        plugin.rec.event_calls(),
        [
            "RunPodSandbox",
            "UpdatePodSandbox",
            "PostUpdatePodSandbox",
            "CreateContainer",
            "PostCreateContainer",
            "StartContainer",
            "PostStartContainer",
            "UpdateContainer",
            "PostUpdateContainer",
            "StopContainer",
            "RemoveContainer",
            "StopPodSandbox",
            "RemovePodSandbox",
        ]
    );
    let ids: Vec<_> = plugin.rec.events.lock().unwrap().clone();
    assert_eq!(ids[0], ("RunPodSandbox".into(), "p".into(), "-".into()));
    assert_eq!(
        ids[4],
        ("PostCreateContainer".into(), "p".into(), "c".into())
    );
    assert!(!handle.state_change_fallback());
}

#[test]
fn an_event_the_plugin_did_not_subscribe_to_is_reported_not_sent() {
    let rt = test_runtime().build();
    let events = EventMask::from_events(&[Event::CREATE_CONTAINER, Event::REMOVE_CONTAINER]);
    let (handle, plugin) = accept_pair(&rt, Spec::new("few", "10", events));
    let handle = handle.expect("plugin accepted");
    let (p, c) = (pod("p"), ctr("c", "p"));
    let not_sent = |what: &str, r: nri::Result<()>| match r {
        Err(Error::State(message)) => {
            assert!(
                message.contains("10-few")
                    && message.contains(&format!("not subscribed to {what}"))
                    && message.contains("CreateContainer,RemoveContainer")
                    && message.contains("not sent"),
                "{message}"
            );
        }
        other => panic!("{what}: expected a not-subscribed error, got {other:?}"),
    };
    not_sent("RunPodSandbox", handle.run_pod_sandbox(&p));
    not_sent("StartContainer", handle.start_container(&p, &c));
    not_sent(
        "UpdateContainer",
        handle
            .update_container(&p, &c, &LinuxResources::new())
            .map(|_| ()),
    );
    not_sent("StopContainer", handle.stop_container(&p, &c).map(|_| ()));
    not_sent(
        "UpdatePodSandbox",
        handle.update_pod_sandbox(&p, &LinuxResources::new(), &LinuxResources::new()),
    );
    not_sent(
        "ValidateContainerAdjustment",
        handle
            .validate_container_adjustment(&Default::default())
            .map(|_| ()),
    );
    handle.create_container(&p, &c).unwrap();
    handle.remove_container(&p, &c).unwrap();
    // Shutdown needs no subscription.
    handle.shutdown().unwrap();
    assert_eq!(
        plugin.rec.event_calls(),
        ["CreateContainer", "RemoveContainer", "Shutdown"]
    );
    assert!(!handle.is_subscribed(Event::START_CONTAINER));
    assert!(handle.is_connected(), "an unsent request drops nothing");
    // Request events are refused as notifications.
    assert!(matches!(
        handle.state_change(Event::CREATE_CONTAINER, &p, Some(&c)),
        Err(Error::Config(_))
    ));

    // Under v0.9.0 the message also says the event does not exist there.
    let rt = test_runtime().emulate(Emulation::V0_9_0).build();
    let (handle, _plugin) = accept_pair(&rt, Spec::new("old", "10", events).v0_9());
    let handle = handle.expect("plugin accepted");
    match handle.post_update_pod_sandbox(&p) {
        Err(Error::State(m)) => assert!(
            m.contains("runtime on NRI v0.9.0 does not have this event"),
            "{m}"
        ),
        other => panic!("expected a not-subscribed error, got {other:?}"),
    }
}

#[test]
fn a_create_container_reply_without_and_with_an_empty_adjustment_compare_equal_to_default() {
    let rt = test_runtime().build();
    let events = Event::CREATE_CONTAINER.mask();
    let (p, c) = (pod("p"), ctr("c", "p"));
    let absent =
        Spec::new("absent", "10", events).on_create(|_, _| Ok(CreateContainerResponse::new()));
    let empty = Spec::new("empty", "11", events).on_create(|_, _| {
        Ok(CreateContainerResponse {
            adjust: MessageField::some(ContainerAdjustment::new()),
            ..Default::default()
        })
    });
    for spec in [absent, empty] {
        let (handle, _plugin) = accept_pair(&rt, spec);
        let reply = handle.expect("accepted").create_container(&p, &c).unwrap();
        assert_eq!(reply.adjust, Default::default());
        assert!(reply.is_empty());
    }
    // And one that adjusts something does not.
    let (handle, _plugin) = accept_pair(&rt, Spec::new("some", "12", events));
    let reply = handle.expect("accepted").create_container(&p, &c).unwrap();
    assert_ne!(reply.adjust, Default::default());
    assert_eq!(reply.adjust.annotations["seen"], "c");
}

#[test]
fn invalid_event_mask_is_refused_and_plugin_closed() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(
        &rt,
        Spec::new("bits", "10", EventMask::from_bits(1 << 14 | 1)),
    );
    match handle {
        Err(Error::Protocol(message)) => assert!(message.contains("0x4000"), "{message}"),
        other => panic!("expected an invalid-mask error, got {other:?}"),
    }
    assert!(plugin.closed_within(STEP));
}

#[test]
fn configure_error_fails_accept_and_closes_plugin() {
    let rt = test_runtime().build();
    let spec = Spec::new("nocfg", "10", EventMask::ALL)
        .on_configure(|_, _| Err(Status::new(Code::InvalidArgument, "bad config")));
    let (handle, plugin) = accept_pair(&rt, spec);
    match handle {
        Err(Error::Status { code, method, .. }) => {
            assert_eq!(code, Code::InvalidArgument);
            assert_eq!(method, "Configure");
        }
        other => panic!("expected Configure's status, got {other:?}"),
    }
    assert!(plugin.closed_within(STEP));
}
