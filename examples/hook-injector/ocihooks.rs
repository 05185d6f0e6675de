//! OCI hook files as `go.podman.io/common/pkg/hooks` v0.66.1 reads and
//! matches them (the library upstream's Go hook-injector uses, formerly
//! `github.com/containers/common/pkg/hooks`; Podman and CRI-O read the same
//! files).
//!
//! - Discovery: each directory's entries ending in `.json`, in name order; a
//!   file of the same name in a later directory replaces an earlier one, but
//!   only once it loads. A file that vanished (a dangling link) is skipped.
//! - Formats: `1.0.0` (`{"version": "1.0.0", "hook": {...}, "when": {...},
//!   "stages": [...]}`) and `0.1.0` (`hook`, `arguments`, `stage(s)`,
//!   `cmd(s)`, `annotation(s)`, `hasbindmounts`; its conditions are
//!   any-of), read with Go's JSON rules (`nri::decode::from_json`): field
//!   names in any case, unknown keys ignored. `or` is a 0.1.0 notion: a
//!   1.0.0 file's `or` key is ignored, as in Go.
//! - Validation: the hook's binary must exist, every pattern compile (Go's
//!   syntax, see [`goregexp`](super::goregexp)), `stages` be given and known.
//! - Startup: like `hooks.New`, [`Manager::load`] reports an error when a
//!   directory's first failing file failed for another reason than a
//!   missing hook binary; the files that did load are kept either way, as
//!   the library's directory monitor keeps them.
//! - Matching: hooks in the order of their lower-cased file names; `always`,
//!   `hasBindMounts`, each `annotations` pattern pair, then `commands`
//!   against the first argument (an error if there is none), which decide
//!   alone once reached.
//! - Stages: a hook's stages in the order its file lists them; a `prestart`
//!   hook is injected at `createRuntime` (the OCI runtime-spec deprecates
//!   `prestart`, and runs `createRuntime` hooks at the same point), in the
//!   order of the matching files, among that stage's other hooks
//!   (`containers/common` v0.56.0, which the v0.9 sample used, kept them at
//!   `prestart`).
//!
//! One difference from the library: a hook file that is not a regular file
//! once links are followed (a FIFO, a device) is an error instead of being
//! read, which in Go can block or never end.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use nri::api::{optional, Hook as NriHook, Hooks};
use serde::Deserialize;

use super::goregexp;

/// The stages a hook can be injected at.
pub const STAGES: [&str; 6] = [
    "createContainer",
    "createRuntime",
    "prestart",
    "poststart",
    "poststop",
    "startContainer",
];

/// An OCI hook (runtime-spec's `Hook`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Hook {
    /// `path`: the hook binary.
    pub path: String,
    /// `args`, the first being the name it runs as.
    pub args: Vec<String>,
    /// `env`, `NAME=value` items.
    pub env: Vec<String>,
    /// `timeout` in seconds.
    pub timeout: Option<i64>,
}

impl Hook {
    /// The NRI hook.
    pub fn to_nri(&self) -> NriHook {
        NriHook {
            path: self.path.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            timeout: self.timeout.map(optional).unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// When a hook applies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct When {
    /// `always`
    pub always: Option<bool>,
    /// `annotations`: key pattern to value pattern.
    pub annotations: BTreeMap<String, String>,
    /// `commands`: patterns for the container's first argument.
    pub commands: Vec<String>,
    /// `hasBindMounts`
    #[serde(rename = "hasBindMounts")]
    pub has_bind_mounts: Option<bool>,
    /// Any condition suffices (0.1.0 files only).
    #[serde(skip)]
    pub or: bool,
}

/// A hook file in the 1.0.0 format (0.1.0 files are converted to it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HookFile {
    /// `version`
    pub version: String,
    /// `hook`
    pub hook: Hook,
    /// `when`
    pub when: When,
    /// `stages`; `None` when absent or `null`.
    pub stages: Option<Vec<String>>,
}

/// A 0.1.0 hook file.
#[derive(Default, Deserialize)]
#[serde(default)]
struct OldHookFile {
    hook: Option<String>,
    arguments: Option<Vec<String>>,
    stages: Option<Vec<String>>,
    stage: Option<Vec<String>>,
    cmds: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    annotations: Option<Vec<String>>,
    annotation: Option<Vec<String>>,
    #[serde(rename = "hasbindmounts")]
    has_bind_mounts: Option<bool>,
}

/// What the version check reads (named as the Go struct is, which Go's
/// messages show: `Go struct field version.version`).
#[allow(non_camel_case_types)]
#[derive(Default, Deserialize)]
#[serde(default)]
struct version {
    version: String,
}

/// Why a hook file did not load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// What is wrong.
    pub message: String,
    /// The hook binary does not exist: `hooks.New` tolerates a directory
    /// whose first failure is this one.
    pub missing_binary: bool,
}

