"""Drive the real ``lake`` console script (and other real clients) in subprocesses."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

#: The console script the project installs into the environment (``uv run lake``).
LAKE = str(Path(sys.executable).parent / "lake")


def cli_env(endpoint_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a user's terminal; ``LAKE_ENDPOINT_URL`` set when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "AWS_"))}
    if endpoint_url is not None:
        env["LAKE_ENDPOINT_URL"] = endpoint_url
    env.update(extra)
    return env


def lake(
    *args: str, endpoint_url: str | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``lake ARGS...`` to completion and capture its output."""
    return subprocess.run(
        [LAKE, *args],
        env=env if env is not None else cli_env(endpoint_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def _as_in_a_terminal() -> Iterator[None]:
    """While a child is started: Ctrl-C (SIGINT) not blocked in this thread and, from the main thread
    (the only one that may change a handler; pytest-xdist runs tests there), not ignored, so the
    child gets it as a terminal gives it to a foreground command, whatever this process inherited or
    changed (a child inherits an ignored signal and the blocked mask, nothing else). In two full runs
    `lake events --follow` sat in its long poll for 120 s after SIGINT; alone it ends at once."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if previous == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _signals(pid: str) -> str:
    """The signal masks of a process (/proc/<pid>/status): ignored, blocked, pending, caught."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return "signals: " + ", ".join(
                line.strip().replace("\t", " ")
                for line in status
                if line.startswith(("SigIgn", "SigBlk", "SigPnd", "ShdPnd", "SigCgt"))
            )
    except OSError as exc:
        return f"signals: unknown ({exc})"


class Background:
    """A long-running command (``lake up``, ``lake events --follow``) whose lines we can wait for."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        # PYTHONFAULTHANDLER: a command that hangs is stopped with SIGABRT, which makes Python print
        # every thread's stack into its output, so the failure says where it hung.
        with _as_in_a_terminal():
            self.process = subprocess.Popen(
                argv,
                env={**env, "PYTHONFAULTHANDLER": "1"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first line (from now on or already seen) containing ``text``; fails with the output so far."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s; output so far:\n" + "\n".join(self.lines))

    def wait_for_count(self, text: str, count: int, timeout: float = 60) -> list[str]:
        """The first ``count`` lines containing ``text``, waiting for the missing ones; fails with the output."""
        deadline = time.monotonic() + timeout
        while len(found := [line for line in self.lines if text in line]) < count:
            ended = self.process.poll() is not None and self._queue.empty()
            if ended or time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {count} lines with {text!r} within {timeout}s; output so far:\n"
                    + "\n".join(self.lines)
                )
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=0.2))
        return found[:count]

    def stop(self, timeout: float = 120) -> int:
        """Ctrl-C, as a user would; returns the exit code. The wait is a bound for a hang, not a guess of
        how long a clean exit takes; a command still running after it is stopped with SIGABRT, so
        its output shows where it hung."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"the command's {_signals(str(self.process.pid))}")
                self.process.send_signal(signal.SIGABRT)  # the stacks, then the end
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
                self._drain()
                print(f"{self.process.args} did not end within {timeout}s of Ctrl-C; this process's {_signals('self')}")
                print("\n".join(self.lines))
        self._drain()
        return self.process.returncode

    def _drain(self) -> None:
        """Every line the ended command wrote: the pump reads to the end of its output (bounded, in
        case something the command started still holds it open)."""
        self._pumping.join(10)
        while not self._queue.empty():
            self.lines.append(self._queue.get())

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
