//! hook-injector cases: the hook directories the Go oracle made, made again
//! here, read by the port, and asked for the same containers' hooks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::hook_injector::ocihooks::{self, go_to_lower, Injected, Manager};
use super::*;

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Seq(items)) => items.iter().map(|i| str_of(Some(i)).to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Makes the directories a case describes under `root`.
fn write_dirs(root: &Path, dirs: &[Value]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let dir = root.join(format!("d{i}"));
        paths.push(dir.clone());
        match str_of(field(d, "kind")) {
            "missing" => continue,
            "file" => {
                std::fs::create_dir_all(root).expect("case root");
                std::fs::write(&dir, "not a directory").expect("file in place of a directory");
                continue;
            }
            _ => std::fs::create_dir_all(&dir).expect("hook directory"),
        }
        let entries = match field(d, "entries") {
            Some(Value::Seq(entries)) => entries.as_slice(),
            _ => &[],
        };
        for e in entries {
            let path = dir.join(str_of(field(e, "name")));
            let made = match str_of(field(e, "kind")) {
                "file" => std::fs::write(&path, str_of(field(e, "content"))),
                "dir" => std::fs::create_dir(&path),
                "dangling" => std::os::unix::fs::symlink("missing-target", &path),
                _ => std::os::unix::fs::symlink(str_of(field(e, "target")), &path),
            };
            made.unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        }
    }
    paths
}

fn hook_json(h: &ocihooks::Hook) -> Value {
    object(vec![
        ("path", string(&h.path)),
        ("args", list(h.args.iter().map(|a| string(a)).collect())),
        ("env", list(h.env.iter().map(|a| string(a)).collect())),
        ("timeout", h.timeout.map_or(Value::Null, num)),
    ])
}

/// Go's hook as the oracle wrote it, in the same shape (absent lists and
/// timeout are null).
fn go_hook_json(h: &Value) -> Value {
    let get = |name: &str| field(h, name).cloned().unwrap_or(Value::Null);
    normalize(&object(vec![
        ("path", get("path")),
        ("args", get("args")),
        ("env", get("env")),
        ("timeout", get("timeout")),
    ]))
}

/// Compares one stage: the same hooks in the same order, except that hooks
/// from files whose names differ only in case may come in either order (Go
/// sorts them with an unstable sort).
fn same_stage(go: &[Value], ours: &[&Injected<'_>]) -> bool {
    if go.len() != ours.len() {
        return false;
    }
    let mut i = 0;
    while i < ours.len() {
        let key = go_to_lower(ours[i].file);
        let mut j = i + 1;
        while j < ours.len() && go_to_lower(ours[j].file) == key {
            j += 1;
        }
        let mut a: Vec<String> = go[i..j]
            .iter()
            .map(|h| format!("{:?}", go_hook_json(h)))
            .collect();
        let mut b: Vec<String> = ours[i..j]
            .iter()
            .map(|inj| format!("{:?}", normalize(&hook_json(inj.hook))))
            .collect();
        a.sort();
        b.sort();
        if a != b {
            return false;
        }
        i = j;
    }
    true
}

pub fn check_hook_case(case: &Value, tally: &mut Tally) {
    const PLUGIN: &str = "hook-injector";
    let id = case_id(case);
    *tally.cases.entry(PLUGIN).or_default() += 1;
    let hc = field(case, "hooks").cloned().unwrap_or(Value::Null);
    let dirs = match field(&hc, "dirs") {
        Some(Value::Seq(dirs)) => dirs.clone(),
        _ => Vec::new(),
    };
    let root = std::env::temp_dir().join(format!("nri-ports-{}-{id}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let paths = write_dirs(&root, &dirs);
    let (manager, startup_error, _) = Manager::load(&paths);
    let go_new_error = field(&hc, "new_error").is_some();
    if go_new_error != startup_error.is_some() {
        tally.fail(
            PLUGIN,
            id,
            format!(
                "startup: Go {:?}, Rust {startup_error:?}; dirs {dirs:?}",
                str_of(field(&hc, "new_error"))
            ),
        );
    } else if go_new_error {
        *tally.agreed_errors.entry(PLUGIN).or_default() += 1;
    }
    let queries = match field(&hc, "queries") {
        Some(Value::Seq(q)) => q.clone(),
        _ => Vec::new(),
    };
    for (n, q) in queries.iter().enumerate() {
        *tally.cases.entry("hook-injector containers").or_default() += 1;
        let args = strings(field(q, "args"));
        let mut annotations: BTreeMap<String, String> = string_map(field(q, "ctr_annotations"))
            .into_iter()
            .collect();
        annotations.extend(string_map(field(q, "pod_annotations")));
        let bind_mounts = matches!(field(q, "bind_mounts"), Some(Value::Bool(true)));
        let ours = manager.hooks(&args, &annotations, bind_mounts);
        let go_error = field(q, "error").map(|e| str_of(Some(e)).to_string());
        let agreed = match (&go_error, &ours) {
            (Some(_), Err(_)) => {
                *tally
                    .agreed_errors
                    .entry("hook-injector containers")
                    .or_default() += 1;
                true
            }
            (None, Ok(injected)) => {
                let go = field(q, "result").cloned().unwrap_or(Value::Null);
                ocihooks::STAGES.iter().all(|stage| {
                    let go_list = match field(&go, stage) {
                        Some(Value::Seq(list)) => list.as_slice(),
                        _ => &[],
                    };
                    let ours: Vec<&Injected<'_>> =
                        injected.iter().filter(|i| i.stage == *stage).collect();
                    same_stage(go_list, &ours)
                })
            }
            _ => false,
        };
        if !agreed {
            tally.fail(
                PLUGIN,
                id,
                format!(
                    "container {n} (args {args:?}, annotations {annotations:?}, bind mounts {bind_mounts}):\n  Go {:?}\n  Rust {:?}\n  dirs {dirs:?}",
                    go_error.map_or_else(|| field(q, "result").cloned().unwrap_or(Value::Null), |e| string(&e)),
                    ours.map(|i| i.iter().map(|i| (i.stage, String::from_utf8_lossy(i.file).into_owned(), i.hook.clone())).collect::<Vec<_>>())
                ),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
