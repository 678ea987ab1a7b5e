"""The stand-in's memory: what ``lake up`` keeps in its state directory (default ``.lake/``).

moto keeps every service in memory and has no persistence of its own (getmoto/moto#1069, #9755:
"pickle the backends"), so the stand-in pickles the backends of the services the lake uses (S3
with every object version, SQS with its messages and receive counts, EventBridge, Glue, DynamoDB)
and puts them back before the server answers its first request. Iceberg tables are Glue entries
plus S3 objects, so they come back whole.

It is written as the lake changes (``lake.standin.checkpoint``): after every announcement, a few seconds
after any other change, and when ``lake up`` stops; a ``kill -9`` loses nothing announced. To keep
each checkpoint small, object bodies are not in the pickle: each is a file ``objects/<sha256>``,
written once (and fsynced) before the first state that names it, deleted once no state names it.
The pickle holds the rest (object metadata, catalog, queues, records).

``stand-in.state``: a JSON header line (format, moto version, checksum, what it holds), a JSON
line listing the current objects under ``raw/``, ``settings/`` and ``models/`` (key, body, content
type), then the pickle; written to a temporary file, fsynced and renamed, so a crash while saving
leaves the previous checkpoint. A pickle is only as stable as moto's classes: a state saved by
another moto version is not loaded; its listed objects (plain files, readable by any version) are
uploaded to a fresh lake and processed again (the lake is a function of ``raw/``). The file is the
user's own, written by this process; unpickling it runs no code that was not already on this
machine.

Beside it, while ``lake up`` runs: ``up.json`` (where it listens, its pid) and ``processed.jsonl``
(the completion events it saw), which ``lake status`` reads.
"""

from __future__ import annotations

import contextlib
import copyreg
import datetime as dt
import hashlib
import io
import json
import os
import pickle
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import topology

#: Bumped when what the file holds changes shape; a state of another format is refused.
#: Format 1 (one pickle with the object bodies inside) is still read.
STATE_FORMAT = 2
_READABLE_FORMATS = (1, 2)
STATE_FILE = "stand-in.state"
#: Object bodies, one file per distinct content, named by its SHA-256.
OBJECTS_DIR = "objects"
#: The prefixes of the lake bucket a lake is rebuilt from when its state cannot be loaded.
SOURCE_PREFIXES = (topology.SETTINGS_PREFIX, topology.MODELS_PREFIX, topology.RAW_PREFIX)
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


