//! The differ: registers at several indices and logs, at each index but the
//! first, what the plugins before it changed in the pods and containers
//! they handled. A port of containerd/nri's `plugins/differ`.
//!
//! Runtimes hand each plugin the container as the plugins before it left
//! it. The instance at the first index keeps what it got; the one at the
//! next index takes that, compares it with what it got, logs the changes
//! and keeps what it got for the one after it; and so on:
//!
//! ```text
//! [99] CreateContainer: pod: <no changes>
//! [99] CreateContainer: container: create: [Annotations owner]: From: <nil> -> To: web
//! [99] CreateContainer: container: update: [Linux Resources Memory Limit]: From: <nil> -> To: value:536870912
//! ```
//!
//! The changes are found and worded as the Go differ's library,
//! `github.com/r3labs/diff/v3`, finds and words them (see `godiff.rs`): Go
//! field names, slice indices and map keys in the path, values as Go's `%v`
//! prints them. With `-yaml` the two YAML dumps are compared line by line
//! instead (see `yamldiff.rs`). `-verbose-level` 1 dumps what the first
//! index gets, 2 also the values before and after each change, 3 also the
//! whole state at Synchronize; dumps are the library's (`nri::api::dump`).
//!
//! Each index pairs what it gets with the value the index before it kept for
//! the same event of the same pod and container.
//!
//! Deliberate differences from the Go differ:
//!
//! - the Go differ pairs what an index gets with the oldest value the index
//!   before it kept, whatever the event: once a plugin in between fails an
//!   event (which then never reaches the later indices), every later pair
//!   is off by one and compares different containers; this port pairs by
//!   event, pod and container, so a failed event leaves one value unpaired
//!   instead;
//! - each index keeps at most [`MAX_QUEUED_BYTES`] of values, and at most
//!   [`MAX_QUEUED`] values, for the next (the oldest are dropped with a
//!   warning; Go keeps them all);
//! - an index that cannot be read as a number, a repeated index or one
//!   outside 0-99 is refused at start (Go reads a bad one as 0, and breaks
//!   its chain on a repeated one); `-verbose-level` takes a decimal number
//!   (Go's flag package also takes `0x`, `0o` and `0b` forms);
//! - a map's changes come in key order (Go's order is random), and in
//!   `-yaml` mode each line of the difference is a log line of its own;
//! - dumps are `nri::api::dump`'s compact YAML: the data Go's `yaml.Marshal`
//!   shows, with fields in `.proto` order (Go sorts them) and enums by name
//!   (Go writes their numbers); so are the two sides of a `-yaml`
//!   difference (Go prints go-cmp's report of them, a format go-cmp keeps
//!   deliberately unstable);
//! - the configuration text the runtime sends is read for the logging keys
//!   every example here takes (`logFile`, `syslog`, `verbose`); the Go
//!   differ's own keys (`indices`, `verboseLevel`, `yaml`) are not, as in
//!   Go, whose `Configure` does not match the stub's interface and is never
//!   called.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use nri::api::{
    Container, ContainerAdjustment, ContainerUpdate, Dump, Event, EventMask, LinuxResources,
    PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin, SyncState};

use super::gotree::{self, Go, Struct};
use super::{godiff, yamldiff};

/// Most bytes of values an index keeps for the next one.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;

/// Most values an index keeps for the next one.
pub const MAX_QUEUED: usize = 1024;

/// Where each line goes besides the log (tests collect them).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// What to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `-verbose-level`: 0 only changes; 1 also what the first index gets;
    /// 2 also the values before and after each change; 3 also the state at
    /// Synchronize.
    pub verbose_level: i64,
    /// `-yaml`: compare YAML dumps line by line.
    pub yaml: bool,
}

/// The indices the differ registers at, in the order given, with what each
/// keeps for the next.
pub struct Chain {
    config: Config,
    links: HashMap<i32, Link>,
    sink: Option<Sink>,
}

struct Link {
    prev: Option<i32>,
    next: Option<i32>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Saved>,
    bytes: usize,
}

struct Saved {
    /// The event, pod and container it is of.
    key: (&'static str, String, String),
    pod: Option<Kept>,
    container: Option<Kept>,
    bytes: usize,
}

/// A pod or container as an index got it: what the diff compares, and its
/// dump where the configuration prints dumps of earlier values.
struct Kept {
    tree: Struct,
    dump: String,
}

impl Kept {
    fn of<M: protobuf::MessageDyn + Dump>(message: &M, with_dump: bool) -> Kept {
        Kept {
            tree: gotree::of(message),
            dump: if with_dump {
                message.dump()
            } else {
                String::new()
            },
        }
    }

    /// Bytes it holds.
    fn bytes(&self) -> usize {
        held_bytes(&self.tree) + self.dump.len()
    }
}

impl Chain {
    /// The chain of `indices` (in their order), or why they cannot make one.
    pub fn new(indices: &[i32], config: Config) -> Result<Arc<Chain>, String> {
        Self::with_sink(indices, config, None)
    }

