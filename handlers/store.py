"""The S3 and Glue adapter: the only module that knows how objects and tables are stored.

Curated data: ``curated/<table>/<partition>=<value>/<source-id>.parquet``. A rerun of the same
source replaces exactly its own files and removes the ones it no longer produces, so delivery
can be at-least-once while the effect is exactly-once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
from botocore.exceptions import ClientError

import topology
from handlers.errors import ObjectNotFoundError, PermanentError
from handlers.staging import StagedTable, StagingSink

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_s3 import S3Client


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


def source_id(bucket: str, key: str, version_or_etag: str) -> str:
    """``<first 20 hex of sha256(bucket/key@version)>``: stable, short and safe in any path."""
    digest = hashlib.sha256(f"{bucket}/{key}@{version_or_etag}".encode()).hexdigest()
    return digest[:20]


@dataclass(frozen=True)
class TableOutput:
    """One published output table, as described in the completion event."""

    database: str
    table: str
    location: str
    partition_column: str
    partitions: list[str]
    partitions_total: int
    rows: int


#: (this file's type, the catalog's type) pairs where casting this file's values loses nothing.
_WIDENINGS = {
    ("bigint", "double"),
    ("int", "bigint"),
    ("date", "timestamp"),
    *((t, "string") for t in ("bigint", "int", "double", "boolean", "date", "timestamp")),
}
_ARROW_TYPES = {
    "string": pa.string(),
    "double": pa.float64(),
    "float": pa.float32(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


def athena_to_arrow(glue_type: str) -> pa.DataType:
    """The Arrow type for a simple Glue/Athena column type (text for anything else)."""
    return _ARROW_TYPES.get(glue_type, pa.string())


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


def arrow_to_athena(dtype: pa.DataType) -> str:
    """The Glue/Athena column type for an Arrow type."""
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_int8(dtype):
        return "tinyint"
    if pa.types.is_int16(dtype):
        return "smallint"
    if pa.types.is_int32(dtype) or pa.types.is_uint8(dtype) or pa.types.is_uint16(dtype):
        return "int"
    if pa.types.is_integer(dtype):
        return "bigint"
    if pa.types.is_float32(dtype):
        return "float"
    if pa.types.is_floating(dtype):
        return "double"
    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "binary"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"array<{arrow_to_athena(dtype.value_type)}>"
    if pa.types.is_struct(dtype):
        fields = ",".join(f"{f.name}:{arrow_to_athena(f.type)}" for f in dtype)
        return f"struct<{fields}>"
    if pa.types.is_dictionary(dtype):
        return arrow_to_athena(dtype.value_type)
    return "string"


class LakeStore:
    """Reads raw objects, publishes staged outputs to S3 and registers them in Glue."""

    def __init__(
        self, s3: S3Client, glue: GlueClient, bucket: str, curated_database: str, quarantine_database: str
    ) -> None:
        self._s3 = s3
        self._glue = glue
        self.bucket = bucket
        self.curated_database = curated_database
        self.quarantine_database = quarantine_database

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

    # --- curated outputs -----------------------------------------------------------------------
    def table_location(self, table: str) -> str:
        return f"s3://{self.bucket}/{topology.CURATED_PREFIX}{table}/"

    def publish(self, sink: StagingSink, sid: str, max_partitions_listed: int = 100) -> list[TableOutput]:
        """Upload staged tables, drop this source's earlier files, register tables and partitions.

        The source's manifest (``curated/_sources/<sid>.json``) names its curated files. Before the
        first upload it is widened to earlier ∪ new files, so a crash at any point leaves no file of
        the source unnamed; once the new files are in place, the earlier ones not rewritten are
        deleted and the manifest names exactly the new files. Each write is skipped when it would
        not change the manifest: a new source costs one GET and one PUT, a same-shaped rerun one GET.
        """
        sink.close_writers()
        outputs = []
        tables = [staged for staged in sink.tables.values() if staged.files]
        # Every table first: a catalog problem must stop us before any file of any table is visible.
        for staged in tables:
            self._ensure_table(sink, staged)
        earlier = self._read_manifest(sid)
        planned = {staged.spec.name: self._planned_keys(staged, sid) for staged in tables}
        widened = _union(earlier, planned)
        if widened != earlier:
            self._write_manifest(sid, widened)
        for staged in tables:
            self._upload(staged, sid)
            self._add_partitions(staged)
            partitions = sorted(staged.files)
            outputs.append(
                TableOutput(
                    database=self.curated_database,
                    table=staged.spec.name,
                    location=self.table_location(staged.spec.name),
                    partition_column=staged.spec.partition_column,
                    partitions=partitions[:max_partitions_listed],
                    partitions_total=len(partitions),
                    rows=staged.total_rows,
                )
            )
        if widened != planned:  # else the widened manifest already names exactly the new files
            keep = {key for keys in planned.values() for key in keys}
            self._delete([key for keys in earlier.values() for key in keys if key not in keep])
            self._write_manifest(sid, planned)
        return outputs

    def remove_outputs(self, sid: str) -> None:
        """Delete every curated file of this source (a rerun refused the file) and its manifest."""
        earlier = self._read_manifest(sid)
        self._delete([key for keys in earlier.values() for key in keys])
        self._delete([self._manifest_key(sid)])

    def _partition_prefix(self, staged: StagedTable, value: str) -> str:
        quoted = urllib.parse.quote(value, safe=" -:_.")
        return f"{topology.CURATED_PREFIX}{staged.spec.name}/{staged.spec.partition_column}={quoted}/"

    def _planned_keys(self, staged: StagedTable, sid: str) -> list[str]:
        return sorted(f"{self._partition_prefix(staged, value)}{sid}.parquet" for value in staged.files)

    def _upload(self, staged: StagedTable, sid: str) -> None:
        for value, path in staged.files.items():
            key = f"{self._partition_prefix(staged, value)}{sid}.parquet"
            self._s3.upload_file(str(path), self.bucket, key)

    @staticmethod
    def _manifest_key(sid: str) -> str:
        return f"{topology.CURATED_SOURCES_PREFIX}{sid}.json"

    def _read_manifest(self, sid: str) -> dict[str, list[str]]:
        """``{table: [keys]}`` of the source's curated files; empty for a source never published."""
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._manifest_key(sid))["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                return {}
            raise
        tables: dict[str, list[str]] = json.loads(body)["tables"]
        return tables

    def _write_manifest(self, sid: str, tables: dict[str, list[str]]) -> None:
        body = json.dumps({"source_id": sid, "tables": tables}, indent=1, sort_keys=True).encode()
        self._s3.put_object(Bucket=self.bucket, Key=self._manifest_key(sid), Body=body, ContentType="application/json")

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
            )

    # --- Glue ----------------------------------------------------------------------------------
    def _ensure_table(self, sink: StagingSink, staged: StagedTable) -> None:
        assert staged.schema is not None and staged.partition_type is not None
        name = staged.spec.name
        columns = [{"Name": f.name, "Type": arrow_to_athena(f.type)} for f in staged.schema]
        partition_key = {"Name": staged.spec.partition_column, "Type": arrow_to_athena(staged.partition_type)}
        try:
            existing = self._glue.get_table(DatabaseName=self.curated_database, Name=name)["Table"]
        except self._glue.exceptions.EntityNotFoundException:
            existing = None
        if existing is None:
            try:
                self._glue.create_table(
                    DatabaseName=self.curated_database,
                    TableInput=self._table_input(name, staged.spec.description, columns, partition_key),
                )
            except self._glue.exceptions.AlreadyExistsException:
                existing = self._glue.get_table(DatabaseName=self.curated_database, Name=name)["Table"]
        if existing is not None:
            old = [{"Name": c["Name"], "Type": c["Type"]} for c in existing["StorageDescriptor"]["Columns"]]
            if self._reconcile(sink, staged, old):
                columns = [{"Name": f.name, "Type": arrow_to_athena(f.type)} for f in staged.schema]
            merged = self._merge_columns(name, old, columns)
            if merged != old:
                self._glue.update_table(
                    DatabaseName=self.curated_database,
                    TableInput=self._table_input(name, staged.spec.description, merged, partition_key),
                )

    def _reconcile(self, sink: StagingSink, staged: StagedTable, catalog: list[dict[str, str]]) -> bool:
        """Widen this file's columns to the catalog's types where that loses nothing (int -> double,
        anything -> string), converting the staged files; refuse a narrowing. True if types changed."""
        assert staged.schema is not None
        known = {c["Name"]: c["Type"] for c in catalog}
        fields = []
        for f in staged.schema:
            ours, theirs = arrow_to_athena(f.type), known.get(f.name)
            if theirs is None or theirs == ours:
                fields.append(f)
            elif (ours, theirs) in _WIDENINGS:
                fields.append(pa.field(f.name, athena_to_arrow(theirs)))
            else:
                raise PermanentError(
                    f"column {f.name} holds {ours} values in this file, but table {staged.spec.name} has it as "
                    f"{theirs} from earlier files; fix the values, or rename the column in the export (to start a "
                    "new column), or drop the table and reprocess its files so the column is typed anew"
                )
        schema = pa.schema(fields)
        if schema == staged.schema:
            return False
        sink.retype(staged.spec.name, schema)
        sink.close_writers()
        return True

    @staticmethod
    def _merge_columns(table: str, old: list[Any], new: list[dict[str, str]]) -> list[dict[str, str]]:
        merged = [{"Name": c["Name"], "Type": c["Type"]} for c in old]
        known = {c["Name"]: c["Type"] for c in merged}
        for column in new:
            if column["Name"] not in known:
                merged.append(column)
            elif known[column["Name"]] != column["Type"]:
                raise PermanentError(
                    f"column {column['Name']} is {column['Type']} in this file but {known[column['Name']]} "
                    f"in table {table}; make the values match the table's type or rename the column"
                )
        return merged

    def _table_input(
        self, name: str, description: str, columns: list[dict[str, str]], partition_key: dict[str, str] | None
    ) -> Any:
        return {
            "Name": name,
            "Description": description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "SNAPPY"},
            "PartitionKeys": [partition_key] if partition_key else [],
            "StorageDescriptor": {
                "Columns": columns,
                "Location": self.table_location(name),
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    "Parameters": {"serialization.format": "1"},
                },
                "Compressed": True,
            },
        }

    def _add_partitions(self, staged: StagedTable) -> None:
        table = self._glue.get_table(DatabaseName=self.curated_database, Name=staged.spec.name)["Table"]
        descriptor = table["StorageDescriptor"]
        values = sorted(staged.files)
        for start in range(0, len(values), 100):
            entries: list[Any] = []
            for value in values[start : start + 100]:
                sd = dict(descriptor)
                sd["Location"] = f"s3://{self.bucket}/{self._partition_prefix(staged, value)}"
                entries.append({"Values": [value], "StorageDescriptor": sd})
            response = self._glue.batch_create_partition(
                DatabaseName=self.curated_database, TableName=staged.spec.name, PartitionInputList=entries
            )
            for error in response.get("Errors", []):
                if error.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException":
                    raise RuntimeError(f"Glue refused partition {error.get('PartitionValues')}: {error}")

    # --- quarantine ----------------------------------------------------------------------------
    def write_quarantine(self, dataset: str, sid: str, table: pa.Table | None) -> str | None:
        """Write (or, with no rejects, remove) ``quarantine/<dataset>/<source-id>.parquet``."""
        import io

        import pyarrow.parquet as pq

        key = f"{topology.QUARANTINE_PREFIX}{dataset}/{sid}.parquet"
        if table is None or table.num_rows == 0:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            return None
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="snappy")
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())
        self._register_quarantine(dataset, table.schema)
        return f"s3://{self.bucket}/{key}"

    def _register_quarantine(self, dataset: str, schema: pa.Schema) -> None:
        """``lake_quarantine.<dataset>``: every rejected row of the dataset, queryable with Athena."""
        columns = [{"Name": f.name.lower(), "Type": arrow_to_athena(f.type)} for f in schema]
        location = f"s3://{self.bucket}/{topology.QUARANTINE_PREFIX}{dataset}/"
        description = f"Rows rejected from raw/{dataset}/ files, with _reason_code and _reason."
        try:
            existing = self._glue.get_table(DatabaseName=self.quarantine_database, Name=dataset)["Table"]
        except self._glue.exceptions.EntityNotFoundException:
            existing = None
        if existing is not None:
            old = [{"Name": c["Name"], "Type": c["Type"]} for c in existing["StorageDescriptor"]["Columns"]]
            known = {c["Name"] for c in old}
            columns = old + [c for c in columns if c["Name"] not in known]
            if columns == old:
                return
        table_input = self._table_input(dataset, description, columns, None)
        table_input["StorageDescriptor"]["Location"] = location
        if existing is None:
            try:
                self._glue.create_table(DatabaseName=self.quarantine_database, TableInput=table_input)
                return
            except self._glue.exceptions.AlreadyExistsException:
                pass
        self._glue.update_table(DatabaseName=self.quarantine_database, TableInput=table_input)


def _union(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, list[str]]:
    return {table: sorted({*a.get(table, []), *b.get(table, [])}) for table in sorted({*a, *b})}
