//! How a single plugin's replies and failures are judged.

use super::*;

#[test]
fn slow_handler_past_request_timeout_drops_plugin() {
    let rt = test_runtime()
        .request_timeout(Duration::from_millis(300))
        .build();
    let spec = Spec::new("slow", "10", EventMask::ALL).on_create(|_, _| {
        thread::sleep(Duration::from_millis(800));
        Ok(CreateContainerResponse::new())
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    let started = Instant::now();
    match handle.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "CreateContainer"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(700));
    assert!(!handle.is_connected());
    assert!(handle.drop_reason().unwrap().contains("CreateContainer"));

    // Later calls fail at once.
    let started = Instant::now();
    match handle.run_pod_sandbox(&pod("p")) {
        Err(Error::ConnectionClosed(message)) => assert!(message.contains("dropped"), "{message}"),
        other => panic!("expected a dropped plugin, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(
        plugin.closed_within(STEP),
        "the runtime closed the connection"
    );
    assert!(handle.wait_closed(STEP));
}

#[test]
fn error_status_fails_the_call_but_keeps_the_plugin() {
    let rt = test_runtime().build();
    let spec = Spec::new("picky", "10", EventMask::ALL).on_create(|_, req| {
        if req.container.id == "bad" {
            return Err(Status::new(Code::FailedPrecondition, "no room for bad"));
        }
        Ok(CreateContainerResponse::new())
    });
    let (handle, _plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    match handle.create_container(&pod("p"), &ctr("bad", "p")) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::FailedPrecondition);
            assert_eq!(message, "no room for bad");
        }
        other => panic!("expected the plugin's status, got {other:?}"),
    }
    assert!(handle.is_connected());
    handle
        .create_container(&pod("p"), &ctr("good", "p"))
        .expect("plugin still serves");
}

#[test]
fn plugin_closing_its_connection_is_observed() {
    let rt = test_runtime().build();
    let (handle, plugin) = accept_pair(&rt, Spec::new("leaver", "10", EventMask::ALL));
    let handle = handle.expect("plugin accepted");
    plugin.conn.close();
    assert!(handle.wait_closed(STEP));
    assert!(!handle.is_connected());
    assert!(handle.drop_reason().is_some());
    assert!(matches!(
        handle.run_pod_sandbox(&pod("p")),
        Err(Error::ConnectionClosed(_))
    ));
}
