"""pyiceberg's pyarrow file IO, with fewer S3 requests per commit and per table load.

What it changes, each a request or more that every commit or load paid:

- **One PutObject per small file.** pyiceberg opens every file it writes (a manifest, a manifest
  list, a metadata JSON, a data file) as an S3 multipart upload: ``CreateMultipartUpload``,
  ``UploadPart``, ``CompleteMultipartUpload``, three requests for a few kilobytes. pyarrow's
  ``allow_delayed_open`` starts the upload only when the data outgrows one part, so a file smaller
  than a part (10 MB, every file of a commit but large data files) is one ``PutObject``. A write to
  a bucket that does not exist fails when the file is closed instead of opened, which pyiceberg
  reports the same way.
- **No existence check before a metadata JSON is written.** pyiceberg asks whether the new
  metadata file exists (pyarrow: a HEAD, then a LIST when the key is missing) before writing it.
  Its name holds a fresh UUID, so it cannot exist; pyiceberg itself skips the check for S3 Tables,
  and its docstring notes the check is racy anyway (a concurrent writer could create the file in
  between). What keeps two commits apart is the Glue ``VersionId`` check, not this.
- **A written file knows its length.** pyiceberg records a manifest's length by asking S3 for it
  (a HEAD) right after writing it; the bytes just written say it.
- **Iceberg's own files are read once per process.** Manifests, manifest lists and metadata JSON
  files are written once under a fresh name and never change, so their bytes are kept (the most
  recent, up to :data:`CACHE_BYTES`) when written or first read, and read again from memory: a
  warm function that loads a table or plans a scan again reads only what changed since. A file
  deleted through the file IO (pyiceberg's clean-up after a failed commit, expired snapshots) is
  dropped from memory too, so a read of it fails as it would from S3. The bytes are kept by
  location for the process, whatever credentials read them: one process, one identity (a function,
  a ``lake`` command).

The catalog names this class in its ``py-io-impl`` property (:func:`query.catalog.catalog_properties`).
pyiceberg makes a file IO per table it loads; the filesystems are shared by every file IO of the
process with the same options, so the S3 client behind them is made once.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import cachetools
import pyarrow as pa
from pyiceberg.io.pyarrow import BUFFER_SIZE, ONE_MEGABYTE, PyArrowFile, PyArrowFileIO

_FILESYSTEMS: dict[tuple[int, str | None, tuple[tuple[str, str], ...]], Any] = {}
_LOCK = threading.Lock()

#: Iceberg's own files: written once under a fresh name, never changed.
IMMUTABLE_SUFFIXES = (".avro", ".metadata.json")
#: What the process keeps of them at most (a manifest is kilobytes, a metadata JSON grows with
#: the table's snapshots); a file larger than a quarter of it is not kept.
CACHE_BYTES = 32 * 2**20


class RecentFiles:
    """The most recently used immutable files' bytes, by location, up to ``limit`` bytes in all:
    cachetools' LRU cache sized by length, behind a lock (it is not thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._files: cachetools.LRUCache[str, bytes] = cachetools.LRUCache(maxsize=limit, getsizeof=len)
        self._lock = threading.Lock()

    def get(self, location: str) -> bytes | None:
        with self._lock:
            return self._files.get(location)

    def put(self, location: str, data: bytes) -> None:
        if len(data) > self.limit // 4:
            return
        with self._lock:
            self._files[location] = data

    def discard(self, location: str) -> None:
        with self._lock:
            self._files.pop(location, None)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()


RECENT = RecentFiles(CACHE_BYTES)


def immutable(location: str) -> bool:
    return location.endswith(IMMUTABLE_SUFFIXES)


class _Upload:
    """An immutable file being written: its bytes gathered, then sent in one write when closed (so
    its length is known and it is kept in :data:`RECENT`)."""

    def __init__(self, file: LakeFile) -> None:
        self._file = file
        self._buffer = io.BytesIO()
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError(f"{self._file.location} is closed")
        return self._buffer.write(data)

    def tell(self) -> int:
        return self._buffer.tell()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        data = self._buffer.getvalue()
        with PyArrowFile.create(self._file, overwrite=True) as stream:
            stream.write(data)
        self.closed = True
        self._file.written = len(data)
        RECENT.put(self._file.location, data)

    def __enter__(self) -> _Upload:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:  # a file half written is never sent, nor kept
            self.closed = True
            return
        self.close()


class LakeFile(PyArrowFile):
    """:class:`PyArrowFile` that writes without an existence check, knows what it wrote, and reads
    Iceberg's own (immutable) files through :data:`RECENT`."""

    #: Bytes written through this file object (None: not written by it).
    written: int | None = None

    def create(self, overwrite: bool = False) -> Any:
        # Iceberg's own files have fresh names: no existence check (the module docstring says why).
        if immutable(self.location):
            return _Upload(self)
        return super().create(overwrite=overwrite)

    def open(self, seekable: bool = True) -> Any:
        if not immutable(self.location):
            return super().open(seekable)
        data = RECENT.get(self.location)
        if data is None:
            with super().open(seekable=True) as stream:  # a HEAD (its size), then one GET of all of it
                data = stream.read()
            RECENT.put(self.location, data)
        return pa.BufferReader(data)

    def __len__(self) -> int:
        if self.written is not None:
            return self.written
        data = RECENT.get(self.location) if immutable(self.location) else None
        return len(data) if data is not None else super().__len__()


class LakeFileIO(PyArrowFileIO):
    """:class:`PyArrowFileIO` with :class:`LakeFile` files over S3 filesystems that delay opening an
    upload until they need one."""

    def new_input(self, location: str) -> LakeFile:
        return self._file(location)

    def new_output(self, location: str) -> LakeFile:
        return self._file(location)

    def delete(self, location: str | Any) -> None:
        RECENT.discard(location if isinstance(location, str) else location.location)
        super().delete(location)

    def _file(self, location: str) -> LakeFile:
        # As PyArrowFileIO.new_input and new_output build their PyArrowFile.
        scheme, netloc, path = self.parse_location(location, self.properties)
        return LakeFile(
            fs=self.fs_by_scheme(scheme, netloc),
            location=location,
            path=path,
            buffer_size=int(self.properties.get(BUFFER_SIZE, ONE_MEGABYTE)),
        )

    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        # Keyed by what pyiceberg builds the filesystem from, so a cached one is found before
        # pyiceberg builds another (making an S3 client costs milliseconds of CPU).
        # The process id too: a forked child (bench/iceberg.py's workers) makes its own client.
        key = (os.getpid(), netloc, tuple(sorted(self.properties.items())))
        with _LOCK:
            filesystem = _FILESYSTEMS.get(key)
        if filesystem is None:
            built = super()._initialize_s3_fs(netloc)
            reconstruct, (options,) = built.__reduce__()  # how pyarrow pickles it: every option, by name
            filesystem = reconstruct(dict(options, allow_delayed_open=True))
            with _LOCK:
                filesystem = _FILESYSTEMS.setdefault(key, filesystem)
        return filesystem
