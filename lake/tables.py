"""Read curated tables back from the stand-in (or S3) through the Glue catalog and pyarrow."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from handlers.store import athena_to_arrow
from lake.standin import CREDENTIALS


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


def glue_table(glue: Any, database: str, table: str) -> dict[str, Any]:
    """The Glue table definition."""
    result: dict[str, Any] = glue.get_table(DatabaseName=database, Name=table)["Table"]
    return result


def read_table(glue: Any, fs: pafs.S3FileSystem, database: str, table: str) -> pa.Table:
    """Every row of a catalogued table, partition column included, as Athena would see it."""
    definition = glue_table(glue, database, table)
    location = definition["StorageDescriptor"]["Location"].removeprefix("s3://").rstrip("/")
    keys = definition.get("PartitionKeys", [])
    partition_schema = pa.schema([(k["Name"], athena_to_arrow(k["Type"])) for k in keys])
    dataset = ds.dataset(
        location,
        filesystem=fs,
        format="parquet",
        partitioning=ds.partitioning(partition_schema, flavor="hive"),
    )
    return dataset.to_table()
