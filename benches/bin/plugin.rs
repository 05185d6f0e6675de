//! The Rust side of the benchmark: the same trivial logic as the Go bench
//! plugin (benches/go/plugin), on `nri::stub`. CreateContainer adds 2 env
//! vars, 1 mount and sets CPU shares; StartContainer and Synchronize do
//! nothing.
//!
//! Configured with `stats-file=PATH`, it writes its statistics there on
//! Shutdown; launched under the name `bench-nostats`, it counts
//! none. With the configuration `sync=walk` (from Configure, or `NRI_BENCH_SYNC=walk`
//! in the environment), Synchronize decodes every pod and container, one at
//! a time, as a plugin scanning the state does; with `sync=decode` it
//! decodes the whole state into vectors at once (what the Go stub hands its
//! plugins).
//!
//! `bench-plugin [-socket PATH] [-name NAME] [-idx NN] [-workers N]`; launched by a
//! runtime (NRI_PLUGIN_SOCKET set) it needs no arguments.

#[path = "common.rs"]
mod common;

use nri::api::{Container, ContainerAdjustment, ContainerUpdate, Event, EventMask, PodSandbox};
use std::sync::Mutex;

use nri::stub::{Context, HandlerResult, Plugin, Stub, SyncState};

#[derive(Clone, Copy, PartialEq)]
enum SyncMode {
    Nothing,
    Walk,
    Decode,
}

impl SyncMode {
    fn parse(s: &str) -> Option<SyncMode> {
        match s.trim() {
            "" | "nothing" => Some(SyncMode::Nothing),
            "walk" => Some(SyncMode::Walk),
            "decode" => Some(SyncMode::Decode),
            _ => None,
        }
    }
}

struct Bench(Mutex<SyncMode>);

/// Where to leave the plugin's statistics when it ends (`stats-file=PATH`
/// in the configuration).
static STATS_FILE: Mutex<Option<String>> = Mutex::new(None);

impl Plugin for Bench {
    fn events(&self) -> EventMask {
        EventMask::from_events(&[Event::CREATE_CONTAINER, Event::START_CONTAINER])
    }

    fn shutdown(&self, ctx: &Context<'_>) {
        // Leave the statistics where the configuration asked (the runtime
        // kills a plugin it launched right after).
        let stats_file = STATS_FILE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(path) = stats_file {
            if let Err(e) = std::fs::write(&path, ctx.stub().stats().to_prometheus()) {
                eprintln!("bench-plugin: {path}: {e}");
            }
        }
    }

    fn configure(
        &self,
        _ctx: &Context<'_>,
        config: &str,
        _runtime: &str,
        _version: &str,
    ) -> HandlerResult<Option<EventMask>> {
        for item in config.split_whitespace() {
            if let Some(v) = item.strip_prefix("sync=") {
                let mode = SyncMode::parse(v).ok_or_else(|| {
                    format!("config {config:?}: sync= takes walk, decode or nothing")
                })?;
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = mode;
            } else if let Some(path) = item.strip_prefix("stats-file=") {
                *STATS_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_string());
            } else {
                return Err(format!(
                    "config {config:?}: expected sync=walk|decode|nothing and stats-file=PATH"
                )
                .into());
            }
        }
        Ok(None)
    }

    fn synchronize(
        &self,
        ctx: &Context<'_>,
        state: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let mode = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        match mode {
            SyncMode::Nothing => {}
            SyncMode::Walk => {
                let mut seen = 0usize;
                for pod in state.pods() {
                    seen += pod?.labels.len();
                }
                for ctr in state.containers() {
                    seen += ctr?.env.len();
                }
                log::debug!("walked the state: {seen} labels and env entries");
            }
            SyncMode::Decode => {
                let (pods, containers) = state.into_decoded()?;
                // Freeing 10,000 decoded containers takes tens of
                // milliseconds: do it after the reply is on the wire (as
                // Go's garbage collector does, off the reply's path).
                ctx.after_reply(move |_| drop((pods, containers)));
            }
        }
        Ok(Vec::new())
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        Ok((common::adjust(), Vec::new()))
    }

    fn start_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> HandlerResult<()> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let env = std::env::var("NRI_BENCH_SYNC").unwrap_or_default();
    let Some(mode) = SyncMode::parse(&env) else {
        eprintln!("bench-plugin: NRI_BENCH_SYNC={env:?}: expected walk, decode or nothing");
        std::process::exit(2);
    };
    let mut b = Stub::builder(Bench(Mutex::new(mode)));
    // Launched as `bench-nostats`, the plugin counts no request statistics
    // (to measure what counting costs).
    if std::env::var("NRI_PLUGIN_NAME").as_deref() == Ok("bench-nostats") {
        b = b.collect_stats(false);
    }
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.trim_start_matches('-'), value) {
            ("name", Some(v)) => b = b.plugin_name(v),
            ("idx", Some(v)) => b = b.plugin_index(v),
            ("socket", Some(v)) => b = b.socket_path(v),
            ("workers", Some(v)) => b = b.workers(v.parse().unwrap_or(4)),
            (other, _) => {
                eprintln!("bench-plugin: bad argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let stub = match b.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench-plugin: {e}");
            std::process::exit(1);
        }
    };
    match stub.run() {
        Ok(()) | Err(nri::Error::ConnectionClosed(_)) => {}
        Err(e) => {
            eprintln!("bench-plugin: {e}");
            std::process::exit(1);
        }
    }
}
