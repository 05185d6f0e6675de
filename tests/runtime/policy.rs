//! Failure policies (NRI v0.12.4): for a plugin that times out or loses its
//! connection, whether the request fails and whether the plugin stays, one
//! test per combination, each with a second plugin after it; and what
//! happens to a plugin that closed before its turn (skipped from v0.12.5).

use super::*;

/// How the plugin under test fails on RunPodSandbox.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// It answers after the request timeout.
    Timeout,
    /// It closes its connection while handling the request.
    ConnectionLost,
}

const TIMEOUT: Duration = Duration::from_millis(300);

struct Outcome {
    /// The set's RunPodSandbox result.
    result: nri::Result<()>,
    /// Whether the plugin under test is still connected and in the set.
    kept: bool,
    /// Whether the next plugin got the request.
    next_called: bool,
    set: PluginSet,
    _plugins: (TestPlugin, TestPlugin),
}

/// `00-x` with `policy` fails RunPodSandbox as `failure`; `10-next` is
/// well behaved.
fn run(fail_request: bool, keep_connected: bool, failure: Failure) -> Outcome {
    let rt = test_runtime().request_timeout(TIMEOUT).build();
    let set = PluginSet::new(&rt);
    let x = Spec::new("x", "00", EventMask::ALL)
        .policy(fail_request, keep_connected)
        .before(move |p, call| {
            if call == "RunPodSandbox" {
                match failure {
                    Failure::Timeout => thread::sleep(TIMEOUT * 2),
                    Failure::ConnectionLost => p.conn.close(),
                }
            }
            Ok(())
        });
    let (hx, px) = accept_pair(&rt, x);
    let (hn, pn) = accept_pair(&rt, Spec::new("next", "10", EventMask::ALL));
    let hx = hx.expect("x accepted");
    assert_eq!(hx.failure_policy().fail_request, fail_request);
    assert_eq!(hx.failure_policy().keep_connected, keep_connected);
    set.add(hx).unwrap();
    set.add(hn.expect("next accepted")).unwrap();
    let started = Instant::now();
    let result = set.run_pod_sandbox(&pod("p"));
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_millis(500),
        "the relay waited {:?}",
        started.elapsed()
    );
    let kept = set.get("00-x").is_some_and(|h| h.is_connected());
    let next_called = pn.rec.calls().contains(&"RunPodSandbox".to_string());
    Outcome {
        result,
        kept,
        next_called,
        set,
        _plugins: (px, pn),
    }
}

/// The request failed with an error naming the plugin and the event.
fn assert_failed(o: &Outcome, cause: &str) {
    match &o.result {
        Err(Error::Handler(m)) => assert!(
            m.contains("plugin 00-x failed to handle RunPodSandbox request") && m.contains(cause),
            "{m}"
        ),
        other => panic!("expected the request to fail, got {other:?}"),
    }
    assert!(!o.next_called, "the next plugin is not called");
}

fn assert_proceeded(o: &Outcome) {
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert!(o.next_called, "the next plugin is called");
}

/// The kept plugin serves the next request.
fn assert_serves_again(o: &Outcome) {
    assert!(o.kept, "the plugin stays connected");
    assert_eq!(o.set.names(), ["00-x", "10-next"]);
    thread::sleep(TIMEOUT); // let its slow handler finish
    o.set
        .stop_pod_sandbox(&pod("p"))
        .expect("the kept plugin serves the next request");
}

fn assert_dropped(o: &Outcome) {
    assert!(!o.kept, "the plugin is dropped");
    assert_eq!(o.set.names(), ["10-next"]);
}

#[test]
fn no_policy_timeout_drops_the_plugin_and_the_request_proceeds() {
    let o = run(false, false, Failure::Timeout);
    assert_proceeded(&o);
    assert_dropped(&o);
}

#[test]
fn fail_request_timeout_fails_the_request_and_drops_the_plugin() {
    let o = run(true, false, Failure::Timeout);
    assert_failed(&o, "got no reply from plugin \"00-x\" within 300ms");
    assert_dropped(&o);
}

#[test]
fn keep_connected_timeout_keeps_the_plugin_and_the_request_proceeds() {
    let o = run(false, true, Failure::Timeout);
    assert_proceeded(&o);
    assert_serves_again(&o);
}

#[test]
fn fail_request_keep_connected_timeout_fails_the_request_and_keeps_the_plugin() {
    let o = run(true, true, Failure::Timeout);
    assert_failed(&o, "got no reply from plugin \"00-x\" within 300ms");
    assert_serves_again(&o);
}

