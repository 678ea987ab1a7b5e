"""Athena SQL over the lake's catalogued tables: on Athena itself, or locally with DuckDB.

Locally, every table a query names is looked up in the Glue catalog (location, columns, partition
keys), opened as a :mod:`pyarrow.dataset` over the stand-in's S3 with hive partitioning typed from
the partition keys, and registered in DuckDB as a view in a schema named like its database. The
query is parsed in Athena's dialect, typed from the catalog's columns (so that Athena's semantics
survive, e.g. ``bigint / bigint`` divides integers) and written in DuckDB's with sqlglot. DuckDB
pushes filters on partition columns into the Arrow dataset, which then opens only the matching
partitions' files.

Result columns are named as Athena names them: lower case, and ``_col<N>`` for an expression
without an alias, so the same SQL gives the same columns on both.

DuckDB and sqlglot belong to the development environment (``make install``), not to the Lambda
image; they are imported only when a query runs locally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from handlers.store import athena_to_arrow
from lake.target import CliError, Target

if TYPE_CHECKING:
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

#: The catalog Athena names the Glue Data Catalog; ``awsdatacatalog.db.table`` is ``db.table``.
GLUE_CATALOG = "awsdatacatalog"


@dataclass(frozen=True, order=True)
class TableRef:
    """A table named by a query, with its database resolved."""

    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


def run_query(target: Target, sql: str) -> pa.Table:
    """The result of Athena SQL ``sql`` on ``target``: the stand-in (DuckDB) or Athena."""
    if target.local:
        return _run_local(target, sql)
    return _run_athena(target, sql)


# --- parsing -------------------------------------------------------------------------------------
def _sqlglot() -> Any:
    try:
        import sqlglot
    except ImportError as exc:
        raise CliError(_MISSING.format(name="sqlglot")) from exc
    return sqlglot


_MISSING = (
    "local queries need {name}, which is part of the development environment; "
    "install it with `make install` and run `uv run lake ...`"
)


def parse(sql: str) -> Any:
    """The single statement of ``sql``, parsed in Athena's dialect; a one-line CliError otherwise."""
    sqlglot = _sqlglot()
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise CliError(_syntax_message(exc)) from exc
    if len(statements) != 1:
        raise CliError(f"expected one SQL statement, got {len(statements)}; run them one at a time")
    return statements[0]


def _syntax_message(exc: Any) -> str:
    if not exc.errors:
        return f"SQL syntax error: {' '.join(str(exc).split())}; check the query"
    error = exc.errors[0]
    near = f" near {error['highlight']!r}" if error.get("highlight") else ""
    description = re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", str(error["description"]))
    return (
        f"SQL syntax error at line {error['line']}, column {error['col']}{near}: {description}; "
        "check the query (Athena SQL)"
    )


def table_refs(tree: Any, default_database: str) -> list[TableRef]:
    """The catalog tables ``tree`` reads, qualified (unqualified ones are in ``default_database``),
    and the tree rewritten so that every such table carries its database and no catalog."""
    from sqlglot import exp

    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    refs: set[TableRef] = set()
    for table in tree.find_all(exp.Table):
        name = table.name
        if not name or not isinstance(table.this, exp.Identifier):
            continue  # a table function or a subquery in table position
        if not table.db and name.lower() in ctes:
            continue
        if table.catalog and table.catalog.lower() != GLUE_CATALOG:
            raise CliError(
                f"catalog {table.catalog} is not the lake's; name tables as database.table "
                f"(or {GLUE_CATALOG}.database.table)"
            )
        database = (table.db or default_database).lower()
        refs.add(TableRef(database, name.lower()))
        table.set("catalog", None)
        table.set("db", exp.to_identifier(database))
        table.set("this", exp.to_identifier(name.lower()))
    return sorted(refs)


def athena_column_names(tree: Any) -> list[str] | None:
    """The result's column names as Athena gives them, when the outer query is a plain SELECT."""
    from sqlglot import exp

    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this  # a UNION's columns are named by its first SELECT
    if not isinstance(select, exp.Select) or any(isinstance(e, exp.Star) for e in select.expressions):
        return None
    names = []
    for position, projection in enumerate(select.expressions):
        if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            return None  # t.*
        if isinstance(projection, exp.Alias | exp.Column):
            names.append(projection.alias_or_name.lower())
        else:
            names.append(f"_col{position}")
    return names