    /// Like [`Chain::new`], every line also handed to `sink`.
    pub fn with_sink(
        indices: &[i32],
        config: Config,
        sink: Option<Sink>,
    ) -> Result<Arc<Chain>, String> {
        if indices.len() < 2 {
            return Err("There must be at least two index given.".into());
        }
        let mut links = HashMap::new();
        for (i, &idx) in indices.iter().enumerate() {
            if !(0..=99).contains(&idx) {
                return Err(format!("index {idx} is not between 0 and 99"));
            }
            let link = Link {
                prev: i.checked_sub(1).map(|p| indices[p]),
                next: indices.get(i + 1).copied(),
                queue: Mutex::default(),
            };
            if links.insert(idx, link).is_some() {
                return Err(format!("index {idx} is given twice"));
            }
        }
        Ok(Arc::new(Chain {
            config,
            links,
            sink,
        }))
    }

    /// The plugin for index `idx` of the chain; `None` if the chain has no
    /// such index.
    pub fn plugin(self: &Arc<Self>, idx: i32) -> Option<Differ> {
        self.links.contains_key(&idx).then(|| Differ {
            chain: Arc::clone(self),
            idx,
            name: format!("[{idx:02}]"),
        })
    }
}

/// Reads `-indices` as the Go differ does, but strictly: comma-separated
/// decimal numbers.
pub fn parse_indices(text: &str) -> Result<Vec<i32>, String> {
    if !text.contains(',') {
        return Err("There must be at least two index given.".into());
    }
    text.split(',')
        .map(|part| {
            part.trim()
                .parse::<i32>()
                .map_err(|_| format!("-indices {text:?}: {part:?} is not an index"))
        })
        .collect()
}

/// The differ at one index.
pub struct Differ {
    chain: Arc<Chain>,
    idx: i32,
    name: String,
}

impl Differ {
    fn line(&self, text: &str) {
        log::info!("{text}");
        if let Some(sink) = &self.chain.sink {
            sink(text);
        }
    }

    fn link(&self) -> &Link {
        // Chain::plugin makes a plugin only for an index of the chain.
        &self.chain.links[&self.idx]
    }

    /// The Go differ's `dump`: `[NN] PREFIX: TAG:` and the YAML, a line each.
    fn dump(&self, prefix: &str, objects: &[(&str, &str)]) {
        for (tag, yaml) in objects {
            self.line(&format!("{} {prefix}: {tag}:", self.name));
            for l in yaml.trim_end().lines() {
                self.line(&format!("{} {prefix}:    {l}", self.name));
            }
        }
    }

