//! Plugins that send the runtime unsolicited updates it must not keep
//! without bound: megabyte container ids, a hundred thousand updates in one
//! request.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::plugin::{Spec, TestPlugin};
use crate::runtime_support::*;
use nri::api::{
    ContainerUpdate, EventMask, UpdateContainersRequest, UpdateContainersResponse, RUNTIME_SERVICE,
};
use nri::runtime::{Runtime, DEFAULT_MAX_RECORDED_UPDATE_BYTES, MAX_RECORDED_UPDATES};

fn update_containers(
    plugin: &TestPlugin,
    update: Vec<ContainerUpdate>,
) -> UpdateContainersResponse {
    let req = UpdateContainersRequest {
        update,
        ..Default::default()
    };
    plugin
        .runtime
        .call(RUNTIME_SERVICE, "UpdateContainers", &req, Some(STEP))
        .expect("UpdateContainers")
}

#[test]
fn megabyte_container_ids_are_recorded_within_the_byte_budget() {
    if in_own_process("runtime_updates::megabyte_container_ids_are_recorded_within_the_byte_budget")
    {
        return;
    }
    let rt = Runtime::builder().request_timeout(STEP).build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let plugin = TestPlugin::start(plugin_end, Spec::new("big", "10", EventMask::ALL));
    let handle = rt.accept_stream(rt_end).expect("registered");
    let rss0 = rss_kib();
    let id = "x".repeat(1 << 20);
    for i in 0..600 {
        update_containers(
            &plugin,
            vec![ContainerUpdate::for_container(format!("{i}-{id}"))],
        );
    }
    let held = handle.unsolicited_update_bytes();
    let kept = handle.unsolicited_updates();
    let rss1 = rss_kib();
    println!(
        "measured: 600 updates with a 1 MiB container id: the record keeps {} ({held} bytes, \
         budget {DEFAULT_MAX_RECORDED_UPDATE_BYTES}); RSS {rss0} -> {rss1} KiB",
        kept.len()
    );
    assert!(held <= DEFAULT_MAX_RECORDED_UPDATE_BYTES, "{held}");
    assert!(!kept.is_empty() && kept.len() < 16, "{}", kept.len());
    assert!(kept
        .last()
        .expect("newest")
        .container_id
        .starts_with("599-"));
    // 620 MB before; the budget, plus what the allocator keeps of the
    // requests that went through, now.
    assert!(rss1 < rss0 + 96 * 1024, "RSS {rss0} -> {rss1} KiB");
    drop(kept);
    assert!(handle.take_unsolicited_updates().len() < 16);
    assert_eq!(handle.unsolicited_update_bytes(), 0);
}

#[test]
fn a_hundred_thousand_updates_in_one_request_are_served_and_the_record_stays_bounded() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let rt = Runtime::builder()
        .request_timeout(STEP)
        .on_update_containers(move |updates| {
            s.fetch_add(updates.len(), Ordering::Relaxed);
            Vec::new()
        })
        .build();
    let (rt_end, plugin_end) = UnixStream::pair().expect("socketpair");
    let plugin = TestPlugin::start(plugin_end, Spec::new("many", "10", EventMask::ALL));
    let handle = rt.accept_stream(rt_end).expect("registered");
    let update: Vec<ContainerUpdate> = (0..100_000)
        .map(|i| ContainerUpdate::for_container(format!("c{i}")))
        .collect();
    let started = Instant::now();
    let reply = update_containers(&plugin, update);
    let took = started.elapsed();
    println!("measured: one UpdateContainers with 100,000 updates answered in {took:?}");
    assert!(reply.failed.is_empty());
    assert_eq!(seen.load(Ordering::Relaxed), 100_000);
    assert!(took < Duration::from_secs(4), "{took:?}");
    let kept = handle.unsolicited_updates();
    assert_eq!(kept.len(), MAX_RECORDED_UPDATES);
    assert_eq!(kept.last().expect("newest").container_id, "c99999");
    assert!(handle.unsolicited_update_bytes() <= DEFAULT_MAX_RECORDED_UPDATE_BYTES);
}
