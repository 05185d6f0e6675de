//! Log capture (everything the crate logs through `log`), processes and the
//! per-scenario context.

use crate::*;

// ---------------------------------------------------------------------------
// Log capture: everything the crate logs through `log` lands here, so that a
// scenario can look for what the runtime said (chunked Synchronize, plugins
// dropped) and fail on unexpected warnings.

pub(crate) struct Recorder {
    pub(crate) lines: Mutex<Vec<(log::Level, String)>>,
    pub(crate) verbose: AtomicBool,
}

pub(crate) static RECORDER: Recorder = Recorder {
    lines: Mutex::new(Vec::new()),
    verbose: AtomicBool::new(false),
};

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = format!("{}", record.args());
        if self.verbose.load(Ordering::Relaxed) {
            eprintln!("    | {:<5} {}", record.level(), msg);
        }
        lock(&self.lines).push((record.level(), msg));
    }

    fn flush(&self) {}
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn log_mark() -> usize {
    lock(&RECORDER.lines).len()
}

pub(crate) fn log_since(mark: usize) -> Vec<(log::Level, String)> {
    let lines = lock(&RECORDER.lines);
    lines[mark.min(lines.len())..].to_vec()
}

/// Runtime log lines that reveal a plugin being dropped.
pub(crate) const DROP_PATTERNS: &[&str] = &[
    "dropping plugin",
    "dropped while relaying",
    "removing closed plugin",
    "did not register",
    "failed to configure",
    "failed to synchronize",
    "refusing registration",
];

// ---------------------------------------------------------------------------
// Processes, scenario context.

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) name: String,
    pub(crate) out: PathBuf,
}

impl Proc {
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) struct Ctx {
    pub(crate) dir: PathBuf,
    pub(crate) plugin: PathBuf,
    pub(crate) plugin2: Option<PathBuf>,
    /// A contract plugin built on NRI v0.9.0, for the StateChange fallback.
    pub(crate) old_plugin: Option<PathBuf>,
    pub(crate) verbose: bool,
    pub(crate) procs: Vec<Proc>,
    pub(crate) allow_drops: bool,
    pub(crate) allowed: Vec<&'static str>,
}

impl Ctx {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn builder(&self) -> RuntimeBuilder {
        Runtime::builder()
            .name(RT_NAME)
            .version(RT_VERSION)
            .emulate(nri())
            .plugin_output(PluginOutput::File(self.path("launched.out")))
    }

    pub(crate) fn expect_drops(&mut self) {
        self.allow_drops = true;
    }

    /// Starts an external plugin dialing `listener` and accepts it. Returns
    /// the handle and the process slot.
    pub(crate) fn external(
        &mut self,
        listener: &PluginListener,
        bin: &Path,
        name: &str,
        idx: &str,
        config: &str,
    ) -> R<(PluginHandle, usize)> {
        self.external_with(listener, bin, name, idx, config, &[])
    }

    pub(crate) fn spawn_external(
        &mut self,
        listener: &PluginListener,
        bin: &Path,
        name: &str,
        idx: &str,
        config: &str,
    ) -> R<usize> {
        self.spawn_external_with(listener, bin, name, idx, config, &[])
    }

    /// Starts an external plugin with `args` after the usual flags and
    /// accepts it.
    pub(crate) fn external_with(
        &mut self,
        listener: &PluginListener,
        bin: &Path,
        name: &str,
        idx: &str,
        config: &str,
        args: &[&str],
    ) -> R<(PluginHandle, usize)> {
        let slot = self.spawn_external_with(listener, bin, name, idx, config, args)?;
        match listener.accept_timeout(ACCEPT_TIMEOUT) {
            Ok(h) => Ok((h, slot)),
            Err(e) => Err(format!(
                "external plugin {idx}-{name}: {e}{}",
                self.output_of(slot)
            )),
        }
    }

    pub(crate) fn spawn_external_with(
        &mut self,
        listener: &PluginListener,
        bin: &Path,
        name: &str,
        idx: &str,
        config: &str,
        args: &[&str],
    ) -> R<usize> {
        let out = self.path(&format!("{idx}-{name}.{}.out", self.procs.len()));
        let file = File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let err = file.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("-socket")
            .arg(listener.path())
            .args(["-name", name, "-idx", idx]);
        if !config.is_empty() {
            let cfg = self.path(&format!("{idx}-{name}.conf"));
            fs::write(&cfg, config).map_err(|e| format!("{}: {e}", cfg.display()))?;
            cmd.arg("-config").arg(&cfg);
        }
        cmd.args(args);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        self.procs.push(Proc {
            child,
            name: format!("{idx}-{name}"),
            out,
        });
        Ok(self.procs.len() - 1)
    }

    pub(crate) fn output_of(&self, slot: usize) -> String {
        let p = &self.procs[slot];
        match fs::read_to_string(&p.out) {
            Ok(s) if !s.trim().is_empty() => {
                format!(" (plugin {} output: {})", p.name, trunc(s.trim(), 400))
            }
            _ => String::new(),
        }
    }

    pub(crate) fn dump_outputs(&self) {
        for p in &self.procs {
            if let Ok(s) = fs::read_to_string(&p.out) {
                eprintln!("    --- {} output:\n{s}", p.name);
            }
        }
        if let Ok(s) = fs::read_to_string(self.path("launched.out")) {
            eprintln!("    --- launched plugins' output:\n{s}");
        }
    }
}

pub(crate) fn trunc(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...({} bytes)", &s[..end], s.len())
}

extern "C" {
    pub(crate) fn kill(pid: i32, sig: i32) -> i32;
}

pub(crate) fn sigkill(pid: u32) -> R {
    signal(pid, 9, "SIGKILL")
}

/// Freezes a process (SIGSTOP): it keeps its connection and answers
/// nothing until [`sigcont`]. Returns once the process is stopped (the
/// signal itself is asynchronous).
pub(crate) fn sigstop(pid: u32) -> R {
    signal(pid, 19, "SIGSTOP")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
        if state == Some('T') {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "process {pid} did not stop within 5s (state {state:?})"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn sigcont(pid: u32) -> R {
    signal(pid, 18, "SIGCONT")
}

fn signal(pid: u32, sig: i32, name: &str) -> R {
    // SAFETY: kill(2) with a pid of a process this program started
    // (through the runtime) and a signal number; no memory is involved.
    let rc = unsafe { kill(pid as i32, sig) };
    ensure!(
        rc == 0,
        "kill({pid}, {name}): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// The sockets a process has open (`socket:[inode]`).
pub(crate) fn socket_inodes(pid: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(target) = fs::read_link(e.path()) {
                let t = target.to_string_lossy().into_owned();
                if t.starts_with("socket:") {
                    out.insert(t);
                }
            }
        }
    }
    out
}

/// True while `/proc/<pid>` exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
            state != Some('Z')
        }
        Err(_) => false,
    }
}

pub(crate) fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}