# --- local: DuckDB over the stand-in's Parquet ---------------------------------------------------
def _run_local(target: Target, sql: str) -> pa.Table:
    tree = parse(sql)
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        raise CliError(
            f"the stand-in runs queries (SELECT, WITH, UNION), not {tree.key.upper()} statements; "
            "tables are created by dropping files into raw/"
        )
    refs = table_refs(tree, target.curated_database)
    names = athena_column_names(tree)
    try:
        import duckdb
    except ImportError as exc:
        raise CliError(_MISSING.format(name="duckdb")) from exc
    glue = target.client("glue")
    fs = target.s3_filesystem()
    connection = duckdb.connect()
    for schema in sorted({ref.database for ref in refs}):
        connection.execute(f'CREATE SCHEMA "{schema}"')
    sources: dict[str, TableRef] = {}
    catalog: dict[str, dict[str, dict[str, str]]] = {}
    for number, ref in enumerate(refs):
        described = describe_table(glue, ref)
        catalog.setdefault(ref.database, {})[ref.table] = dict([*described.columns, *described.partition_keys])
        try:
            dataset = open_dataset(fs, described)
        except (OSError, pa.ArrowException) as exc:
            raise CliError(unreadable(exc, ref)) from exc
        arrow_name = f"__lake_table_{number}"
        sources[arrow_name] = ref
        connection.register(arrow_name, dataset)
        connection.execute(f'CREATE VIEW "{ref.database}"."{ref.table}" AS SELECT * FROM "{arrow_name}"')
    try:
        relation = connection.sql(to_duckdb(tree, catalog))
        result = relation.to_arrow_table() if relation is not None else pa.table({})
        types = [str(t) for t in relation.types] if relation is not None else []
    except duckdb.Error as exc:
        raise CliError(_duckdb_message(exc, sources)) from exc
    except (OSError, pa.ArrowException) as exc:
        raise CliError(unreadable(exc)) from exc
    finally:
        connection.close()
    return _athena_shaped(result, types, names)


def to_duckdb(tree: Any, catalog: dict[str, dict[str, dict[str, str]]]) -> str:
    """``tree`` in DuckDB's dialect, typed from the catalog's columns so that Athena's semantics
    carry over where they differ (``bigint / bigint`` is an integer division in Athena)."""
    import sqlglot
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.schema import MappingSchema

    try:
        schema = MappingSchema(dict[str, object](catalog), dialect="athena")
        qualified = qualify(
            tree.copy(),
            dialect="athena",
            schema=schema,
            expand_stars=True,
            quote_identifiers=False,
            identify=False,
        )
        return str(annotate_types(qualified, schema=schema, dialect="athena").sql(dialect="duckdb"))
    except sqlglot.errors.SqlglotError:
        return str(tree.sql(dialect="duckdb"))  # DuckDB reports what is wrong with the query


def _duckdb_message(exc: Exception, sources: dict[str, TableRef]) -> str:
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break  # DuckDB's caret display of the position
        if line.strip():
            lines.append(line.strip())
    message = " ".join(lines)
    for arrow_name, ref in sources.items():
        reading = f"reading the stream registered as '{arrow_name}' failed: "
        if reading in message:  # the Arrow dataset failed: a file, not the query
            return unreadable(message.partition(reading)[2], ref)
    return f"{message}; check the query's names and types (`lake tables` lists the tables)"


