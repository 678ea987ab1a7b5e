"""The S3 and catalog adapter: raw objects, settings and models in S3; output tables in Iceberg.

Every output table is an Iceberg table in the Glue catalog (``handlers.adapters.iceberg``): curated tables
at ``curated/<table>/``, quarantine at ``quarantine/<dataset>/``. A source (a raw key) replaces its
own rows in one commit per table, so delivery can be at-least-once while the effect is exactly-once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
from botocore.exceptions import ClientError

import topology
from analytics.base import LINEAGE_COLUMNS, TableSpec
from handlers.adapters.committer import Committer, Holder
from handlers.adapters.iceberg import IcebergTables, StagedData, iceberg_athena_type
from handlers.adapters.staging import Lineage, StagedTable, StagingSink, spelled_as_stored
from handlers.adapters.views import check_view_name_free, is_view, latest_by_key_sql, put_keyed_view
from handlers.errors import ObjectNotFoundError, PermanentError
from handlers.outcome import Committed

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_s3 import S3Client
    from pyiceberg.catalog import Catalog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectInfo:
    """The object as it is stored (the key decoded, the version resolved)."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    last_modified: dt.datetime

    @property
    def source_id(self) -> str:
        """Deterministic id of this object version: the name of every file it produces."""
        return source_id(self.bucket, self.key, self.version_id or self.etag)


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


def source_id(bucket: str, key: str, version_or_etag: str) -> str:
    """``<first 20 hex of sha256(bucket/key@version)>``: stable, short and safe in any path."""
    digest = hashlib.sha256(f"{bucket}/{key}@{version_or_etag}".encode()).hexdigest()
    return digest[:20]