    fn save(
        &self,
        key: (&'static str, String, String),
        pod: Option<Kept>,
        container: Option<Kept>,
    ) {
        let bytes = pod.as_ref().map_or(0, Kept::bytes) + container.as_ref().map_or(0, Kept::bytes);
        let mut queue = self.link().queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.items.push_back(Saved {
            key,
            pod,
            container,
            bytes,
        });
        queue.bytes += bytes;
        while (queue.bytes > MAX_QUEUED_BYTES && queue.items.len() > 1)
            || queue.items.len() > MAX_QUEUED
        {
            if let Some(old) = queue.items.pop_front() {
                queue.bytes -= old.bytes;
                log::warn!(
                    "[{}] dropped the oldest value kept for the next index: over {MAX_QUEUED_BYTES} bytes kept (is the next index registered?)",
                    self.idx
                );
            }
        }
    }

    /// The value the index `prev` kept for the same event, pod and
    /// container, the oldest first.
    fn take_previous(&self, prev: i32, key: &(&'static str, String, String)) -> Option<Saved> {
        // A link's previous index is one of the chain's.
        let link = &self.chain.links[&prev];
        let mut queue = link.queue.lock().unwrap_or_else(|e| e.into_inner());
        let at = queue.items.iter().position(|s| s.key == *key)?;
        let saved = queue.items.remove(at)?;
        queue.bytes -= saved.bytes;
        Some(saved)
    }

    /// The Go differ's `differ`.
    fn differ(&self, event: &'static str, pod: &PodSandbox, container: Option<&Container>) {
        let config = self.chain.config;
        let key = (
            event,
            pod.id.clone(),
            container.map(|c| c.id.clone()).unwrap_or_default(),
        );
        let Some(prev) = self.link().prev else {
            if config.verbose_level > 0 {
                let pod_dump = pod.dump();
                let container_dump = container.map(Dump::dump);
                let mut objects = vec![("pod", pod_dump.as_str())];
                if let Some(c) = &container_dump {
                    objects.push(("container", c.as_str()));
                }
                self.dump(event, &objects);
            }
            // The next index dumps what this one got at level 2, and in
            // -yaml mode.
            let with_dump = config.verbose_level > 1 || config.yaml;
            self.save(
                key,
                Some(Kept::of(pod, with_dump)),
                container.map(|c| Kept::of(c, with_dump)),
            );
            return;
        };
        let Some(initial) = self.take_previous(prev, &key) else {
            log::debug!(
                "[{}] {event}: skipping nil element, plugin startup not yet finished",
                self.idx
            );
            return;
        };
        let with_dump = config.verbose_level > 1 || config.yaml;
        let pod = Kept::of(pod, with_dump);
        let container = container.map(|c| Kept::of(c, with_dump));
        if let Some(before) = &initial.pod {
            self.print_diff(event, "pod", before, &pod);
        }
        if let (Some(before), Some(now)) = (&initial.container, &container) {
            self.print_diff(event, "container", before, now);
        }
        if self.link().next.is_some() {
            self.save(key, Some(pod), container);
        }
    }

    fn print_diff(&self, event: &str, obj: &str, before: &Kept, now: &Kept) {
        let config = self.chain.config;
        let idx = self.idx;
        if config.yaml {
            match yamldiff::diff(&before.dump, &now.dump) {
                None => self.line(&format!("[{idx}] {event}: {obj}: <no changes>")),
                Some(text) => {
                    for l in text.lines() {
                        self.line(&format!("[{idx}] {event}: {obj}: {l}"));
                    }
                }
            }
            return;
        }
        if config.verbose_level > 1 {
            self.line(&format!("[{idx}] Original values for {obj}"));
            self.dump(event, &[(obj, &before.dump)]);
        }
        let changes = godiff::diff(&before.tree, &now.tree);
        if changes.is_empty() {
            self.line(&format!("[{idx}] {event}: {obj}: <no changes>"));
            return;
        }
        for change in &changes {
            self.line(&format!("[{idx}] {event}: {obj}: {}", change.line()));
        }
        if config.verbose_level > 1 {
            self.line(&format!("[{idx}] Values after changes for {obj}"));
            self.dump(event, &[(obj, &now.dump)]);
        }
    }
}

/// Appends a dump as an item of a YAML list.
fn push_list_item(list: &mut String, dump: &str) {
    let mut lines = dump.lines();
    list.push_str("- ");
    list.push_str(lines.next().unwrap_or("{}"));
    list.push('\n');
    for line in lines {
        list.push_str("  ");
        list.push_str(line);
        list.push('\n');
    }
}

/// Bytes a tree holds: its nodes and its text.
fn held_bytes(s: &Struct) -> usize {
    fn go(v: &Go) -> usize {
        std::mem::size_of::<Go>()
            + match v {
                Go::Str(s) => s.len(),
                Go::Enum(_, Some(name)) => name.len(),
                Go::Ptr(Some(s)) => held_bytes(s),
                Go::Slice(items) => items.iter().map(go).sum(),
                Go::Map(entries) => entries.iter().map(|(k, v)| k.len() + go(v)).sum(),
                _ => 0,
            }
    }
    std::mem::size_of::<Struct>()
        + s.text.len()
        + s.fields
            .iter()
            .map(|f| f.go_name.len() + f.json_name.len() + go(&f.value))
            .sum::<usize>()
}

impl Plugin for Differ {
    fn events(&self) -> EventMask {
        Event::RUN_POD_SANDBOX
            | Event::STOP_POD_SANDBOX
            | Event::REMOVE_POD_SANDBOX
            | Event::CREATE_CONTAINER
            | Event::POST_CREATE_CONTAINER
            | Event::START_CONTAINER
            | Event::POST_START_CONTAINER
            | Event::UPDATE_CONTAINER
            | Event::POST_UPDATE_CONTAINER
            | Event::STOP_CONTAINER
            | Event::REMOVE_CONTAINER
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        // The logging keys (logFile, syslog, verbose), as every example.
        nri::logging::configure_from_text(config)?;
        Ok(None)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        if self.chain.config.verbose_level > 2 {
            let mut pods = String::new();
            for pod in state.pods() {
                push_list_item(&mut pods, &pod?.dump());
            }
            let mut containers = String::new();
            for container in state.containers() {
                push_list_item(&mut containers, &container?.dump());
            }
            self.dump(
                "Synchronize",
                &[("pods", pods.as_str()), ("containers", containers.as_str())],
            );
        }
        Ok(Vec::new())
    }

    fn run_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.differ("RunPodSandbox", pod, None);
        Ok(())
    }

    fn stop_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.differ("StopPodSandbox", pod, None);
        Ok(())
    }

    fn remove_pod_sandbox(&self, _ctx: &Context<'_>, pod: &PodSandbox) -> HandlerResult<()> {
        self.differ("RemovePodSandbox", pod, None);
        Ok(())
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        self.differ("CreateContainer", pod, Some(container));
        Ok((ContainerAdjustment::new(), Vec::new()))
    }

    fn post_create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.differ("PostCreateContainer", pod, Some(container));
        Ok(())
    }

    fn start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.differ("StartContainer", pod, Some(container));
        Ok(())
    }

    fn post_start_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.differ("PostStartContainer", pod, Some(container));
        Ok(())
    }

    fn update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
        _resources: &LinuxResources,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.differ("UpdateContainer", pod, Some(container));
        Ok(Vec::new())
    }

    fn post_update_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.differ("PostUpdateContainer", pod, Some(container));
        Ok(())
    }

    fn stop_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        self.differ("StopContainer", pod, Some(container));
        Ok(Vec::new())
    }

    fn remove_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        self.differ("RemoveContainer", pod, Some(container));
        Ok(())
    }
}
