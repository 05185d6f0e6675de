//! A child process started with `posix_spawnp`, with chosen descriptors
//! placed at chosen numbers, and its kill and wait.
//!
//! The standard library's `Command` can place only stdin, stdout and
//! stderr; putting anything at another number takes a `pre_exec` hook, and
//! a hook makes it `fork`. Forking a runtime that holds a large state
//! marks every private page copy-on-write, so the parent's next write to
//! each page faults, and the first thing a runtime does after launching a
//! plugin is write a cached size into every object of the state it
//! synchronizes. `posix_spawnp` starts the child without copying the
//! parent's address space (the C library uses a `vfork`-like clone), as the
//! Go reference's `os/exec` does. The functions come from the C library,
//! which is always linked on Unix; no extra crate.

use std::ffi::CString;
use std::io;
use std::os::raw::{c_char, c_int, c_short};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Room for the C library's `posix_spawn_file_actions_t` and
/// `posix_spawnattr_t` (80 and 336 bytes on glibc, less on musl), treated
/// as opaque: only the C library reads or writes them.
#[repr(C, align(16))]
struct Opaque([u8; 512]);

/// Room for a `sigset_t` (128 bytes on glibc and musl), opaque likewise.
#[repr(C, align(16))]
struct SigSet([u8; 256]);

impl Opaque {
    fn new() -> Box<Opaque> {
        Box::new(Opaque([0; 512]))
    }
}

extern "C" {
    fn posix_spawn_file_actions_init(actions: *mut Opaque) -> c_int;
    fn posix_spawn_file_actions_destroy(actions: *mut Opaque) -> c_int;
    fn posix_spawn_file_actions_adddup2(actions: *mut Opaque, fd: c_int, newfd: c_int) -> c_int;
    fn posix_spawnattr_init(attr: *mut Opaque) -> c_int;
    fn posix_spawnattr_destroy(attr: *mut Opaque) -> c_int;
    fn posix_spawnattr_setflags(attr: *mut Opaque, flags: c_short) -> c_int;
    fn posix_spawnattr_setsigmask(attr: *mut Opaque, mask: *const SigSet) -> c_int;
    fn posix_spawnattr_setsigdefault(attr: *mut Opaque, set: *const SigSet) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, signo: c_int) -> c_int;
    fn posix_spawnp(
        pid: *mut c_int,
        file: *const c_char,
        actions: *const Opaque,
        attr: *const Opaque,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
}

/// `posix_spawnattr_setflags` flags (the same on Linux's C libraries and
/// the BSDs).
const POSIX_SPAWN_SETSIGDEF: c_short = 0x04;
const POSIX_SPAWN_SETSIGMASK: c_short = 0x08;
const SIGPIPE: c_int = 13;
const SIGKILL: c_int = 9;
const WNOHANG: c_int = 1;

/// Turns a C library return value that is an error number into a result.
fn check(what: &str, ret: c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        let e = io::Error::from_raw_os_error(ret);
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// A NUL-terminated copy of `s`, or an error naming `what` when `s` holds
/// a NUL byte (which the C strings of `exec` cannot carry).
fn c_string(what: &str, s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {:?} holds a NUL byte", String::from_utf8_lossy(s)),
        )
    })
}

/// What a child starts with: its program, environment and descriptors.
pub(crate) struct Spawn<'a> {
    program: &'a Path,
    env: Vec<CString>,
    /// `(source, target)`: `source`, open in the parent, becomes `target`
    /// in the child, in this order.
    fds: Vec<(c_int, c_int)>,
}

