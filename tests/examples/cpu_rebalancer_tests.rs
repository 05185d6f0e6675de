//! The cpu-rebalancer example's tests.

use super::*;

#[test]
fn cpu_rebalancer_spreads_cpus_with_solicited_and_unsolicited_updates() {
    let runtime = runtime_with_config("cpu-rebalancer", "cpus: 0-7");
    let web = pod("pod-1", "web", &[]);
    let batch = pod(
        "pod-2",
        "batch",
        &[(cpu_rebalancer::SKIP_ANNOTATION, "true")],
    );
    let a = running(container("ctr-a", &web, "a"));
    let b = running(container("ctr-b", &web, "b"));
    let skipped = running(container("ctr-s", &batch, "s"));
    let mut gone = container("ctr-x", &web, "x");
    gone.state = ContainerState::CONTAINER_STOPPED.into();
    runtime.set_state(
        vec![web.clone(), batch.clone()],
        vec![a.clone(), b.clone(), skipped, gone],
    );

    let plugin = Arc::new(cpu_rebalancer::CpuRebalancer::new(vec![0], false));
    let p = connect(&runtime, Arc::clone(&plugin), "cpu-rebalancer", "50");
    assert_eq!(
        plugin.pool(),
        (0..8).collect::<Vec<_>>(),
        "pool from the configuration"
    );

    // Synchronize: the two running, managed containers split the pool.
    let sync = cpusets(p.sync_updates());
    assert_eq!(
        sync,
        HashMap::from([
            ("ctr-a".into(), "0-3".into()),
            ("ctr-b".into(), "4-7".into())
        ])
    );

    // CreateContainer: the new one in its adjustment, the others in updates.
    let c = container("ctr-c", &web, "c");
    let reply = p.create_container(&web, &c).unwrap();
    assert_eq!(reply.adjust.linux.resources.cpu.cpus, "6-7");
    assert_eq!(
        cpusets(&reply.update),
        HashMap::from([
            ("ctr-a".into(), "0-2".into()),
            ("ctr-b".into(), "3-5".into())
        ])
    );

    // StopContainer: updates in the reply.
    let reply = p.stop_container(&web, &a).unwrap();
    assert_eq!(
        cpusets(&reply.update),
        HashMap::from([
            ("ctr-b".into(), "0-3".into()),
            ("ctr-c".into(), "4-7".into())
        ])
    );

    // RemoveContainer without a stop: a notification, so the updates come
    // as an unsolicited UpdateContainers after the reply.
    p.remove_container(&web, &b).unwrap();
    let unsolicited = p.wait_unsolicited_updates(1, STEP);
    assert_eq!(
        cpusets(&unsolicited),
        HashMap::from([("ctr-c".into(), "0-7".into())])
    );
    assert!(
        p.is_connected(),
        "updates after the reply do not deadlock the runtime"
    );
}

#[test]
fn cpu_rebalancer_pushes_updates_from_its_own_thread_when_cpus_change() {
    let runtime = Runtime::new();
    let web = pod("pod-1", "web", &[]);
    runtime.set_state(
        vec![web.clone()],
        vec![
            running(container("ctr-a", &web, "a")),
            running(container("ctr-b", &web, "b")),
        ],
    );
    let plugin = Arc::new(cpu_rebalancer::CpuRebalancer::new(vec![0, 1, 2, 3], false));
    let p = connect(&runtime, Arc::clone(&plugin), "cpu-rebalancer", "50");
    assert_eq!(cpusets(p.sync_updates()).len(), 2);

    // CPUs 4-5 come online.
    let online = Arc::new(Mutex::new(vec![0, 1, 2, 3]));
    let source = Arc::clone(&online);
    let watcher = cpu_rebalancer::PoolWatcher::start(
        Arc::clone(&plugin),
        p.stub.clone(),
        Duration::from_millis(10),
        move || Some(source.lock().unwrap().clone()),
    )
    .unwrap();
    *online.lock().unwrap() = vec![0, 1, 2, 3, 4, 5];
    let updates = p.wait_unsolicited_updates(2, STEP);
    drop(watcher);
    assert_eq!(
        cpusets(&updates),
        HashMap::from([
            ("ctr-a".into(), "0-2".into()),
            ("ctr-b".into(), "3-5".into())
        ])
    );
    assert_eq!(plugin.cpuset_of("ctr-b").as_deref(), Some("3-5"));
}

#[test]
fn cpu_rebalancer_splits_and_formats_cpu_lists() {
    use cpu_rebalancer::{format_cpuset, parse_cpuset, split};
    assert_eq!(
        parse_cpuset("0-3,8, 10-11").unwrap(),
        [0, 1, 2, 3, 8, 10, 11]
    );
    assert_eq!(format_cpuset(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
    assert!(parse_cpuset("3-1").is_err());
    assert!(parse_cpuset("").is_err());
    assert_eq!(split(&[0, 1, 2, 3, 4], 2), ["0-2", "3-4"]);
    assert_eq!(
        split(&[0, 1], 3),
        ["0", "1", "0"],
        "more containers than CPUs share round-robin"
    );
}
