"""The query engine (:mod:`query`) pointed at what a ``lake`` command names: the stand-in or a
deployed stack (a :class:`~lake.target.Target`).

The engine's failures reach the user as the command's one-line :class:`~lake.target.CliError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lake.target import CliError
from query.catalog import Catalog, TableRef, commit_time, is_iceberg, partition_spec, snapshot_at
from query.errors import QueryError
from query.scan import read_table, scan
from query.types import athena_type

if TYPE_CHECKING:
    import pyarrow as pa

    from lake.target import Target

__all__ = [
    "LakeCatalog",
    "TableRef",
    "athena_type",
    "commit_time",
    "is_iceberg",
    "partition_spec",
    "read_table",
    "run_query",
    "scan",
    "snapshot_at",
]


@dataclass
class LakeCatalog(Catalog):
    """The engine's catalog of a target's Glue; pyarrow's S3 (under pyiceberg) reads the stand-in's
    files with its fixed credentials, which a terminal pointed at it by ``LAKE_ENDPOINT_URL`` alone lacks."""

    def __post_init__(self) -> None:
        if self.endpoint_url is not None and not self.s3_properties:
            from lake.standin.server import CREDENTIALS

            self.s3_properties = {
                "s3.access-key-id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "s3.secret-access-key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            }

    @classmethod
    def of(cls, target: Target) -> LakeCatalog:
        """The catalog of ``target``; pyarrow's S3 (under pyiceberg) follows the endpoint boto3
        resolved when it is not AWS's own (``AWS_ENDPOINT_URL``, a profile's ``endpoint_url``)."""
        from urllib.parse import urlparse

        endpoint = target.endpoint_url
        if endpoint is None:
            resolved = str(target.client("s3").meta.endpoint_url)
            if not urlparse(resolved).netloc.endswith(".amazonaws.com"):
                endpoint = resolved
        return cls(target.client("glue"), target.region, endpoint, database=target.curated_database)


def run_query(target: Target, sql: str) -> pa.Table:
    """The result of Athena SQL ``sql`` on ``target``: DuckDB over the stand-in's tables, or Athena in
    the stack's workgroup; unqualified tables are curated ones."""
    try:
        if target.local:
            from query.local import DuckDBEngine

            return DuckDBEngine(LakeCatalog.of(target), target.curated_database).run(sql)
        return _run_athena(target, sql)
    except QueryError as exc:
        raise CliError(str(exc)) from exc


def _run_athena(target: Target, sql: str) -> pa.Table:
    """``lake query`` on a deployed stack: Athena in its workgroup, through awswrangler (a dependency
    of the command, not of the functions); Athena's errors in the user's terms."""
    import boto3
    import pyarrow as pa

    from query.messages import athena_message

    try:
        import awswrangler as wr
    except ImportError as exc:
        # Left out of the runtime dependencies: no function needs it, and the image stays smaller.
        raise CliError(
            "lake query on AWS runs Athena through awswrangler, which is not installed: "
            "`uv sync` (its `cli` dependency group) or `pip install awswrangler`"
        ) from exc

    session = boto3.session.Session(profile_name=target.profile, region_name=target.region)
    try:
        frame = wr.athena.read_sql_query(
            sql,
            database=target.curated_database,
            workgroup=target.workgroup or "primary",
            ctas_approach=False,
            boto3_session=session,
            dtype_backend="pyarrow",
        )
    except wr.exceptions.QueryFailed as exc:
        raise CliError(athena_message(str(exc), lambda ref: LakeCatalog.of(target).missing(ref))) from exc
    return pa.Table.from_pandas(frame, preserve_index=False)
