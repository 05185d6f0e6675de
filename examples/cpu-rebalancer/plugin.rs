//! The CPU rebalancer: spreads a pool of CPUs evenly over the containers on
//! the node, and moves them around as containers come and go, or as the
//! pool changes. It shows every way a plugin can change containers other
//! than the one an event is about:
//!
//! | when | how |
//! |---|---|
//! | Synchronize | updates returned in the reply (existing containers) |
//! | CreateContainer | the new container's cpuset in its adjustment, the others' in updates returned along |
//! | StopContainer | updates returned in the reply |
//! | RemoveContainer (a notification: its reply carries nothing) | [`Context::update_containers_after_reply`]: sent once the reply is written |
//! | the CPU pool changes (hotplug, checked on a timer) | [`Stub::update_containers`] from a thread of the plugin's own: unsolicited updates |
//!
//! Each container gets a contiguous slice of the pool (`0-3`, `4-7`, ...);
//! with more containers than CPUs, they share CPUs round-robin. Containers
//! whose pod has the annotation `cpu-rebalancer.nri.io/skip: "true"` are
//! left alone.
//!
//! Configuration: `cpus: 0-7` fixes the pool (default: the online CPUs, from
//! `/sys/devices/system/cpu/online`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{select, Sender};
use nri::api::{
    Container, ContainerAdjustment, ContainerState, ContainerUpdate, Event, EventMask, PodSandbox,
};
use nri::stub::{Context, HandlerResult, Plugin, Stub, SyncState};
use serde::Deserialize;

/// The configuration key the rebalancer reads (besides `logFile`, `syslog`
/// and `verbose`, see nri::logging).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    /// `cpus`: the CPU pool, such as `0-3` (instead of the online CPUs).
    cpus: Option<String>,
}

/// Pod annotation that keeps the plugin's hands off a pod's containers.
pub const SKIP_ANNOTATION: &str = "cpu-rebalancer.nri.io/skip";

#[derive(Debug, Default)]
struct State {
    pool: Vec<u32>,
    /// Managed containers in the order they arrived: id → name.
    order: Vec<String>,
    names: BTreeMap<String, String>,
    /// The cpuset each container was last given.
    assigned: BTreeMap<String, String>,
}

impl State {
    /// Recomputes every slice; returns the containers whose cpuset changed.
    fn rebalance(&mut self) -> Vec<(String, String)> {
        let slices = split(&self.pool, self.order.len());
        let mut changed = Vec::new();
        for (id, cpus) in self.order.iter().zip(slices) {
            if self.assigned.get(id) != Some(&cpus) {
                self.assigned.insert(id.clone(), cpus.clone());
                changed.push((id.clone(), cpus));
            }
        }
        changed
    }

    fn remove(&mut self, id: &str) -> bool {
        let before = self.order.len();
        self.order.retain(|c| c != id);
        self.names.remove(id);
        self.assigned.remove(id);
        self.order.len() != before
    }

    fn updates(&self, changed: &[(String, String)]) -> Vec<ContainerUpdate> {
        changed
            .iter()
            .map(|(id, cpus)| {
                log::info!(
                    "{}: cpuset {cpus}",
                    self.names.get(id).map_or(id.as_str(), String::as_str)
                );
                let mut update = ContainerUpdate::for_container(id);
                update.set_linux_cpuset_cpus(cpus);
                update
            })
            .collect()
    }
}

/// The CPU rebalancer plugin.
#[derive(Debug)]
pub struct CpuRebalancer {
    state: Mutex<State>,
    fixed_pool: Mutex<bool>,
}

