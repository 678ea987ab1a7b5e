"""Iceberg tables in the Glue catalog: the only module that knows how curated rows are stored.

A source (one raw object key) owns its rows in every table it wrote: they carry its key in
``source_key``. Committing a new revision of the key replaces those rows in one Iceberg commit per
table (the key's old data files dropped, the new staged files added), so a reader sees the old rows
or the new ones, never both or neither; removing the key drops them. Data files are written per
source (staged by the handler, then uploaded), so a key's rows are found from the manifests'
column bounds without reading any data.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from analytics.base import DOC_KEY
from handlers.adapters.committer import (
    SOURCE_KEY,
    Committer,
    DirectCommitter,
    Footer,
    Holder,
    Intent,
    add_data_files,
    result_of,
    schema_behind,
    without_commit_retries,
)
from handlers.adapters.staging import LINEAGE_DOCS
from handlers.adapters.table_properties import table_properties
from handlers.errors import CommitConflictError, PermanentError, TableChangedError
from handlers.outcome import Committed

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from analytics.base import TableSpec

logger = logging.getLogger(__name__)


#: (this file's type, the table's type) pairs where casting the file's values loses nothing.
FILE_WIDENINGS = {
    ("int", "bigint"),
    ("int", "double"),
    ("bigint", "double"),
    ("float", "double"),
    ("date", "timestamp"),
    *((t, "string") for t in ("bigint", "int", "double", "float", "boolean", "date", "timestamp")),
}
#: (table's type, this file's type) pairs where the table widens to take the file: numbers only (a
#: text value in a number column is more likely a mistake than a new meaning, so it is refused).
TABLE_WIDENINGS = {("int", "bigint"), ("int", "double"), ("bigint", "double"), ("float", "double")}
#: Widenings Iceberg makes in place (old files are read as the wider type); others need a rewrite.
ICEBERG_PROMOTIONS = {("int", "bigint"), ("float", "double")}

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
#: Largest table (data files) a widening rewrites inside the function; beyond, the file is refused.
MAX_WIDEN_BYTES = 256 * 1024 * 1024
#: How long a table as this process last loaded or committed it stands in for the catalog's when a
#: file's columns are checked against it and its commit intent is described; the committer reloads
#: it before committing on it. So a warm instance whose files wait for another committer does not
#: load the table to check each file (a keyed dataset's view, a quarantine commit and the ledger's
#: append still load theirs).
RECENT_SECONDS = 30.0
#: A file refused as outdated is staged again in the same invocation only if its first attempt took
#: less than this (it may have waited for a busy committer): a second wait must fit Lambda's timeout.
RESTAGE_WITHIN_SECONDS = 60.0

_ICEBERG_NAMES = {"long": "bigint", "timestamptz": "timestamp", "uuid": "string", "time": "string"}


class NotIcebergTableError(PermanentError):
    """A catalog table of that name exists but is not an Iceberg table (left by an older version)."""

    code = "NotIcebergTable"


class SchemaConflictError(PermanentError):
    """A file's column cannot join the table's column of the same name without losing values."""

    code = "SchemaConflict"


def athena_type(dtype: pa.DataType) -> str:
    """The Athena (Glue) name of an Arrow type."""
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_int8(dtype) or pa.types.is_int16(dtype) or pa.types.is_int32(dtype):
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
    if pa.types.is_dictionary(dtype):
        return athena_type(dtype.value_type)
    return "string"


def arrow_type(athena: str) -> pa.DataType:
    """The Arrow type of a simple Athena type name (text for anything else)."""
    return _ARROW_TYPES.get(athena, pa.string())


def iceberg_athena_type(field_type: Any) -> str:
    """The Athena name of an Iceberg primitive type (``long`` is ``bigint``)."""
    text = str(field_type).replace(" ", "")
    return _ICEBERG_NAMES.get(text, text)


@dataclass(frozen=True)
class StagedData:
    """What the handler staged for one table: local Parquet files (one per partition) and their schema."""

    spec: TableSpec
    schema: pa.Schema
    files: Sequence[Path]
    rows: int


def of_key(key: str) -> Any:
    """The row filter ``source_key = key`` (pyiceberg's expression; its stubs mistype the constructor)."""
    from pyiceberg.expressions import EqualTo

    return EqualTo(SOURCE_KEY, key)  # type: ignore[call-arg, arg-type]


def _transform(name: str) -> Any:
    from pyiceberg.transforms import DayTransform, IdentityTransform, MonthTransform, YearTransform

    return {"identity": IdentityTransform, "day": DayTransform, "month": MonthTransform, "year": YearTransform}[name]()


def _spec_text(table: Table) -> str:
    fields = [f"{f.transform}({table.schema().find_column_name(f.source_id)})" for f in table.spec().fields]
    return ", ".join(fields).replace("identity(", "(").replace("((", "(") if fields else "unpartitioned"


def documented(schema: pa.Schema, spec: TableSpec) -> pa.Schema:
    """``schema`` with each column's description as field metadata, which pyiceberg turns into the
    Iceberg field's doc and its Glue catalog into the column's Comment. The spec's text wins; the
    lineage columns are described where staging adds them."""
    docs = LINEAGE_DOCS | spec.column_docs()
    return pa.schema(
        [f.with_metadata(_with_doc(f.metadata, docs[f.name])) if f.name in docs else f for f in schema],
        metadata=schema.metadata,
    )


def _with_doc(metadata: dict[bytes, bytes] | None, doc: str) -> dict[bytes, bytes]:
    """``metadata`` with ``doc`` as the description, replacing any (Arrow keeps metadata keys as bytes)."""
    key = DOC_KEY.encode() if isinstance(DOC_KEY, str) else DOC_KEY
    return {**{k: v for k, v in (metadata or {}).items() if k != key}, key: doc.encode()}


def partition_description(spec: TableSpec) -> str:
    """``month(date)`` or ``order_month``: how a spec partitions, as the README writes it."""
    column = spec.partition_column
    return column if spec.partition_transform == "identity" else f"{spec.partition_transform}({column})"


@dataclass(frozen=True)
class _SourceChange:
    """What :meth:`IcebergTables.replace_source` was asked to do (see there)."""

    database: str
    prefix: str
    staged: StagedData
    key: str
    source_id: str
    retype: Callable[[pa.Schema], Sequence[Path]]
    summary: dict[str, str]
    replace: bool
    holder: Holder | None


class IcebergTables:
    """Creates, evolves and commits the lake's Iceberg tables through a pyiceberg catalog."""

    def __init__(
        self,
        catalog: Catalog,
        bucket: str,
        upload: Callable[[Path, str], None],
        delete_objects: Callable[[list[str]], None],
        on_create: Callable[[str, str], None] | None = None,
        committer: Committer | None = None,
    ) -> None:
        self.catalog = catalog
        # Commits the files workers stage: grouped per table across workers, or each alone.
        self.committer: Committer = committer or DirectCommitter()
        self.bucket = bucket
        self._upload = upload
        self._delete_objects = delete_objects
        # Called with (database, table) after a table is created (Glue's optimizers on AWS).
        self._on_create = on_create
        # (database, table) → when it was known current, the table then (see RECENT_SECONDS).
        self._recent: dict[tuple[str, str], tuple[float, Table]] = {}
        self._recent_lock = threading.Lock()

    # --- reading the catalog ---------------------------------------------------------------------
    def load(self, database: str, name: str) -> Table | None:
        """The Iceberg table, None if there is none; a non-Iceberg table of that name is refused."""
        from pyiceberg.exceptions import NoSuchIcebergTableError, NoSuchPropertyException, NoSuchTableError

        try:
            return self.catalog.load_table((database, name))
        except NoSuchPropertyException as exc:
            raise NotIcebergTableError(
                f"{database}.{name} is a view in the Glue catalog (the dataset had a key in its settings), so its "
                f"rows cannot be stored under that name; put the key back, or delete the view (aws glue "
                f"delete-table --database-name {database} --name {name}) and reprocess the dataset's raw files"
            ) from exc
        except (NoSuchIcebergTableError, ValueError) as exc:
            if isinstance(exc, ValueError) and "Parameters" not in str(exc):
                raise  # pyiceberg says "missing Parameters" of a plain Glue table, nothing else here
            raise NotIcebergTableError(
                f"table {database}.{name} exists in the Glue catalog but is not an Iceberg table (written by an "
                f"earlier version of the lake, which are not migrated); delete it (aws glue delete-table "
                f"--database-name {database} --name {name}) and reprocess its raw files with `lake reprocess`"
            ) from exc
        except NoSuchTableError:
            return None

    def _recent_or_load(self, database: str, name: str) -> tuple[Table | None, float | None]:
        """The table as this process loaded or committed it within :data:`RECENT_SECONDS` (a copy of
        its own, possibly behind the catalog) and None; else loaded now (None: there is none) and the
        time it was loaded (``time.monotonic()``)."""
        with self._recent_lock:
            kept = self._recent.get((database, name))
        if kept is not None and time.monotonic() - kept[0] < RECENT_SECONDS:
            return copy.copy(kept[1]), None
        return self._loaded(database, name)

    def _loaded(self, database: str, name: str) -> tuple[Table | None, float]:
        at = time.monotonic()
        return self.load(database, name), at

    def _keep(self, database: str, name: str, table: Table, at: float) -> None:
        """Remember ``table`` as the catalog's current one at ``at``, unless a later one is kept."""
        with self._recent_lock:
            kept = self._recent.get((database, name))
            if kept is not None and kept[1].metadata.last_updated_ms > table.metadata.last_updated_ms:
                return  # another lane loaded or committed a later version meanwhile
            if kept is not None and kept[1].metadata_location == table.metadata_location and kept[0] > at:
                return
            self._recent[(database, name)] = (at, copy.copy(table))

    def _forget(self, database: str, name: str) -> None:
        with self._recent_lock:
            self._recent.pop((database, name), None)

    def _fits_as_staged(self, table: Table, staged: StagedData) -> bool:
        """Whether the staged files go into ``table`` as written: no conversion, no column to widen."""
        try:
            schema, widen = self._reconcile(table, staged)
        except SchemaConflictError:
            return False
        return schema == staged.schema and not widen

    # --- committing a source ---------------------------------------------------------------------
    def replace_source(
        self,
        database: str,
        prefix: str,
        staged: StagedData,
        key: str,
        source_id: str,
        retype: Callable[[pa.Schema], Sequence[Path]],
        summary: dict[str, str],
        replace: bool = True,
        holder: Holder | None = None,
    ) -> Committed:
        """Make ``key``'s rows in the table exactly the staged ones, in one commit.

        The commit is the table's committer's (:mod:`handlers.adapters.committer`): with other workers' files
        in one group commit, or alone; ``holder`` is the raw key's lease the caller holds meanwhile.

        With ``replace`` false the caller knows the table holds no rows of ``key`` (a new key), so
        the commit only adds files, without looking for old ones.

        ``retype`` converts the staged files to a schema the table can take (a column this file
        has as ``bigint`` where the table has ``double``) and returns the converted files.
        """
        change = _SourceChange(database, prefix, staged, key, source_id, retype, summary, replace, holder)
        name = staged.spec.stored_name
        started = time.monotonic()
        table, loaded = self._recent_or_load(database, name)
        if table is not None and loaded is None and not self._fits_as_staged(table, staged):
            # Converting the files, or widening a column, is decided on the catalog's table.
            table, loaded = self._loaded(database, name)
        try:
            return self._replace_on(change, table, loaded)
        except TableChangedError:
            if loaded is not None or time.monotonic() - started > RESTAGE_WITHIN_SECONDS:
                raise  # SQS retries the file, against the table as it is then
        # Checked against this process's copy of the table, which has changed since (a column another
        # file widened, or the table dropped): its intent was refused, and stays so; staged once more
        # against the table as it is now.
        logger.info("%s.%s changed since this process read it; staging the file again", database, name)
        table, loaded = self._loaded(database, name)
        return self._replace_on(change, table, loaded)

    def _replace_on(self, change: _SourceChange, table: Table | None, loaded: float | None) -> Committed:
        """:meth:`replace_source` on ``table``, loaded at ``loaded`` (None: this process's recent copy);
        what is kept of the table afterwards: as loaded, or as committed (or reloaded) here."""
        database, name = change.database, change.staged.spec.stored_name
        known = table.metadata_location if table is not None else None
        try:
            committed, table = self._replace_source(change, table, fresh=loaded is not None)
        except Exception:
            self._forget(database, name)
            raise
        if table.metadata_location != known:  # committed or reloaded here: current now
            self._keep(database, name, table, time.monotonic())
        elif loaded is not None:  # as loaded before the file was staged and waited for
            self._keep(database, name, table, loaded)
        return committed

    def _replace_source(self, change: _SourceChange, table: Table | None, fresh: bool) -> tuple[Committed, Table]:
        """:meth:`replace_source` with ``table`` as loaded (``fresh``) or as this process last knew it;
        the result, and the table as current as this commit left it."""
        database, prefix, staged, key = change.database, change.prefix, change.staged, change.key
        source_id, retype, summary, replace, holder = (
            change.source_id, change.retype, change.summary, change.replace, change.holder
        )  # fmt: skip
        from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError, ValidationException

        name = staged.spec.stored_name
        location = f"s3://{self.bucket}/{prefix}{name}"
        files = list(staged.files)
        schema = staged.schema
        if table is not None:
            schema, widen = self._reconcile(table, staged)
            if schema != staged.schema:
                files = list(retype(schema))
            if widen:
                try:
                    table = self._widen(table, widen)
                except (CommitFailedException, ValidationException) as exc:
                    raise CommitConflictError(
                        f"table {database}.{name} changed while its column(s) {', '.join(widen)} were widened; "
                        "the message will be retried"
                    ) from exc
        schema = documented(schema, staged.spec)
        uploaded, footers = self._upload_files(location, files, source_id)
        intent = Intent(
            database, name, location, files=tuple(uploaded), footers=footers, deletes=(key,) if replace else (),
            schema=schema, summary=summary, holder=holder,
        )  # fmt: skip
        try:
            if table is None:
                try:
                    table = self._create_with(database, name, location, staged.spec, schema, intent, summary)
                    snapshot = table.current_snapshot()
                    snapshot_id = snapshot.snapshot_id if snapshot else None
                except TableAlreadyExistsError:  # another worker created it meanwhile: join it
                    table = self.load(database, name)
                    assert table is not None
                    snapshot_id = result_of(intent, self.committer.commit(table, intent))
            else:
                snapshot_id = result_of(intent, self.committer.commit(table, intent, fresh=fresh))
        except (CommitFailedException, ValidationException) as exc:
            # The uploaded files stay: a commit reported as failed may still have landed (a lost
            # response), and deleting its files would break the table; unreferenced files are
            # removed by orphan-file deletion (Glue's optimizer, `lake maintain`).
            raise CommitConflictError(
                f"table {database}.{name} kept changing under this commit (other writers) past the retry budget; "
                "the message will be retried (if this persists, fewer files should land in this table at once)"
            ) from exc
        committed = Committed(
            database=database,
            table=name,
            location=location,
            snapshot_id=snapshot_id,
            rows=staged.rows,
            data_files=len(uploaded),
            partition_spec=_spec_text(table),
            view=staged.spec.name if staged.spec.key else None,
        )
        return committed, table

    def remove_source(
        self, database: str, name: str, key: str, summary: dict[str, str], holder: Holder | None = None
    ) -> int | None:
        """Drop ``key``'s rows from the table (through its committer); the snapshot id, None if nothing changed."""
        table = self.load(database, name)
        if table is None:
            return None
        intent = Intent(database, name, table.location(), deletes=(key,), summary=summary, holder=holder)
        return result_of(intent, self.committer.commit(table, intent))

    # --- model tables: one snapshot per as_of --------------------------------------------------
    def replace_partition(
        self,
        database: str,
        prefix: str,
        spec: TableSpec,
        rows: pa.Table,
        value: Any,
        summary: dict[str, str],
    ) -> Committed:
        """Make the rows whose ``spec.partition_column`` equals ``value`` exactly ``rows``, in one
        commit (``overwrite`` with that filter): a model recomputed for the same ``as_of`` replaces
        it, earlier ones stay. The table is created on first use."""
        from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError
        from pyiceberg.expressions import EqualTo

        name = spec.stored_name
        location = f"s3://{self.bucket}/{prefix}{name}"
        table = self.load(database, name)
        if table is None:
            try:
                table = self._create_with(database, name, location, spec, rows.schema, None, summary)
            except TableAlreadyExistsError:
                table = self.load(database, name)
                assert table is not None
        column = spec.partition_column
        value_text = value.isoformat() if hasattr(value, "isoformat") else value
        try:
            with table.transaction() as tx:
                schema = documented(rows.schema, spec)
                if schema_behind(table, schema):
                    with tx.update_schema() as update:
                        update.union_by_name(schema)
                tx.overwrite(
                    rows,
                    overwrite_filter=EqualTo(column, value_text),  # type: ignore[call-arg, arg-type]
                    snapshot_properties=summary,
                )
        except CommitFailedException as exc:
            raise CommitConflictError(
                f"table {database}.{name} kept changing under this commit past the retry budget; retried"
            ) from exc
        table.refresh()
        snapshot = table.current_snapshot()
        files = snapshot.summary.get("added-data-files", "0") if snapshot and snapshot.summary else "0"
        return Committed(
            database=database,
            table=name,
            location=location,
            snapshot_id=snapshot.snapshot_id if snapshot else None,
            rows=rows.num_rows,
            data_files=int(files or 0),
            partition_spec=_spec_text(table),
        )

    # --- append-only tables (the processing ledger) ---------------------------------------------
    def append_rows(
        self, database: str, prefix: str, spec: TableSpec, rows: pa.Table, summary: dict[str, str]
    ) -> Committed:
        """Append ``rows`` through the table's committer (grouped with other workers' appends),
        creating the table on first use. One data file per partition value."""
        import tempfile

        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from handlers.adapters.staging import partition_value

        name = spec.stored_name
        location = f"s3://{self.bucket}/{prefix}{name}"
        schema = documented(rows.schema, spec)
        rows = rows.cast(schema)
        partitions = partition_value(spec.partition_transform, rows.column(spec.partition_column).combine_chunks())
        with tempfile.TemporaryDirectory(prefix="lake-append-") as folder:
            files = []
            for n, value in enumerate(pc.unique(partitions).to_pylist()):
                mask = pc.is_null(partitions) if value is None else pc.equal(partitions, value)
                files.append(Path(folder) / f"part-{n:05d}.parquet")
                pq.write_table(rows.filter(mask), files[-1], compression="zstd")
            uploaded, footers = self._upload_files(location, files, "append")
        table = self.load(database, name)
        intent = Intent(
            database, name, location, files=tuple(uploaded), footers=footers, schema=schema, summary=summary
        )
        from pyiceberg.exceptions import TableAlreadyExistsError

        if table is None:
            try:
                table = self._create_with(database, name, location, spec, schema, intent, summary)
                snapshot = table.current_snapshot()
                snapshot_id = snapshot.snapshot_id if snapshot else None
            except TableAlreadyExistsError:
                table = self.load(database, name)
                assert table is not None
                snapshot_id = result_of(intent, self.committer.commit(table, intent))
        else:
            snapshot_id = result_of(intent, self.committer.commit(table, intent))
        return Committed(
            database=database,
            table=name,
            location=location,
            snapshot_id=snapshot_id,
            rows=rows.num_rows,
            data_files=len(uploaded),
            partition_spec=_spec_text(table),
        )

    # --- internals -------------------------------------------------------------------------------
    def _upload_files(self, location: str, files: list[Path], source_id: str) -> tuple[list[str], dict[str, Footer]]:
        """Upload the staged files under the table's ``data/``: their S3 paths, and path → length and
        footer of those whose footer is small enough to send along (:meth:`Footer.of`)."""
        attempt = uuid.uuid4().hex[:8]
        paths, footers = [], {}
        for n, path in enumerate(files):
            target = f"{location}/data/{source_id}-{attempt}-{n:05d}.parquet"
            self._upload(path, target)
            paths.append(target)
            footer = Footer.of(path)
            if footer is not None:
                footers[target] = footer
        return paths, footers

    def _create_with(
        self,
        database: str,
        name: str,
        location: str,
        spec: TableSpec,
        schema: pa.Schema,
        first: Intent | None,
        summary: dict[str, str],
    ) -> Table:
        """Create the table and add ``first``'s files (None: none) in one commit.

        Raises ``TableAlreadyExistsError`` when another writer created the table meanwhile.
        """
        from pyiceberg.catalog import Catalog
        from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.schema import assign_fresh_schema_ids

        iceberg_schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(documented(schema, spec)))
        column = iceberg_schema.find_field(spec.partition_column)
        suffix = "" if spec.partition_transform == "identity" else f"_{spec.partition_transform}"
        partition_spec = PartitionSpec(
            PartitionField(
                source_id=column.field_id,
                field_id=1000,
                transform=_transform(spec.partition_transform),
                name=f"{spec.partition_column}{suffix}",
            )
        )
        properties = table_properties() | {
            # Files are found by their source's key from the manifests' bounds: keep them whole.
            f"write.metadata.metrics.column.{SOURCE_KEY}": "full",
            "comment": spec.description,
        }
        tx = self.catalog.create_table_transaction(
            (database, name), schema=iceberg_schema, location=location, partition_spec=partition_spec,
            properties=properties,
        )  # fmt: skip
        try:
            with tx:
                if first is not None and first.files:
                    add_data_files(tx, first.files, first.footers, summary)
        except CommitFailedException as exc:
            # Glue's create asserts the table is still absent: another worker created it after
            # our load found none (the first files of two datasets sharing a table, landing together).
            if self.load(database, name) is None:
                raise
            raise TableAlreadyExistsError(f"{database}.{name} was created by another writer meanwhile") from exc
        table = self.load(database, name)
        assert table is not None
        if self._on_create is not None:
            self._on_create(database, name)
        return table

    def _reconcile(self, table: Table, staged: StagedData) -> tuple[pa.Schema, dict[str, str]]:
        """The file's schema cast to the table's types where that loses nothing, and the table columns
        that must widen to take the file (``{column: athena type}``); refuse anything else."""
        types = {f.name: iceberg_athena_type(f.field_type) for f in table.schema().fields}
        fields, widen = [], {}
        for f in staged.schema:
            ours, theirs = athena_type(f.type), types.get(f.name)
            if theirs is None or theirs == ours:
                fields.append(f)
            elif (ours, theirs) in FILE_WIDENINGS:
                fields.append(pa.field(f.name, arrow_type(theirs)))
            elif (theirs, ours) in TABLE_WIDENINGS and f.name != staged.spec.partition_column:
                widen[f.name] = ours
                fields.append(f)
            else:
                raise SchemaConflictError(
                    f"column {f.name} holds {ours} values in this file, but table {table.name()[-1]} has it as "
                    f"{theirs} from earlier files; fix the values, or rename the column in the export (to start a "
                    "new column), or drop the table and reprocess its files so the column is typed anew"
                )
        return pa.schema(fields), widen

    def _widen(self, table: Table, widen: dict[str, str]) -> Table:
        """Widen table columns (``bigint`` to ``double``, anything to ``string``) in one commit.

        Iceberg promotes ``int`` to ``bigint`` and ``float`` to ``double`` in place. Other widenings
        rewrite the table's rows with the new type in the same commit; that commit is not retried
        against newer metadata (it would drop rows committed meanwhile): a conflict fails it and the
        message is retried from the start.
        """
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.types import BooleanType, DateType, DoubleType, LongType, StringType, TimestampType

        iceberg = {"bigint": LongType(), "double": DoubleType(), "string": StringType(), "boolean": BooleanType(),
                   "date": DateType(), "timestamp": TimestampType()}  # fmt: skip
        types = {f.name: iceberg_athena_type(f.field_type) for f in table.schema().fields}
        in_place = {c: t for c, t in widen.items() if (types[c], t) in ICEBERG_PROMOTIONS}
        rewrite = {c: t for c, t in widen.items() if c not in in_place}
        logger.info("widening %s: %s", table.name(), widen)
        if not rewrite:
            with table.update_schema() as update:
                for column, new in in_place.items():
                    update.update_column(column, iceberg[new])
            return table
        snapshot = table.current_snapshot()
        size = int(
            (snapshot.summary.additional_properties if snapshot and snapshot.summary else {}).get("total-files-size", 0)
        )
        if size > MAX_WIDEN_BYTES:
            raise SchemaConflictError(
                f"column(s) {', '.join(rewrite)} of table {table.name()[-1]} hold decimals in this file but whole "
                f"numbers in the table, and the table ({size / 1e6:.0f} MB) is too large to rewrite with the wider "
                "type inside the function; write the values with a decimal point in the export, or drop the table "
                "and reprocess its files so the column is typed anew"
            )
        rows = table.scan().to_arrow()
        single = without_commit_retries(table)
        with single.transaction() as tx:
            with tx.update_schema(allow_incompatible_changes=True) as update:
                for column, new in widen.items():
                    update.update_column(column, iceberg[new])
            cast = pa.schema(
                [pa.field(f.name, arrow_type(widen[f.name]) if f.name in widen else f.type) for f in rows.schema]
            )
            tx.overwrite(rows.cast(cast), overwrite_filter=AlwaysTrue())
        table.refresh()
        return table