class LakeStore:
    """Reads raw objects, settings and models; commits staged outputs to the lake's Iceberg tables."""

    def __init__(
        self,
        s3: S3Client,
        glue: GlueClient,
        bucket: str,
        curated_database: str,
        quarantine_database: str,
        catalog: Catalog,
        optimizer_role_arn: str | None = None,
        committer: Committer | None = None,
    ) -> None:
        self._s3 = s3
        self._glue = glue
        self.bucket = bucket
        self.curated_database = curated_database
        self.quarantine_database = quarantine_database
        self.optimizer_role_arn = optimizer_role_arn
        self.tables = IcebergTables(
            catalog,
            bucket,
            upload=self._upload,
            delete_objects=self._delete_uris,
            on_create=self._optimize,
            committer=committer,
        )

    # --- raw objects ---------------------------------------------------------------------------
    def head(self, bucket: str, key: str, version_id: str | None) -> ObjectInfo:
        """Find the object; keys arriving URL-encoded (``a+b%C3%A9.csv``) are tried decoded too."""
        candidates = [key]
        for decoded in (urllib.parse.unquote_plus(key), urllib.parse.unquote(key)):
            if decoded not in candidates:
                candidates.append(decoded)
        for candidate in candidates:
            extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
            try:
                head = self._s3.head_object(Bucket=bucket, Key=candidate, **extra)
            except ClientError as exc:
                if _missing(exc):
                    continue
                raise
            return ObjectInfo(
                bucket=bucket,
                key=candidate,
                size=int(head["ContentLength"]),
                etag=head["ETag"].strip('"'),
                version_id=head.get("VersionId") if head.get("VersionId") not in (None, "null") else None,
                last_modified=head["LastModified"].astimezone(dt.UTC),
            )
        what = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
        raise ObjectNotFoundError(f"{what} does not exist (deleted after the event?); upload it again")

    def open(self, info: ObjectInfo) -> IO[bytes]:
        """A streaming body of the object's bytes (exactly the version that was resolved)."""
        extra: dict[str, Any] = {"VersionId": info.version_id} if info.version_id else {"IfMatch": info.etag}
        body: IO[bytes] = self._s3.get_object(Bucket=info.bucket, Key=info.key, **extra)["Body"]  # type: ignore[assignment]
        return body

    # --- dataset settings ----------------------------------------------------------------------
    def dataset_settings(self, dataset: str) -> dict[str, Any]:
        """``settings/<dataset>.json`` as a dict; empty when there is none."""
        import json

        key = f"{topology.SETTINGS_PREFIX}{dataset}.json"
        try:
            text = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return {}
            raise
        try:
            settings = json.loads(text)
        except ValueError as exc:
            raise PermanentError(f"s3://{self.bucket}/{key} is not valid JSON ({exc}); fix it and reprocess") from exc
        if not isinstance(settings, dict):
            raise PermanentError(f"s3://{self.bucket}/{key} must hold a JSON object of settings")
        return settings

    # --- models users bring -------------------------------------------------------------------
    def model_manifests(self, dataset: str) -> list[str]:
        """Keys of every ``manifest.json`` under ``models/<dataset>/``, sorted."""
        paginator = self._s3.get_paginator("list_objects_v2")
        keys = [
            obj["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{topology.MODELS_PREFIX}{dataset}/")
            for obj in page.get("Contents", [])
            if obj["Key"].endswith("manifest.json")
        ]
        return sorted(keys)

    def read_bytes(self, key: str) -> bytes:
        """The whole object (model files and manifests are small)."""
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                raise ObjectNotFoundError(f"s3://{self.bucket}/{key} does not exist") from exc
            raise
        return body

    def write_report(self, key: str, html: str, as_of: str | None) -> str:
        """Upload one self-contained HTML report; its ``s3://`` URI. Browsers opening it from S3 (a
        presigned link, the console) render it as a page, not a download."""
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=html.encode("utf-8"),
            ContentType="text/html; charset=utf-8",
            Metadata={"as-of": as_of} if as_of else {},
        )
        return f"s3://{self.bucket}/{key}"

    def current(self, bucket: str, key: str) -> ObjectInfo | None:
        """The key's current version, None when it is gone (deleted, or a delete marker on top)."""
        try:
            return self.head(bucket, key, None)
        except ObjectNotFoundError:
            return None

    # --- output tables ---------------------------------------------------------------------------
    def planned_tables(self, sink: StagingSink, rejected: pa.Table | None, dataset: str) -> list[str]:
        """``database.table`` of every table this source is about to write rows to."""
        planned = [f"{self.curated_database}.{t.spec.stored_name}" for t in sink.tables.values() if t.files]
        if rejected is not None and rejected.num_rows:
            planned.append(f"{self.quarantine_database}.{dataset}")
        return planned

    def commit_outputs(
        self,
        sink: StagingSink,
        rejected: pa.Table | None,
        dataset: str,
        earlier: Iterable[str],
        summary: dict[str, str],
        holder: Holder | None = None,
    ) -> tuple[list[Committed], Committed | None]:
        """Replace the source's rows in every table it writes now or wrote before, one commit each.

        ``earlier`` names the tables that may hold rows of the key (an earlier revision's, or an
        interrupted attempt's): only there are old rows looked for. The tables are committed in
        parallel (each its own commit; they wait on S3 and Glue, not on the CPU).
        """
        assert sink.lineage is not None
        lineage = sink.lineage
        sink.close_writers()
        earlier = set(earlier)
        for staged in sink.tables.values():
            if staged.spec.key:  # before any commit: a table in the way of a view refuses the file whole
                check_view_name_free(self._glue, self.curated_database, staged.spec.name)
        jobs: list[Callable[[], Committed | None]] = []
        written = set()
        for staged in sink.tables.values():
            qualified = f"{self.curated_database}.{staged.spec.stored_name}"
            written.add(qualified)
            if staged.files or qualified in earlier:
                jobs.append(functools.partial(self._commit_staged, sink, staged, qualified in earlier, summary, holder))
        quarantine = f"{self.quarantine_database}.{dataset}"
        if (rejected is not None and rejected.num_rows) or quarantine in earlier:
            # Always replace: a refused revision's quarantine is committed without being recorded first.
            jobs.append(functools.partial(self.commit_quarantine, dataset, rejected, lineage, summary, holder=holder))
        # Tables an earlier revision of the key wrote and this one does not (a model removed since).
        stale = [t for t in earlier if t not in written and t.startswith(f"{self.curated_database}.")]
        for table in stale:
            jobs.append(functools.partial(self._remove_one, table, lineage.key, summary, holder))
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(jobs))), thread_name_prefix="commit") as pool:
            results = [r for r in pool.map(lambda job: job(), jobs) if r is not None]
        return (
            [r for r in results if r.database == self.curated_database],
            next((r for r in results if r.database == self.quarantine_database), None),
        )

    def _commit_staged(
        self, sink: StagingSink, staged: StagedTable, replace: bool, summary: dict[str, str], holder: Holder | None
    ) -> Committed:
        assert sink.lineage is not None

        def retype(schema: pa.Schema) -> list[Path]:
            return sink.retype_closed(staged.spec.name, schema)

        result = self.tables.replace_source(
            self.curated_database,
            topology.CURATED_PREFIX,
            StagedData(staged.spec, staged.schema or pa.schema([]), list(staged.files.values()), staged.total_rows),
            sink.lineage.key,
            sink.lineage.source_id,
            retype,
            summary,
            replace=replace,
            holder=holder,
        )
        if staged.spec.key:
            self._put_latest_view(staged.spec)
        return result

    def commit_quarantine(
        self,
        dataset: str,
        rejected: pa.Table | None,
        lineage: Lineage,
        summary: dict[str, str],
        replace: bool = True,
        holder: Holder | None = None,
    ) -> Committed | None:
        """Replace the source's rows in ``lake_quarantine.<dataset>`` (rejected rows, reasons, lineage)."""
        spec = quarantine_spec(dataset)
        if rejected is not None and rejected.num_rows:
            # Rows gathered from several places (rejects, the whole refused file): one lineage for all.
            rejected = rejected.drop_columns([c for c in LINEAGE_COLUMNS if c in rejected.column_names])
            existing = self.tables.load(self.quarantine_database, dataset)
            if existing is not None:
                rejected = rejected.rename_columns(
                    spelled_as_stored(rejected.column_names, existing.schema().column_names)
                )
            for name, column in lineage.columns(rejected.num_rows, []):
                rejected = rejected.append_column(name, column)
        with tempfile.TemporaryDirectory(prefix="lake-quarantine-") as folder:
            files: list[Path] = []
            if rejected is not None and rejected.num_rows:
                import pyarrow.parquet as pq

                files.append(Path(folder) / "quarantine.parquet")
                pq.write_table(rejected, files[0], compression="zstd")
            elif self.tables.load(self.quarantine_database, dataset) is None:
                return None

            def retype(schema: pa.Schema) -> list[Path]:
                import pyarrow.parquet as pq

                assert rejected is not None
                pq.write_table(rejected.cast(schema), files[0], compression="zstd")
                return files

            return self.tables.replace_source(
                self.quarantine_database,
                topology.QUARANTINE_PREFIX,
                StagedData(spec, rejected.schema if rejected is not None else pa.schema([]), files,
                           rejected.num_rows if rejected is not None else 0),
                lineage.key,
                lineage.source_id,
                retype,
                summary,
                replace=replace,
                holder=holder,
            )  # fmt: skip

    def _remove_one(self, qualified: str, key: str, summary: dict[str, str], holder: Holder | None) -> Committed | None:
        removed = self.remove_rows([qualified], key, summary, holder)
        return removed[0] if removed else None

    def remove_rows(
        self, tables: Iterable[str], key: str, summary: dict[str, str], holder: Holder | None = None
    ) -> list[Committed]:
        """Drop ``key``'s rows from each ``database.table`` (a deleted raw object, a refused rerun)."""
        removed = []
        for qualified in sorted(set(tables)):
            database, _, name = qualified.partition(".")
            snapshot = self.tables.remove_source(database, name, key, summary, holder)
            if snapshot is None:
                continue
            prefix = topology.CURATED_PREFIX if database == self.curated_database else topology.QUARANTINE_PREFIX
            view = name.removesuffix("_sources") if name.endswith("_sources") else None
            removed.append(Committed(database, name, f"s3://{self.bucket}/{prefix}{name}", snapshot, 0, 0, "", view))
        return removed

    def _put_latest_view(self, spec: TableSpec) -> None:
        table = self.tables.load(self.curated_database, spec.stored_name)
        assert table is not None
        columns = [(f.name, iceberg_athena_type(f.field_type)) for f in table.schema().fields]
        sql = latest_by_key_sql(self.curated_database, spec.stored_name, [c for c, _ in columns], spec.key)
        put_keyed_view(self._glue, self.curated_database, spec.name, sql, columns)

    def put_current_view(self, spec: TableSpec) -> None:
        """The view ``spec.current_view`` over ``spec``'s newest ``as_of`` snapshot: the name a user
        queries answers over the dataset's whole history.

        A lake made before the rule holds a per-file *table* of that name: it is renamed to
        ``<name>_by_file`` (its Iceberg metadata and data stay where they are) before the view takes the name.
        """
        from query.sql import quote, quote_table

        name = spec.current_view
        if not name:
            return
        self._rename_per_file_table(name)
        table = self.tables.load(self.curated_database, spec.stored_name)
        assert table is not None
        columns = [(f.name, iceberg_athena_type(f.field_type)) for f in table.schema().fields]
        source = quote_table(self.curated_database, spec.stored_name)
        listed = ", ".join(quote(c) for c, _ in columns)
        partition = quote(spec.partition_column)
        if spec.covered_by:
            # Each snapshot holds only the days its refresh scored: each day from the newest that scored it.
            from analytics.base import covering_rows_sql

            coverage = quote_table(self.curated_database, spec.covered_by)
            sql = covering_rows_sql(source, coverage, [c for c, _ in columns])
        else:
            sql = f"SELECT {listed} FROM {source} WHERE {partition} = (SELECT max({partition}) FROM {source})"
        put_keyed_view(self._glue, self.curated_database, name, sql, columns)

    def _rename_per_file_table(self, name: str) -> None:
        try:
            current = self._glue.get_table(DatabaseName=self.curated_database, Name=name)["Table"]
        except self._glue.exceptions.EntityNotFoundException:
            return
        if is_view(dict(current)):
            return
        from pyiceberg.exceptions import TableAlreadyExistsError

        renamed = f"{name}_by_file"
        try:
            self.tables.catalog.rename_table((self.curated_database, name), (self.curated_database, renamed))
        except TableAlreadyExistsError:  # files processed since the upgrade wrote it
            # Its rows are the per-file results of files processed before the upgrade: `lake reprocess`
            # brings them into <name>_by_file; the answer over history is the view either way.
            self._glue.delete_table(DatabaseName=self.curated_database, Name=name)
            logger.warning(
                "%s.%s was a per-file table from before %s answered over history, and %s exists: its catalog "
                "entry was removed (its files stay in S3); reprocess the dataset to bring older files into %s",
                self.curated_database, name, name, renamed, renamed,
            )  # fmt: skip
            return
        logger.info("renamed %s.%s to %s (per-file results)", self.curated_database, name, renamed)

    def _upload(self, path: Path, uri: str) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self._s3.upload_file(str(path), bucket, key)

    def _delete_uris(self, uris: list[str]) -> None:
        keys = [uri.removeprefix(f"s3://{self.bucket}/") for uri in uris]
        for start in range(0, len(keys), 1000):
            self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
            )

    def _optimize(self, database: str, table: str) -> None:
        """Switch on Glue's table optimizers for a new table (AWS only: the stand-in has none)."""
        if not self.optimizer_role_arn:
            return
        for kind in ("compaction", "retention", "orphan_file_deletion"):
            try:
                self._glue.create_table_optimizer(
                    CatalogId=self._account_id(),
                    DatabaseName=database,
                    TableName=table,
                    Type=kind,
                    TableOptimizerConfiguration={"roleArn": self.optimizer_role_arn, "enabled": True},
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                    logger.warning("could not switch on the %s optimizer of %s.%s: %s", kind, database, table, exc)

    def _account_id(self) -> str:
        # The optimizer role's ARN names the account: arn:aws:iam::<account>:role/<name>.
        return (self.optimizer_role_arn or "").split(":")[4]


def quarantine_spec(dataset: str) -> TableSpec:
    """``lake_quarantine.<dataset>``: every rejected row of the dataset, by day it landed."""
    return TableSpec(
        dataset,
        "ingested_at",
        f"Rows rejected from raw/{dataset}/ files, with _reason_code, _reason and where they came from.",
        partition_transform="day",
    )