fn fail(message: impl Into<String>) -> ReadError {
    ReadError {
        message: message.into(),
        missing_binary: false,
    }
}

/// Parses hook file content in either format.
pub fn parse(content: &[u8]) -> Result<HookFile, ReadError> {
    let ver: version =
        nri::decode::from_json(content).map_err(|e| fail(format!("version check: {e}")))?;
    match ver.version.as_str() {
        "1.0.0" => {
            let file: Option<HookFile> =
                nri::decode::from_json(content).map_err(|e| fail(format!("1.0.0: {e}")))?;
            file.ok_or_else(|| fail("nil hook"))
        }
        "0.1.0" | "" => {
            let old: OldHookFile =
                nri::decode::from_json(content).map_err(|e| fail(format!("0.1.0: {e}")))?;
            convert(old).map_err(|e| fail(format!("0.1.0: {e}")))
        }
        other => Err(fail(format!("unrecognized hook version: {other:?}"))),
    }
}

fn either(
    plural: Option<Vec<String>>,
    single: Option<Vec<String>>,
    name: &str,
) -> Result<Option<Vec<String>>, String> {
    match (plural, single) {
        (Some(_), Some(_)) => Err(format!("cannot set both '{name}' and '{name}s'")),
        (plural, single) => Ok(plural.or(single)),
    }
}

fn convert(old: OldHookFile) -> Result<HookFile, String> {
    let path = old.hook.ok_or("missing required property: hook")?;
    let stages = either(old.stages, old.stage, "stage")?;
    if stages.is_none() {
        return Err("missing required property: stages".into());
    }
    let commands = either(old.cmds, old.cmd, "cmd")?;
    let annotations = either(old.annotations, old.annotation, "annotation")?;
    let args = match old.arguments {
        Some(arguments) => std::iter::once(path.clone()).chain(arguments).collect(),
        None => Vec::new(),
    };
    Ok(HookFile {
        version: "1.0.0".into(),
        hook: Hook {
            path,
            args,
            ..Default::default()
        },
        when: When {
            commands: commands.unwrap_or_default(),
            has_bind_mounts: old.has_bind_mounts,
            annotations: annotations
                .map(|a| BTreeMap::from([(".*".to_string(), a.join("|"))]))
                .unwrap_or_default(),
            or: true,
            ..Default::default()
        },
        stages,
    })
}

/// A hook's `when` patterns, compiled.
#[derive(Clone, Debug)]
pub struct Patterns {
    annotations: Vec<(regex::Regex, regex::Regex)>,
    commands: Vec<regex::Regex>,
}

