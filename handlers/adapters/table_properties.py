"""How the lake's Iceberg tables are written: the properties every table is created with.

The catalog itself (pyiceberg's Glue catalog over the Glue client the process already has) is the
query engine's :func:`query.catalog.glue_catalog`, so every reader and writer sees the same tables
the same way (Glue on AWS, the same Glue API on the moto stand-in).
"""

from __future__ import annotations

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
