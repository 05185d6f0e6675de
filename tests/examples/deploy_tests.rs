//! The README plugin, the deployment files, and example binaries run as processes.

use super::*;

const README: &str = include_str!("../../README.md");
const MEMORY_DEFAULTER: &str = include_str!("../../examples/memory-defaulter/main.rs");

#[test]
fn readme_plugin_is_the_memory_defaulter_example_verbatim() {
    let block = README
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a ```rust block");
    assert_eq!(
        block, MEMORY_DEFAULTER,
        "README's plugin and examples/memory-defaulter/main.rs differ: update one from the other"
    );
    let lines = MEMORY_DEFAULTER.lines().count();
    assert!(
        lines <= 45,
        "the README plugin should stay short ({lines} lines)"
    );
}

#[test]
fn readme_keeps_the_two_quickstart_commands() {
    let quickstart = README
        .split("## Quickstart")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("README has a Quickstart with a sh block");
    assert_eq!(quickstart, "cargo run --example demo\ncargo test\n");
}

#[test]
fn deploy_logger_config_is_valid_for_the_logger() {
    let text = include_str!("../../examples/deploy/10-logger.conf");
    let doc: nri::decode::Value = nri::decode::from_yaml(text).unwrap();
    assert_eq!(
        doc.get("logFile").and_then(nri::decode::Value::as_str),
        Some("/var/log/nri-logger.log")
    );
    // Everything but the log file, which would redirect this process's log.
    let without_log_file: String = text
        .lines()
        .filter(|l| !l.starts_with("logFile"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = logger::Config::default().merge(&without_log_file).unwrap();
    assert_eq!(
        cfg.events,
        Some(EventMask::from_events(&[
            Event::RUN_POD_SANDBOX,
            Event::CREATE_CONTAINER,
            Event::STOP_CONTAINER,
            Event::REMOVE_POD_SANDBOX
        ]))
    );
    assert_eq!(cfg.add_annotation, "logger.nri.io/seen-by");
}

#[test]
fn launched_memory_defaulter_sets_the_annotated_limit() {
    let binary = example_binary("memory-defaulter");
    let runtime = Runtime::new();
    let p = runtime
        .launch(&binary, "memory-defaulter", "10", "")
        .expect("launched plugin starts");
    let key = "memory-defaulter.example.com/limit";
    let pod = pod("pod-1", "p", &[(key, "536870912")]);
    let reply = p
        .create_container(&pod, &container("c1", &pod, "c"))
        .unwrap();
    assert_eq!(
        reply.adjust.linux.resources.memory.limit.value(),
        Some(512 << 20)
    );

    // A container that has a limit keeps it.
    let mut limited = container("c2", &pod, "limited");
    limited
        .linux
        .mut_or_insert_default()
        .resources
        .mut_or_insert_default()
        .memory
        .mut_or_insert_default()
        .limit
        .set_value(Some(1 << 30));
    let reply = p.create_container(&pod, &limited).unwrap();
    assert!(reply.adjust.linux.is_none());

    let bad = self::pod("pod-2", "q", &[(key, "lots")]);
    let message = status_message(
        p.create_container(&bad, &container("c3", &bad, "c"))
            .unwrap_err(),
    );
    assert!(
        message.contains(key) && message.contains("lots"),
        "{message}"
    );
}

#[test]
fn external_device_injector_stops_cleanly_on_sigterm() {
    let binary = example_binary("device-injector");
    let dir = temp_dir("external");
    let socket = dir.join("nri.sock");
    let runtime = Runtime::new();
    let listener = runtime.listen(&socket).unwrap();
    let mut child = std::process::Command::new(&binary)
        .args(["-idx", "10", "-socket"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = listener
        .accept_timeout(STEP)
        .expect("external plugin connects");
    assert_eq!(p.name(), "10-device-injector");

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + STEP;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the plugin did not exit within {STEP:?} of SIGTERM");
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    assert!(p.wait_closed(STEP), "the plugin closed its connection");
    let _ = std::fs::remove_dir_all(dir);
}
