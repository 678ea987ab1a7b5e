"""The stand-in's memory: what ``lake up`` keeps in its state directory (default ``.lake/``).

moto keeps every service in memory and has no persistence of its own (getmoto/moto#1069, #9755:
"pickle the backends"), so the stand-in pickles the backends of the services the lake uses (S3
with every object version, SQS with its messages and receive counts, EventBridge, Glue, DynamoDB)
when it stops, and puts them back before the server answers its first request. Iceberg tables are
Glue entries plus S3 objects, so they come back whole.

One file, ``stand-in.state``: a JSON header line (format, moto version, checksum, what it holds)
then the pickle, written to a temporary file and renamed, so a crash while saving leaves the
previous state. A pickle is only as stable as moto's classes, so a state saved by another moto
version is refused with a way out rather than half-loaded. The file is the user's own, written by
this process; unpickling it runs no code that was not already on this machine.

Beside it, while ``lake up`` runs: ``up.json`` (where it listens, its pid) and ``processed.jsonl``
(the completion events it saw), which ``lake status`` reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import pickle
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import topology

#: Bumped when what the file holds changes shape; a state of another format is refused.
STATE_FORMAT = 1
STATE_FILE = "stand-in.state"
#: The key personal data is pseudonymised with (hex; created once, readable by its owner only).
PSEUDONYM_KEY_FILE = "pseudonym.key"
UP_FILE = "up.json"
PROCESSED_FILE = "processed.jsonl"
#: ``--fresh`` moves the previous state here rather than deleting it.
DISCARDED_DIR = "discarded"
DEFAULT_STATE_DIR = ".lake"


def default_state_dir() -> str:
    """``$LAKE_STATE_DIR``, else ``.lake`` (relative to where ``lake`` runs)."""
    return os.environ.get(topology.ENV_STATE_DIR) or DEFAULT_STATE_DIR


#: The moto services the topology provisions (``lake.standin.provision``).
SERVICES = ("s3", "sqs", "events", "glue", "dynamodb")
#: ``processed.jsonl`` keeps this many of the newest lines.
PROCESSED_KEPT = 200

#: A ``BackendDict``'s own attributes (set by its constructor); anything else a service added is state.
_BACKEND_DICT_OWN = {"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"}
_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


class StateError(Exception):
    """The state directory cannot be used as it is; the message says what to do."""


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Pickler(pickle.Pickler):
    """Pickles moto's backends: locks and conditions (which cannot be pickled) come back new and free."""

    def reducer_override(self, obj: Any) -> Any:
        factory = _LOCK_TYPES.get(type(obj))
        if factory is not None:
            return factory, ()
        if isinstance(obj, threading.Condition | threading.Event | threading.Semaphore):
            return type(obj), ()
        return NotImplemented


@dataclass(frozen=True)
class SavedState:
    """What a state file's header says."""

    path: Path
    saved_at: str
    moto: str
    holds: dict[str, int]

    def describe(self) -> str:
        holds = ", ".join(f"{count} {what}" for what, count in self.holds.items())
        return f"saved {self.saved_at}" + (f": {holds}" if holds else "")


