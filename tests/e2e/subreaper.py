#!/usr/bin/env python3
"""Runs a command as a child subreaper and records how every orphan ends.

    subreaper.py STATUS_FILE -- COMMAND [ARG...]

Processes whose parent dies while they run (a plugin launched by containerd
when containerd is killed, the daemonized runc shims, container processes
whose shim is killed) are re-parented to this process instead of to init.
Each one is reaped here and a line `PID exited N` or `PID killed-by SIG`,
followed by its command name, is appended to STATUS_FILE: that is how the
end-to-end run learns the exit code of a plugin it did not start itself.

COMMAND runs as a direct child with NRI_E2E_REAPER_PID set to this process's
id, so it can find (and end, by PID) everything re-parented here. SIGTERM,
SIGINT and SIGHUP are passed on to COMMAND. When COMMAND ends, any process
still re-parented here is killed with SIGKILL and reaped (each is recorded
as a leftover), and this process exits with COMMAND's status.
"""

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return "?"


def describe(status):
    if os.WIFEXITED(status):
        return f"exited {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"killed-by {os.WTERMSIG(status)}"
    return f"status {status}"


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.stderr.write(__doc__)
        return 2
    status_file, command = sys.argv[1], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        sys.stderr.write(f"subreaper: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}\n")
        return 1

    os.environ["NRI_E2E_REAPER_PID"] = str(os.getpid())
    main_pid = os.fork()
    if main_pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(main_pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)

    log = open(status_file, "a", encoding="utf-8", buffering=1)
    main_status = None
    while main_status is None:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        if info is None:
            continue
        pid = info.si_pid
        name = comm(pid)
        _, status = os.waitpid(pid, 0)
        if pid == main_pid:
            main_status = status
        else:
            log.write(f"{pid} {describe(status)} {name}\n")

    # COMMAND is gone: end whatever it left behind, by PID, and reap it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            children = [int(p) for p in os.listdir("/proc") if p.isdigit()
                        and _parent(int(p)) == os.getpid()]
        except OSError:
            children = []
        if not children:
            break
        for pid in children:
            log.write(f"{pid} leftover {comm(pid)}: killing it\n")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.1)
                break
            log.write(f"{pid} {describe(status)} leftover\n")
    log.close()

    if main_status is None:
        return 1
    if os.WIFSIGNALED(main_status):
        return 128 + os.WTERMSIG(main_status)
    return os.WEXITSTATUS(main_status)


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return int(stat.rsplit(")", 1)[1].split()[1])


if __name__ == "__main__":
    sys.exit(main())
