//! The hook injector: adds OCI hooks to containers, from the hook files that
//! Podman and CRI-O use (`*.json` in `/usr/share/containers/oci/hooks.d`,
//! then `/etc/containers/oci/hooks.d`, where a file of the same name
//! overrides). A port of containerd/nri's `plugins/hook-injector` (NRI
//! v0.12), with the rules of the library it uses,
//! `go.podman.io/common/pkg/hooks` v0.66.1 (see `ocihooks.rs`).
//!
//! A hook file (schema version 1.0.0; the older 0.1.0 format is read too):
//!
//! ```json
//! {
//!   "version": "1.0.0",
//!   "hook": { "path": "/usr/local/sbin/demo-hook.sh", "args": ["demo-hook.sh", "hi"],
//!             "env": ["DEMO=1"], "timeout": 5 },
//!   "when": { "commands": ["busybox$"], "annotations": {"^demo\\.io/hook$": "^yes$"},
//!             "hasBindMounts": true, "always": false },
//!   "stages": ["prestart", "poststop"]
//! }
//! ```
//!
//! `when` conditions are Go regular expressions matched anywhere in the
//! text (anchor them with `^`/`$`): `commands` against the container's
//! first argument, `annotations` keys and values against the container's
//! and the pod's annotations (the pod's win). All given conditions must
//! hold, and once `commands` is reached it alone decides. Stages:
//! `prestart`, `createRuntime`, `createContainer`, `startContainer`,
//! `poststart`, `poststop`; a `prestart` hook is injected as a
//! `createRuntime` hook, which the OCI runtime runs at the same point (the
//! runtime-spec deprecates `prestart`). Hooks are injected in the order of
//! their lower-cased file names.
//!
//! As in Go, the plugin does not start when a hook directory holds a file
//! that fails to load, unless the directory's first failure is a missing
//! hook binary. Afterwards the directories are checked again before each
//! container is created, and a change reloads them, keeping the files that
//! load and logging the others (as the Go plugin's directory monitor does).
//!
//! Differences from the Go plugin: a hook file that is not a regular file
//! (a FIFO, a device) is an error instead of being read, which can block or
//! never end; the directories are polled, not watched; they can also be set
//! with `-hook-dir` or the `hookDirs` configuration key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use nri::decode::Value;
use nri::stub::{Context, HandlerResult, Plugin};
use serde::Deserialize;

#[path = "goregexp.rs"]
mod goregexp;
#[path = "ocihooks.rs"]
pub mod ocihooks;

use ocihooks::Manager;

/// The configuration keys the hook injector reads (besides `logFile`,
/// `syslog` and `verbose`, see nri::logging).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    /// `hookDirs`: a directory, or a list of them.
    #[serde(rename = "hookDirs")]
    hook_dirs: Option<Value>,
}

/// A string, or a list of strings.
fn strings(what: &str, value: &Value) -> Result<Vec<String>, String> {
    let item = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{what}: expected a string or a list of strings"))
    };
    match value {
        Value::Seq(items) => items.iter().map(item).collect(),
        Value::Null => Ok(Vec::new()),
        other => item(other).map(|s| vec![s]),
    }
}

/// `pod/container`, for log messages.
fn container_name(pod: &PodSandbox, container: &Container) -> String {
    if pod.name.is_empty() {
        container.name.clone()
    } else {
        format!("{}/{}", pod.name, container.name)
    }
}

/// Where hook files are looked for by default, lowest precedence first.
pub const DEFAULT_HOOK_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// What the directories held when last read: each entry's path, change
/// time and size.
type Listing = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn listing(dirs: &[PathBuf]) -> Listing {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let meta = std::fs::metadata(entry.path()).ok();
            files.push((
                entry.path(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            ));
        }
    }
    files.sort();
    files
}

struct Loaded {
    seen: Option<Listing>,
    manager: Manager,
}

/// The hook injector plugin.
pub struct HookInjector {
    dirs: Mutex<Vec<PathBuf>>,
    loaded: Mutex<Loaded>,
}

impl HookInjector {
    /// A hook injector reading hook files from `dirs`, lowest precedence
    /// first; an error where the Go plugin would not start.
    pub fn new(dirs: Vec<PathBuf>) -> Result<Self, String> {
        let seen = listing(&dirs);
        let (manager, error, problems) = Manager::load(&dirs);
        if let Some(error) = error {
            return Err(format!("failed to set up hook manager: {error}"));
        }
        for problem in problems {
            log::warn!("{problem}");
        }
        log::info!("loaded {} hook(s)", manager.hooks.len());
        Ok(HookInjector {
            dirs: Mutex::new(dirs),
            loaded: Mutex::new(Loaded {
                seen: Some(seen),
                manager,
            }),
        })
    }

    /// Reloads the hook files if any was added, removed or changed.
    fn refresh(&self) {
        let dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let files = listing(&dirs);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.seen.as_ref() == Some(&files) {
            return;
        }
        let (manager, _, problems) = Manager::load(&dirs);
        for problem in problems {
            log::error!("failed loading hooks: {problem}");
        }
        log::info!("reloaded {} hook(s)", manager.hooks.len());
        loaded.seen = Some(files);
        loaded.manager = manager;
    }

    /// The hooks for a container.
    pub fn hooks_for(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<nri::api::Hooks, String> {
        self.refresh();
        let mut annotations: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in container.annotations.iter().chain(pod.annotations.iter()) {
            annotations.insert(k.clone(), v.clone());
        }
        let has_bind_mounts = !container.mounts.is_empty();
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let injected = loaded
            .manager
            .hooks(&container.args, &annotations, has_bind_mounts)
            .map_err(|e| format!("hook generation failed: {e}"))?;
        Ok(ocihooks::to_nri(&injected))
    }
}

impl Plugin for HookInjector {
    fn events(&self) -> EventMask {
        Event::CREATE_CONTAINER.into()
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        runtime: &str,
        version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        log::info!("connected to {runtime} {version}");
        let cfg: Config =
            nri::decode::from_yaml(config).map_err(|e| format!("invalid configuration: {e}"))?;
        nri::logging::configure_from_text(config)?;
        if let Some(dirs) = &cfg.hook_dirs {
            let dirs = strings("hookDirs", dirs)?;
            log::info!("hook directories: {dirs:?}");
            *self.dirs.lock().unwrap_or_else(|e| e.into_inner()) =
                dirs.into_iter().map(PathBuf::from).collect();
            self.loaded.lock().unwrap_or_else(|e| e.into_inner()).seen = None;
            self.refresh();
        }
        Ok(None)
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let name = container_name(pod, container);
        let hooks = self.hooks_for(pod, container).inspect_err(|e| {
            log::error!("{name}: {e}");
        })?;
        let mut adjust = ContainerAdjustment::new();
        if hooks.is_empty() {
            log::info!("{name}: no hooks to inject");
        } else {
            log::info!("{name}: OCI hooks injected");
            adjust.add_hooks(hooks);
        }
        Ok((adjust, Vec::new()))
    }
}
