"""Where a result came from: software versions, git commit, machine, data checksums."""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from torchvision.datasets.utils import calculate_md5

from ._version import __version__

__all__ = [
    "cpu_flags",
    "cpu_mhz",
    "cpu_model",
    "environment",
    "file_md5s",
    "git_info",
    "has_avx512",
    "utc_now",
]

_GIT_TIMEOUT_S = 10.0


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(directory: str | os.PathLike[str]) -> dict[str, object]:
    """Commit of the git checkout holding ``directory`` and whether it has local changes.

    Both are None when ``directory`` is not inside a git checkout or git is missing.
    """
    path = Path(directory)
    commit = _git(path, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(path, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` shows it (``platform.processor()`` where unknown)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of /proc/cpuinfo (None where there is none)."""
    for line in _cpuinfo().splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


def cpu_flags() -> list[str] | None:
    """The CPU's feature flags (``avx512f``, ``fma``, ...); None where /proc/cpuinfo is missing."""
    flags = _cpuinfo_field("flags")
    return None if flags is None else flags.split()


def cpu_mhz() -> float | None:
    """The clock /proc/cpuinfo shows for the first CPU, in MHz (None where unknown)."""
    mhz = _cpuinfo_field("cpu MHz")
    return None if mhz is None else float(mhz)


def has_avx512() -> bool | None:
    """Whether the CPU offers AVX-512 (``avx512f``); None where /proc/cpuinfo is missing."""
    flags = cpu_flags()
    return None if flags is None else "avx512f" in flags


def _version(module: str) -> str | None:
    try:
        return str(__import__(module).__version__)
    except (ImportError, AttributeError):
        return None


def environment() -> dict[str, object]:
    """Versions of Python and the libraries that shape the numbers, plus the machine."""
    return {
        "lenet_cpp": __version__,
        "lenet_cpp_module": str(Path(__file__).parent),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "matplotlib": _version("matplotlib"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "avx512": has_avx512(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
    }


def file_md5s(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """MD5 of each file, keyed by its base name."""
    return {Path(p).name: calculate_md5(p) for p in paths}
