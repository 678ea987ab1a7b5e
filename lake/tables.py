"""Read curated tables back from the stand-in (or S3) through the Glue catalog and pyarrow."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from lake.standin import CREDENTIALS
from lake.target import CliError

if TYPE_CHECKING:
    from lake.target import Target


def s3_filesystem(endpoint_url: str | None, region: str) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem; pointed at the stand-in when ``endpoint_url`` is given."""
    if endpoint_url is None:
        return pafs.S3FileSystem(region=region)
    parsed = urlparse(endpoint_url)
    return pafs.S3FileSystem(
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=parsed.netloc,
        scheme=parsed.scheme,
        region=region,
    )


def read_table(glue: Any, fs: pafs.S3FileSystem, database: str, table: str) -> pa.Table:
    """Every row of a catalogued table, partition column included, read as a query reads it."""
    from lake.athena import definition, open_dataset

    described = definition(database, glue.get_table(DatabaseName=database, Name=table)["Table"])
    return open_dataset(fs, described).to_table()


def list_tables(target: Target) -> pa.Table:
    """One row per table of the curated and quarantine databases: its partition key, how many
    partitions the catalog has, rows (from the Parquet footers), last update and location."""
    from lake.athena import definition, open_dataset, parquet_files, unreadable

    glue = target.client("glue")
    fs = target.s3_filesystem()
    rows: list[dict[str, Any]] = []
    for database in (target.curated_database, target.quarantine_database):
        try:
            pages = glue.get_paginator("get_tables").paginate(DatabaseName=database)
            found = sorted((t for page in pages for t in page["TableList"]), key=lambda t: str(t["Name"]))
        except glue.exceptions.EntityNotFoundException as exc:
            raise CliError(
                f"Glue database {database} does not exist on {target.where}; start the stand-in with `lake up` "
                "or deploy the stack"
            ) from exc
        for table in found:
            described = definition(database, table)
            files = parquet_files(fs, described.path)
            try:
                dataset = open_dataset(fs, described, [f.path for f in files]) if files else None
                count = dataset.count_rows() if dataset is not None else 0
            except (OSError, pa.ArrowException) as exc:
                raise CliError(unreadable(exc, described.ref)) from exc
            newest = max((f.mtime for f in files if f.mtime is not None), default=None)
            keys = [name for name, _ in described.partition_keys]
            rows.append(
                {
                    "database": database,
                    "table": described.ref.table,
                    "partition_key": ", ".join(keys) or None,
                    "partitions": _partition_count(glue, database, described.ref.table) if keys else None,
                    "rows": count,
                    "last_update": _utc(newest or described.updated),
                    "location": described.location,
                }
            )
    return pa.Table.from_pylist(rows, schema=TABLES_SCHEMA)


TABLES_SCHEMA = pa.schema(
    [
        ("database", pa.string()),
        ("table", pa.string()),
        ("partition_key", pa.string()),
        ("partitions", pa.int64()),
        ("rows", pa.int64()),
        ("last_update", pa.timestamp("s", tz="UTC")),
        ("location", pa.string()),
    ]
)


def _partition_count(glue: Any, database: str, table: str) -> int:
    pages = glue.get_paginator("get_partitions").paginate(
        DatabaseName=database, TableName=table, ExcludeColumnSchema=True
    )
    return sum(len(page["Partitions"]) for page in pages)


def _utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).replace(microsecond=0)
