"""Checkpoints of a running stand-in: its state written as it changes, never half a request.

Every request to the moto server passes a gate it shares with the other requests; a checkpoint
holds the gate alone, so it waits for the requests in flight to finish and holds new ones back
while it pickles the backends (``lake.standin.state``). It never sees half of a request's changes: each
request is applied whole or not at all in the file, and the rest is moto's own (every request
applies its change before it answers).

When: an ``EventBridge PutEvents`` (the lake announcing a file or a refresh) and an upload or
deletion under ``raw/``, ``settings/`` or ``models/`` of the lake bucket (what people drop) run
with the gate held alone and answer only after a checkpoint that includes them is on disk, so
whatever has been announced, and every upload acknowledged, survives a ``kill -9``. Anything else
that changes the state (Iceberg files being written, a message deleted, a catalog update) is in a
checkpoint at most ``interval`` seconds later; losing it to a crash is harmless, as the work is
done again (processing is idempotent). Reads
(``Get…``, ``List…``, ``Describe…``, S3 ``GET``/``HEAD``) and ``ReceiveMessage`` change nothing
worth a checkpoint: a restored in-flight message is made visible again anyway (``lake.standin.server``).
A long poll that waits for messages steps out of the gate while it sleeps (``lake.standin.moto_gaps``),
so a checkpoint never waits for it.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Seconds between checkpoints of a state that changed without an announcement.
CHECKPOINT_INTERVAL_SECONDS = 2.0
_READ_ONLY_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Query", "Scan", "Head")
_ANNOUNCE_ACTION = "PutEvents"


class Gate:
    """Requests share it; a checkpoint holds it alone (waiting checkpoints go first)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharing = 0
        self._alone = False
        self._waiting_alone = 0
        self._local = threading.local()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        self._enter_shared()
        try:
            yield
        finally:
            self._leave_shared()

    def _enter_shared(self) -> None:
        with self._condition:
            while self._alone or self._waiting_alone:
                self._condition.wait()
            self._sharing += 1
        self._local.sharing = True

    def _leave_shared(self) -> None:
        self._local.sharing = False
        with self._condition:
            self._sharing -= 1
            if not self._sharing:
                self._condition.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._condition:
            self._waiting_alone += 1
            try:
                while self._alone or self._sharing:
                    self._condition.wait()
            finally:
                self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._condition:
                self._alone = False
                self._condition.notify_all()

    @contextlib.contextmanager
    def stepped_out(self) -> Iterator[None]:
        """A request that waits between complete steps (a long poll's sleep) lets checkpoints by."""
        if not getattr(self._local, "sharing", False):
            yield
            return
        self._leave_shared()
        try:
            yield
        finally:
            self._enter_shared()


#: The gate of this process's moto server (one per process, as moto's backends are).
GATE = Gate()


def _action(environ: dict[str, Any]) -> str:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rpartition(".")[2]
    query = str(environ.get("QUERY_STRING", ""))
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "Action":
            return value
    return ""


def durable_at_once(environ: dict[str, Any], bucket: str | None, prefixes: tuple[str, ...]) -> bool:
    """Whether a request answers only once a checkpoint holds it: an announcement, or an upload or a
    deletion of ``bucket``'s objects under ``prefixes`` (path-style, as the stand-in's clients send;
    not the parts of a multipart upload, whose completion is)."""
    if _action(environ) == _ANNOUNCE_ACTION:
        return True
    method = str(environ.get("REQUEST_METHOD", "GET"))
    if bucket is None or method not in ("PUT", "POST", "DELETE"):
        return False
    query = str(environ.get("QUERY_STRING", ""))
    if "partNumber=" in query:
        return False
    name, _, key = str(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
    if name != bucket:
        return False
    return key.startswith(prefixes) or (
        method == "POST" and not key and query.split("&", maxsplit=1)[0].startswith("delete")
    )


def changes_state(environ: dict[str, Any]) -> bool:
    """Whether a request may change what a checkpoint holds (conservative: unknown is a change)."""
    method = str(environ.get("REQUEST_METHOD", "GET"))
    action = _action(environ)
    if not action:
        return method not in ("GET", "HEAD", "OPTIONS")
    return not (action.startswith(_READ_ONLY_PREFIXES) or action == "ReceiveMessage")


class Checkpointer:
    """Gates the moto server's WSGI app and writes checkpoints through ``save`` (``lake.standin.state``)."""

    def __init__(
        self,
        save: Callable[[], object],
        bucket: str | None = None,
        prefixes: tuple[str, ...] = (),
        interval: float = CHECKPOINT_INTERVAL_SECONDS,
        gate: Gate = GATE,
    ) -> None:
        self._save = save
        self._bucket = bucket
        self._prefixes = prefixes
        self._paused = False
        self._interval = interval
        self._gate = gate
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Seconds each checkpoint took (pickling, writing, fsync), for people and benchmarks.
        self.durations: list[float] = []
        #: The first error a checkpoint met (the stand-in keeps running; the next one tries again).
        self.error: BaseException | None = None

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        """The WSGI app with every request through the gate; responses are buffered inside it."""

        def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not self._paused and durable_at_once(environ, self._bucket, self._prefixes):
                with self._gate.alone():
                    body = _drain(app(environ, start_response))
                    self._checkpoint_held()
                return [body]
            with self._gate.shared():
                body = _drain(app(environ, start_response))
            if changes_state(environ):
                self._dirty.set()
            return [body]

        return gated

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No checkpoint meanwhile, not even for announcements and uploads (a rebuild's uploads,
        which end with a checkpoint of their own)."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lake-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self._dirty.is_set():
                with self._gate.alone():
                    self._checkpoint_held()

    def _checkpoint_held(self) -> None:
        """A checkpoint, with the gate held alone by the caller."""
        with self._lock:
            self._dirty.clear()
            started = time.perf_counter()
            try:
                self._save()
            except Exception as exc:  # a full disk must not stop the lake; the next change tries again
                self._dirty.set()
                self.error = self.error or exc
                return
            self.durations.append(time.perf_counter() - started)

    def describe(self) -> str:
        """``12 checkpoint(s), median 35 ms, longest 80 ms`` (or that there were none)."""
        failed = f"; one failed: {self.error}" if self.error else ""
        if not self.durations:
            return "no checkpoint" + failed
        ms = [d * 1000 for d in self.durations]
        return f"{len(ms)} checkpoint(s), median {statistics.median(ms):.0f} ms, longest {max(ms):.0f} ms{failed}"


def _drain(result: Iterable[bytes]) -> bytes:
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
