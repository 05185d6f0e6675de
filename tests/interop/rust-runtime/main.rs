//! The other direction of the interop harness: this crate's runtime side
//! (`nri::runtime`) drives a contract plugin (see `tests/interop/README.md`)
//! built on the reference Go stub (`github.com/containerd/nri` v0.9.0
//! `pkg/stub`), or any other implementation of the contract, through the
//! scenarios of the Go driver that make sense from the runtime's side.
//!
//! ```text
//! interop-runtime -plugin PATH [-plugin2 PATH] [-old-plugin PATH] [-nri VERSION] [-run REGEX] [-v]
//! interop-runtime -differential REFERENCE -plugin GOPLUGIN -nri v0.12.5 [-seed N] [-cases N] [-v]
//! interop-runtime -infer   (see infer.rs)
//! ```
//!
//! `-nri` names the NRI version the runtime emulates (default v0.9.0, the
//! version of the Go plugin `run.sh` builds); the plugins are expected to be
//! built on the same version. From v0.10 on, the scenarios of
//! `scenarios/v012.rs` run too.
//!
//! Prints `PASS <name> (<ms>ms)` or `FAIL <name>: <reason>` per scenario,
//! then `N passed, M failed`; exits 1 when anything failed, or when nothing
//! ran without a `-run` filter (a filter matching none of these scenarios,
//! e.g. one meant for the Go driver, is not an error).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nri::api::{
    optional, CDIDevice, Container, ContainerAdjustment, ContainerState, ContainerUpdate,
    CreateContainerResponse, Event, EventMask, Hook, Hooks, HugepageLimit, KeyValue, LinuxCPU,
    LinuxContainer, LinuxContainerAdjustment, LinuxContainerUpdate, LinuxDevice, LinuxMemory,
    LinuxNamespace, LinuxPids, LinuxPodSandbox, LinuxRdt, LinuxResources, Mount, POSIXRlimit,
    PodSandbox, StopContainerResponse, UpdateContainerResponse,
};
use nri::runtime::{
    CreateContainerReply, Emulation, PluginHandle, PluginListener, PluginOutput, PluginSet,
    Runtime, RuntimeBuilder,
};
use nri::ttrpc::Code;
use protobuf::reflect::{ReflectFieldRef, ReflectValueRef, RuntimeFieldType, RuntimeType};
use protobuf::{EnumOrUnknown, Message, MessageDyn, MessageField};

const FAIL_MSG: &str = "interop: failure requested";
/// Longest a scenario may take before it is reported as hung.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(25);
/// Scenarios not started by then are reported as failed, and a scenario
/// still running then is cut (whole run < 60 s).
const RUN_BUDGET: Duration = Duration::from_secs(55);
/// How long an external plugin has to dial us.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);

type R<T = ()> = Result<T, String>;

/// The NRI version the runtime emulates in this run (`-nri`).
static NRI: std::sync::OnceLock<Emulation> = std::sync::OnceLock::new();

fn nri() -> Emulation {
    NRI.get().copied().unwrap_or(Emulation::V0_9_0)
}

/// The runtime's name and version sent in Configure. A runtime before NRI
/// v0.12 sends no NRI version, so a plugin infers it from these: they name
/// a release embedding the emulated version (as the Go driver does). From
/// v0.12 on, a name no inference table knows: the version can only come
/// from Configure. `main` checks that the identity infers to the emulated
/// version.
fn runtime_identity() -> (&'static str, &'static str) {
    if nri_since(0, 12, 0) {
        return ("interop-rust-runtime", "v0.1.0");
    }
    match nri().as_str() {
        "v0.9.0" => ("cri-o", "v1.32.4"),
        "v0.10.0" => ("containerd", "v2.2.0"),
        "v0.11.0" => ("containerd", "v2.2.9"),
        _ => ("interop-rust-runtime", "v0.1.0"),
    }
}

/// Whether the emulated NRI version is `major.minor.patch` or newer: the
/// version gates of what a runtime of that version does (its adjustments,
/// its fields), compared as the release numbers the upstream sources have.
fn nri_since(major: u64, minor: u64, patch: u64) -> bool {
    nri().nri_version() >= nri::api::NriVersion::release(major, minor, patch)
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

mod compare;
mod contract;
mod differential;
mod drive;
mod fixtures;
mod harness;
mod infer;
mod scenarios;

use compare::*;
use contract::*;
use drive::*;
use fixtures::*;
use harness::*;
use scenarios::*;

// ---------------------------------------------------------------------------
// Runner.

struct Opts {
    plugin: PathBuf,
    /// `-differential REFERENCE`: run the differential check with this
    /// reference program instead of the scenarios.
    differential: Option<PathBuf>,
    seed: u64,
    cases: usize,
    plugin2: Option<PathBuf>,
    old_plugin: Option<PathBuf>,
    run: Option<regex::Regex>,
    verbose: bool,
}

fn number(v: Option<String>, what: &str) -> u64 {
    v.and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        eprintln!("interop-runtime: {what} needs a number");
        std::process::exit(2)
    })
}

fn usage() -> ! {
    eprintln!(
        "usage: interop-runtime -plugin PATH [-plugin2 PATH] [-old-plugin PATH] [-nri VERSION] [-run REGEX] [-v]\n       interop-runtime -differential REFERENCE -plugin GOPLUGIN -nri v0.12.5 [-seed N] [-cases N] [-v]\n       interop-runtime -infer < LINES_OF_RUNTIME_AND_VERSION"
    );
    std::process::exit(2)
}

