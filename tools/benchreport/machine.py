# SPDX-License-Identifier: Apache-2.0
"""What a benchmark ran on: machine, kernel, OS, compilers, libbpf, build and commit.

Every probe is best effort: a missing tool gives "unknown", never an exception, so a results
file is always written.
"""
import datetime
import os
import platform
import shutil
import subprocess

UNKNOWN = "unknown"


def _first_line(cmd, cwd=None):
    if shutil.which(cmd[0]) is None:
        return UNKNOWN
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else UNKNOWN


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _cpu_model():
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or UNKNOWN


def _hypervisor():
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            return " hypervisor" in line or line.endswith("hypervisor")
    return False


def _memory_gib():
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / (1024 * 1024), 1)
    return None


def _os_name():
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _cmake_cache(build_dir, key):
    for line in _read(os.path.join(build_dir, "CMakeCache.txt")).splitlines():
        if line.startswith(key + ":"):
            return line.split("=", 1)[1]
    return UNKNOWN


def git_state(repo):
    """Commit and whether tracked files differ from it (taken before the run writes docs)."""
    commit = _first_line(["git", "-C", repo, "rev-parse", "HEAD"])
    status = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True) if commit != UNKNOWN else None
    changed = status.stdout.splitlines() if status and status.returncode == 0 else []
    return {"commit": commit, "dirty": bool(changed), "changed_files": len(changed)}


def describe(repo, build_dir):
    """The "meta" fields that describe the machine and the build."""
    now = datetime.datetime.now().astimezone()
    compiler = _cmake_cache(build_dir, "CMAKE_CXX_COMPILER")
    return {
        "date": now.isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "virtualization": {
            "hypervisor": _hypervisor(),
            "detect_virt": _first_line(["systemd-detect-virt"]),
        },
        "kernel": platform.release(),
        "os": _os_name(),
        "compilers": {
            "bpf": _first_line(["clang-19", "--version"]),
            "cxx": _first_line([compiler if compiler != UNKNOWN else "c++", "--version"]),
            "g++": _first_line(["g++", "--version"]),
        },
        "libbpf": _first_line(["pkg-config", "--modversion", "libbpf"]),
        "build_type": _cmake_cache(build_dir, "CMAKE_BUILD_TYPE"),
        "git": git_state(repo),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
