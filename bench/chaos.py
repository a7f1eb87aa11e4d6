"""Pieces of the soak and chaos run (bench.soak), each usable on its own.

* `Proc`: a child process in its own session (its process group is its pid), output to
  files, that can be SIGKILLed, SIGTERMed and waited for; `Proc.wait_output` waits for a
  line on its stdout or stderr (a sink's `ready HOST:PORT`, phimask's "serving" log).
* `/proc` readers: `worker_pids` finds the masking processes `phimask serve --workers N`
  spawned (multiprocessing `spawn` children of the server, oldest first), `rss_bytes`
  reads a process's resident set size.
* `RssSeries` / `rss_verdict`: RSS samples of one process, and whether they stayed
  flat: the median of the last third of the samples taken after warm-up against the
  median of the first third, allowed to grow by max(tolerance MiB, tolerance ratio).

Linux only (it reads /proc). Nothing here sends traffic anywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1 << 20
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIN_RSS_SAMPLES = 6  # after warm-up; fewer and the flatness check says it was skipped


class ChaosError(Exception):
    """A process would not start or stop as asked; the message shows the evidence."""


def tail(path: Path, lines: int = 20) -> str:
    try:
        kept = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "    (no output captured)"
    return "\n".join(f"    | {line}" for line in kept) if kept else "    (empty)"


@dataclass
class Proc:
    """A child we started, in its own session; stdout and stderr go to files."""

    name: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, name: str, cmd: Sequence[str], workdir: Path, env: dict[str, str],
              cwd: Path) -> Proc:
        stdout, stderr = workdir / f"{name}.out", workdir / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=cwd, env=env)
        return cls(name, proc, stdout, stderr)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def evidence(self) -> str:
        return (f"  {self.name} stderr:\n{tail(self.stderr)}\n"
                f"  {self.name} stdout:\n{tail(self.stdout)}")

    def wait_output(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        """The first match of `pattern` in its stdout or stderr, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for path in (self.stdout, self.stderr):
                with contextlib.suppress(OSError):
                    found = pattern.search(path.read_bytes())
                    if found:
                        return found
            if not self.alive():
                raise ChaosError(f"{self.name} exited with status {self.proc.returncode} "
                                 f"before it was ready\n{self.evidence()}")
            if time.monotonic() > deadline:
                raise ChaosError(f"{self.name} not ready after {timeout:.0f} s\n{self.evidence()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL its whole process group (a server's workers too), then reap it."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM and wait: its exit status, or None if it had to be killed."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


# --- /proc ----------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [19]
    start time (clock ticks after boot)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def worker_pids(server_pid: int) -> list[int]:
    """The live masking workers of a `phimask serve` process, oldest first: its children
    that multiprocessing spawned (`spawn_main`), not its resource tracker."""
    found: list[tuple[int, int]] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if not fields or fields[1] != str(server_pid) or fields[0] == "Z":
            continue
        cmd = _cmdline(int(entry.name))
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            found.append((int(fields[19]), int(entry.name)))
    return [pid for _, pid in sorted(found)]


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a live process, or None if it is gone."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * PAGE_SIZE


# --- RSS over time ----------------------------------------------------------------------------


@dataclass
class RssSeries:
    """RSS samples of one process: (seconds since the run started, bytes)."""

    role: str  # "server", "worker (witness)", "worker (victim)"
    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)

    def add(self, at: float, rss: int) -> None:
        self.samples.append((at, rss))

    def summary(self) -> dict[str, Any]:
        values = [rss for _, rss in self.samples]
        if not values:
            return {"role": self.role, "pid": self.pid, "samples": 0}
        return {
            "role": self.role,
            "pid": self.pid,
            "samples": len(values),
            "first_s": round(self.samples[0][0], 1),
            "last_s": round(self.samples[-1][0], 1),
            "start_mib": round(values[0] / MIB, 1),
            "end_mib": round(values[-1] / MIB, 1),
            "max_mib": round(max(values) / MIB, 1),
        }


def rss_verdict(series: RssSeries, warmup_until: float, tolerance_mib: float,
                tolerance_ratio: float) -> dict[str, Any]:
    """Whether RSS stayed flat after `warmup_until` (seconds since the run started): the
    median of the last third of those samples may exceed the median of the first third
    by at most max(tolerance_mib, tolerance_ratio x that median). `ok` is None (check
    skipped) with fewer than MIN_RSS_SAMPLES samples after warm-up."""
    values = [rss for at, rss in series.samples if at >= warmup_until]
    verdict: dict[str, Any] = {"role": series.role, "pid": series.pid,
                               "samples_after_warmup": len(values)}
    if len(values) < MIN_RSS_SAMPLES:
        return {**verdict, "ok": None, "why": "too few samples after warm-up"}
    third = len(values) // 3
    first = statistics.median(values[:third])
    last = statistics.median(values[-third:])
    allowed = max(tolerance_mib * MIB, tolerance_ratio * first)
    return {
        **verdict,
        "first_third_median_mib": round(first / MIB, 1),
        "last_third_median_mib": round(last / MIB, 1),
        "growth_mib": round((last - first) / MIB, 1),
        "allowed_growth_mib": round(allowed / MIB, 1),
        "ok": last - first <= allowed,
    }
