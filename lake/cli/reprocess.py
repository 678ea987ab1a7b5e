"""``lake reprocess s3://<bucket>/raw/<prefix-or-key>``: backfill by enqueueing process requests.

One process request (``handlers.events.process_request_body``) per object, naming the latest
version, on the processing queue. Every run carries its own request id, so the handler's
idempotency (bucket + key + version + request id) lets it through once; outputs are named after the
source object, so reprocessing replaces exactly that object's files: idempotent by construction.
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import topology
from lake.target import CliError, Target

S3_SCHEME = "s3://"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "reprocess",
        parents=[common],
        help="process objects under raw/ again (backfill): one process request per object",
        description="Enqueue a process request for the latest version of the object, or of every object "
        "under the prefix, on the processing queue. Their outputs are replaced, never duplicated.",
    )
    parser.add_argument("url", metavar="s3://BUCKET/raw/PREFIX-OR-KEY", help="an object or a prefix under raw/")
    parser.add_argument("--dry-run", action="store_true", help="show what would be enqueued and send nothing")
    parser.add_argument(
        "--reason", default="reprocess", help="why, carried into the completion events (default: %(default)s)"
    )
    parser.set_defaults(func=_reprocess)


@dataclass(frozen=True)
class Candidate:
    key: str
    version_id: str | None
    size: int


def _reprocess(args: argparse.Namespace) -> int:
    from handlers.events import process_request_body

    reason = " ".join(args.reason.split())
    if not reason or len(reason) > 512:
        raise CliError("--reason must be between 1 and 512 characters")
    target: Target = args.target()
    prefix = _parse_url(args.url, target)
    found = list(_latest_versions(target, prefix))
    exact = [c for c in found if c.key == prefix]
    candidates = exact or found
    if not candidates:
        raise CliError(
            f"nothing under {args.url} to reprocess; see what is there with "
            f"`aws{_endpoint_option(target)} s3 ls {S3_SCHEME}{target.bucket}/{prefix}`"
        )
    chosen, skipped = [], []
    for candidate in candidates:
        why = _not_processed(candidate.key)
        (skipped.append((candidate, why)) if why else chosen.append(candidate))
    for candidate, why in skipped:
        print(f"skip  {candidate.key}  ({why})")
    if not chosen:
        raise CliError(f"none of the {len(skipped)} object(s) under {args.url} is a file the processor reads")

    run_id = f"reprocess-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    bodies = [
        process_request_body(target.bucket, c.key, version_id=c.version_id, reason=reason, request_id=run_id)
        for c in chosen
    ]
    if args.dry_run:
        for candidate in chosen:
            print(f"would enqueue  {candidate.key}  (version {candidate.version_id or 'none'})")
        print(f"dry run: {len(chosen)} process request(s) would be enqueued, nothing was sent")
        return 0
    sqs = target.client("sqs")
    queue_url = target.queue_url("processing")
    failed: list[str] = []
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        for failure in response.get("Failed", []):
            failed.append(f"{chosen[start + int(failure['Id'])].key}: {failure.get('Code')} {failure.get('Message')}")
    sent = len(bodies) - len(failed)
    print(f"enqueued {sent} process request(s) (request id {run_id}, reason {reason!r}) on the processing queue")
    print("follow the completion events with `lake events`")
    if failed:
        raise CliError(
            f"{len(failed)} request(s) could not be enqueued ({failed[0]}); run the same command again "
            "(reprocessing an object twice is harmless)"
        )
    return 0


def _parse_url(url: str, target: Target) -> str:
    """The key or prefix of an ``s3://`` URL into the lake's raw/ zone."""
    example = f"{S3_SCHEME}{target.bucket}/{topology.RAW_PREFIX}<dataset>/"
    if not url.startswith(S3_SCHEME):
        raise CliError(f"'{url}' is not an S3 URL; it must start with s3://, e.g. {example}")
    bucket, _, key = url[len(S3_SCHEME) :].partition("/")
    if bucket != target.bucket:
        raise CliError(
            f"s3://{bucket} is not the lake bucket of {target.where}; reprocess objects of "
            f"s3://{target.bucket}, e.g. {example}"
        )
    if not key.startswith(topology.RAW_PREFIX):
        raise CliError(f"{url} is outside {topology.RAW_PREFIX}; only objects under raw/ are processed, e.g. {example}")
    return key


def _latest_versions(target: Target, prefix: str) -> Iterator[Candidate]:
    """The latest version of every object under ``prefix`` (deleted objects are left out)."""
    import botocore.exceptions

    s3 = target.client("s3")
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=target.bucket, Prefix=prefix):
            # A deleted object's latest version is a delete marker, so none of its versions is latest.
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    version_id = version.get("VersionId")
                    yield Candidate(
                        version["Key"], None if version_id in (None, "null") else version_id, version["Size"]
                    )
        return
    except botocore.exceptions.ClientError as exc:
        # Without s3:ListBucketVersions, the current objects will do (the handler reads the latest).
        if exc.response.get("Error", {}).get("Code") not in ("AccessDenied", "NotImplemented"):
            raise
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield Candidate(obj["Key"], None, obj["Size"])


def _not_processed(key: str) -> str | None:
    """Why the processor would refuse this key (its own checks, ``handlers.adapters.reader``), or None."""
    from handlers.adapters.reader import dataset_of, detect_format
    from handlers.errors import UnsupportedObjectError

    if key.endswith("/"):
        return "a folder marker"
    try:
        dataset_of(key)
        detect_format(key)
    except UnsupportedObjectError as exc:
        return str(exc).removeprefix(f"{key}: ")
    return None


def _endpoint_option(target: Target) -> str:
    return f" --endpoint-url {target.endpoint_url}" if target.local else ""
