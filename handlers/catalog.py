"""The Iceberg catalog: pyiceberg's Glue catalog over the Glue client the process already has.

One factory for the handler, the refresh and the ``lake`` command, so every reader and writer
sees the same tables the same way (Glue on AWS, the same Glue API on the moto stand-in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from pyiceberg.catalog.glue import GlueCatalog

#: pyiceberg's own commit retries on a concurrent update, before our caller sees the conflict.
COMMIT_RETRIES = 8
#: Rows of one data file before a new one starts (Athena and Glue's compaction aim at 128-512 MB).
TARGET_FILE_SIZE_BYTES = 256 * 1024 * 1024


def table_properties() -> dict[str, str]:
    """Properties of every Iceberg table the lake creates (v2, zstd Parquet, bounded commit retries)."""
    return {
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "zstd",
        "write.target-file-size-bytes": str(TARGET_FILE_SIZE_BYTES),
        # A commit that lost a race with another writer is re-applied against the fresh metadata
        # by pyiceberg (the overwrite filter evaluated again); past these the caller sees
        # CommitFailedException and the message is retried by SQS.
        "commit.retry.num-retries": str(COMMIT_RETRIES),
        "commit.retry.min-wait-ms": "100",
        "commit.retry.max-wait-ms": "5000",
        "commit.retry.total-timeout-ms": "60000",
        # Each commit adds a manifest; merging them keeps the manifest list short, so finding a
        # source's files to replace reads a few manifests, not one per commit the table ever had.
        "commit.manifest-merge.enabled": "true",
        "commit.manifest.min-count-to-merge": "8",
    }


def catalog_properties(region: str, endpoint_url: str | None = None) -> dict[str, str]:
    """Properties for pyiceberg's Glue catalog and its S3 file IO.

    pyarrow's S3 filesystem ignores ``AWS_ENDPOINT_URL``, so the stand-in's endpoint is passed on
    explicitly; credentials come from the usual chain (the environment on Lambda and locally).
    """
    properties = {"glue.region": region, "s3.region": region}
    if endpoint_url:
        properties |= {
            "glue.endpoint": endpoint_url,
            "s3.endpoint": endpoint_url,
            "s3.force-virtual-addressing": "false",
        }
    return properties


def glue_catalog(glue: GlueClient | Any, region: str, endpoint_url: str | None = None) -> GlueCatalog:
    """pyiceberg's Glue catalog using ``glue`` (one client per process, created by the caller)."""
    from pyiceberg.catalog.glue import GlueCatalog

    properties = catalog_properties(region, endpoint_url)
    if endpoint_url:
        # pyarrow's S3 finds credentials in the environment, not in the client the caller built
        # with explicit keys (the `lake` command's stand-in clients): hand them over.
        signer = getattr(glue, "_request_signer", None)
        credentials = getattr(signer, "_credentials", None)
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            properties |= {"s3.access-key-id": frozen.access_key, "s3.secret-access-key": frozen.secret_key}
            if frozen.token:
                properties["s3.session-token"] = frozen.token
    return GlueCatalog("lake", client=glue, **properties)


def scan_snapshot(table: Any, snapshot_id: int | None) -> Any:
    """The rows of one snapshot of an Iceberg table, for DuckDB to read: a ``pyarrow.dataset.Dataset``
    over its data files when their columns can be read by name (DuckDB then reads only the columns
    and row groups a query needs, see :mod:`handlers.snapshot_files`), else pyiceberg's
    ``RecordBatchReader`` of every column, whose files are read as the stream is consumed (an empty
    table gives its schema and no rows)."""
    import pyarrow as pa
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    from handlers.snapshot_files import snapshot_dataset

    if snapshot_id is None:
        return pa.RecordBatchReader.from_batches(schema_to_pyarrow(table.schema(), include_field_ids=False), [])
    dataset = snapshot_dataset(table, snapshot_id)
    if dataset is not None:
        return dataset
    return table.scan(snapshot_id=snapshot_id).to_arrow_batch_reader()
