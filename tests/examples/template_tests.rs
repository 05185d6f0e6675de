//! The template example's tests.

use super::*;

#[test]
fn template_sees_every_event_of_a_pod_and_container_lifecycle() {
    let runtime = runtime_with_config("template", "cfgParam1: hello");
    let plugin = Arc::new(template::Template::with_journal(64 << 10));
    let p = connect(&runtime, Arc::clone(&plugin), "template", "10");
    assert_eq!(p.events(), EventMask::ALL);
    assert_eq!(plugin.config().cfg_param1, "hello");

    let pod = pod("pod-1", "web", &[]);
    let ctr = container("ctr-1", &pod, "nginx");
    p.run_pod_sandbox(&pod).unwrap();
    let reply = p.create_container(&pod, &ctr).unwrap();
    assert_eq!(
        reply.adjust,
        Default::default(),
        "the template changes nothing"
    );
    assert!(reply.update.is_empty());
    p.post_create_container(&pod, &ctr).unwrap();
    p.start_container(&pod, &ctr).unwrap();
    p.post_start_container(&pod, &ctr).unwrap();
    assert!(p
        .update_container(&pod, &ctr, &LinuxResources::new())
        .unwrap()
        .update
        .is_empty());
    p.post_update_container(&pod, &ctr).unwrap();
    assert!(p.stop_container(&pod, &ctr).unwrap().update.is_empty());
    p.remove_container(&pod, &ctr).unwrap();
    p.stop_pod_sandbox(&pod).unwrap();
    p.remove_pod_sandbox(&pod).unwrap();
    p.shutdown().unwrap();

    assert_eq!(
        plugin.seen(),
        [
            "Configure: connected to examples-test 1.0",
            "Synchronize: 0 pods, 0 containers",
            "RunPodSandbox default/web",
            "CreateContainer web/nginx",
            "PostCreateContainer web/nginx",
            "StartContainer web/nginx",
            "PostStartContainer web/nginx",
            "UpdateContainer web/nginx",
            "PostUpdateContainer web/nginx",
            "StopContainer web/nginx",
            "RemoveContainer web/nginx",
            "StopPodSandbox default/web",
            "RemovePodSandbox default/web",
            "Shutdown",
        ]
    );
    p.stop().expect("run() returns Ok after stop()");
}

#[test]
fn template_keeps_nothing_by_default_and_a_journal_within_its_bound() {
    // The binary's plugin keeps no events at all, as upstream's template.
    let runtime = runtime_with_config("template", "");
    let plugin = Arc::new(template::Template::new());
    let p = connect(&runtime, Arc::clone(&plugin), "template", "10");
    let pod = pod("pod-1", "web", &[]);
    for i in 0..100 {
        p.create_container(&pod, &container(&format!("ctr-{i}"), &pod, "c"))
            .unwrap();
    }
    assert!(plugin.seen().is_empty());
    assert_eq!(plugin.journal_usage(), None);
    p.stop().unwrap();

    // A journal holds the most recent events within its bound, in bytes.
    const BOUND: usize = 4096;
    let runtime = runtime_with_config("template", "");
    let plugin = Arc::new(template::Template::with_journal(BOUND));
    let p = connect(&runtime, Arc::clone(&plugin), "template", "10");
    let long = "x".repeat(10_000);
    let pod = self::pod("pod-2", "web", &[]);
    for i in 0..2000 {
        let name = if i == 1000 {
            long.clone()
        } else {
            format!("c{i}")
        };
        p.create_container(&pod, &container(&format!("ctr-{i}"), &pod, &name))
            .unwrap();
    }
    let (bytes, dropped) = plugin.journal_usage().expect("a journal");
    assert!(bytes <= BOUND, "{bytes} bytes held");
    let seen = plugin.seen();
    let held: usize = seen
        .iter()
        .map(|l| l.len() + std::mem::size_of::<String>())
        .sum();
    assert_eq!(held, bytes, "the count is the lines' bytes");
    assert_eq!(seen.last().unwrap(), "CreateContainer web/c1999");
    assert!(seen.len() > 50, "most recent lines kept: {}", seen.len());
    assert_eq!(
        dropped as usize + seen.len(),
        2002,
        "Configure, Synchronize and 2000 creations"
    );
    p.stop().unwrap();

    // A line longer than the bound is cut to fit.
    let mut journal = template::Journal::new(100);
    journal.push("é".repeat(200));
    let lines = journal.lines();
    assert_eq!(lines.len(), 1);
    assert!(journal.bytes() <= 100 && lines[0].chars().all(|c| c == 'é'));
}

#[test]
fn template_refuses_a_configuration_that_is_not_yaml() {
    let runtime = runtime_with_config("template", "cfgParam1: [unclosed");
    let (runtime_end, plugin_end) = UnixStream::pair().unwrap();
    let stub = Stub::builder(template::Template::new())
        .plugin_name("template")
        .plugin_index("10")
        .connection(plugin_end)
        .build()
        .unwrap();
    let serving = stub.clone();
    let thread = thread::spawn(move || serving.run());
    let err = runtime
        .accept_stream(runtime_end)
        .expect_err("Configure fails");
    assert!(err.to_string().contains("invalid configuration"), "{err}");
    assert!(
        thread.join().unwrap().is_err(),
        "the stub reports the failed start"
    );
}
