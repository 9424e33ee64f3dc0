"""What every benchmark needs: timing, and a description of the machine it ran on.

Absolute times on shared machines are noise; a result is only worth writing
down with the machine, the code version and the file system beside it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import attrs

REPO = Path(__file__).resolve().parent.parent


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):  # no /proc outside Linux: the name stays unknown
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return {"platform": platform.platform(), "cpu": cpu, "cores": str(os.cpu_count()),
            "python": platform.python_version(), "cryptography": version("cryptography"),
            "sqlite": sqlite3.sqlite_version, "sqlite-utils": version("sqlite-utils")}


def code_version() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "unknown"
    return (head or "unknown") + ("-dirty" if dirty.strip() else "")


def filesystem(path: Path) -> str:
    """The file system the databases live on: fsync cost depends on it."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):  # no /proc outside Linux: reported as unknown
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    return f"{kind} ({best or '?'})"


def publish(section: str, out: str, header: str) -> None:
    """Print a run's section, and append it to the results file ``out`` ('-': none)."""
    print(section)
    if out != "-":
        write_results(Path(out), section, header)
        print(f"\nappended to {out}", file=sys.stderr)


def write_results(path: Path, text: str, header: str) -> None:
    """Append a section to a results file, starting it with ``header`` when new."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if not existing.strip():
        existing = header
    path.write_text(existing.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n", encoding="utf-8")


@attrs.frozen
class Rate:
    """Events measured over wall-clock seconds and this process's CPU seconds.

    CPU time leaves out waiting (fsync, and other programs on a shared
    machine), so where the two differ the difference is mostly waiting.
    """

    label: str
    events: int
    seconds: float
    cpu: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else float("inf")

    @property
    def micros(self) -> float:
        return 1e6 * self.seconds / self.events if self.events else 0.0

    @property
    def cpu_micros(self) -> float:
        return 1e6 * self.cpu / self.events if self.events else 0.0


class Stopwatch:
    """Wall-clock and CPU time of a ``with`` block."""

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu

    def rate(self, label: str, events: int) -> Rate:
        return Rate(label, events, self.wall, self.cpu)
