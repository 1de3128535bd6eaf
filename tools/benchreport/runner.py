# SPDX-License-Identifier: Apache-2.0
"""Runs xlb-bench suites one after another, each in its own process group under a time limit.

stdout lines that are result records are kept; every other line (stdout or stderr) is progress
and is passed on to our stderr. A suite the binary does not know (exit 2, "unknown suite") is
reported as missing, not as a failure of the run.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

from .records import is_record


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    # Defaults for a full run on the 2-core test VM: there the suites take about 3.5 minutes
    # (4.6 from a clean clone, build included); the time limits add up to 13.5.
    scale: float = 1.0
    runs: int = 3
    timeout_s: int = 120


SUITES = (
    Suite("xdp", timeout_s=150),      # 25 s measured
    Suite("maglev", timeout_s=60),    # 2 s
    Suite("lab", timeout_s=360),      # 80 s
    Suite("health", timeout_s=120),   # 52 s
    Suite("discovery", timeout_s=120),  # 44 s
)

# After the time limit: SIGTERM to the suite's process group, then SIGKILL after this grace.
KILL_GRACE_S = 10
# How long to wait for the output pipes once the suite has exited.
PIPE_DRAIN_S = 30
# Lines of a suite's stderr kept in a failure's detail.
STDERR_TAIL = 8


@dataclasses.dataclass
class SuiteRun:
    name: str
    status: str = "ok"          # ok | missing | timeout | failed
    detail: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    records: list = dataclasses.field(default_factory=list)
    args: list = dataclasses.field(default_factory=list)

    def meta(self):
        out = {"status": self.status, "duration_s": round(self.duration_s, 1),
               "exit_code": self.exit_code, "records": len(self.records), "args": self.args}
        if self.detail:
            out["detail"] = self.detail
        return out

    def failure(self):
        if self.status == "ok":
            return None
        return {"suite": self.name, "status": self.status, "exit_code": self.exit_code,
                "detail": self.detail}


def _pump(stream, on_line):
    for line in stream:
        on_line(line.rstrip("\n"))
    stream.close()


def run_suite(binary, suite, scale, runs, timeout_s, log=None):
    """Runs one suite; never raises for what the suite does (a missing binary does raise)."""
    log = log or sys.stderr
    args = [suite.name, "--json", f"--scale={scale:g}", f"--runs={runs}"]
    result = SuiteRun(name=suite.name, args=args)
    tail = []

    def progress(line, keep):
        if keep:
            tail.append(line)
            del tail[:-STDERR_TAIL]
        print(f"  {suite.name}: {line}", file=log, flush=True)

    def on_stdout(line):
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if is_record(obj):
            result.records.append(obj)
            print(f"  {suite.name}: {obj['case']} {obj['metric']} = {obj['value']:g} "
                  f"{obj.get('unit', '')}", file=log, flush=True)
        elif line.strip():
            progress(line, keep=False)

    start = time.monotonic()
    proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            start_new_session=True)
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, on_stdout), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, lambda l: progress(l, True)),
                         daemon=True)]
    for t in readers:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(proc)
    for t in readers:
        t.join(timeout=PIPE_DRAIN_S)  # a leftover child may still hold a pipe open
    result.duration_s = time.monotonic() - start
    result.exit_code = proc.returncode
    stderr_tail = " | ".join(tail)
    if timed_out:
        result.status = "timeout"
        result.detail = (f"stopped after the {timeout_s} s limit with {len(result.records)} "
                         f"records; last output: {stderr_tail}")
    elif proc.returncode == 2 and "unknown suite" in stderr_tail:
        result.status = "missing"
        result.detail = f"this xlb-bench has no '{suite.name}' suite"
    elif proc.returncode != 0:
        result.status = "failed"
        result.detail = f"exit code {proc.returncode}: {stderr_tail}"
    elif not result.records:
        result.status = "failed"
        result.detail = f"no result records: {stderr_tail}"
    return result


def _stop_group(proc):
    """SIGTERM, then SIGKILL, to the process group of the suite we started (its pid)."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