def unreadable(exc: Exception | str, ref: TableRef | None = None) -> str:
    """The one-line message for table files that cannot be read."""
    detail = " ".join(str(exc).split())
    where = f" of {ref}" if ref is not None else ""
    return (
        f"cannot read the files{where}: {detail}; remove the damaged object, "
        "or reprocess its source with `lake reprocess`"
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


@dataclass(frozen=True)
class TableDefinition:
    """What the Glue catalog says about a table: enough to read it as Athena would."""

    ref: TableRef
    location: str
    columns: list[tuple[str, str]]
    partition_keys: list[tuple[str, str]]
    updated: Any = None

    @property
    def path(self) -> str:
        """The location as a pyarrow filesystem path (``bucket/prefix``)."""
        return self.location.removeprefix("s3://").removeprefix("s3a://").rstrip("/")


def describe_table(glue: Any, ref: TableRef) -> TableDefinition:
    """The Glue definition of ``ref``; a one-line CliError when it does not exist."""
    try:
        table = glue.get_table(DatabaseName=ref.database, Name=ref.table)["Table"]
    except glue.exceptions.EntityNotFoundException as exc:
        raise CliError(f"table {ref} does not exist; `lake tables` lists the tables") from exc
    return definition(ref.database, table)


def definition(database: str, table: dict[str, Any]) -> TableDefinition:
    storage = table.get("StorageDescriptor", {})
    return TableDefinition(
        ref=TableRef(database, table["Name"]),
        location=storage.get("Location", ""),
        columns=[(c["Name"], c["Type"]) for c in storage.get("Columns", [])],
        partition_keys=[(k["Name"], k["Type"]) for k in table.get("PartitionKeys", [])],
        updated=table.get("UpdateTime") or table.get("CreateTime"),
    )


def open_dataset(fs: pafs.FileSystem, table: TableDefinition, paths: list[str] | None = None) -> ds.Dataset:
    """The table's Parquet (``paths``, else every file under its location) with the catalog's
    schema: Glue column types where they map to Arrow, hive partitions typed from the keys.

    No file is opened here unless the catalog has a type the simple map does not cover (then the
    first readable file's type is used), so a damaged file only fails a query that reads it.
    """
    import pyarrow.dataset as ds

    partition_schema = pa.schema([(name, athena_to_arrow(kind)) for name, kind in table.partition_keys])
    if paths is None:
        paths = [info.path for info in parquet_files(fs, table.path)]
    inferred = _first_readable_schema(fs, paths) if _needs_file_types(table) else pa.schema([])
    # Given the catalog's schema, the scan casts each file's columns to it (and fills missing ones
    # with nulls), as Athena reads every file through the table's schema.
    return ds.dataset(
        paths,
        schema=_catalog_schema(table, inferred),
        filesystem=fs,
        format="parquet",
        partitioning=ds.partitioning(partition_schema, flavor="hive"),
        partition_base_dir=table.path,
    )


def parquet_files(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    """The data files under ``path``, as a pyarrow dataset would take them (no hidden files)."""
    import pyarrow.fs as pafs

    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return []
    return [
        info
        for info in infos
        if info.type == pafs.FileType.File
        and info.size
        and not any(part.startswith((".", "_")) for part in info.path.removeprefix(path).split("/"))
    ]


def _needs_file_types(table: TableDefinition) -> bool:
    return any(athena_to_arrow(kind) == pa.string() and kind != "string" for _, kind in table.columns)


def _first_readable_schema(fs: pafs.FileSystem, paths: list[str]) -> pa.Schema:
    import pyarrow.parquet as pq

    for path in paths:
        try:
            return pq.read_schema(path, filesystem=fs)
        except (OSError, pa.ArrowException):
            continue  # a damaged file: the query that reads it will say so
    return pa.schema([])


def _catalog_schema(table: TableDefinition, inferred: pa.Schema) -> pa.Schema:
    fields = []
    for name, kind in [*table.columns, *table.partition_keys]:
        arrow = athena_to_arrow(kind)
        if arrow == pa.string() and kind != "string" and name in inferred.names:
            arrow = inferred.field(name).type  # a type the simple map does not cover: the file's own
        fields.append(pa.field(name, arrow))
    return pa.schema(fields)


# --- AWS: Athena in the stack's workgroup --------------------------------------------------------
def _run_athena(target: Target, sql: str) -> pa.Table:
    import boto3

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
        raise CliError(f"Athena: {' '.join(str(exc).split())}; check the query (`lake tables` lists tables)") from exc
    return pa.Table.from_pandas(frame, preserve_index=False)
