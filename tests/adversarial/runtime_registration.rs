//! Plugins that register dishonestly or answer absurdly: a second
//! RegisterPlugin, names with control characters or a megabyte long, a
//! registration sharing its frame with other data, a Configure that never
//! comes back, event masks with every bit set, ten thousand failure
//! policies in one reply.

use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::plugin::{Spec, TestPlugin};
use crate::common::{request_envelope, ttrpc_frame};
use crate::runtime_support::*;
use nri::api::{
    ConfigureResponse, Empty, EventMask, FailurePolicy, RegisterPluginRequest, RUNTIME_SERVICE,
};
use nri::mux::RUNTIME_SERVICE_CONN;
use nri::runtime::{PluginSet, Runtime};
use nri::ttrpc::codec::TYPE_REQUEST;
use nri::ttrpc::Code;
use nri::Error;
use protobuf::Message;

#[test]
fn a_second_register_plugin_is_refused_and_the_plugin_keeps_its_name() {
    let rt = Runtime::builder().request_timeout(STEP).build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let plugin = TestPlugin::start(plugin_end, Spec::new("first", "10", EventMask::ALL));
    let handle = rt.accept_stream(rt_end).expect("registered");
    let set = PluginSet::new(&rt);
    set.add(handle).expect("added");

    let again = RegisterPluginRequest {
        plugin_name: "renamed".into(),
        plugin_idx: "99".into(),
        ..Default::default()
    };
    let r: nri::Result<Empty> =
        plugin
            .runtime
            .call(RUNTIME_SERVICE, "RegisterPlugin", &again, Some(STEP));
    match r {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::FailedPrecondition, "{message}");
            assert!(
                message.contains("10-first is already registered"),
                "{message}"
            );
        }
        other => panic!("a second registration got {other:?}"),
    }
    assert_eq!(set.names(), ["10-first"]);
    let h = set.get("10-first").expect("still in the set");
    assert_eq!(h.name(), "10-first");
    assert!(h.is_connected(), "the plugin is kept");
    let reply = set
        .create_container(&pod("p"), &ctr("c"))
        .expect("still relayed to");
    assert_eq!(
        reply.adjust.annotations.get("seen").map(String::as_str),
        Some("c")
    );
}

