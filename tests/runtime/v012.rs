//! What changed from NRI v0.9 to v0.12 that a plugin sees: versions in
//! registration and Configure, per-event RPCs and their StateChange
//! fallback, the pod update events.

use super::*;
use nri::api::{LinuxCPU, OptionalUInt64};

#[test]
fn nri_versions_travel_both_ways_per_emulated_version() {
    for (v, sent) in [
        (Emulation::V0_9_0, ""),
        (Emulation::V0_11_0, ""),
        (Emulation::V0_12_3, "v0.12.3"),
        (Emulation::V0_12_5, "v0.12.5"),
    ] {
        let rt = test_runtime().emulate(v).build();
        assert_eq!(rt.emulation(), v);
        let spec = Spec::new("ver", "10", Event::CREATE_CONTAINER.mask());
        let (h, p) = accept_pair(&rt, spec);
        let h = h.expect("accepted");
        let cfg = p.rec.configure.lock().unwrap().clone().unwrap();
        assert_eq!(cfg.NRI_version, sent, "{v}");
        assert_eq!(h.plugin_nri_version(), Some("v0.12.5"), "{v}");
    }
    let rt = test_runtime().build();
    let (h, _p) = accept_pair(&rt, Spec::new("old", "10", EventMask::V0_9_EVENTS).v0_9());
    assert_eq!(h.expect("accepted").plugin_nri_version(), None);
}

#[test]
fn a_v0_9_runtime_refuses_a_subscription_to_the_pod_update_events_naming_them() {
    let rt = test_runtime().emulate(Emulation::V0_9_0).build();
    let mask = Event::RUN_POD_SANDBOX.mask()
        | Event::UPDATE_POD_SANDBOX.mask()
        | Event::POST_UPDATE_POD_SANDBOX.mask();
    let (h, p) = accept_pair(&rt, Spec::new("ext", "10", mask));
    match h {
        Err(Error::Protocol(m)) => assert_eq!(
            m,
            "plugin 10-ext: invalid plugin events: 0x1800 (UpdatePodSandbox,PostUpdatePodSandbox); \
             a runtime on NRI v0.9.0 accepts only events within 0x7ff"
        ),
        other => panic!("expected the mask to be refused, got {other:?}"),
    }
    assert!(p.closed_within(STEP), "the plugin is closed");
    // The same plugin is welcome from v0.11 on.
    for v in [Emulation::V0_11_0, Emulation::V0_12_5] {
        let rt = test_runtime().emulate(v).build();
        let (h, _p) = accept_pair(&rt, Spec::new("ext", "10", mask));
        assert_eq!(h.expect("accepted").events(), mask);
    }
}

/// A plugin that serves StateChange but answers UNIMPLEMENTED to every
/// per-event RPC (and records each attempt).
fn state_change_only(name: &str) -> Spec {
    Spec::new(name, "10", EventMask::V0_9_EVENTS).before(|_, call| {
        let per_event = !call.starts_with("StateChange:")
            && !matches!(
                call,
                "CreateContainer" | "UpdateContainer" | "StopContainer"
            );
        if per_event {
            return Err(Status::new(Code::Unimplemented, format!("method {call}")));
        }
        Ok(())
    })
}

#[test]
fn unimplemented_per_event_rpcs_fall_back_to_state_change_once_per_connection() {
    let rt = test_runtime().build();
    let (p, c) = (pod("p"), ctr("c", "p"));
    for round in 0..2 {
        // A new connection tries the per-event RPC again, once.
        let (h, plugin) = accept_pair(&rt, state_change_only("old"));
        let h = h.expect("accepted");
        assert!(!h.state_change_fallback());
        h.run_pod_sandbox(&p).unwrap();
        assert!(h.state_change_fallback(), "round {round}");
        h.start_container(&p, &c).unwrap();
        h.remove_container(&p, &c).unwrap();
        h.stop_pod_sandbox(&p).unwrap();
        assert_eq!(
            plugin.rec.event_calls(),
            [
                "RunPodSandbox",
                "StateChange:RUN_POD_SANDBOX",
                "StateChange:START_CONTAINER",
                "StateChange:REMOVE_CONTAINER",
                "StateChange:STOP_POD_SANDBOX",
            ],
            "round {round}: one extra round trip for the whole connection"
        );
        assert!(h.is_connected());
    }
}

#[test]
fn a_real_v0_9_plugin_is_served_with_state_change_after_one_unimplemented() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let (h, plugin) = accept_pair(&rt, Spec::new("old", "10", EventMask::EMPTY).v0_9());
    set.add(h.expect("accepted")).unwrap();
    let got = set.get("10-old").unwrap();
    assert_eq!(
        got.events(),
        EventMask::ALL,
        "a v0.9 plugin's 0 mask reads as every v0.12 event"
    );
    set.post_create_container(&pod("p"), &ctr("c", "p"))
        .unwrap();
    set.post_update_pod_sandbox(&pod("p")).unwrap();
    assert!(got.state_change_fallback());
    assert_eq!(
        plugin.rec.event_calls(),
        [
            "StateChange:POST_CREATE_CONTAINER",
            "StateChange:POST_UPDATE_POD_SANDBOX"
        ]
    );
}

