# SPDX-License-Identifier: Apache-2.0
"""Running commands and ending processes, for the lab.

Commands go through `nsenter --net=/run/netns/NAME` rather than `ip netns exec`: the latter
remounts /sys in a private mount namespace, so bpffs pins made under it vanish with it.
A process is ended only by its PID, and only when its start time still matches the one
recorded when it was started (a recycled PID is never signalled).
"""
import os
import shlex
import signal
import subprocess
import time

NETNS_DIR = "/run/netns"


class LabError(Exception):
    """A lab step failed; the message says which and why."""


def in_netns(ns, args):
    """The argument vector that runs `args` inside network namespace `ns` (None: here)."""
    if isinstance(args, str):
        args = shlex.split(args)
    args = [str(a) for a in args]
    if ns is None:
        return args
    return ["nsenter", f"--net={NETNS_DIR}/{ns}", "--"] + args


def run(args, ns=None, check=True, timeout=30, input=None, capture=True):
    """Runs a command (in `ns`), bounded by `timeout` seconds. Returns CompletedProcess with
    text stdout/stderr; raises LabError when `check` and it fails or times out."""
    argv = in_netns(ns, args)
    try:
        res = subprocess.run(argv, input=input, timeout=timeout, text=True,
                             stdout=subprocess.PIPE if capture else None,
                             stderr=subprocess.PIPE if capture else None,
                             stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        if check:
            raise LabError(f"timed out after {timeout}s: {shlex.join(argv)}") from e
        return subprocess.CompletedProcess(argv, 124, e.stdout or "", e.stderr or "")
    except FileNotFoundError as e:
        raise LabError(f"command not found: {argv[0]}") from e
    if check and res.returncode != 0:
        err = (res.stderr or "").strip() or (res.stdout or "").strip()
        raise LabError(f"failed (exit {res.returncode}): {shlex.join(argv)}: {err}")
    return res


def start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or
    None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19]) if len(fields) > 19 else None


def alive(pid, started):
    """True while the process `pid` that started at `started` still runs. Without a recorded
    start time the process is taken as gone: a PID alone is never signalled."""
    if started is None:
        return False
    return start_time(pid) == started


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def _wait_gone(live, seconds):
    """Reaps and polls [(pid, start_time), ...] for up to `seconds`; returns those still alive."""
    deadline = time.monotonic() + seconds
    while live and time.monotonic() < deadline:
        for pid, _ in live:
            _reap(pid)
        live = [(p, s) for p, s in live if alive(p, s)]
        if live:
            time.sleep(0.05)
    return live


def _signal_all(live, sig):
    for pid, _ in live:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def end_processes(procs, grace=5.0):
    """Ends the processes [(pid, start_time), ...]: SIGTERM, then SIGKILL after `grace`
    seconds. Returns the PIDs that still run afterwards."""
    live = [(p, s) for p, s in procs if alive(p, s)]
    _signal_all(live, signal.SIGTERM)
    live = _wait_gone(live, grace)
    _signal_all([(p, s) for p, s in live if alive(p, s)], signal.SIGKILL)
    return [p for p, _ in _wait_gone(live, 2.0)]


def arm_deadline(seconds, what):
    """Makes the calling script raise TimeoutError after `seconds` (SIGALRM), and SIGTERM a
    KeyboardInterrupt, so that its cleanup runs in both cases. signal.alarm(0) disarms."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"{what} exceeded {seconds}s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.alarm(seconds)


def netns_pids(ns):
    """PIDs of the processes whose network namespace is `ns` (by inode, like `ip netns pids`)."""
    try:
        target = os.stat(f"{NETNS_DIR}/{ns}")
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if st.st_ino == target.st_ino and st.st_dev == target.st_dev:
            pids.append(int(entry))
    return pids
