"""Child processes for the benchmarks: start and stop servers, pin CPUs, read /proc figures."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

import attrs

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_URL = re.compile(r"(https?://\S+)")
_READY_TIMEOUT = 90.0


class BenchError(RuntimeError):
    """Something a benchmark needs could not be had; the message says what and why."""


@attrs.frozen
class Pinning:
    """Which CPUs servers and load generators run on; None leaves the scheduler free."""

    server: frozenset[int] | None
    load: frozenset[int] | None

    @classmethod
    def plan(cls) -> Pinning:
        """Servers on the first usable CPU, clients and load generators on the second."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None)
        return cls(frozenset({cpus[0]}), frozenset({cpus[1]}))

    def describe(self) -> str:
        """One line for the report."""
        if self.server is None or self.load is None:
            return "not pinned (a single CPU is usable)"
        return (
            f"servers on CPU {_cpu_list(self.server)}, clients and load generator on CPU"
            f" {_cpu_list(self.load)}"
        )


def _cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def pin(pid: int, cpus: frozenset[int] | None) -> None:
    """Restrict ``pid`` (0: this process) to ``cpus``; a no-op when ``cpus`` is None."""
    if cpus is not None:
        os.sched_setaffinity(pid, cpus)


def pinned(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child before it runs anything."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    # The command name may hold spaces or parentheses: count fields after the last ")".
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no VmRSS line")


class HttpServer:
    """A server child that prints its URL on stderr once it listens; stopped by ``stop()``."""

    def __init__(self, name: str, command: Sequence[str], cwd: str | None = None) -> None:
        self.name = name
        self.command = list(command)
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._ready = threading.Event()
        self._url: str | None = None
        self.process = subprocess.Popen(
            self.command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        # Drained for the server's whole life: a full pipe would stall it mid-benchmark.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._tail.append(line.rstrip())
            if self._url is None and ("READY" in line or "serving" in line):
                found = _URL.search(line)
                if found:
                    self._url = found.group(1)
                    self._ready.set()
        self._ready.set()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def wait_ready(self, cpus: frozenset[int] | None) -> str:
        """Wait until the server listens, pin it to ``cpus`` and return its URL."""
        if not self._ready.wait(_READY_TIMEOUT) or self._url is None:
            self.stop()
            raise BenchError(
                f"{self.name} did not start ({' '.join(self.command)}):\n  "
                + "\n  ".join(self.stderr_tail())
            )
        pin(self.pid, cpus)
        return self._url

    def stderr_tail(self) -> list[str]:
        """The last lines the server printed on stderr."""
        return list(self._tail)

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Stopwatch:
    """Wall time and a process's CPU time between ``start()`` and ``stop()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = 0.0
        self.cpu = 0.0
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def start(self) -> None:
        """Begin measuring."""
        self._cpu0 = cpu_seconds(self.pid)
        self._wall0 = time.perf_counter()

    def stop(self) -> None:
        """Finish measuring; ``wall`` and ``cpu`` hold the seconds spent."""
        self.wall = time.perf_counter() - self._wall0
        self.cpu = cpu_seconds(self.pid) - self._cpu0