/// Checks a hook as the library does when it loads it; its patterns compiled.
pub fn validate(file: &HookFile) -> Result<Patterns, ReadError> {
    if file.version != "1.0.0" {
        return Err(fail(format!(
            "unexpected hook version {:?} (expecting 1.0.0)",
            file.version
        )));
    }
    if file.hook.path.is_empty() {
        return Err(fail("missing required property: hook.path"));
    }
    if let Err(e) = std::fs::metadata(&file.hook.path) {
        return Err(ReadError {
            message: format!("hook binary {}: {e}", file.hook.path),
            missing_binary: e.kind() == io::ErrorKind::NotFound,
        });
    }
    let mut patterns = Patterns {
        annotations: Vec::new(),
        commands: Vec::new(),
    };
    for (key, value) in &file.when.annotations {
        patterns.annotations.push((
            goregexp::compile(key).map_err(|e| fail(format!("invalid annotation key: {e}")))?,
            goregexp::compile(value).map_err(|e| fail(format!("invalid annotation value: {e}")))?,
        ));
    }
    for command in &file.when.commands {
        patterns
            .commands
            .push(goregexp::compile(command).map_err(|e| fail(format!("invalid command: {e}")))?);
    }
    let stages = file
        .stages
        .as_ref()
        .ok_or_else(|| fail("missing required property: stages"))?;
    if let Some(stage) = stages.iter().find(|s| !STAGES.contains(&s.as_str())) {
        return Err(fail(format!("unknown stage {stage:?}")));
    }
    Ok(patterns)
}

/// What reading one directory entry came to.
pub enum Entry {
    /// Not a hook file (no `.json` suffix), or one that vanished.
    Skipped,
    /// A hook that loaded.
    Loaded(Box<(HookFile, Patterns)>),
    /// A hook file that did not.
    Failed(ReadError),
}

/// Reads and checks one hook file.
pub fn read(path: &Path) -> Entry {
    if !path.as_os_str().as_encoded_bytes().ends_with(b".json") {
        return Entry::Skipped;
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Entry::Skipped,
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            return Entry::Failed(fail(format!("{}: not a regular file", path.display())));
        }
        _ => {}
    }
    let content = match std::fs::read(path) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Entry::Skipped,
        Err(e) => return Entry::Failed(fail(format!("{}: {e}", path.display()))),
    };
    match parse(&content).and_then(|file| validate(&file).map(|p| (file, p))) {
        Ok(loaded) => Entry::Loaded(Box::new(loaded)),
        Err(mut e) => {
            e.message = format!("parsing hook {}: {}", path.display(), e.message);
            Entry::Failed(e)
        }
    }
}

/// A hook that loaded: its file name, the file and its compiled patterns.
pub type LoadedHook = (Vec<u8>, HookFile, Patterns);

/// The hooks of some directories, in the order they are matched in.
#[derive(Clone, Debug, Default)]
pub struct Manager {
    /// The hooks by lower-cased file name; names equal but for case (which
    /// Go leaves in no particular order) by name.
    pub hooks: Vec<LoadedHook>,
}

/// A hook injected at a stage, with the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected<'a> {
    /// The OCI stage it is injected at (see [`oci_stage`]).
    pub stage: &'a str,
    /// The hook file's name.
    pub file: &'a [u8],
    /// The hook.
    pub hook: &'a Hook,
}

