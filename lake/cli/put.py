"""``lake put PATH... --dataset NAME``: upload files or folders to ``raw/<dataset>/``.

A file lands as ``raw/<dataset>/<file name>``; a folder's files (recursively, hidden ones skipped)
keep their paths relative to the folder, as ``aws s3 cp --recursive`` does. Everything is checked
before the first byte goes up: missing paths, extensions the processor does not read (unless
``--force``) and two files that would land on the same key. Large files go up in parts
(boto3's transfer manager, multipart above 8 MiB) with a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import topology
from lake.target import CliError, Target

#: boto3's default multipart threshold (8 MiB): larger files are uploaded in parts, with a progress bar.
MULTIPART_THRESHOLD = 8 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """One local file and the key it goes to."""

    path: Path
    key: str
    size: int


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "put",
        parents=[common],
        help="upload files or folders to raw/<dataset>/",
        description="Upload files, or folders recursively (hidden files skipped, sub-folders kept), to "
        "raw/<dataset>/ of the lake bucket, where each file triggers processing.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a file or a folder")
    parser.add_argument("--dataset", "-d", required=True, help="the dataset: files land under raw/<dataset>/")
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"upload files whose extension the processor does not read ({', '.join(topology.RAW_EXTENSIONS)})",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="after uploading, wait for each file's completion event and print it (exit 1 if any failed)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="with --wait: give up after SECONDS (default: %(default)s)",
    )
    parser.set_defaults(func=_put)


def plan(paths: list[str], dataset: str, force: bool = False) -> list[Upload]:
    """The uploads for ``paths``, or a :class:`CliError` before anything is uploaded."""
    if not dataset.strip() or "/" in dataset or len(dataset) > 128:
        raise CliError(
            f"--dataset {dataset!r} must be one folder name (1 to 128 characters, no '/'), e.g. web_sessions"
        )
    prefix = f"{topology.RAW_PREFIX}{dataset}/"
    uploads: list[Upload] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files = sorted(
                f
                for f in path.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            if not files:
                raise CliError(f"{name}: the folder holds no files to upload (hidden files are skipped)")
            uploads += [Upload(f, prefix + f.relative_to(path).as_posix(), f.stat().st_size) for f in files]
        elif path.is_file():
            uploads.append(Upload(path, prefix + path.name, path.stat().st_size))
        elif path.exists():
            raise CliError(f"{name}: not a regular file or a folder; pass files or folders")
        else:
            raise CliError(f"{name}: no such file or folder; check the path (nothing was uploaded)")
    unreadable = [u for u in uploads if not u.key.lower().endswith(topology.RAW_EXTENSIONS)]
    if unreadable and not force:
        shown = ", ".join(str(u.path) for u in unreadable[:3]) + (" ..." if len(unreadable) > 3 else "")
        raise CliError(
            f"{len(unreadable)} file(s) have an extension the processor does not read ({shown}); rename them to "
            f"one of {', '.join(topology.RAW_EXTENSIONS)}, leave them out, or pass --force to upload anyway "
            "(they will fail with UnsupportedObjectError). Nothing was uploaded."
        )
    seen: dict[str, Path] = {}
    for upload in uploads:
        if upload.key in seen:
            raise CliError(
                f"{seen[upload.key]} and {upload.path} would both land on {upload.key}; upload them separately "
                "or rename one. Nothing was uploaded."
            )
        seen[upload.key] = upload.path
    return uploads


class Progress:
    """A one-line progress bar on a terminal; boto3 calls it from several threads."""

    WIDTH = 30

    def __init__(self, label: str, total: int, out: TextIO) -> None:
        self.label, self.total, self.out = label, total, out
        self.done = 0
        self._lock = threading.Lock()
        self._shown = 0.0

    def __call__(self, chunk: int) -> None:
        with self._lock:
            self.done += chunk
            now = time.monotonic()
            if now - self._shown >= 0.1 or self.done >= self.total:
                self._shown = now
                self.out.write(f"\r{self.line()}")
                self.out.flush()

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(share * self.WIDTH)
        mib = 1024 * 1024
        return f"{self.label} [{bar:<{self.WIDTH}}] {share:4.0%} {self.done / mib:.1f}/{self.total / mib:.1f} MiB"

    def finish(self) -> None:
        self.out.write("\r\033[K")  # clear the bar; the "uploaded" line follows on stdout
        self.out.flush()


def _put(args: argparse.Namespace) -> int:
    uploads = plan(args.paths, args.dataset, args.force)
    target: Target = args.target()
    s3 = target.client("s3")
    _check_bucket(s3, target)
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)
    if not args.wait:
        _upload(s3, target, uploads, config)
        return 0
    from lake.cli.subscribe import Subscription

    # Subscribed before uploading, so no completion event can slip past.
    with Subscription(target, dataset=args.dataset) as subscription:
        _upload(s3, target, uploads, config)
        return _wait(subscription, uploads, args.timeout)


def _wait(subscription: Any, uploads: list[Upload], timeout: float) -> int:
    from lake.cli.summary import summarize

    pending = {upload.key for upload in uploads}
    failed = 0
    for event in subscription.stream(timeout=timeout):
        detail = event.get("detail", {})
        key = detail.get("source", {}).get("key")
        if key not in pending:
            continue
        pending.discard(key)
        failed += detail.get("status") != "succeeded"
        print(summarize(detail), flush=True)
        if not pending:
            return 1 if failed else 0
    raise CliError(
        f"no completion event within {timeout:g}s for {', '.join(sorted(pending))}; is `lake up` (or the deployed "
        "function) running? (`lake status`, `lake dlq` show stuck files)"
    )


def _upload(s3: Any, target: Target, uploads: list[Upload], config: Any) -> None:
    for upload in uploads:
        progress = (
            Progress(upload.path.name, upload.size, sys.stderr)
            if upload.size > MULTIPART_THRESHOLD and sys.stderr.isatty()
            else None
        )
        try:
            s3.upload_file(str(upload.path), target.bucket, upload.key, Config=config, Callback=progress)
        except Exception as exc:
            raise _upload_error(exc, upload, target) from exc
        finally:
            if progress is not None:
                progress.finish()
        print(f"uploaded {upload.path} → s3://{target.bucket}/{upload.key} ({upload.size:,} bytes)", flush=True)


def _check_bucket(s3: Any, target: Target) -> None:
    """Fail before uploading anything when the bucket is missing or unreachable."""
    import botocore.exceptions

    try:
        s3.head_bucket(Bucket=target.bucket)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchBucket"):
            raise CliError(
                f"the lake bucket {target.bucket} does not exist on {target.where}; start `lake up` or deploy the stack"
            ) from exc
        raise


def _upload_error(exc: Exception, upload: Upload, target: Target) -> Exception:
    """boto3 wraps a client error of an upload in ``S3UploadFailedError``; say which file, and why."""
    from boto3.exceptions import S3UploadFailedError

    from lake.target import explain

    cause = exc.__context__ if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None else exc
    error = explain(cause, target)
    return CliError(f"uploading {upload.path} to s3://{target.bucket}/{upload.key} failed: {error}", error.code)
