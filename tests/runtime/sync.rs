//! Synchronize, whole and in chunks.

use super::*;

/// 10,000 containers with 1 KiB of annotations each: about 10 MiB of state.
fn big_state() -> (Vec<PodSandbox>, Vec<Container>) {
    let pods: Vec<_> = (0..100).map(|i| pod(&format!("pod-{i}"))).collect();
    let filler = "x".repeat(1000);
    let containers = (0..10_000)
        .map(|i| {
            let mut c = ctr(&format!("ctr-{i}"), &format!("pod-{}", i % 100));
            c.annotations.insert("filler".into(), filler.clone());
            c
        })
        .collect();
    (pods, containers)
}

#[test]
fn oversized_synchronize_arrives_in_chunks() {
    let rt = test_runtime()
        .request_timeout(Duration::from_secs(10))
        .build();
    let (pods, containers) = big_state();
    rt.set_state(pods, containers);
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let s = seen.clone();
    let spec = Spec::new("chunks", "10", EventMask::ALL).on_sync(move |_, req| {
        let mut seen = s.lock().unwrap();
        for c in &req.containers {
            *seen.entry(c.id.clone()).or_default() += 1;
        }
        let update = if req.more {
            Vec::new()
        } else {
            vec![ContainerUpdate::for_container("ctr-0")]
        };
        Ok(SynchronizeResponse {
            update,
            more: req.more,
            ..Default::default()
        })
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    let handle = handle.expect("plugin accepted");
    let chunks = plugin.rec.sync_chunks.lock().unwrap().clone();
    assert!(chunks.len() >= 2, "{chunks:?}");
    let (last, rest) = chunks.split_last().unwrap();
    assert!(
        rest.iter().all(|c| c.2),
        "every chunk but the last has more=true: {chunks:?}"
    );
    assert!(!last.2, "{chunks:?}");
    assert_eq!(chunks.iter().map(|c| c.0).sum::<usize>(), 100);
    assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), 10_000);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10_000);
    assert!(seen.values().all(|&n| n == 1), "each container sent once");
    assert_eq!(handle.sync_updates().len(), 1);
    assert!(handle.is_connected());
}

#[test]
fn wrong_reply_to_intermediate_sync_chunk_drops_plugin() {
    let (pods, containers) = big_state();
    // Answering an intermediate chunk as if it were the last.
    let rt = test_runtime()
        .request_timeout(Duration::from_secs(10))
        .build();
    rt.set_state(pods.clone(), containers.clone());
    let spec =
        Spec::new("nosplit", "10", EventMask::ALL).on_sync(|_, _| Ok(SynchronizeResponse::new()));
    let (handle, plugin) = accept_pair(&rt, spec);
    match handle {
        Err(Error::Protocol(message)) => assert!(message.contains("split"), "{message}"),
        other => panic!("expected a split-sync error, got {other:?}"),
    }
    assert_eq!(plugin.rec.sync_chunks.lock().unwrap().len(), 1);
    assert!(plugin.closed_within(STEP));

    // Sending updates before the last chunk.
    let rt = test_runtime()
        .request_timeout(Duration::from_secs(10))
        .build();
    rt.set_state(pods, containers);
    let spec = Spec::new("early", "10", EventMask::ALL).on_sync(|_, req| {
        Ok(SynchronizeResponse {
            update: vec![ContainerUpdate::for_container("ctr-1")],
            more: req.more,
            ..Default::default()
        })
    });
    let (handle, plugin) = accept_pair(&rt, spec);
    assert!(matches!(handle, Err(Error::Protocol(_))), "{handle:?}");
    assert!(plugin.closed_within(STEP));
}