#[test]
fn a_refused_registration_names_what_was_sent() {
    let rt = Runtime::builder().registration_timeout(STEP).build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let mut plugin = ScriptedPlugin::new(plugin_end);
    plugin.send_register("evil\nname", "7", Duration::ZERO);
    match rt.accept_stream(rt_end) {
        Err(e @ Error::RegistrationRefused { .. }) => {
            let Error::RegistrationRefused { plugin, message } = &e else {
                unreachable!()
            };
            assert_eq!(plugin, "7-evil\nname");
            assert!(message.contains("invalid plugin index \"7\""), "{message}");
            assert!(!e.to_string().contains("??"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let (_, code, _) = plugin.next_reply("the refusal");
    assert_eq!(code, Code::Unknown);
    assert!(
        !plugin.closed_within(Duration::from_millis(100)),
        "a refused connection stays open until the plugin closes it"
    );
}

#[test]
fn a_megabyte_name_gets_resource_exhausted_without_being_held() {
    let rt = Runtime::builder()
        .registration_timeout(Duration::from_millis(500))
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let bytes = register_bytes(1, &"n".repeat(1 << 20), "10");
    let mut plugin = ScriptedPlugin::new(plugin_end);
    let writer = {
        let mut s = plugin.peer.stream.try_clone().expect("clone");
        thread::spawn(move || send_quietly(&mut s, &bytes))
    };
    let started = Instant::now();
    match rt.accept_stream(rt_end) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "RegisterPlugin"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    writer.join().expect("writer");
    let (_, code, message) = plugin.next_reply("the refusal of the oversized request");
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("16384-byte limit"), "{message}");
    assert!(plugin.closed_within(STEP));
}

#[test]
fn a_registration_sharing_its_trunk_frame_with_other_data_is_closed() {
    let rt = Runtime::builder().registration_timeout(STEP).build();
    let (rt_end, mut plugin_end) = UnixStream::pair().expect("socketpair");
    let reg = RegisterPluginRequest {
        plugin_name: "packed".into(),
        plugin_idx: "10".into(),
        ..Default::default()
    };
    let mut two = ttrpc_frame(
        1,
        TYPE_REQUEST,
        0,
        &request_envelope(
            RUNTIME_SERVICE,
            "RegisterPlugin",
            &reg.write_to_bytes().expect("encoding"),
            0,
        ),
    );
    two.extend(ttrpc_frame(
        3,
        TYPE_REQUEST,
        0,
        &request_envelope(RUNTIME_SERVICE, "UpdateContainers", &[], 0),
    ));
    send_quietly(
        &mut plugin_end,
        &crate::common::mux_frame(RUNTIME_SERVICE_CONN, &two),
    );
    match rt.accept_stream(rt_end) {
        Err(Error::Protocol(m)) => assert!(m.contains("shared its trunk frame"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(closed_by_peer(&mut plugin_end, STEP));
}

#[test]
fn a_plugin_that_never_answers_configure_fails_at_the_request_timeout() {
    let timeout = Duration::from_millis(500);
    let rt = Runtime::builder()
        .registration_timeout(STEP)
        .request_timeout(timeout)
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let threads0 = threads();
    let started = Instant::now();
    let accepting = thread::spawn(move || rt.accept_stream(rt_end));
    let mut plugin = ScriptedPlugin::new(plugin_end);
    plugin.send_register("mute", "10", Duration::ZERO);
    let (_, req) = plugin.next_request("Configure");
    assert_eq!(req.method, "Configure");
    match accepting.join().expect("accept") {
        Err(Error::DeadlineExceeded {
            method, timeout: t, ..
        }) => {
            assert_eq!(method, "Configure");
            assert_eq!(t, timeout);
        }
        other => panic!("{:?}", other.map(|h| h.name().to_string())),
    }
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert!(plugin.closed_within(STEP), "the connection was not closed");
    // The connection's workers are gone (other cases may run meanwhile:
    // the count may only be lower or equal in the end).
    let _ = settles(STEP, threads0, threads);
}

#[test]
fn absurd_event_masks_are_refused_naming_the_bits() {
    for bits in [-1i32, i32::MAX, 1 << 30] {
        let rt = Runtime::builder()
            .registration_timeout(STEP)
            .request_timeout(STEP)
            .build();
        let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
        let accepting = thread::spawn(move || rt.accept_stream(rt_end));
        let mut plugin = ScriptedPlugin::new(plugin_end);
        plugin.send_register("absurd", "10", Duration::ZERO);
        let (msg, _) = plugin.next_request("Configure");
        plugin.answer(
            &msg,
            &ConfigureResponse {
                events: bits,
                ..Default::default()
            },
        );
        match accepting.join().expect("accept") {
            Err(Error::Protocol(m)) => {
                assert!(m.contains("invalid plugin events"), "{m}");
                assert!(m.contains("unknown bits"), "{m}");
                assert!(m.contains("10-absurd"), "{m}");
            }
            other => panic!("{bits:#x}: {:?}", other.map(|h| h.name().to_string())),
        }
        assert!(plugin.closed_within(STEP));
    }
}

#[test]
fn ten_thousand_failure_policies_in_one_reply_are_read_in_bounded_time() {
    let rt = Runtime::builder()
        .registration_timeout(STEP)
        .request_timeout(STEP)
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let accepting = thread::spawn(move || rt.accept_stream(rt_end));
    let mut plugin = ScriptedPlugin::new(plugin_end);
    plugin.send_register("fickle", "10", Duration::ZERO);
    let (msg, _) = plugin.next_request("Configure");
    // events, then failure_policy (field 3) ten thousand times, toggling
    // which field is set. The protobuf crate keeps the last occurrence of
    // a message field (Go's decoder would merge them all, setting both).
    let mut reply = ConfigureResponse {
        events: EventMask::ALL.bits(),
        ..Default::default()
    }
    .write_to_bytes()
    .expect("encoding");
    for i in 0..10_000 {
        let p = FailurePolicy {
            fail_request: i % 2 == 0,
            keep_connected: i % 2 == 1,
            ..Default::default()
        }
        .write_to_bytes()
        .expect("encoding");
        reply.push(0x1a);
        reply.push(p.len() as u8);
        reply.extend(p);
    }
    let started = Instant::now();
    let data = crate::common::response_envelope(0, "", &reply);
    let frame = ttrpc_frame(
        msg.header.stream_id,
        nri::ttrpc::codec::TYPE_RESPONSE,
        0,
        &data,
    );
    plugin
        .peer
        .send_message_on(nri::mux::PLUGIN_SERVICE_CONN, &frame);
    let (sync, req) = plugin.next_request("Synchronize");
    assert_eq!(req.method, "Synchronize");
    plugin.answer(&sync, &nri::api::SynchronizeResponse::new());
    let handle = accepting.join().expect("accept").expect("accepted");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The last one: keep_connected alone.
    assert!(!handle.failure_policy().fail_request);
    assert!(handle.failure_policy().keep_connected);
    assert_eq!(handle.events(), EventMask::ALL);
}

#[test]
fn requests_before_registration_are_answered_and_the_plugin_still_registers() {
    let rt = Runtime::builder()
        .registration_timeout(STEP)
        .request_timeout(STEP)
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let accepting = thread::spawn(move || rt.accept_stream(rt_end));
    let mut plugin = ScriptedPlugin::new(plugin_end);
    let early = plugin.send_call(
        "UpdateContainers",
        &nri::api::UpdateContainersRequest::new(),
    );
    let (id, code, message) = plugin.next_reply("the early call's answer");
    assert_eq!(id, early);
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("must register first"), "{message}");
    plugin.register("late", "10", EventMask::ALL);
    let handle = accepting.join().expect("accept").expect("registered");
    assert_eq!(handle.name(), "10-late");
}