#[test]
fn no_policy_lost_connection_drops_the_plugin_and_the_request_proceeds() {
    let o = run(false, false, Failure::ConnectionLost);
    assert_proceeded(&o);
    assert_dropped(&o);
}

#[test]
fn fail_request_lost_connection_fails_the_request_and_drops_the_plugin() {
    let o = run(true, false, Failure::ConnectionLost);
    assert_failed(&o, "connection closed");
    assert_dropped(&o);
}

#[test]
fn keep_connected_lost_connection_still_drops_the_plugin_and_the_request_proceeds() {
    let o = run(false, true, Failure::ConnectionLost);
    assert_proceeded(&o);
    assert_dropped(&o);
}

#[test]
fn fail_request_keep_connected_lost_connection_fails_the_request_and_drops_the_plugin() {
    let o = run(true, true, Failure::ConnectionLost);
    assert_failed(&o, "connection closed");
    assert_dropped(&o);
}

#[test]
fn a_status_from_the_plugin_fails_the_request_whatever_the_policy() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let x = Spec::new("x", "00", EventMask::ALL)
        .policy(false, false)
        .before(|_, _| Err(Status::new(Code::Unavailable, "busy")));
    let (hx, _px) = accept_pair(&rt, x);
    set.add(hx.unwrap()).unwrap();
    match set.run_pod_sandbox(&pod("p")) {
        Err(Error::Status { code, message, .. }) => {
            assert_eq!(code, Code::Unavailable);
            assert_eq!(message, "busy");
        }
        other => panic!("expected the plugin's status, got {other:?}"),
    }
    assert_eq!(set.names(), ["00-x"], "a status drops nothing");
}

#[test]
fn v0_12_4_honours_the_policy() {
    let rt = test_runtime()
        .emulate(Emulation::V0_12_4)
        .request_timeout(TIMEOUT)
        .build();
    let set = PluginSet::new(&rt);
    let x = Spec::new("x", "00", EventMask::ALL)
        .policy(true, false)
        .before(|_, call| {
            if call == "RunPodSandbox" {
                thread::sleep(TIMEOUT * 2);
            }
            Ok(())
        });
    let (hx, _px) = accept_pair(&rt, x);
    let hx = hx.unwrap();
    assert!(hx.failure_policy().fail_request);
    set.add(hx).unwrap();
    match set.run_pod_sandbox(&pod("p")) {
        Err(Error::Handler(m)) => {
            assert!(
                m.contains("plugin 00-x failed to handle RunPodSandbox"),
                "{m}"
            )
        }
        other => panic!("expected the policy to fail the request, got {other:?}"),
    }
}

#[test]
fn before_v0_12_5_a_plugin_that_disconnected_while_idle_is_still_relayed_to() {
    // v0.12.4: relayed to, it fails on the closed connection, and
    // fail_request fails the request; the plugin is removed after it.
    let rt = test_runtime().emulate(Emulation::V0_12_4).build();
    let set = PluginSet::new(&rt);
    let (hx, px) = accept_pair(
        &rt,
        Spec::new("gone", "00", EventMask::ALL).policy(true, false),
    );
    let (hn, pn) = accept_pair(&rt, Spec::new("next", "10", EventMask::ALL));
    set.add(hx.unwrap()).unwrap();
    set.add(hn.unwrap()).unwrap();
    px.conn.close();
    assert!(set.get("00-gone").unwrap().wait_closed(STEP));
    match set.run_pod_sandbox(&pod("p")) {
        Err(Error::Handler(m)) => {
            assert!(
                m.contains("plugin 00-gone failed to handle RunPodSandbox"),
                "{m}"
            )
        }
        other => panic!("expected the closed plugin to fail the request, got {other:?}"),
    }
    assert!(!pn.rec.calls().contains(&"RunPodSandbox".to_string()));
    assert_eq!(
        set.names(),
        ["10-next"],
        "removed at the end of the request"
    );
    set.run_pod_sandbox(&pod("p"))
        .expect("the next request succeeds");
}