impl CpuRebalancer {
    /// A rebalancer over `pool`.
    pub fn new(pool: Vec<u32>, fixed: bool) -> Self {
        CpuRebalancer {
            state: Mutex::new(State {
                pool,
                ..Default::default()
            }),
            fixed_pool: Mutex::new(fixed),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool in use.
    #[allow(dead_code)] // for the demo and the tests
    pub fn pool(&self) -> Vec<u32> {
        self.state().pool.clone()
    }

    /// Whether the pool was fixed by configuration (then the watcher leaves
    /// it alone).
    pub fn is_pool_fixed(&self) -> bool {
        *self.fixed_pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the pool; returns the updates that moves containers to it.
    pub fn set_pool(&self, pool: Vec<u32>) -> Vec<ContainerUpdate> {
        let mut state = self.state();
        if state.pool == pool {
            return Vec::new();
        }
        log::info!("CPU pool is now {}", format_cpuset(&pool));
        state.pool = pool;
        let changed = state.rebalance();
        state.updates(&changed)
    }

    /// The cpuset a container was last given.
    #[allow(dead_code)] // for the demo and the tests
    pub fn cpuset_of(&self, id: &str) -> Option<String> {
        self.state().assigned.get(id).cloned()
    }
}

fn managed(pod: Option<&PodSandbox>) -> bool {
    pod.and_then(|p| p.annotations.get(SKIP_ANNOTATION))
        .map_or(true, |v| v != "true")
}

impl Plugin for CpuRebalancer {
    fn events(&self) -> EventMask {
        EventMask::from_events(&[
            Event::CREATE_CONTAINER,
            Event::STOP_CONTAINER,
            Event::REMOVE_CONTAINER,
        ])
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
        if let Some(text) = cfg.cpus {
            let pool = parse_cpuset(&text).map_err(|e| format!("cpus: {e}"))?;
            self.state().pool = pool;
            *self.fixed_pool.lock().unwrap_or_else(|e| e.into_inner()) = true;
            log::info!("CPU pool fixed by configuration: {text}");
        }
        Ok(None)
    }

    fn synchronize(
        &self,
        _ctx: &Context<'_>,
        sync: SyncState,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let pods = sync.pods().collect::<nri::Result<Vec<PodSandbox>>>()?;
        let mut state = self.state();
        state.order.clear();
        state.names.clear();
        state.assigned.clear();
        // Containers decode one at a time; only the pods are kept whole.
        for ctr in sync.containers() {
            let ctr: Container = ctr?;
            let alive = matches!(
                ctr.state.enum_value_or_default(),
                ContainerState::CONTAINER_CREATED
                    | ContainerState::CONTAINER_RUNNING
                    | ContainerState::CONTAINER_PAUSED
            );
            let pod = pods.iter().find(|p| p.id == ctr.pod_sandbox_id);
            if alive && managed(pod) {
                state.order.push(ctr.id.clone());
                state.names.insert(ctr.id.clone(), ctr.name.clone());
            }
        }
        log::info!(
            "synchronized: {} containers over CPUs {}",
            state.order.len(),
            format_cpuset(&state.pool)
        );
        let changed = state.rebalance();
        Ok(state.updates(&changed))
    }

    fn create_container(
        &self,
        _ctx: &Context<'_>,
        pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<(ContainerAdjustment, Vec<ContainerUpdate>)> {
        let mut adjust = ContainerAdjustment::new();
        if !managed(Some(pod)) {
            return Ok((adjust, Vec::new()));
        }
        let mut state = self.state();
        state.order.push(container.id.clone());
        state
            .names
            .insert(container.id.clone(), container.name.clone());
        let mut changed = state.rebalance();
        // The new container's own cpuset goes in its adjustment: it does
        // not exist yet, so it cannot be updated.
        if let Some(pos) = changed.iter().position(|(id, _)| *id == container.id) {
            let (_, cpus) = changed.remove(pos);
            log::info!("{}: cpuset {cpus} (new)", container.name);
            adjust.set_linux_cpuset_cpus(cpus);
        }
        Ok((adjust, state.updates(&changed)))
    }

    fn stop_container(
        &self,
        _ctx: &Context<'_>,
        _pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<Vec<ContainerUpdate>> {
        let mut state = self.state();
        if !state.remove(&container.id) {
            return Ok(Vec::new());
        }
        let changed = state.rebalance();
        Ok(state.updates(&changed))
    }

    fn remove_container(
        &self,
        ctx: &Context<'_>,
        _pod: &PodSandbox,
        container: &Container,
    ) -> HandlerResult<()> {
        let mut state = self.state();
        if !state.remove(&container.id) {
            return Ok(());
        }
        let changed = state.rebalance();
        let updates = state.updates(&changed);
        if !updates.is_empty() {
            // A notification's reply cannot carry updates, and calling
            // Stub::update_containers here would deadlock a v0.9.0 runtime:
            // queue them to go out right after the reply.
            ctx.update_containers_after_reply(updates);
        }
        Ok(())
    }
}

/// A thread that re-reads the CPU pool every `interval` and pushes the
/// updates a change causes with [`Stub::update_containers`]. Stops when
/// dropped.
pub struct PoolWatcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PoolWatcher {
    /// Starts watching; `read_pool` returns the current pool (`None` when it
    /// cannot be read).
    pub fn start(
        plugin: Arc<CpuRebalancer>,
        stub: Stub,
        interval: Duration,
        read_pool: impl Fn() -> Option<Vec<u32>> + Send + 'static,
    ) -> std::io::Result<PoolWatcher> {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let ticker = crossbeam_channel::tick(interval);
        let thread = std::thread::Builder::new()
            .name("cpu-pool-watcher".into())
            .spawn(move || loop {
                select! {
                    recv(stop_rx) -> _ => return,
                    recv(ticker) -> _ => {
                        if plugin.is_pool_fixed() {
                            continue;
                        }
                        let Some(pool) = read_pool() else { continue };
                        let updates = plugin.set_pool(pool);
                        if updates.is_empty() {
                            continue;
                        }
                        match stub.update_containers(updates) {
                            Ok(failed) if failed.is_empty() => {}
                            Ok(failed) => {
                                for u in failed {
                                    log::warn!("runtime failed to update container {}", u.container_id);
                                }
                            }
                            // Not connected: the next Synchronize sends every cpuset again.
                            Err(e) => log::warn!("cannot push CPU updates: {e}"),
                        }
                    }
                }
            })?;
        Ok(PoolWatcher {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for PoolWatcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The online CPUs, from `/sys/devices/system/cpu/online`, else `0..n` for
/// the CPUs this process may use.
pub fn online_cpus() -> Option<Vec<u32>> {
    match std::fs::read_to_string("/sys/devices/system/cpu/online") {
        Ok(text) => parse_cpuset(text.trim()).ok(),
        Err(_) => {
            let n = std::thread::available_parallelism().ok()?.get() as u32;
            Some((0..n).collect())
        }
    }
}

/// Splits `pool` into `n` slices as even as possible, as cpuset strings.
pub fn split(pool: &[u32], n: usize) -> Vec<String> {
    if n == 0 || pool.is_empty() {
        return vec![String::new(); n];
    }
    if n > pool.len() {
        return (0..n)
            .map(|i| format_cpuset(&[pool[i % pool.len()]]))
            .collect();
    }
    let (size, extra) = (pool.len() / n, pool.len() % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let len = size + usize::from(i < extra);
            let slice = &pool[start..start + len];
            start += len;
            format_cpuset(slice)
        })
        .collect()
}

/// Parses a Linux CPU list such as `0-3,8,10-11`.
pub fn parse_cpuset(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid CPU list {text:?} (expected e.g. 0-3,8)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(format!("empty CPU list {text:?}"));
    }
    Ok(cpus)
}

/// Formats CPUs as a Linux CPU list, with ranges.
pub fn format_cpuset(cpus: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}