fn parse_args() -> Opts {
    if std::env::args().skip(1).eq(["-infer"]) {
        infer::run();
    }
    let mut args = std::env::args().skip(1);
    let (mut plugin, mut plugin2, mut run, mut verbose) = (None, None, None, false);
    let mut old_plugin = None;
    let (mut differential, mut seed, mut cases) = (None, 1u64, 200u64);
    while let Some(a) = args.next() {
        match a.trim_start_matches('-') {
            "plugin" => plugin = args.next(),
            "plugin2" => plugin2 = args.next(),
            "old-plugin" => old_plugin = args.next(),
            "differential" => differential = args.next(),
            "seed" => seed = number(args.next(), "-seed"),
            "cases" => cases = number(args.next(), "-cases"),
            "nri" => {
                let v = args.next().unwrap_or_else(|| usage());
                let v = v.parse::<Emulation>().unwrap_or_else(|e| {
                    eprintln!("interop-runtime: -nri: {e}");
                    std::process::exit(2)
                });
                let _ = NRI.set(v);
            }
            "run" => run = args.next(),
            "v" => verbose = true,
            _ => usage(),
        }
    }
    let abs = |p: String| {
        let p = PathBuf::from(p);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        if !p.is_file() {
            eprintln!("interop-runtime: {} is not an executable file", p.display());
            std::process::exit(2);
        }
        p
    };
    let run = run.map(|r| {
        regex::Regex::new(&r).unwrap_or_else(|e| {
            eprintln!("interop-runtime: bad -run: {e}");
            std::process::exit(2)
        })
    });
    Opts {
        plugin: abs(plugin.unwrap_or_else(|| usage())),
        plugin2: plugin2.map(abs),
        old_plugin: old_plugin.map(abs),
        differential: differential.map(abs),
        seed,
        cases: cases as usize,
        run,
        verbose,
    }
}

static DIR_SEQ: AtomicUsize = AtomicUsize::new(0);

fn run_scenario(opts: &Opts, f: Scenario, timeout: Duration) -> R {
    let dir = std::env::temp_dir().join(format!(
        "nri-rt-interop-{}-{}",
        std::process::id(),
        DIR_SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut ctx = Ctx::new(
        dir.clone(),
        opts.plugin.clone(),
        opts.plugin2.clone(),
        opts.old_plugin.clone(),
        opts.verbose,
    );
    let mark = log_mark();
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut ctx)))
            .unwrap_or_else(|p| {
                Err(format!(
                    "panic: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ))
            });
        // let a plugin that dies right after its last reply show in the log
        thread::sleep(Duration::from_millis(50));
        let _ = tx.send((r, ctx));
    });
    let (mut r, ctx) = match rx.recv_timeout(timeout) {
        Ok(x) => x,
        Err(_) => {
            return Err(format!(
                "scenario did not finish within {timeout:?} (left running; temp dir {})",
                dir.display()
            ))
        }
    };
    if r.is_ok() {
        // the scenario's handles are gone by now: closes by the runtime
        // itself are not warnings, anything else is
        r = ctx.check_log(&log_since(mark));
    }
    if r.is_err() && ctx.verbose {
        ctx.dump_outputs();
    }
    let keep = ctx.verbose;
    drop(ctx); // kills the external plugins still running
    if keep {
        eprintln!("    (temp dir kept: {})", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    r
}

fn main() {
    let opts = parse_args();
    if !nri_since(0, 12, 0) {
        let (name, version) = runtime_identity();
        let inferred = nri::api::NriVersion::infer_from_runtime(name, version);
        if inferred.as_ref().ok() != Some(&nri().nri_version()) {
            eprintln!(
                "interop-runtime: no runtime identity infers to NRI {} ({name} {version} infers to {inferred:?})",
                nri()
            );
            std::process::exit(2);
        }
    }
    RECORDER.verbose.store(opts.verbose, Ordering::Relaxed);
    if log::set_logger(&RECORDER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    if let Some(reference) = &opts.differential {
        match differential::run(&opts, reference, opts.seed, opts.cases) {
            Ok((passed, failed)) => {
                println!("{passed} passed, {failed} failed");
                if failed > 0 {
                    std::process::exit(1);
                }
            }
            Err(e) => {
                println!("FAIL differential: {e}");
                println!("0 passed, 1 failed");
                std::process::exit(1);
            }
        }
        return;
    }
    let started = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in scenarios(opts.old_plugin.is_some()) {
        if opts.run.as_ref().is_some_and(|r| !r.is_match(name)) {
            continue;
        }
        if opts.verbose {
            eprintln!("=== {name}");
        }
        if started.elapsed() > RUN_BUDGET {
            failed += 1;
            println!("FAIL {name}: not run: the whole run went over {RUN_BUDGET:?}");
            continue;
        }
        let t = Instant::now();
        let timeout = SCENARIO_TIMEOUT.min(RUN_BUDGET.saturating_sub(started.elapsed()));
        match run_scenario(&opts, f, timeout) {
            Ok(()) => {
                passed += 1;
                println!("PASS {name} ({}ms)", t.elapsed().as_millis());
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || (passed == 0 && opts.run.is_none()) {
        std::process::exit(1);
    }
}