impl<'a> Spawn<'a> {
    /// A child running `program` (searched for in `PATH` when it holds no
    /// slash), with no arguments, an empty environment, every descriptor
    /// of the parent that is close-on-exec closed and the others
    /// inherited, no signal blocked, and `SIGPIPE` at its default.
    pub(crate) fn new(program: &'a Path) -> Self {
        Spawn {
            program,
            env: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// Adds `key=value` to the child's environment.
    pub(crate) fn env(&mut self, key: &str, value: &str) -> io::Result<&mut Self> {
        let entry = format!("{key}={value}");
        self.env
            .push(c_string("environment entry", entry.as_bytes())?);
        Ok(self)
    }

    /// Places `source` (open in the parent) at `target` in the child.
    /// Placements happen in the order they were added. `source` must not be
    /// a number an earlier placement targets, nor equal to `target` (a
    /// descriptor placed onto itself would keep its close-on-exec flag).
    pub(crate) fn place(&mut self, source: c_int, target: c_int) -> &mut Self {
        self.fds.push((source, target));
        self
    }

    /// Starts the child.
    pub(crate) fn spawn(&self) -> io::Result<Process> {
        for (i, &(source, target)) in self.fds.iter().enumerate() {
            if source == target || self.fds[..i].iter().any(|&(_, t)| t == source) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("descriptor {source} cannot be placed at {target}: it would be overwritten or keep close-on-exec"),
                ));
            }
        }
        let program = c_string("program path", self.program.as_os_str().as_bytes())?;
        let argv = [program.as_ptr(), std::ptr::null()];
        let mut envp: Vec<*const c_char> = self.env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());

        let mut actions = Opaque::new();
        // SAFETY: `actions` is writable memory larger than any C library's
        // `posix_spawn_file_actions_t`; it is destroyed only after a
        // successful init, below.
        check("posix_spawn_file_actions_init", unsafe {
            posix_spawn_file_actions_init(&mut *actions)
        })?;
        let mut attr = Opaque::new();
        // SAFETY: as for `actions`, for `posix_spawnattr_t`.
        let attr_init = check("posix_spawnattr_init", unsafe {
            posix_spawnattr_init(&mut *attr)
        });
        let result = attr_init.and_then(|()| {
            let spawned = self.spawn_with(&mut actions, &mut attr, &program, &argv, &envp);
            // SAFETY: `attr` was initialized above.
            unsafe { posix_spawnattr_destroy(&mut *attr) };
            spawned
        });
        // SAFETY: `actions` was initialized above.
        unsafe { posix_spawn_file_actions_destroy(&mut *actions) };
        result
    }

    fn spawn_with(
        &self,
        actions: &mut Opaque,
        attr: &mut Opaque,
        program: &CString,
        argv: &[*const c_char; 2],
        envp: &[*const c_char],
    ) -> io::Result<Process> {
        // SAFETY: every pointer passed below points to initialized objects
        // owned by this frame or `self` that outlive the calls; the sigset
        // is zeroed memory larger than `sigset_t`, initialized by
        // `sigemptyset` before use.
        unsafe {
            for &(source, target) in &self.fds {
                check(
                    "posix_spawn_file_actions_adddup2",
                    posix_spawn_file_actions_adddup2(actions, source, target),
                )?;
            }
            let mut empty = SigSet([0; 256]);
            sigemptyset(&mut empty);
            let mut pipe = SigSet([0; 256]);
            sigemptyset(&mut pipe);
            sigaddset(&mut pipe, SIGPIPE);
            check(
                "posix_spawnattr_setsigmask",
                posix_spawnattr_setsigmask(attr, &empty),
            )?;
            check(
                "posix_spawnattr_setsigdefault",
                posix_spawnattr_setsigdefault(attr, &pipe),
            )?;
            check(
                "posix_spawnattr_setflags",
                posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
            )?;
            let mut pid: c_int = 0;
            let ret = posix_spawnp(
                &mut pid,
                program.as_ptr(),
                actions,
                attr,
                argv.as_ptr(),
                envp.as_ptr(),
            );
            if ret != 0 {
                return Err(io::Error::from_raw_os_error(ret));
            }
            Ok(Process { pid, exited: false })
        }
    }
}