#[test]
fn before_v0_12_5_a_closed_validator_fails_the_next_creation_once() {
    for (v, fails) in [
        (Emulation::V0_10_0, true),
        (Emulation::V0_12_3, true),
        (Emulation::V0_12_4, true),
        (Emulation::V0_12_5, false),
    ] {
        let rt = test_runtime().emulate(v).build();
        let set = PluginSet::new(&rt);
        let mask = Event::VALIDATE_CONTAINER_ADJUSTMENT.mask();
        let (hv, pv) = accept_pair(&rt, Spec::new("val", "30", mask));
        set.add(hv.unwrap()).unwrap();
        pv.conn.close();
        assert!(set.get("30-val").unwrap().wait_closed(STEP), "{v}");
        let created = set.create_container(&pod("p"), &ctr("c", "p"));
        match (created, fails) {
            (Err(Error::Handler(m)), true) => {
                assert!(m.contains("validator plugin 30-val failed"), "{v}: {m}")
            }
            (Ok(_), false) => {}
            (other, _) => panic!("{v}: unexpected {other:?}"),
        }
        assert!(set.is_empty(), "{v}: the closed validator is removed");
        set.create_container(&pod("p"), &ctr("c2", "p"))
            .unwrap_or_else(|e| panic!("{v}: the next creation succeeds: {e}"));
    }
}

#[test]
fn runtimes_before_v0_12_4_ignore_the_policy() {
    let rt = test_runtime()
        .emulate(Emulation::V0_12_3)
        .request_timeout(TIMEOUT)
        .build();
    let set = PluginSet::new(&rt);
    let x = Spec::new("x", "00", EventMask::ALL)
        .policy(true, true)
        .before(|_, call| {
            if call == "RunPodSandbox" {
                thread::sleep(TIMEOUT * 2);
            }
            Ok(())
        });
    let (hx, _px) = accept_pair(&rt, x);
    let hx = hx.unwrap();
    assert!(!hx.failure_policy().fail_request && !hx.failure_policy().keep_connected);
    set.add(hx).unwrap();
    set.run_pod_sandbox(&pod("p"))
        .expect("without policies a timeout lets the request proceed");
    assert!(set.is_empty(), "and drops the plugin");
}

#[test]
fn a_handle_keeps_a_keep_connected_plugin_after_a_timeout_and_reports_the_timeout() {
    let rt = test_runtime().request_timeout(TIMEOUT).build();
    let x = Spec::new("x", "00", EventMask::ALL)
        .policy(false, true)
        .before(|_, call| {
            if call == "StartContainer" {
                thread::sleep(TIMEOUT * 2);
            }
            Ok(())
        });
    let (h, _px) = accept_pair(&rt, x);
    let h = h.unwrap();
    match h.start_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::DeadlineExceeded { method, .. }) => assert_eq!(method, "StartContainer"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(h.is_connected());
    h.run_pod_sandbox(&pod("p")).expect("still served");
}

#[test]
fn a_plugin_that_disconnected_while_idle_is_skipped_even_with_fail_request() {
    let rt = test_runtime().build();
    let set = PluginSet::new(&rt);
    let (hx, px) = accept_pair(
        &rt,
        Spec::new("gone", "00", EventMask::ALL).policy(true, true),
    );
    let (hn, pn) = accept_pair(&rt, Spec::new("next", "10", EventMask::ALL));
    set.add(hx.unwrap()).unwrap();
    set.add(hn.unwrap()).unwrap();
    px.conn.close();
    assert!(set.get("00-gone").unwrap().wait_closed(STEP));
    set.run_pod_sandbox(&pod("p"))
        .expect("a plugin gone before its turn does not fail the request");
    assert!(pn.rec.calls().contains(&"RunPodSandbox".to_string()));
    assert_eq!(set.names(), ["10-next"]);
}

#[test]
fn a_keep_connected_validator_that_times_out_fails_the_creation_and_stays() {
    let rt = test_runtime().request_timeout(TIMEOUT).build();
    let set = PluginSet::new(&rt);
    let v = Spec::new("v", "00", Event::VALIDATE_CONTAINER_ADJUSTMENT.mask())
        .policy(false, true)
        .before(|_, call| {
            if call == "ValidateContainerAdjustment" {
                thread::sleep(TIMEOUT * 2);
            }
            Ok(())
        });
    let (hv, _pv) = accept_pair(&rt, v);
    set.add(hv.unwrap()).unwrap();
    match set.create_container(&pod("p"), &ctr("c", "p")) {
        Err(Error::Handler(m)) => {
            assert!(
                m.contains("validator plugin 00-v failed") && m.contains("no reply"),
                "{m}"
            )
        }
        other => panic!("expected the validation to fail, got {other:?}"),
    }
    assert_eq!(set.names(), ["00-v"], "keep_connected keeps the validator");
}