impl Manager {
    /// Reads `dirs`, later ones replacing files of the same name. The error
    /// is the one `hooks.New` would return; the manager holds every hook
    /// that loaded regardless, and `problems` each file that did not.
    pub fn load(dirs: &[PathBuf]) -> (Manager, Option<String>, Vec<String>) {
        let mut by_name: BTreeMap<Vec<u8>, (HookFile, Patterns)> = BTreeMap::new();
        let mut startup_error = None;
        let mut problems = Vec::new();
        for dir in dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let message = format!("{}: {e}", dir.display());
                    startup_error.get_or_insert_with(|| message.clone());
                    problems.push(message);
                    continue;
                }
            };
            let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.sort();
            let mut first_failure: Option<ReadError> = None;
            for name in names {
                match read(&dir.join(&name)) {
                    Entry::Skipped => {}
                    Entry::Loaded(loaded) => {
                        by_name.insert(name.as_encoded_bytes().to_vec(), *loaded);
                    }
                    Entry::Failed(e) => {
                        problems.push(e.message.clone());
                        first_failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_failure.filter(|e| !e.missing_binary) {
                startup_error.get_or_insert(e.message);
            }
        }
        let mut hooks: Vec<LoadedHook> = by_name
            .into_iter()
            .map(|(name, (file, patterns))| (name, file, patterns))
            .collect();
        // The match order, once: by lower-cased name, then by name.
        hooks.sort_by_cached_key(|(name, _, _)| (go_to_lower(name), name.clone()));
        (Manager { hooks }, startup_error, problems)
    }

    /// The hooks for a container with these arguments, annotations and bind
    /// mounts, stage by stage in the order the library gives them.
    pub fn hooks(
        &self,
        args: &[String],
        annotations: &BTreeMap<String, String>,
        has_bind_mounts: bool,
    ) -> Result<Vec<Injected<'_>>, String> {
        let mut injected = Vec::new();
        for (name, file, patterns) in &self.hooks {
            let matched = matches(&file.when, patterns, args, annotations, has_bind_mounts)
                .map_err(|e| format!("matching hook {:?}: {e}", String::from_utf8_lossy(name)))?;
            if matched {
                for stage in file.stages.iter().flatten() {
                    injected.push(Injected {
                        stage: oci_stage(stage),
                        file: name,
                        hook: &file.hook,
                    });
                }
            }
        }
        Ok(injected)
    }
}

/// The OCI stage a hook file's stage injects at: `prestart` hooks go to
/// `createRuntime`.
pub fn oci_stage(stage: &str) -> &str {
    match stage {
        "prestart" => "createRuntime",
        other => other,
    }
}

/// NRI hooks from injected hooks.
pub fn to_nri(injected: &[Injected<'_>]) -> Hooks {
    let mut hooks = Hooks::new();
    for i in injected {
        let list = match i.stage {
            "prestart" => &mut hooks.prestart,
            "createRuntime" => &mut hooks.create_runtime,
            "createContainer" => &mut hooks.create_container,
            "startContainer" => &mut hooks.start_container,
            "poststart" => &mut hooks.poststart,
            _ => &mut hooks.poststop,
        };
        list.push(i.hook.to_nri());
    }
    hooks
}

/// The library's `When.Match`.
pub fn matches(
    when: &When,
    patterns: &Patterns,
    args: &[String],
    annotations: &BTreeMap<String, String>,
    has_bind_mounts: bool,
) -> Result<bool, String> {
    let mut matched = 0;
    // Some(result) ends the match.
    let check = |ok: bool, matched: &mut i32| match (ok, when.or) {
        (true, true) => Some(true),
        (true, false) => {
            *matched += 1;
            None
        }
        (false, true) => None,
        (false, false) => Some(false),
    };
    if let Some(always) = when.always {
        if let Some(result) = check(always, &mut matched) {
            return Ok(result);
        }
    }
    if let Some(wanted) = when.has_bind_mounts {
        if let Some(result) = check(wanted && has_bind_mounts, &mut matched) {
            return Ok(result);
        }
    }
    for (key, value) in &patterns.annotations {
        let ok = annotations
            .iter()
            .any(|(k, v)| key.is_match(k) && value.is_match(v));
        if let Some(result) = check(ok, &mut matched) {
            return Ok(result);
        }
    }
    if !patterns.commands.is_empty() {
        let command = args
            .first()
            .ok_or("process.args must have at least one entry")?;
        return Ok(patterns.commands.iter().any(|re| re.is_match(command)));
    }
    Ok(matched > 0)
}

/// Go's `strings.ToLower` on a file name: each character's simple lower
/// case, U+FFFD for each byte of invalid UTF-8.
pub fn go_to_lower(name: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = name;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, false),
            Err(e) => (
                std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
                true,
            ),
        };
        for c in valid.chars() {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => out.push(l),
                _ if c == '\u{130}' => out.push('i'),
                _ => out.push(c),
            }
        }
        rest = &rest[valid.len()..];
        if bad {
            out.push('\u{FFFD}');
            rest = &rest[1..];
        }
    }
    out
}