/// A child started by [`Spawn::spawn`]. Like `std::process::Child`, it is
/// neither killed nor waited for when dropped.
#[derive(Debug)]
pub(crate) struct Process {
    pid: c_int,
    /// Whether it was waited for: its pid may since belong to another
    /// process, so it is neither signalled nor waited for again.
    exited: bool,
}

impl Process {
    /// The child's process id.
    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends SIGKILL, unless the child was already waited for.
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.exited {
            return Ok(());
        }
        // SAFETY: plain system call on a pid this process spawned and has
        // not reaped, so it cannot have been reused.
        if unsafe { kill(self.pid, SIGKILL) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Reaps the child if it has exited: `Ok(true)` then, `Ok(false)` while
    /// it runs.
    pub(crate) fn try_wait(&mut self) -> io::Result<bool> {
        self.wait_with(WNOHANG)
    }

    /// Waits for the child to exit and reaps it.
    pub(crate) fn wait(&mut self) -> io::Result<()> {
        self.wait_with(0).map(|_| ())
    }

    fn wait_with(&mut self, options: c_int) -> io::Result<bool> {
        while !self.exited {
            let mut status: c_int = 0;
            // SAFETY: plain system call; `status` is a local.
            let ret = unsafe { waitpid(self.pid, &mut status, options) };
            if ret == self.pid {
                self.exited = true;
            } else if ret == 0 {
                return Ok(false);
            } else {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    /// A shell reading `script` from its stdin (it gets no arguments).
    fn shell(script: &str) -> (Spawn<'static>, std::io::PipeReader) {
        let (stdin, mut feed) = std::io::pipe().unwrap();
        feed.write_all(script.as_bytes()).unwrap();
        drop(feed);
        let mut spawn = Spawn::new(Path::new("sh"));
        // The reader must outlive the spawn; the caller keeps it.
        spawn.place(stdin.as_raw_fd(), 0);
        (spawn, stdin)
    }

    #[test]
    fn the_child_gets_its_environment_and_descriptors_at_their_numbers() {
        let (mut spawn, _stdin) = shell("printf '%s|%s' \"$NRI_A\" \"${HOME-unset}\" >&3\n");
        let (mut out, report) = std::io::pipe().unwrap();
        spawn.env("NRI_A", "hello world").unwrap();
        spawn.place(report.as_raw_fd(), 3);
        let mut child = spawn.spawn().unwrap();
        drop(report);
        let mut got = String::new();
        out.read_to_string(&mut got).unwrap();
        child.wait().unwrap();
        assert!(child.try_wait().unwrap(), "a reaped child stays reaped");
        // Only what was set: the parent's HOME is not passed on.
        assert_eq!(got, "hello world|unset");
    }

    #[test]
    fn a_killed_child_is_reaped() {
        // The shell blocks reading a pipe nobody writes to.
        let (stdin, _feed) = std::io::pipe().unwrap();
        let mut spawn = Spawn::new(Path::new("sh"));
        spawn.place(stdin.as_raw_fd(), 0);
        let mut child = spawn.spawn().unwrap();
        assert!(child.id() > 0);
        assert!(!child.try_wait().unwrap(), "the shell waits for input");
        child.kill().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while !child.try_wait().unwrap() {
            assert!(Instant::now() < until, "a SIGKILLed child did not exit");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let err = Spawn::new(Path::new("/nonexistent/nri-no-such-program"))
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn a_nul_in_the_environment_is_refused_by_name() {
        let err = Spawn::new(Path::new("sh")).env("A", "x\0y").err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("environment entry"), "{err}");
    }

    #[test]
    fn placing_a_descriptor_onto_itself_or_an_earlier_target_is_refused() {
        let err = Spawn::new(Path::new("sh")).place(5, 5).spawn().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let err = Spawn::new(Path::new("sh"))
            .place(7, 3)
            .place(3, 1)
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
}
