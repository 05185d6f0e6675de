//! The hook injector: adds OCI hooks to containers, from the hook files that
//! Podman and CRI-O use (`*.json` in `/usr/share/containers/oci/hooks.d`,
//! then `/etc/containers/oci/hooks.d`, where a file of the same name
//! overrides).
//!
//! A hook file (schema version 1.0.0):
//!
//! ```json
//! {
//!   "version": "1.0.0",
//!   "hook": { "path": "/usr/local/sbin/demo-hook.sh", "args": ["demo-hook.sh", "hi"],
//!             "env": ["DEMO=1"], "timeout": 5 },
//!   "when": { "commands": ["busybox$"], "annotations": {"^demo\\.io/hook$": "^yes$"},
//!             "hasBindMounts": true, "always": false, "or": false },
//!   "stages": ["prestart", "poststop"]
//! }
//! ```
//!
//! `when` conditions are regular expressions matched anywhere in the text
//! (anchor them with `^`/`$`): `commands` against the container's first
//! argument, `annotations` keys and values against the container's and the
//! pod's annotations (the pod's win). All given conditions must hold, or any
//! one with `"or": true`. Stages: `prestart`, `createRuntime`,
//! `createContainer`, `startContainer`, `poststart`, `poststop`. Hooks are
//! injected in file-name order.
//!
//! The directories are checked again before each container is created, so
//! hooks added, changed or removed later take effect without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use nri::api::{
    optional, Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, Hook, Hooks,
    PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin};
use regex::Regex;

use crate::common::{container_name, yaml};

/// Where hook files are looked for by default, lowest precedence first.
pub const DEFAULT_HOOK_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// A loaded hook file.
#[derive(Debug)]
pub struct HookFile {
    /// The file it came from.
    pub file: PathBuf,
    /// The hook to inject.
    pub hook: Hook,
    /// Stages to inject it at.
    pub stages: Vec<Stage>,
    when: When,
}

/// OCI hook stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `prestart` (deprecated by OCI, still used).
    Prestart,
    /// `createRuntime`
    CreateRuntime,
    /// `createContainer`
    CreateContainer,
    /// `startContainer`
    StartContainer,
    /// `poststart`
    Poststart,
    /// `poststop`
    Poststop,
}

impl Stage {
    fn parse(name: &str) -> Option<Stage> {
        Some(match name {
            "prestart" => Stage::Prestart,
            "createRuntime" => Stage::CreateRuntime,
            "createContainer" => Stage::CreateContainer,
            "startContainer" => Stage::StartContainer,
            "poststart" => Stage::Poststart,
            "poststop" => Stage::Poststop,
            _ => return None,
        })
    }
}

#[derive(Debug, Default)]
struct When {
    always: Option<bool>,
    annotations: Vec<(Regex, Regex)>,
    commands: Vec<Regex>,
    has_bind_mounts: Option<bool>,
    or: bool,
}

impl When {
    /// The matching rules of containers/common's hooks 1.0.0.
    fn matches(
        &self,
        command: Option<&str>,
        annotations: &BTreeMap<&str, &str>,
        bind_mounts: bool,
    ) -> bool {
        let mut matched = 0;
        let mut check = |ok: bool| -> Option<bool> {
            match (ok, self.or) {
                (true, true) => Some(true),
                (true, false) => {
                    matched += 1;
                    None
                }
                (false, true) => None,
                (false, false) => Some(false),
            }
        };
        if let Some(always) = self.always {
            if let Some(r) = check(always) {
                return r;
            }
        }
        if let Some(wanted) = self.has_bind_mounts {
            if let Some(r) = check(wanted && bind_mounts) {
                return r;
            }
        }
        for (key, value) in &self.annotations {
            let ok = annotations
                .iter()
                .any(|(k, v)| key.is_match(k) && value.is_match(v));
            if let Some(r) = check(ok) {
                return r;
            }
        }
        if !self.commands.is_empty() {
            let ok = command.is_some_and(|c| self.commands.iter().any(|re| re.is_match(c)));
            if let Some(r) = check(ok) {
                return r;
            }
        }
        matched > 0
    }
}

