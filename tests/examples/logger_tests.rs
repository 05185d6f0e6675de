//! The logger example's tests.

use super::*;

#[test]
fn logger_subscribes_to_the_configured_events_and_stamps_containers() {
    let config = "events: [RunPodSandbox, CreateContainer]\n\
                  setAnnotation: logger.nri.io/owner\n\
                  addAnnotation: logger.nri.io/seen\n\
                  setEnv: LOGGER_SET\n\
                  addEnv: LOGGER_ADD\n";
    let runtime = runtime_with_config("logger", config);
    let p = connect(
        &runtime,
        logger::Logger::new(Default::default()),
        "logger",
        "00",
    );
    assert_eq!(
        p.events(),
        EventMask::from_events(&[Event::RUN_POD_SANDBOX, Event::CREATE_CONTAINER])
    );

    let pod = pod("pod-1", "web", &[]);
    let reply = p
        .create_container(&pod, &container("ctr-1", &pod, "nginx"))
        .unwrap();
    let stamp = format!("logger-pid-{}", std::process::id());
    let annotations = &reply.adjust.annotations;
    assert_eq!(
        annotations.get("-logger.nri.io/owner").map(String::as_str),
        Some("")
    );
    assert_eq!(annotations.get("logger.nri.io/owner"), Some(&stamp));
    assert_eq!(annotations.get("logger.nri.io/seen"), Some(&stamp));
    let env: Vec<(&str, &str)> = reply
        .adjust
        .env
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("LOGGER_ADD", stamp.as_str()),
            ("-LOGGER_SET", ""),
            ("LOGGER_SET", stamp.as_str())
        ]
    );
}

#[test]
fn logger_events_from_flags_apply_without_configuration() {
    let flags = logger::Config {
        events: Some(EventMask::POD_EVENTS),
        ..Default::default()
    };
    let runtime = Runtime::new();
    let p = connect(&runtime, logger::Logger::new(flags), "logger", "01");
    assert_eq!(p.events(), EventMask::POD_EVENTS);
}

#[test]
fn logger_rejects_unknown_events_in_its_configuration() {
    let err = logger::Config::default()
        .merge("events: [CreateContainer, Bogus]")
        .unwrap_err();
    assert!(err.contains("Bogus"), "{err}");
    let mask = logger::Config::default()
        .merge("events: pod,StartContainer")
        .unwrap()
        .events
        .unwrap();
    assert!(mask.contains(EventMask::POD_EVENTS) && mask.is_set(Event::START_CONTAINER));
}

#[test]
fn launched_logger_writes_to_the_log_file_named_in_its_configuration() {
    let binary = example_binary("logger");
    let dir = temp_dir("launched-logger");
    let log_file = dir.join("logger.log");
    let runtime = Runtime::new();
    // As a pre-installed plugin: no arguments, only NRI_* variables, stdout
    // and stderr on /dev/null; the configuration is all it gets.
    let config = format!("logFile: {}\nevents: pod\n", log_file.display());
    let p = runtime
        .launch(&binary, "logger", "05", &config)
        .expect("launched logger starts");
    assert!(p.is_launched());
    assert_eq!(p.events(), EventMask::POD_EVENTS);
    p.run_pod_sandbox(&pod("pod-9", "launched-pod", &[]))
        .unwrap();

    let deadline = Instant::now() + STEP;
    let text = loop {
        let text = std::fs::read_to_string(&log_file).unwrap_or_default();
        if text.contains("launched-pod") || Instant::now() > deadline {
            break text;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("RunPodSandbox"), "log file:\n{text}");
    assert!(text.contains("  name: launched-pod\n"), "log file:\n{text}");
    p.close();
    let _ = std::fs::remove_dir_all(dir);
}
