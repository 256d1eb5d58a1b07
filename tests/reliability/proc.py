"""Run a crawl, a writer script or the scheduler in a subprocess, the way faults hit them.

``start`` launches a command in its own process group (environment from
``servers.cli_env``), optionally under rlimits (``RLIMIT_AS``, ``RLIMIT_FSIZE``; SIGXFSZ
ignored so a write past the size limit fails with EFBIG instead of killing the process),
and samples the resident memory of the whole group. ``Proc.kill`` SIGKILLs the group
(the crawl and its extraction workers, as the OOM killer or the scheduler would);
``Proc.finish`` waits and returns a ``ProcResult`` with the exit code and peak RSS.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from servers import cli_command, cli_env

PAGE = os.sysconf("SC_PAGE_SIZE")
_LIVE: list[Proc] = []


@dataclass(frozen=True)
class ProcResult:
    """How a subprocess ended: exit code (negative: killed by that signal), output and
    the peak resident memory of its process group in MB."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    killed: bool


def _group_rss(pgid: int) -> int:
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 22 and int(fields[2]) == pgid:  # field 5: pgrp; field 24: rss pages
            total += int(fields[21]) * PAGE
    return total


class Proc:
    """A running subprocess in its own session; see the module docstring."""

    def __init__(
        self, argv: Sequence[str | Path], env: dict[str, str], cwd: Path, limits: dict[int, int]
    ) -> None:
        def prepare() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            for which, value in limits.items():
                resource.setrlimit(which, (value, value))

        self.process = subprocess.Popen(
            [str(arg) for arg in argv],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
            preexec_fn=prepare if limits else None,  # noqa: PLW1509 (no threads touch it)
        )
        self.pid = self.process.pid
        self.killed = False
        self.peak = 0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        _LIVE.append(self)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _group_rss(self.pid))
            self._done.wait(0.05)

    def kill(self) -> None:
        """SIGKILL the whole process group."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process alone (not its group)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def finish(self, timeout: float = 120) -> ProcResult:
        """Wait for the end (killing the group after ``timeout`` s: it hung); the result."""
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            stdout, stderr = self.process.communicate(timeout=30)
            raise AssertionError(f"process hung for {timeout} s: {stderr[-2000:]}") from None
        finally:
            self._done.set()
            self._sampler.join()
        # Extraction workers may outlive a killed crawl for a moment: never leave them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self in _LIVE:
            _LIVE.remove(self)
        return ProcResult(self.process.returncode, stdout, stderr, self.peak / 2**20, self.killed)


def start(
    argv: Sequence[str | Path],
    home: Path,
    *,
    address_space: int | None = None,
    file_size: int | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start ``argv`` with HOME and the working directory ``home``, under the limits given."""
    Path(home).mkdir(parents=True, exist_ok=True)
    environment = cli_env(Path(home))
    environment["CRAWLER_ALLOW_PRIVATE_ADDRESSES"] = "1"  # the test servers are on 127.0.0.1
    environment.update(env or {})
    limits = {}
    if address_space is not None:
        limits[resource.RLIMIT_AS] = address_space
    if file_size is not None:
        limits[resource.RLIMIT_FSIZE] = file_size
    return Proc(argv, environment, Path(home), limits)


def crawler(*args: str | Path, store: Path | None = None) -> list[str]:
    """The argv of ``crawler *args [--store store]``."""
    return cli_command(*args, store=store)


def python(script: Path, *args: str | Path) -> list[str]:
    """The argv of a Python script run with the test interpreter."""
    return [sys.executable, str(script), *map(str, args)]


def run(
    argv: Sequence[str | Path], home: Path, *, timeout: float = 120, **limits: int
) -> ProcResult:
    """Start, wait, return the result."""
    return start(argv, home, **limits).finish(timeout)


def kill_after(proc: Proc, seconds: float) -> ProcResult:
    """SIGKILL the process group after ``seconds`` (unless it ended first); the result."""
    try:
        proc.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
    return proc.finish()


def wait_for(condition, timeout: float = 60.0, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s (a "does not hang" bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@contextlib.contextmanager
def no_leftovers() -> Iterator[None]:
    """Kill every process started here that is still running when the block ends."""
    try:
        yield
    finally:
        while _LIVE:
            proc = _LIVE.pop()
            proc.kill()
            with contextlib.suppress(Exception):
                proc.finish(timeout=30)
