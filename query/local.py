"""Athena SQL on DuckDB over the lake's Iceberg tables: ``lake query`` on the stand-in, ``lake.query``,
reports drawn there, and every refresh inside its function.

A query is parsed in Athena's dialect; every view it names is replaced by its SQL (views inside
views too), or, in a refresh, computed once and kept as Parquet for the refresh's later statements
(a keyed view whose table repeats no key: that table, read under the view's name);
every table is bound at one snapshot: the one a refresh pinned before it ran (so the
snapshots it records are the ones it read), the one ``FOR VERSION AS OF <id>`` or ``FOR TIMESTAMP
AS OF <time>`` names, else the current one. Each snapshot is read as an Arrow dataset that DuckDB
reads only the columns and row groups of that it needs, with the files the WHERE clauses rule out
left unopened (:mod:`query.scan`, :mod:`query.plans`). The SQL is typed from the tables' columns
(so Athena's semantics survive, e.g. ``bigint / bigint`` divides integers) and written in DuckDB's
dialect (:mod:`query.sql`); result columns are named and typed as Athena names and types them, so
the same SQL gives the same columns on both engines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa

from query.catalog import MAX_VIEW_DEPTH, Catalog, Pinned, schema_of, snapshot_at
from query.errors import QueryError
from query.messages import QueryContext, duckdb_message, unreadable
from query.parse import MISSING, parse
from query.plans import ScanPlan, catalog_tables, ref_of, scan_plans
from query.scan import damaged_fragment, rows_of
from query.sql import (
    Columns,
    TableRef,
    arrow_view,
    athena_column_names,
    quote,
    quote_table,
    table_refs,
    translate,
)
from query.types import athena_type, athena_type_of_presto
from query.views import latest_by_key_of

if TYPE_CHECKING:
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


@dataclass(frozen=True)
class Source:
    """One Iceberg table at one snapshot, as one query reads it."""

    ref: TableRef
    #: Its name in the rewritten query: the table's, or ``<table>__snapshot_<id>`` for time travel.
    name: str
    table: Table
    snapshot: Snapshot | None
    schema: Schema

    @property
    def key(self) -> TableRef:
        return TableRef(self.ref.database, self.name)

    def columns(self) -> dict[str, str]:
        """Its columns with their Athena types, as sqlglot types the query from them."""
        return {f.name: athena_type(f.field_type) for f in self.schema.fields}


@dataclass(frozen=True)
class Derived:
    """A view's rows, computed once for an engine that reads pinned snapshots (a refresh) and kept
    as Parquet under its temporary directory: every later statement reads the file."""

    ref: TableRef
    dataset: Any
    #: The view's columns as its definition declares them (Presto types, named as Athena names them).
    declared: dict[str, str]
    #: The view's SQL as it was computed from, and the snapshot of every table that computing read
    #: (``database.table`` → snapshot id, views inside it included): what decides its rows.
    sql: str = ""
    reads: Mapping[str, int | None] = field(default_factory=dict)

    @property
    def key(self) -> TableRef:
        return self.ref

    def columns(self) -> dict[str, str]:
        return self.declared


class DuckDBEngine:
    """Athena SQL on DuckDB over ``catalog``'s tables and views; unqualified names are in ``database``.

    With ``pinned`` (a refresh's inputs, from :meth:`Catalog.pin`) every table is read at its pinned
    snapshot and a table outside them is a QueryError; without, at its current snapshot. Datasets
    built for one statement serve the next (building one reads every data file's footer). With
    ``pinned``, a view is also computed once, by the first statement that reads it, and kept as
    Parquet for the engine's life: a keyed view's dedupe (each key once, from the newest source)
    runs once per refresh, whichever refreshers read it; the pins guarantee it cannot change. A keyed
    view whose table holds no key twice (the common case: each order in one export) is not computed:
    its rows are its table's, so statements read the table under the view's name, only the columns
    they need (:meth:`_as_its_table`). ``views_from`` is an earlier engine of the same refresh (the
    report's engine is given the refreshers'): a view it computed, or found to hold its table's rows,
    is reused where this engine pins every table that view read at the same snapshot and the view's
    SQL is unchanged, else computed (or looked at) again.
    """

    engine = "duckdb"

    def __init__(
        self,
        catalog: Catalog,
        database: str | None = None,
        *,
        pinned: Mapping[str, Pinned] | None = None,
        memory_limit_mb: int | None = None,
        views_from: DuckDBEngine | None = None,
    ) -> None:
        self.catalog = catalog
        self.database = database or catalog.database
        self.pinned = pinned
        self.memory_limit_mb = memory_limit_mb
        self._datasets: dict[tuple[TableRef, int | None, str], Any] = {}
        self._views: dict[TableRef, Derived] = {}
        #: Keyed views by the SQL they were looked at with: the snapshot of their table looked at, and
        #: that table, read under the view's name, where it holds the view's rows (else None).
        self._keyed: dict[TableRef, tuple[str, int | None, Source | None]] = {}
        self._deriving: list[TableRef] = []
        #: One per view being computed: the snapshots its statements read.
        self._reads: list[dict[str, int | None]] = []
        #: Kept, not copied: its views' Parquet lives under its temporary directory.
        self._views_from = views_from
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def __call__(self, sql: str) -> pa.Table:
        return self.run(sql)

    def run(self, sql: str) -> pa.Table:
        """The result of Athena SQL ``sql``, named and typed as Athena gives it; a one-line QueryError
        for what the user (or the refresher) must fix."""
        return self._run(sql, self.database)

    def _run(self, sql: str, database: str, copy_to: Path | None = None) -> pa.Table:
        """``sql`` (unqualified names in ``database``), its result returned or, with ``copy_to``,
        written there as Parquet by DuckDB (streamed, never held in memory)."""
        tree = parse(sql)
        from sqlglot import exp

        if not isinstance(tree, exp.Query):
            raise QueryError(
                f"the stand-in runs queries (SELECT, WITH, UNION), not {tree.key.upper()} statements; "
                "tables are created by dropping files into raw/"
            )
        names = athena_column_names(tree)
        table_refs(tree, database)
        derived: dict[TableRef, Source | Derived] = {}
        if self.pinned is not None:
            derived = self._derive_views(tree)
        else:
            expand_views(tree, self.catalog)
        sources: dict[TableRef, Source | Derived] = {
            **derived,
            **bind_sources(tree, self.catalog, self.pinned, derived=derived.keys()),
        }
        for reads in self._reads:
            for source in sources.values():
                if isinstance(source, Derived):
                    reads.update(source.reads)
                else:
                    reads[str(source.ref)] = source.snapshot.snapshot_id if source.snapshot is not None else None
        columns: Columns = {}
        for key, source in sources.items():
            columns.setdefault(key.database, {})[key.table] = source.columns()
        qualified, text = translate(tree, columns)
        schemas = {key: source.schema for key, source in sources.items() if isinstance(source, Source)}
        plans = scan_plans(qualified, schemas)
        if copy_to is not None:
            text = f"COPY ({text}) TO '{copy_to}' (FORMAT PARQUET)"
        context = QueryContext(sql, columns)
        try:
            return self._execute(text, sources, plans, names, stream=True, context=context)
        except _ScannedTwiceError:
            # The plan reads a streamed table more than once (a self-join, a view used twice): a
            # stream can be read only once, so each streamed table is read into memory first.
            return self._execute(text, sources, plans, names, stream=False, context=context)

    def _derive_views(self, tree: Any) -> dict[TableRef, Source | Derived]:
        """Every view ``tree`` reads: computed once (for this engine's life) and kept as Parquet, or,
        a keyed view that holds its table's rows, that table read under the view's name."""
        derived: dict[TableRef, Source | Derived] = {}
        for node in catalog_tables(tree):
            ref = ref_of(node)
            if ref in derived or not _is_view(self.catalog, ref, self.pinned):
                continue
            if node.args.get("version") is not None:
                raise _time_travel_on_view(ref)
            derived[ref] = self._as_its_table(ref) or self._view(ref)
        return derived

    def _as_its_table(self, ref: TableRef) -> Source | None:
        """View ``ref``'s table, to read under the view's name, when the view's rows are all of that
        table's rows: a keyed view (:func:`query.views.latest_by_key_of`) over a pinned table of its
        database whose columns are the view's, and which holds no key twice. One query of the key
        columns decides, once per engine, or once per refresh through ``views_from`` while the view's
        SQL and the table's pinned snapshot are the same; None: the view is computed."""
        sql = self.catalog.view(ref).sql
        kept = self._keyed.get(ref)
        if kept is not None and kept[0] == sql:
            return kept[2]
        keyed = latest_by_key_of(sql)
        table_ref = TableRef(keyed.database.lower(), keyed.table.lower()) if keyed is not None else None
        pin = self.pinned.get(str(table_ref)) if table_ref is not None and self.pinned is not None else None
        if keyed is None or table_ref is None or pin is None or table_ref.database != ref.database:
            self._keyed[ref] = (sql, None, None)
            return None
        snapshot = pin.table.snapshot_by_id(pin.snapshot_id) if pin.snapshot_id is not None else None
        schema = schema_of(pin.table, snapshot)
        source = Source(table_ref, ref.table, pin.table, snapshot, schema)
        earlier = self._views_from._keyed.get(ref) if self._views_from is not None else None
        if earlier is not None and earlier[0] == sql and earlier[1] == pin.snapshot_id:
            repeated = earlier[2] is None
        elif tuple(f.name for f in schema.fields) != keyed.columns:
            repeated = True  # not the same columns: the view is computed as written
        else:
            try:
                repeated = self._run(keyed.repeated_keys_sql(), table_ref.database).num_rows > 0
            except QueryError as exc:
                raise QueryError(f"view {ref}: {exc}") from exc
        self._keyed[ref] = (sql, pin.snapshot_id, None if repeated else source)
        return self._keyed[ref][2]

    def _view(self, ref: TableRef) -> Derived:
        if ref in self._views:
            return self._views[ref]
        if ref in self._deriving or len(self._deriving) >= MAX_VIEW_DEPTH:
            raise _views_too_deep()
        import pyarrow.dataset as ds

        view = self.catalog.view(ref)
        shared = self._shared_view(ref, view.sql)
        if shared is not None:
            self._views[ref] = shared
            return shared
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="lake-views-")
        path = Path(self._scratch.name) / f"{len(self._views)}.parquet"
        self._deriving.append(ref)
        reads: dict[str, int | None] = {}
        self._reads.append(reads)
        try:
            self._run(view.sql, view.database, copy_to=path)
        except QueryError as exc:
            raise QueryError(f"view {ref}: {exc}") from exc
        finally:
            self._deriving.pop()
            self._reads.pop()
        declared = {name.lower(): athena_type_of_presto(kind) for name, kind in view.columns}
        self._views[ref] = Derived(ref, ds.dataset(str(path), format="parquet"), declared, view.sql, reads)
        return self._views[ref]

    def _shared_view(self, ref: TableRef, sql: str) -> Derived | None:
        """``views_from``'s rows of the view, if they are what this engine would compute: the same SQL
        over the same snapshots of every table it read (a commit landing in between is not reused)."""
        other = self._views_from
        if other is None or self.pinned is None:
            return None
        derived = other._views.get(ref)
        if derived is None or derived.sql != sql or not derived.reads:
            return None
        for name, snapshot_id in derived.reads.items():
            pin = self.pinned.get(name)
            if pin is None or pin.snapshot_id != snapshot_id:
                return None
        return derived

    def _rows(self, source: Source | Derived, plan: ScanPlan, failures: list[str], stream: bool) -> Any:
        if isinstance(source, Derived):
            return source.dataset
        snapshot_id = source.snapshot.snapshot_id if source.snapshot is not None else None
        cached = (source.key, snapshot_id, repr(plan.row_filter))
        if cached in self._datasets:
            return self._datasets[cached]
        rows = rows_of(source.table, source.snapshot, plan.columns, plan.row_filter, failures)
        if not isinstance(rows, pa.RecordBatchReader):
            self._datasets[cached] = rows
            return rows
        return rows if stream else rows.read_all()

    def _execute(
        self,
        sql: str,
        sources: Mapping[TableRef, Source | Derived],
        plans: dict[TableRef, ScanPlan],
        names: list[str] | None,
        *,
        stream: bool,
        context: QueryContext | None = None,
    ) -> pa.Table:
        duckdb = _duckdb()
        statement = _open(self.memory_limit_mb)
        connection = statement.connection
        arrow_names: dict[str, TableRef] = {}
        bound: dict[str, Any] = {}
        failures: dict[TableRef, list[str]] = defaultdict(list)
        try:
            for schema in sorted({key.database for key in sources}):
                connection.execute(f"CREATE SCHEMA {quote(schema, 'duckdb')}")
            for number, (key, source) in enumerate(sorted(sources.items())):
                try:
                    data = self._rows(source, plans.get(key, ScanPlan()), failures[source.ref], stream)
                except (OSError, pa.ArrowException) as exc:
                    raise QueryError(unreadable(exc, source.ref)) from exc
                arrow_name = f"__lake_table_{number}"
                arrow_names[arrow_name] = source.ref
                if not isinstance(source, Derived):
                    bound[arrow_name] = data
                connection.register(arrow_name, data)
                view = quote_table(key.database, key.table, "duckdb")
                connection.execute(arrow_view(view, arrow_name, data.schema.names))
            relation = connection.sql(sql)
            result = relation.to_arrow_table() if relation is not None else pa.table({})
            types = [str(t) for t in relation.types] if relation is not None else []
        except duckdb.Error as exc:
            if isinstance(exc, (duckdb.FatalException, duckdb.InternalException)):
                _let_go(statement.key)  # DuckDB invalidated the database: the next statement makes another
            if stream and "already been consumed" in str(exc):
                raise _ScannedTwiceError from exc
            for ref, found in failures.items():
                if found:  # a data file, not the query
                    raise QueryError(unreadable(found[0], ref)) from exc
            for arrow_name, ref in arrow_names.items():
                data = bound.get(arrow_name)  # a table's files (a view computed here is the engine's own)
                if data is None or f"'{arrow_name}'" not in str(exc):
                    continue
                if (damaged := damaged_fragment(data, exc)) is not None:
                    raise QueryError(unreadable(damaged, ref)) from exc
            raise QueryError(duckdb_message(exc, arrow_names, context)) from exc
        except (OSError, pa.ArrowException) as exc:
            raise QueryError(unreadable(exc)) from exc
        finally:
            _close(statement)
        return _athena_shaped(result, types, names)


def run_on_catalog(catalog: Catalog, sql: str, default_database: str) -> pa.Table:
    """Athena SQL ``sql`` on DuckDB over the current snapshots of ``catalog``'s tables and views
    (unqualified tables in ``default_database``): what ``lake query`` runs on the stand-in."""
    return DuckDBEngine(catalog, default_database).run(sql)


class _ScannedTwiceError(Exception):
    """DuckDB's plan scans a streamed table twice."""


#: One in-memory DuckDB database per process and memory limit, made at its first query. Making a
#: database registers every built-in function (about 17 ms of CPU, more than most of the lake's
#: queries take); a connection to an existing one costs 0.2 ms.
_DATABASES: dict[tuple[int, int | None], Any] = {}
_DATABASES_LOCK = threading.Lock()
_SCRATCH_NUMBERS = itertools.count()


def _open(memory_limit_mb: int | None) -> _Statement:
    """A connection of its own for one statement, and the name of the empty in-memory catalog it
    works in (its schemas and views), so statements running at once in other threads never see
    each other's names. The database is the process's (one per ``os.getpid()``: a forked child
    makes its own)."""
    duckdb = _duckdb()
    key = (os.getpid(), memory_limit_mb)
    with _DATABASES_LOCK:
        database = _DATABASES.get(key)
        if database is None:
            # DuckDB spills past its memory limit to ``.tmp`` in the working directory, which is
            # read-only in Lambda (/var/task): a query that needed to spill would fail there.
            config: dict[str, Any] = {
                "temp_directory": str(Path(tempfile.gettempdir()) / "lake-duckdb-spill"),
                # DuckDB's allocator (jemalloc) keeps what a statement freed unless its background
                # threads hand it back: after a 10,000,000-order aggregate the process stayed at
                # about 950 MB with them off, 260 MB two seconds later with them on, in as much time.
                # The models and the commits that follow a refresh's queries need that memory.
                "allocator_background_threads": True,
            }
            if memory_limit_mb:
                # Leave the function room for Python, Arrow and the models; DuckDB spills past this.
                config["memory_limit"] = f"{memory_limit_mb}MB"
            database = _DATABASES[key] = duckdb.connect(config=config)
        connection = database.cursor()
        scratch = f"lake_statement_{next(_SCRATCH_NUMBERS)}"
    statement = _Statement(connection, scratch, key)
    try:
        connection.execute("SET TimeZone = 'UTC'")  # Athena's session time zone
        connection.execute(f"ATTACH ':memory:' AS {scratch}")
        connection.execute(f"USE {scratch}")
    except BaseException:
        _close(statement)
        raise
    return statement


def _close(statement: _Statement) -> None:
    """Drop the statement's catalog (its views; the rows it read are released with it) and close.

    Never raises: the statement's own error, if any, is the one to report. A database that cannot
    be tidied (an aborted transaction that will not roll back; a fatal error invalidates the whole
    database) is let go, and the next statement makes a new one.
    """
    duckdb = _duckdb()
    connection = statement.connection
    try:
        try:
            connection.execute("USE memory")
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                connection.rollback()
            connection.execute("USE memory")
        connection.execute(f"DETACH DATABASE IF EXISTS {statement.scratch}")
    except duckdb.Error:
        _let_go(statement.key)
    finally:
        with contextlib.suppress(duckdb.Error):
            connection.close()


def _let_go(key: tuple[int, int | None]) -> None:
    with _DATABASES_LOCK:
        _DATABASES.pop(key, None)


class _Statement(NamedTuple):
    connection: Any
    #: The in-memory catalog the statement works in.
    scratch: str
    #: Its database's key in ``_DATABASES``.
    key: tuple[int, int | None]


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise QueryError(MISSING.format(name="duckdb")) from exc
    return duckdb


def _not_pinned(ref: TableRef) -> QueryError:
    return QueryError(
        f"the query reads {ref}, which has no rows yet or is not among the tables pinned for it; "
        "declare it among the inputs"
    )


def expand_views(tree: Any, catalog: Catalog) -> None:
    """Replace every view the tree names by its SQL (Athena's dialect), views inside views too."""
    from sqlglot import exp

    for _ in range(MAX_VIEW_DEPTH + 1):
        views = [node for node in catalog_tables(tree) if catalog.is_view(ref_of(node))]
        if not views:
            return
        for node in views:
            ref = ref_of(node)
            if node.args.get("version") is not None:
                raise _time_travel_on_view(ref)
            view = catalog.view(ref)
            try:
                body = parse(view.sql)
            except QueryError as exc:
                raise QueryError(f"view {ref}: {exc}") from exc
            table_refs(body, view.database)
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(ref.table))
            node.replace(exp.Subquery(this=body, alias=alias))
    raise _views_too_deep()


def _time_travel_on_view(ref: TableRef) -> QueryError:
    return QueryError(
        f"{ref} is a view; time travel reads a table: name the table the view reads "
        "(e.g. its <name>_sources table) with FOR VERSION AS OF"
    )


def _views_too_deep() -> QueryError:
    return QueryError(
        f"views nest more than {MAX_VIEW_DEPTH} deep in this query (does a view name itself?); fix the view's SQL"
    )


def _is_view(catalog: Catalog, ref: TableRef, pinned: Mapping[str, Pinned] | None) -> bool:
    """Whether ``ref`` names a view; a pinned table is not one, and with pins a name the catalog
    lacks is a table the query was not pinned to."""
    if pinned is None:
        return catalog.is_view(ref)
    if str(ref) in pinned:
        return False
    if catalog.find(ref) is None:
        raise _not_pinned(ref)
    return catalog.is_view(ref)


def bind_sources(
    tree: Any,
    catalog: Catalog,
    pinned: Mapping[str, Pinned] | None = None,
    derived: Collection[TableRef] = (),
) -> dict[TableRef, Source]:
    """Each Iceberg table the tree reads, at the snapshot it reads (pinned, named by ``FOR ... AS
    OF``, or current); a table read with ``FOR ... AS OF`` is renamed in the tree to a name of its
    own for that snapshot."""
    from sqlglot import exp

    sources: dict[TableRef, Source] = {}
    for node in catalog_tables(tree):
        ref = ref_of(node)
        if ref in derived:
            continue  # a view computed once, bound by the engine
        pin = pinned.get(str(ref)) if pinned is not None else None
        if pinned is not None and pin is None:
            raise _not_pinned(ref)
        table = pin.table if pin is not None else catalog.table(ref)
        version = node.args.get("version")
        name = ref.table
        if version is not None:
            snapshot = _snapshot_of_clause(version, table, ref)
            name = f"{ref.table}__snapshot_{snapshot.snapshot_id if snapshot is not None else 'none'}"
            node.set("version", None)
            if not node.args.get("alias"):
                node.set("alias", exp.TableAlias(this=exp.to_identifier(ref.table)))
            node.set("this", exp.to_identifier(name))
        elif pin is not None:
            snapshot = table.snapshot_by_id(pin.snapshot_id) if pin.snapshot_id is not None else None
        else:
            snapshot = snapshot_at(table, ref)
        key = TableRef(ref.database, name)
        if key not in sources:
            sources[key] = Source(ref, name, table, snapshot, schema_of(table, snapshot))
    return sources


def _snapshot_of_clause(version: Any, table: Table, ref: TableRef) -> Snapshot | None:
    """The snapshot named by ``FOR VERSION AS OF ...`` or ``FOR TIMESTAMP AS OF ...``."""
    from sqlglot import exp

    value = version.expression
    if str(version.this).upper() == "VERSION":
        if isinstance(value, exp.Literal) and value.is_string:
            return snapshot_at(table, ref, version=value.this)  # a branch or tag
        if isinstance(value, exp.Literal) and value.is_int:
            return snapshot_at(table, ref, version=int(value.this))
        raise QueryError(
            f"FOR VERSION AS OF {value.sql(dialect='athena')} on {ref}: give a snapshot id (a whole number, "
            "as `lake tables` and the Dataset Processed event show) or a branch or tag name in quotes"
        )
    return snapshot_at(table, ref, moment=_timestamp(value, ref))


def _timestamp(value: Any, ref: TableRef) -> dt.datetime:
    duckdb = _duckdb()
    statement = _open(None)
    connection = statement.connection
    shown = value.sql(dialect="athena")
    try:
        row = connection.execute(f"SELECT {value.sql(dialect='duckdb')}").fetchone()
    except duckdb.Error as exc:
        raise QueryError(
            f"FOR TIMESTAMP AS OF {shown} on {ref}: {str(exc).splitlines()[0]}; "
            "give a timestamp, e.g. TIMESTAMP '2026-03-01 10:00:00 UTC'"
        ) from exc
    finally:
        _close(statement)
    moment = row[0] if row else None
    if isinstance(moment, dt.datetime):
        return moment
    if isinstance(moment, dt.date):
        return dt.datetime.combine(moment, dt.time(), tzinfo=dt.UTC)
    raise QueryError(
        f"FOR TIMESTAMP AS OF {shown} on {ref} is not a timestamp; give one, "
        "e.g. TIMESTAMP '2026-03-01 10:00:00 UTC' or current_timestamp - interval '1' hour"
    )


def _athena_shaped(result: pa.Table, duckdb_types: list[str], names: list[str] | None) -> pa.Table:
    """DuckDB's result with Athena's column names and types (``sum`` of bigints is a bigint)."""
    columns = []
    for column, duckdb_type in zip(result.columns, duckdb_types, strict=False):
        if duckdb_type in ("HUGEINT", "UHUGEINT"):
            column = column.cast(pa.int64())  # noqa: PLW2901 - Athena's bigint; overflow raises
        columns.append(column)
    if names is None or len(names) != result.num_columns:
        names = [name.lower() for name in result.column_names]
    return pa.Table.from_arrays(columns, names=names) if columns else result
