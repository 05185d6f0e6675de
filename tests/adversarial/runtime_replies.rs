//! Plugins whose replies are small on the wire and huge once decoded.

use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{response_envelope, ttrpc_frame};
use crate::runtime_support::*;
use nri::api::{Event, EventMask};
use nri::mux::PLUGIN_SERVICE_CONN;
use nri::runtime::Runtime;
use nri::ttrpc::codec::TYPE_RESPONSE;
use nri::Error;

/// A CreateContainerResponse whose adjustment holds `n` empty mounts: two
/// bytes each on the wire, a whole `Mount` each once decoded.
fn empty_mounts(n: usize) -> Vec<u8> {
    let mut adjust = Vec::with_capacity(2 * n);
    for _ in 0..n {
        adjust.extend([0x1a, 0x00]);
    }
    let mut wire = vec![0x0a];
    let mut len = adjust.len();
    while len >= 0x80 {
        wire.push((len as u8) | 0x80);
        len >>= 7;
    }
    wire.push(len as u8);
    wire.extend(adjust);
    wire
}

#[test]
fn a_reply_of_two_million_empty_mounts_is_not_decoded_and_the_plugin_is_kept() {
    if in_own_process(
        "runtime_replies::a_reply_of_two_million_empty_mounts_is_not_decoded_and_the_plugin_is_kept",
    ) {
        return;
    }
    let rt = Runtime::builder()
        .registration_timeout(STEP)
        .request_timeout(STEP)
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let accepting = thread::spawn(move || rt.accept_stream(rt_end));
    let mut plugin = ScriptedPlugin::new(plugin_end);
    plugin.register("mounts", "10", Event::CREATE_CONTAINER.into());
    let handle = accepting.join().expect("accept").expect("registered");
    let reply = empty_mounts(2_000_000);
    let rss0 = rss_kib();
    let creating = thread::spawn(move || {
        let started = Instant::now();
        let r = handle.create_container(&pod("p"), &ctr("c"));
        (r.map(|_| ()), started.elapsed(), handle)
    });
    let (msg, req) = plugin.next_request("CreateContainer");
    assert_eq!(req.method, "CreateContainer");
    let data = response_envelope(0, "", &reply);
    let frame = ttrpc_frame(msg.header.stream_id, TYPE_RESPONSE, 0, &data);
    plugin.peer.send_message_on(PLUGIN_SERVICE_CONN, &frame);
    let (r, took, handle) = creating.join().expect("creating");
    let rss1 = rss_kib();
    println!(
        "measured: a CreateContainer reply of {} bytes holding 2,000,000 empty mounts: {took:?}, \
         RSS {rss0} -> {rss1} KiB ({r:?})",
        reply.len()
    );
    match r {
        Err(Error::DecodedTooLarge { decoded, limit, .. }) => {
            assert!(decoded > limit, "{decoded} {limit}");
        }
        other => panic!("{other:?}"),
    }
    // Not decoded: the reply's own 4 MB (and the test's copy of it), not
    // the 229 MB it would take.
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} -> {rss1} KiB");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        handle.is_connected(),
        "an oversized reply only fails its request"
    );
    assert_eq!(handle.events(), EventMask::from(Event::CREATE_CONTAINER));
}