class StateDir:
    """The state directory of one stand-in."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def __str__(self) -> str:
        return f"{self.path}{os.sep}"

    # --- the moto state --------------------------------------------------------------------------
    def header(self) -> SavedState | None:
        """The saved state's header, or None when nothing was saved yet; raises ``StateError`` if damaged."""
        if not self.state_file.exists():
            return None
        with self.state_file.open("rb") as f:
            header = self._read_header(f)
        return SavedState(self.state_file, str(header["saved_at"]), str(header["moto"]), dict(header.get("holds", {})))

    def _read_header(self, f: io.BufferedReader) -> dict[str, Any]:
        line = f.readline(64 * 1024)
        try:
            header = json.loads(line)
            if not isinstance(header, dict) or "format" not in header:
                raise ValueError("no format")
        except ValueError:
            raise StateError(self._damaged("its header is not a lake state header")) from None
        if header["format"] != STATE_FORMAT or header.get("moto") != _moto_version():
            raise StateError(
                f"the stand-in's state in {self.state_file} was saved by another version (state format "
                f"{header['format']}, moto {header.get('moto')}; this lake reads format {STATE_FORMAT} with moto "
                f"{_moto_version()}); start with that version to get at its data, or `lake up --fresh` to start "
                f"clean (the old state is moved to {self.path / DISCARDED_DIR})"
            )
        return header

    def _damaged(self, why: str) -> str:
        return (
            f"the stand-in's state file {self.state_file} is damaged ({why}); nothing was started and the file is "
            f"untouched: restore it from a backup, or `lake up --fresh` to start with an empty lake (the damaged "
            f"file is moved to {self.path / DISCARDED_DIR})"
        )

    def restore(self) -> SavedState | None:
        """Put the saved backends into this process's moto; None when there is nothing saved."""
        if not self.state_file.exists():
            return None
        with self.state_file.open("rb") as f:
            header = self._read_header(f)
            body = f.read()
        if len(body) != header.get("size") or hashlib.sha256(body).hexdigest() != header.get("sha256"):
            raise StateError(
                self._damaged(f"{len(body)} bytes where {header.get('size')} were saved, or a checksum mismatch")
            )
        try:
            saved: dict[str, tuple[dict[str, dict[str, Any]], dict[str, Any]]] = pickle.loads(body)
        except Exception as exc:
            raise StateError(self._damaged(f"{type(exc).__name__}: {exc}")) from None
        from moto.backends import get_backend

        for service, (accounts, extras) in saved.items():
            backends: Any = get_backend(service)  # type: ignore[call-overload]
            for account, regions in accounts.items():
                for region, backend in regions.items():
                    dict.__setitem__(backends[account], region, backend)
            for name, value in extras.items():
                setattr(backends, name, value)
        return SavedState(self.state_file, str(header["saved_at"]), str(header["moto"]), dict(header["holds"]))

    def save(self, holds: dict[str, int]) -> SavedState:
        """Write this process's moto backends (call with the server stopped, so nothing changes meanwhile)."""
        from moto.backends import get_backend

        state: dict[str, tuple[dict[str, dict[str, Any]], dict[str, Any]]] = {}
        for service in SERVICES:
            backends: Any = get_backend(service)  # type: ignore[call-overload]
            regions = {
                account: {region: backend for region, backend in dict.items(regional)}
                for account, regional in dict.items(backends)
            }
            # What a service keeps beside its backends (S3: which account holds which bucket).
            extras = {name: value for name, value in vars(backends).items() if name not in _BACKEND_DICT_OWN}
            state[service] = (regions, extras)
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
        body = buffer.getvalue()
        saved_at = _now()
        header = {
            "format": STATE_FORMAT,
            "moto": _moto_version(),
            "saved_at": saved_at,
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "holds": holds,
        }
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        with temporary.open("wb") as f:
            f.write(json.dumps(header).encode() + b"\n")
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.state_file)
        return SavedState(self.state_file, saved_at, _moto_version(), holds)

    def discard(self) -> Path | None:
        """``--fresh``: move the saved state aside (never deleted); where it went, or None."""
        if not self.state_file.exists():
            return None
        aside = self.path / DISCARDED_DIR
        aside.mkdir(parents=True, exist_ok=True)
        moved = aside / f"{STATE_FILE}.{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
        shutil.move(str(self.state_file), moved)
        return moved

    # --- the pseudonym key --------------------------------------------------------------------------
    def pseudonym_key(self) -> str:
        """The stand-in's pseudonym key, created once (64 random hex characters, mode 0600) and kept
        across restarts and ``--fresh``: the same person keeps the same pseudonym in this lake."""
        path = self.path / PSEUDONYM_KEY_FILE
        if not path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            import secrets

            with contextlib.suppress(FileExistsError):  # another process made it first: use that one
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
        key = path.read_text().strip()
        if len(key) < 32:
            raise StateError(
                f"{path} holds {len(key)} characters, not a pseudonym key; delete it to get a new one "
                "(rows pseudonymised before then no longer join with new ones: `lake reprocess` raw/)"
            )
        return key

    # --- a running `lake up` -----------------------------------------------------------------------
    def claim(self, endpoint_url: str, log: str) -> None:
        """Record that a ``lake up`` of this process uses the directory; refuses a second one."""
        running = self.running()
        if running is not None:
            raise StateError(
                f"another `lake up` (pid {running['pid']}) already uses {self} on {running['endpoint_url']}; "
                "stop it first, or give this one its own --state-dir"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "endpoint_url": endpoint_url, "started_at": _now(), "log": log}
        (self.path / UP_FILE).write_text(json.dumps(info) + "\n")

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / UP_FILE).unlink()

    def running(self) -> dict[str, Any] | None:
        """The ``lake up`` using this directory, if its process is alive."""
        try:
            info: dict[str, Any] = json.loads((self.path / UP_FILE).read_text())
            os.kill(int(info["pid"]), 0)
        except (FileNotFoundError, ValueError, KeyError, TypeError, ProcessLookupError):
            return None
        except PermissionError:  # alive, someone else's
            pass
        return info

    def remember(self, event: dict[str, Any], summary: str) -> None:
        """Append one completion event's line to ``processed.jsonl`` (the newest ``PROCESSED_KEPT`` stay)."""
        detail = event.get("detail") or {}
        line = {"time": event.get("time") or _now(), "status": detail.get("status"), "summary": summary}
        path = self.path / PROCESSED_FILE
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 2 * PROCESSED_KEPT:
            path.write_text("\n".join(lines[-PROCESSED_KEPT:]) + "\n", encoding="utf-8")

    def processed(self, count: int) -> list[dict[str, Any]]:
        """The newest ``count`` remembered completion events, oldest first."""
        try:
            lines = (self.path / PROCESSED_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found: list[dict[str, Any]] = []
        for line in lines[-count:]:
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found