#: The moto services the topology provisions (``lake.standin.server.provision``).
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


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Bodies:
    """The ``objects/`` folder: object bodies by SHA-256, each written once and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._present: set[str] | None = None
        #: Digests the state being written names (what the next clean-up keeps).
        self.named: set[str] = set()

    def file(self, digest: str) -> Path:
        return self.path / digest[:2] / digest

    def present(self) -> set[str]:
        if self._present is None:
            self._present = {f.name for f in self.path.glob("??/*") if len(f.name) == 64}
        return self._present

    def store(self, key: Any) -> str:
        """The digest of an S3 key's body, writing the body first if no file holds it yet."""
        size, modified = getattr(key, "contentsize", None), getattr(key, "last_modified", None)
        known = getattr(key, _DIGEST_ATTRIBUTE, None)
        if known is not None and known[:2] == (size, modified) and known[2] in self.present():
            self.named.add(known[2])
            return str(known[2])
        try:
            body = key.value
        except ValueError:  # a disposed key (deleted meanwhile): moto itself keeps it empty
            body = b""
        digest = hashlib.sha256(body).hexdigest()
        if digest not in self.present():
            target = self.file(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".tmp")
            with temporary.open("wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, target)
            self.present().add(digest)
        setattr(key, _DIGEST_ATTRIBUTE, (size, modified, digest))
        self.named.add(digest)
        return digest

    def read(self, digest: str) -> bytes:
        return self.file(digest).read_bytes()

    def clean(self) -> int:
        """Delete the bodies the newest state does not name (call after it is on disk)."""
        removed = 0
        for digest in sorted(self.present() - self.named):
            with contextlib.suppress(FileNotFoundError):
                self.file(digest).unlink()
                removed += 1
            self.present().discard(digest)
        return removed


#: Where a pickled S3 key remembers its body's digest (kept off the pickle's key state).
_DIGEST_ATTRIBUTE = "_lake_body"
#: The bodies a restore reads from (set while unpickling; one restore at a time).
_loading_from: list[_Bodies] = []


def _new_key(cls: type[Any]) -> Any:
    return object.__new__(cls)


def _set_key_state(key: Any, saved: tuple[dict[str, Any], str]) -> None:
    state, digest = saved
    key.__setstate__({**state, "value": _loading_from[-1].read(digest)})  # moto's own: a new buffer, a new lock
    setattr(key, _DIGEST_ATTRIBUTE, (key.contentsize, getattr(key, "last_modified", None), digest))


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def _made_by(factory: Callable[[], Any]) -> Callable[[Any], tuple[Callable[[], Any], tuple[()]]]:
    """A reducer that pickles an object as a new one from ``factory`` (a lock comes back free)."""

    def reduce(_: Any) -> tuple[Callable[[], Any], tuple[()]]:
        return factory, ()

    return reduce


class _Pickler(pickle.Pickler):
    """Pickles moto's backends: locks and conditions (which cannot be pickled) come back new and free;
    an S3 key's body is stored beside the pickle (``_Bodies``) and named by its digest.

    By type (``dispatch_table``), not ``reducer_override``: that is called for every object pickled,
    and a checkpoint pickles hundreds of thousands (it took half the checkpoint's time)."""

    def __init__(self, file: io.BytesIO, bodies: _Bodies) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        from moto.s3.models import FakeKey

        self._bodies = bodies
        table: dict[type[Any], Callable[[Any], Any]] = dict(copyreg.dispatch_table)
        for lock_type, factory in _LOCK_TYPES.items():
            table[lock_type] = _made_by(factory)
        for waitable in (threading.Condition, threading.Event, threading.Semaphore, threading.BoundedSemaphore):
            for cls in _subclasses(waitable):
                table[cls] = _made_by(cls)
        for cls in _subclasses(FakeKey):
            table[cls] = self._reduce_key
        self.dispatch_table = table

    def _reduce_key(self, key: Any) -> Any:
        digest = self._bodies.store(key)
        state = key.__dict__.copy()
        for name in ("_value_buffer", "lock", _DIGEST_ATTRIBUTE):
            state.pop(name, None)
        # Object first, state after (pickle's six-item form), so keys inside cycles come back too.
        return _new_key, (type(key),), (state, digest), None, None, _set_key_state


#: Where the stand-in's modules lived before ``lake/`` was split into ``cli/`` and ``standin/``: a state
#: saved then names them (pickle stores a function, such as :func:`_new_key`, by its module's path).
MOVED_MODULES = {
    "lake.state": "lake.standin.state",
    "lake.checkpoint": "lake.standin.checkpoint",
    "lake.moto_gaps": "lake.standin.moto_gaps",
    "lake.s3_events": "lake.standin.s3_events",
    "lake.runner": "lake.standin.runner",
    "lake.standin": "lake.standin.server",
}


class _Unpickler(pickle.Unpickler):
    """Loads a saved state, finding what it names in a module that has moved since."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def _loads(body: bytes) -> Any:
    return _Unpickler(io.BytesIO(body)).load()


@dataclass(frozen=True)
class LakeObject:
    """An object the lake is rebuilt from: its key, its body's digest, its content type."""

    key: str
    digest: str
    content_type: str | None = None


@dataclass(frozen=True)
class SavedState:
    """What a state file's header says."""

    path: Path
    saved_at: str
    moto: str
    holds: dict[str, int]
    #: Set when the state was saved by another moto version and the lake is rebuilt from these
    #: objects (settings and models first, then raw files) instead of loaded.
    rebuild_from: tuple[LakeObject, ...] | None = None
    #: Where a rebuilt lake's old state was kept (with its bodies), never deleted.
    moved_to: Path | None = None

    def describe(self) -> str:
        holds = ", ".join(f"{count} {what}" for what, count in self.holds.items())
        return f"saved {self.saved_at}" + (f": {holds}" if holds else "")

    @property
    def raw_objects(self) -> int:
        return sum(1 for o in self.rebuild_from or () if o.key.startswith(topology.RAW_PREFIX))


class StateDir:
    """The state directory of one stand-in."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._bodies: _Bodies | None = None

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def __str__(self) -> str:
        return f"{self.path}{os.sep}"

    # --- the moto state --------------------------------------------------------------------------
    @property
    def bodies(self) -> _Bodies:
        if self._bodies is None:
            self._bodies = _Bodies(self.path / OBJECTS_DIR)
        return self._bodies

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
        if header["format"] not in _READABLE_FORMATS:
            raise StateError(
                f"the stand-in's state in {self.state_file} was saved by another version of the lake (state "
                f"format {header['format']}; this lake reads formats {', '.join(map(str, _READABLE_FORMATS))}); "
                f"start with that version to get at its data, or `lake up --fresh` to start clean (the old "
                f"state is moved to {self.path / DISCARDED_DIR})"
            )
        if header["format"] == 1 and header.get("moto") != _moto_version():
            raise StateError(
                f"the stand-in's state in {self.state_file} was saved by another version (state format 1, moto "
                f"{header.get('moto')}; this lake runs moto {_moto_version()}) and holds no objects to rebuild "
                f"from; start with that version to get at its data, or `lake up --fresh` to start clean (the old "
                f"state is moved to {self.path / DISCARDED_DIR})"
            )
        return header

    def _damaged(self, why: str) -> str:
        return (
            f"the stand-in's state file {self.state_file} is damaged ({why}); nothing was started and the file is "
            f"untouched: restore it from a backup, or `lake up --fresh` to start with an empty lake (the damaged "
            f"file is moved to {self.path / DISCARDED_DIR})"
        )

    def _read(self) -> tuple[dict[str, Any], list[dict[str, Any]], bytes]:
        """Header, listed objects and pickle of the saved state, checked against the header's checksum."""
        with self.state_file.open("rb") as f:
            header = self._read_header(f)
            listing = f.readline() if header["format"] >= 2 else b""
            body = f.read()
        content = listing + body
        if len(content) != header.get("size") or hashlib.sha256(content).hexdigest() != header.get("sha256"):
            raise StateError(
                self._damaged(f"{len(content)} bytes where {header.get('size')} were saved, or a checksum mismatch")
            )
        try:
            objects: list[dict[str, Any]] = json.loads(listing) if listing else []
        except ValueError:
            raise StateError(self._damaged("its list of objects is not JSON")) from None
        return header, objects, body

    def restore(self) -> SavedState | None:
        """Put the saved backends into this process's moto; None when there is nothing saved.

        A state another moto version saved is not loaded: the returned ``rebuild_from`` lists the
        objects to upload to a fresh lake (``lake.standin.server``), whose bodies stay where they are."""
        if not self.state_file.exists():
            return None
        header, objects, body = self._read()
        saved = SavedState(self.state_file, str(header["saved_at"]), str(header["moto"]), dict(header["holds"]))
        if header.get("moto") != _moto_version():
            listed = tuple(LakeObject(str(o["key"]), str(o["digest"]), o.get("content_type")) for o in objects)
            missing = [o.key for o in listed if not self.bodies.file(o.digest).exists()]
            if missing:
                raise StateError(
                    self._damaged(
                        f"{len(missing)} object bodies are missing from {self.path / OBJECTS_DIR}, e.g. {missing[0]}"
                    )
                )
            return replace(saved, rebuild_from=listed)
        self._bodies = None
        _loading_from.append(self.bodies)
        try:
            backends_saved: dict[str, tuple[dict[str, dict[str, Any]], dict[str, Any]]] = _loads(body)
        except Exception as exc:
            raise StateError(self._damaged(f"{type(exc).__name__}: {exc}")) from None
        finally:
            _loading_from.pop()
        from moto.backends import get_backend

        for service, (accounts, extras) in backends_saved.items():
            backends: Any = get_backend(service)  # type: ignore[call-overload]
            for account, regions in accounts.items():
                for region, backend in regions.items():
                    dict.__setitem__(backends[account], region, backend)
            for name, value in extras.items():
                setattr(backends, name, value)
        return saved

    def rebuild_body(self, lake_object: LakeObject) -> bytes:
        """The body of an object a lake is rebuilt from."""
        return self.bodies.read(lake_object.digest)

    def keep_aside(self) -> Path:
        """Before a rebuilt lake's first checkpoint replaces the old state: a copy of it, with its
        bodies (hard links where the file system has them), in ``discarded/<time>/``. Until that
        checkpoint the old state stays in place, so a crash during a rebuild rebuilds again."""
        aside = self.path / DISCARDED_DIR / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        (aside / OBJECTS_DIR).mkdir(parents=True)
        shutil.copy2(self.state_file, aside / STATE_FILE)
        for body in (self.path / OBJECTS_DIR).glob("??/*"):
            (aside / OBJECTS_DIR / body.parent.name).mkdir(exist_ok=True)
            try:
                os.link(body, aside / OBJECTS_DIR / body.parent.name / body.name)
            except OSError:
                shutil.copy2(body, aside / OBJECTS_DIR / body.parent.name / body.name)
        return aside

    def save(self, holds: dict[str, int], bucket: str | None = None) -> SavedState:
        """Write this process's moto backends: stop the server first, or hold the checkpoint gate
        (``lake.standin.checkpoint``), so nothing changes meanwhile. ``bucket``'s objects under
        ``SOURCE_PREFIXES`` are listed for a rebuild by another moto version."""
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
        self.path.mkdir(parents=True, exist_ok=True)
        bodies = self.bodies
        bodies.named = set()
        buffer = io.BytesIO()
        _Pickler(buffer, bodies).dump(state)
        listing = json.dumps([o.__dict__ for o in self._sources(bucket)]).encode() + b"\n"
        content = listing + buffer.getvalue()
        saved_at = _now()
        header = {
            "format": STATE_FORMAT,
            "moto": _moto_version(),
            "saved_at": saved_at,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "holds": holds,
        }
        temporary = self.state_file.with_suffix(".tmp")
        with temporary.open("wb") as f:
            f.write(json.dumps(header).encode() + b"\n")
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.state_file)
        _fsync_directory(self.path)
        bodies.clean()
        return SavedState(self.state_file, saved_at, _moto_version(), holds)

    def _sources(self, bucket: str | None) -> list[LakeObject]:
        """The current objects of ``bucket`` a lake is rebuilt from (their bodies were just stored)."""
        if bucket is None:
            return []
        from moto.backends import get_backend
        from moto.s3.models import FakeKey

        try:
            keys = get_backend("s3")[topology.LOCAL_ACCOUNT_ID]["aws"].buckets[bucket].keys
        except KeyError:
            return []
        found = []
        for name in sorted(keys):
            if not name.startswith(SOURCE_PREFIXES):
                continue
            latest = keys[name]
            known = getattr(latest, _DIGEST_ATTRIBUTE, None)
            if isinstance(latest, FakeKey) and known is not None:
                content_type = latest._metadata.get("Content-Type") if hasattr(latest, "_metadata") else None
                found.append(LakeObject(name, str(known[2]), content_type))
        # Settings and models before the raw files they apply to.
        return sorted(found, key=lambda o: ([o.key.startswith(p) for p in SOURCE_PREFIXES].index(True), o.key))

    def discard(self) -> Path | None:
        """``--fresh`` (or a rebuild): move the saved state and its bodies aside (never deleted);
        where they went, or None."""
        if not self.state_file.exists():
            return None
        aside = self.path / DISCARDED_DIR / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        aside.mkdir(parents=True)
        shutil.move(str(self.state_file), aside / STATE_FILE)
        if (self.path / OBJECTS_DIR).exists():
            shutil.move(str(self.path / OBJECTS_DIR), aside / OBJECTS_DIR)
        self._bodies = None
        return aside

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