#[test]
fn before_v0_12_notifications_go_as_state_change_and_update_pod_sandbox_as_its_own_rpc() {
    let rt = test_runtime().emulate(Emulation::V0_11_0).build();
    let (h, plugin) = accept_pair(&rt, Spec::new("new", "10", EventMask::ALL));
    let h = h.expect("accepted");
    let p = pod("p");
    let res = LinuxResources::new();
    h.run_pod_sandbox(&p).unwrap();
    h.update_pod_sandbox(&p, &res, &res).unwrap();
    h.post_update_pod_sandbox(&p).unwrap();
    assert_eq!(
        plugin.rec.event_calls(),
        [
            "StateChange:RUN_POD_SANDBOX",
            "UpdatePodSandbox",
            "StateChange:POST_UPDATE_POD_SANDBOX"
        ]
    );
    assert!(!h.state_change_fallback());
}

#[test]
fn update_pod_sandbox_unimplemented_fails_naming_the_plugin_the_event_and_the_rule() {
    let rt = test_runtime().build();
    let mask = Event::UPDATE_POD_SANDBOX.mask() | Event::RUN_POD_SANDBOX.mask();
    let (h, _plugin) = accept_pair(&rt, Spec::new("old", "10", mask).v0_9());
    let h = h.expect("accepted");
    let res = LinuxResources::new();
    match h.update_pod_sandbox(&pod("p"), &res, &res) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unimplemented);
            assert!(
                message.contains("plugin 10-old subscribed to UpdatePodSandbox")
                    && message.contains("UpdatePodSandbox has no StateChange fallback"),
                "{message}"
            );
        }
        other => panic!("expected UNIMPLEMENTED, got {other:?}"),
    }
    assert!(h.is_connected(), "a status keeps the plugin");
    assert!(
        !h.state_change_fallback(),
        "no fallback is remembered for it"
    );
    h.run_pod_sandbox(&pod("p")).unwrap();
}

#[test]
fn pod_updates_reach_a_set_s_plugins_in_index_order_with_their_resources() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut plugins = Vec::new();
    for (name, idx) in [("b", "20"), ("a", "10"), ("c", "30")] {
        let o = order.clone();
        let n = format!("{idx}-{name}");
        let spec = Spec::new(name, idx, EventMask::POD_EVENTS).before(move |_, call| {
            o.lock().unwrap().push(format!("{n} {call}"));
            Ok(())
        });
        let (h, p) = accept_pair(&rt, spec);
        set.add(h.unwrap()).unwrap();
        plugins.push(p);
    }
    let overhead = LinuxResources {
        cpu: MessageField::some(LinuxCPU {
            shares: MessageField::some(OptionalUInt64 {
                value: 10,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut res = LinuxResources::new();
    res.cpu.mut_or_insert_default().cpus = "0-3".into();
    set.update_pod_sandbox(&pod("p"), &overhead, &res).unwrap();
    set.post_update_pod_sandbox(&pod("p")).unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        [
            "10-a UpdatePodSandbox",
            "20-b UpdatePodSandbox",
            "30-c UpdatePodSandbox",
            "10-a PostUpdatePodSandbox",
            "20-b PostUpdatePodSandbox",
            "30-c PostUpdatePodSandbox",
        ]
    );
    for p in &plugins {
        let got = p.rec.pod_updates.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].pod.id, "p");
        assert_eq!(got[0].overhead_linux_resources.cpu.shares.value, 10);
        assert_eq!(got[0].linux_resources.cpu.cpus, "0-3");
    }
}

#[test]
fn a_set_stops_update_pod_sandbox_at_a_plugin_that_does_not_implement_it() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let mask = Event::UPDATE_POD_SANDBOX.mask();
    let (ho, _po) = accept_pair(&rt, Spec::new("old", "10", mask).v0_9());
    let (hn, pn) = accept_pair(&rt, Spec::new("new", "20", mask));
    set.add(ho.unwrap()).unwrap();
    set.add(hn.unwrap()).unwrap();
    let res = LinuxResources::new();
    match set.update_pod_sandbox(&pod("p"), &res, &res) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unimplemented);
            assert!(message.contains("plugin 10-old"), "{message}");
        }
        other => panic!("expected UNIMPLEMENTED, got {other:?}"),
    }
    assert!(
        pn.rec.event_calls().is_empty(),
        "later plugins are not called"
    );
    assert_eq!(set.len(), 2);
}
