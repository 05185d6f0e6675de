//! The hook-injector example's tests.

use super::*;

fn hook_json(path: &str, when: &str, stages: &str) -> String {
    format!(
        r#"{{
    "version": "1.0.0",
    "hook": {{
        "path": "{path}",
        "args": ["demo-hook", "injected"],
        "env": ["DEMO_HOOK=1"],
        "timeout": 5
    }},
    "when": {when},
    "stages": {stages}
}}
"#
    )
}

#[test]
fn hook_injector_injects_matching_hooks_at_their_stages() {
    let base = temp_dir("hooks-base");
    let over = temp_dir("hooks-override");
    let hook_path = base.join("demo-hook.sh");
    std::fs::write(&hook_path, "#!/bin/sh\n").unwrap();
    let hook = hook_path.to_str().unwrap();
    let write =
        |dir: &PathBuf, file: &str, text: String| std::fs::write(dir.join(file), text).unwrap();
    write(
        &base,
        "10-always.json",
        hook_json(hook, r#"{"always": true}"#, r#"["prestart", "poststop"]"#),
    );
    write(
        &base,
        "20-busybox.json",
        hook_json(
            hook,
            r#"{"commands": ["busybox$"]}"#,
            r#"["createRuntime"]"#,
        ),
    );
    write(
        &base,
        "30-annotated.json",
        hook_json(
            hook,
            r#"{"annotations": {"^demo\\.io/hook$": "^yes$"}}"#,
            r#"["poststart"]"#,
        ),
    );
    // Same name in the override directory: replaces the base one.
    write(
        &over,
        "10-always.json",
        hook_json(hook, r#"{"always": false}"#, r#"["prestart"]"#),
    );

    let injector = hook_injector::HookInjector::new(vec![base.clone(), over.clone()])
        .expect("every hook file loads");
    let runtime = Runtime::new();
    let p = connect(&runtime, injector, "hook-injector", "30");

    let pod = pod("pod-1", "p", &[("demo.io/hook", "yes")]);
    let mut ctr = container("ctr-1", &pod, "bb");
    ctr.args = vec!["/bin/busybox".into(), "sh".into()];
    let reply = p.create_container(&pod, &ctr).unwrap();
    let hooks = &reply.adjust.hooks;
    assert!(
        hooks.prestart.is_empty(),
        "prestart hooks are injected at createRuntime"
    );
    assert!(hooks.poststop.is_empty());
    assert_eq!(
        hooks.create_runtime.len(),
        1,
        "busybox command matched; 10-always.json was overridden by always: false"
    );
    assert_eq!(hooks.poststart.len(), 1, "annotation matched");
    let h = &hooks.create_runtime[0];
    assert_eq!(h.path, hook);
    assert_eq!(h.args, ["demo-hook", "injected"]);
    assert_eq!(h.env, ["DEMO_HOOK=1"]);
    assert_eq!(h.timeout.value(), Some(5));

    // No match at all: no hooks message.
    let plain = self::pod("pod-2", "q", &[]);
    let mut other = container("ctr-2", &plain, "nginx");
    other.args = vec!["/usr/sbin/nginx".into()];
    let reply = p.create_container(&plain, &other).unwrap();
    assert!(reply.adjust.hooks.is_none());

    // A hook file added later is picked up without a restart.
    write(
        &over,
        "50-nginx.json",
        hook_json(hook, r#"{"commands": ["nginx"]}"#, r#"["startContainer"]"#),
    );
    let reply = p.create_container(&plain, &other).unwrap();
    assert_eq!(reply.adjust.hooks.start_container.len(), 1);

    let _ = std::fs::remove_dir_all(base);
    let _ = std::fs::remove_dir_all(over);
}

fn hook_names(hooks: &[nri::api::Hook]) -> Vec<&str> {
    hooks.iter().map(|h| h.args[1].as_str()).collect()
}

#[test]
fn hook_injector_ignores_or_in_1_0_0_files_and_reads_0_1_0_files_as_any_of() {
    let dir = temp_dir("hooks-or");
    let hook = |id: &str, when: &str| {
        format!(
            r#"{{"version": "1.0.0", "hook": {{"path": "/bin/sh", "args": ["sh", "{id}"]}},
               "when": {when}, "stages": ["prestart"]}}"#
        )
    };
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    // `or` is not a 1.0.0 key: all conditions must hold, as in Go.
    write(
        "10-or.json",
        &hook(
            "or-1.0.0",
            r#"{"commands": ["^nomatch$"], "hasBindMounts": true, "or": true}"#,
        ),
    );
    // A 0.1.0 file: any condition suffices.
    write(
        "20-old.json",
        r#"{"hook": "/bin/sh", "arguments": ["old-0.1.0"], "stage": ["prestart"],
            "cmd": ["^nomatch$"], "hasbindmounts": true}"#,
    );
    // An unknown key in `when` is ignored, the file loads.
    write(
        "30-unknown.json",
        &hook("unknown-key", r#"{"always": true, "sometimes": {"x": 1}}"#),
    );
    let injector =
        hook_injector::HookInjector::new(vec![dir.clone()]).expect("every hook file loads");

    let pod = pod("pod-1", "p", &[]);
    let mut ctr = container("ctr-1", &pod, "c");
    ctr.args = vec!["/bin/true".into()];
    ctr.mounts.push(nri::api::Mount {
        destination: "/data".into(),
        source: "/srv".into(),
        type_: "bind".into(),
        ..Default::default()
    });
    let hooks = injector.hooks_for(&pod, &ctr).unwrap();
    assert!(hooks.prestart.is_empty());
    assert_eq!(
        hook_names(&hooks.create_runtime),
        ["old-0.1.0", "unknown-key"],
        "the 0.1.0 hook matches by bind mount, the 1.0.0 one does not"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_files_prestart_hooks_under_create_runtime_in_file_order() {
    let dir = temp_dir("hooks-prestart");
    for (name, id, stages) in [
        ("10-a.json", "a", r#"["prestart", "poststop"]"#),
        ("20-b.json", "b", r#"["createRuntime"]"#),
        ("30-c.json", "c", r#"["createRuntime", "prestart"]"#),
    ] {
        std::fs::write(
            dir.join(name),
            format!(
                r#"{{"version": "1.0.0", "hook": {{"path": "/bin/sh", "args": ["sh", "{id}"]}},
                   "when": {{"always": true}}, "stages": {stages}}}"#
            ),
        )
        .unwrap();
    }
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let hooks = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap();
    assert!(hooks.prestart.is_empty(), "{:?}", hooks.prestart);
    assert_eq!(hook_names(&hooks.create_runtime), ["a", "b", "c", "c"]);
    assert_eq!(hook_names(&hooks.poststop), ["a"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_orders_hooks_by_lower_cased_file_name() {
    let dir = temp_dir("hooks-order");
    for (name, id) in [("B.json", "B"), ("a.json", "a"), ("C.json", "C")] {
        std::fs::write(
            dir.join(name),
            format!(
                r#"{{"version": "1.0.0", "hook": {{"path": "/bin/sh", "args": ["sh", "{id}"]}},
                   "when": {{"always": true}}, "stages": ["poststop"]}}"#
            ),
        )
        .unwrap();
    }
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let hooks = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap();
    assert_eq!(hook_names(&hooks.poststop), ["a", "B", "C"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_does_not_start_on_a_broken_hook_file_as_go_does() {
    let dir = temp_dir("hooks-broken");
    std::fs::write(dir.join("10-broken.json"), "{ not json").unwrap();
    let err = hook_injector::HookInjector::new(vec![dir.clone()])
        .err()
        .expect("a broken hook file stops the plugin from starting");
    assert!(err.contains("10-broken.json"), "{err}");

    // A missing hook binary as the directory's first failure is tolerated,
    // and the files that load are used.
    let _ = std::fs::remove_file(dir.join("10-broken.json"));
    let hook = |path: &str, stage: &str| {
        format!(
            r#"{{"version": "1.0.0", "hook": {{"path": "{path}", "args": ["x", "{stage}"]}},
               "when": {{"always": true}}, "stages": ["{stage}"]}}"#
        )
    };
    std::fs::write(
        dir.join("10-missing.json"),
        hook("/does/not/exist", "prestart"),
    )
    .unwrap();
    std::fs::write(dir.join("20-bad-stage.json"), hook("/bin/sh", "prestartt")).unwrap();
    std::fs::write(dir.join("30-good.json"), hook("/bin/sh", "poststop")).unwrap();
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let hooks = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap();
    assert!(hooks.prestart.is_empty() && hooks.create_runtime.is_empty());
    assert_eq!(hook_names(&hooks.poststop), ["poststop"]);

    let read = |name: &str| match hook_injector::ocihooks::read(&dir.join(name)) {
        hook_injector::ocihooks::Entry::Failed(e) => e.message,
        _ => panic!("{name} should not load"),
    };
    assert!(read("20-bad-stage.json").contains("prestartt"));
    assert!(read("10-missing.json").contains("/does/not/exist"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hook_injector_fails_creation_when_commands_meet_a_container_without_arguments() {
    let dir = temp_dir("hooks-noargs");
    std::fs::write(
        dir.join("cmd.json"),
        r#"{"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {"commands": ["sh"]},
            "stages": ["prestart"]}"#,
    )
    .unwrap();
    let injector = hook_injector::HookInjector::new(vec![dir.clone()]).unwrap();
    let pod = pod("pod-1", "p", &[]);
    let err = injector
        .hooks_for(&pod, &container("ctr-1", &pod, "c"))
        .unwrap_err();
    assert!(err.contains("process.args"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
