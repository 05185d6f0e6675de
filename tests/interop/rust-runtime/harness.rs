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

/// Runtime log lines that reveal a plugin being dropped (whatever their
/// level).
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
    /// Runtime log lines the scenario provokes and that may appear (whole
    /// lines).
    allowed: Vec<regex::Regex>,
    /// Runtime log lines the scenario provokes and that must appear (whole
    /// lines).
    expected: Vec<regex::Regex>,
}

impl Ctx {
    pub(crate) fn new(
        dir: PathBuf,
        plugin: PathBuf,
        plugin2: Option<PathBuf>,
        old_plugin: Option<PathBuf>,
        verbose: bool,
    ) -> Ctx {
        Ctx {
            dir,
            plugin,
            plugin2,
            old_plugin,
            verbose,
            procs: Vec::new(),
            allowed: Vec::new(),
            expected: Vec::new(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn builder(&self) -> RuntimeBuilder {
        let (name, version) = runtime_identity();
        Runtime::builder()
            .name(name)
            .version(version)
            .emulate(nri())
            .plugin_output(PluginOutput::File(self.path("launched.out")))
    }

    /// Whole runtime log lines matching `re` may appear: the scenario
    /// provokes them, but whether they show depends on timing.
    pub(crate) fn allow_log(&mut self, re: &str) {
        self.allowed.push(whole_line(re));
    }

    /// Whole runtime log lines matching `re` are provoked by the scenario
    /// and must appear before it ends.
    pub(crate) fn expect_log(&mut self, re: &str) {
        self.expected.push(whole_line(re));
    }

    /// The log rule every scenario obeys: each expected line appears, and
    /// no other warning, error or plugin drop does.
    pub(crate) fn check_log(&self, lines: &[(log::Level, String)]) -> R {
        for re in &self.expected {
            ensure!(
                lines.iter().any(|(_, msg)| re.is_match(msg)),
                "the runtime never logged the expected line /{re}/"
            );
        }
        for (level, msg) in lines {
            let suspicious =
                *level <= log::Level::Warn || DROP_PATTERNS.iter().any(|p| msg.contains(p));
            let provoked = self
                .allowed
                .iter()
                .chain(&self.expected)
                .any(|re| re.is_match(msg));
            ensure!(
                !suspicious || provoked,
                "unexpected runtime log line: {level} {}",
                trunc(msg, 300)
            );
        }
        Ok(())
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

fn whole_line(re: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{re})$"))
        .unwrap_or_else(|e| panic!("harness bug: log pattern {re:?}: {e}"))
}

// ---------------------------------------------------------------------------
// The lines nri::runtime logs when a plugin fails, as regexes for
// `Ctx::expect_log` and `Ctx::allow_log` (arguments are regexes too).

/// A request failed with the plugin's error (the plugin stays).
pub(crate) fn failed_line(plugin: &str, request: &str, cause: &str) -> String {
    format!("plugin {plugin} failed {request}: {cause}")
}

/// A request failed fatally and the plugin is dropped.
pub(crate) fn dropping_line(plugin: &str, request: &str, cause: &str) -> String {
    format!("dropping plugin {plugin}: {request} failed: {cause}")
}

/// A set's request goes on without a plugin that failed it fatally.
pub(crate) fn proceeding_line(plugin: &str, request: &str, cause: &str) -> String {
    format!("plugin {plugin} failed to handle {request} request, proceeding without it: {cause}")
}

/// A set forgets a plugin whose connection is gone.
pub(crate) fn removing_line(plugin: &str) -> String {
    format!("removing closed plugin {plugin}")
}

/// The cause of a request that got no reply in time (naming the plugin
/// when the connection knows it).
pub(crate) fn no_reply(method: &str) -> String {
    format!(
        r#"nri\.pkg\.api\.v1alpha1\.Plugin/{method} got no reply(?: from plugin "[^"]*")? within [0-9.]+m?s"#
    )
}

/// The cause of a request that met a closed connection: seen closed, or
/// written to a peer that had gone before the runtime noticed.
pub(crate) const CONNECTION_CLOSED: &str = "(?:connection closed: .*|writing to the connection \
     failed: (?:Broken pipe|Connection reset by peer).*)";

/// The cause of a request the plugin failed with the contract's
/// `interop/fail` status (UNKNOWN); `method` is a regex (the RPC, which for
/// a notification may be StateChange).
pub(crate) fn fail_status(method: &str) -> String {
    format!(
        r"nri\.pkg\.api\.v1alpha1\.Plugin/{method} failed with Unknown: {}",
        regex::escape(FAIL_MSG)
    )
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
