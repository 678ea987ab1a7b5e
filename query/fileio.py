"""pyiceberg's pyarrow file IO, with each small file written to S3 in one request.

pyiceberg opens every file it writes (a manifest, a manifest list, a metadata JSON, a data file) as
an S3 multipart upload: ``CreateMultipartUpload``, ``UploadPart``, ``CompleteMultipartUpload``, three
requests for a few kilobytes. pyarrow's ``allow_delayed_open`` starts the upload only when the data
outgrows one part, so a file smaller than a part (10 MB, every file of a commit but large data
files) is one ``PutObject``: fewer S3 requests billed and fewer round trips in each commit. A write
to a bucket that does not exist fails when the file is closed instead of opened, which pyiceberg
reports the same way.

The catalog names this class in its ``py-io-impl`` property (:func:`query.catalog.catalog_properties`).
pyiceberg makes a file IO per table it loads; the filesystems are shared by every file IO of the
process with the same options, so the S3 client behind them is made once.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pyiceberg.io.pyarrow import PyArrowFileIO

_FILESYSTEMS: dict[tuple[int, str | None, tuple[tuple[str, str], ...]], Any] = {}
_LOCK = threading.Lock()


class LakeFileIO(PyArrowFileIO):
    """:class:`PyArrowFileIO` whose S3 filesystem delays opening an upload until it needs one."""

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