/// Reads one hook file.
pub fn load_hook_file(file: &Path) -> Result<HookFile, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    let doc = yaml::parse(&text).map_err(|e| e.to_string())?;
    let err = |e: yaml::Error| e.to_string();
    let version = doc
        .get("version")
        .map(|v| v.to_string_value("version"))
        .transpose()
        .map_err(err)?;
    if version.as_deref() != Some("1.0.0") {
        return Err(format!(
            "unsupported hook schema version {version:?}, expected \"1.0.0\""
        ));
    }
    let spec = doc.get("hook").ok_or("missing required property: hook")?;
    let mut hook = Hook::new();
    hook.path = spec
        .get("path")
        .ok_or("missing required property: hook.path")?
        .to_string_value("hook.path")
        .map_err(err)?;
    if let Some(args) = spec.get("args") {
        hook.args = args.to_string_list("hook.args").map_err(err)?;
    }
    if let Some(env) = spec.get("env") {
        hook.env = env.to_string_list("hook.env").map_err(err)?;
    }
    if let Some(timeout) = spec.get("timeout") {
        hook.timeout = optional(timeout.to_i64("hook.timeout").map_err(err)?);
    }
    std::fs::metadata(&hook.path).map_err(|e| format!("hook.path {}: {e}", hook.path))?;

    let stages = doc
        .get("stages")
        .ok_or("missing required property: stages")?
        .to_string_list("stages")
        .map_err(err)?
        .iter()
        .map(|s| Stage::parse(s).ok_or_else(|| format!("unknown stage {s:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    if stages.is_empty() {
        return Err("stages is empty".into());
    }

    let regex = |what: &str, re: &str| {
        Regex::new(re).map_err(|e| format!("{what}: invalid regular expression {re:?}: {e}"))
    };
    let mut when = When::default();
    let cond = doc.get("when").ok_or("missing required property: when")?;
    for (key, value) in cond.to_map("when").map_err(err)? {
        match key.as_str() {
            "always" => when.always = Some(value.to_bool("when.always").map_err(err)?),
            "hasBindMounts" => {
                when.has_bind_mounts = Some(value.to_bool("when.hasBindMounts").map_err(err)?)
            }
            "or" => when.or = value.to_bool("when.or").map_err(err)?,
            "commands" => {
                for re in value.to_string_list("when.commands").map_err(err)? {
                    when.commands.push(regex("when.commands", &re)?);
                }
            }
            "annotations" => {
                for (k, v) in value.to_map("when.annotations").map_err(err)? {
                    let v = v.to_string_value("when.annotations").map_err(err)?;
                    when.annotations.push((
                        regex("when.annotations", k)?,
                        regex("when.annotations", &v)?,
                    ));
                }
            }
            other => return Err(format!("unknown condition when.{other}")),
        }
    }
    if when.always.is_none()
        && when.has_bind_mounts.is_none()
        && when.annotations.is_empty()
        && when.commands.is_empty()
    {
        return Err("when has no conditions".into());
    }
    Ok(HookFile {
        file: file.to_path_buf(),
        hook,
        stages,
        when,
    })
}

/// The `*.json` files of `dirs`, a later directory's file replacing an
/// earlier one of the same name, in file-name order.
fn hook_files(dirs: &[PathBuf]) -> Listing {
    let mut files = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let meta = entry.metadata().ok();
            let stamp = (
                entry.path(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            );
            files.insert(name, stamp);
        }
    }
    files
}

type Listing = BTreeMap<String, (PathBuf, Option<SystemTime>, u64)>;

#[derive(Default)]
struct Loaded {
    /// The listing the hooks were loaded from; `None` forces a reload.
    seen: Option<Listing>,
    hooks: Vec<HookFile>,
}

/// The hook injector plugin.
pub struct HookInjector {
    dirs: Mutex<Vec<PathBuf>>,
    loaded: Mutex<Loaded>,
}

impl HookInjector {
    /// A hook injector reading hook files from `dirs`, lowest precedence first.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        let injector = HookInjector {
            dirs: Mutex::new(dirs),
            loaded: Mutex::new(Loaded::default()),
        };
        injector.refresh();
        injector
    }

    /// Reloads the hook files if any was added, removed or changed.
    fn refresh(&self) {
        let dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let files = hook_files(&dirs);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.seen.as_ref() == Some(&files) {
            return;
        }
        let mut hooks = Vec::new();
        for (path, _, _) in files.values() {
            match load_hook_file(path) {
                Ok(hook) => {
                    log::info!("loaded hook {} ({})", path.display(), hook.hook.path);
                    hooks.push(hook);
                }
                Err(e) => log::warn!("skipping hook file {}: {e}", path.display()),
            }
        }
        loaded.seen = Some(files);
        loaded.hooks = hooks;
    }

    /// The hooks for a container.
    pub fn hooks_for(&self, pod: &PodSandbox, container: &Container) -> Hooks {
        self.refresh();
        let mut annotations: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in container.annotations.iter().chain(pod.annotations.iter()) {
            annotations.insert(k, v);
        }
        let command = container.args.first().map(String::as_str);
        let bind_mounts = !container.mounts.is_empty();
        let mut hooks = Hooks::new();
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        for file in &loaded.hooks {
            if !file.when.matches(command, &annotations, bind_mounts) {
                continue;
            }
            log::info!(
                "{}: injecting hook {} from {}",
                container_name(pod, container),
                file.hook.path,
                file.file.display()
            );
            for stage in &file.stages {
                let list = match stage {
                    Stage::Prestart => &mut hooks.prestart,
                    Stage::CreateRuntime => &mut hooks.create_runtime,
                    Stage::CreateContainer => &mut hooks.create_container,
                    Stage::StartContainer => &mut hooks.start_container,
                    Stage::Poststart => &mut hooks.poststart,
                    Stage::Poststop => &mut hooks.poststop,
                };
                list.push(file.hook.clone());
            }
        }
        hooks
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
        let doc = yaml::parse(config).map_err(|e| format!("invalid configuration: {e}"))?;
        nri::logging::configure_from_text(config)?;
        if let Some(dirs) = doc.get("hookDirs") {
            let dirs = dirs.to_string_list("hookDirs")?;
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
        let hooks = self.hooks_for(pod, container);
        let mut adjust = ContainerAdjustment::new();
        if !hooks.is_empty() {
            adjust.add_hooks(hooks);
        } else {
            log::debug!("{}: no hooks to inject", container_name(pod, container));
        }
        Ok((adjust, Vec::new()))
    }
}
