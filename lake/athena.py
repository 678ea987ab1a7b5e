"""Athena SQL over the lake's catalogued tables: on Athena itself, or locally with DuckDB.

Locally, every table a query names is looked up in the Glue catalog. An Iceberg table is read
through pyiceberg's Glue catalog: the scan is planned with the columns the query uses and the
simple comparisons of its WHERE clauses (``date = DATE '2026-03-04'``, ``n IN (1, 2)``, ...)
turned into pyiceberg expressions, so partitions and files that cannot match are never opened;
the rows stream into DuckDB as Arrow batches. A view (an Athena view in Glue) is replaced by its
SQL, read like any query. ``FOR VERSION AS OF <snapshot id>`` and ``FOR TIMESTAMP AS OF <time>``
read the snapshot they name, as Athena does.

The query is parsed in Athena's dialect, typed from the tables' columns (so that Athena's
semantics survive, e.g. ``bigint / bigint`` divides integers) and written in DuckDB's with
sqlglot. Result columns are named as Athena names them: lower case, and ``_col<N>`` for an
expression without an alias, so the same SQL gives the same columns on both.

The translation itself (:mod:`handlers.sql`) is shared with the refresh stage, which runs the
same Athena SQL on DuckDB inside its function; DuckDB and sqlglot are imported only when needed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from handlers.sql import arrow_view, duckdb_text, qualify, quote, quote_table, to_duckdb
from lake.iceberg import LakeCatalog, TableRef, athena_type, scan, schema_of, snapshot_at
from lake.target import CliError, Target

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

__all__ = ["GLUE_CATALOG", "TableRef", "athena_column_names", "parse", "run_query", "table_refs", "to_duckdb"]

#: The catalog Athena names the Glue Data Catalog; ``awsdatacatalog.db.table`` is ``db.table``.
GLUE_CATALOG = "awsdatacatalog"
#: Views inside views, at most (a view that names itself would otherwise never end).
MAX_VIEW_DEPTH = 10


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
        raise CliError(_syntax_message(exc, sql)) from exc
    if len(statements) != 1:
        raise CliError(f"expected one SQL statement, got {len(statements)}; run them one at a time")
    return statements[0]


def _syntax_message(exc: Any, sql: str = "") -> str:
    """One line that says where the query goes wrong and what is missing, not sqlglot's internals
    (``Required keyword: 'this' missing for Where``)."""
    if not exc.errors:
        return f"SQL syntax error: {' '.join(str(exc).split())}; check the query"
    error = exc.errors[0]
    highlight = str(error.get("highlight") or "").strip()
    before = re.sub(r"\s+", " ", str(error.get("start_context") or "")).lstrip()
    # sqlglot points at the end of the offending token; people count from its start.
    column = max(int(error["col"]) - len(highlight) + 1, 1) if highlight else error["col"]
    first = sql.split(None, 1)[0] if sql.strip() else ""
    if (
        first.isalpha()
        and first.upper() not in _KEYWORDS
        and "not a SQL keyword" in _what_is_wrong(str(error["description"]), highlight, first)
    ):
        column = sql.index(first) + 1  # a misspelt first keyword: point at it, not where sqlglot gave up
    near = f' near "{("…" + before[-30:]) if len(before) > 30 else before}{highlight}"' if highlight else ""
    return (
        f"SQL syntax error at line {error['line']}, column {column}{near}: "
        f"{_what_is_wrong(str(error['description']), highlight, before)}{_quoting_hint(highlight, before)}; "
        "fix the query (Athena SQL)"
    )


def _quoting_hint(highlight: str, before: str) -> str:
    """For a syntax error at a character that is no SQL but is in headers (``Order #``): how to
    write such a name."""
    words = before.split()
    if highlight.startswith("`") or (words and "`" in words[-1]):
        return '; Athena SQL quotes a name with double quotes, not backticks: "1st", not `1st`'
    if highlight and highlight[0] in "#$?@%&!~":
        example = f"{words[-1]} {highlight}" if words and words[-1].upper() not in _KEYWORDS else "Order #"
        return f'; a column name with spaces or punctuation is written in double quotes, e.g. "{example}"'
    return ""


#: What a clause or operator that sqlglot found incomplete needs after it.
_NEEDS = {
    "Where": "WHERE needs a condition after it",
    "Having": "HAVING needs a condition after it",
    "Neg": "'-' needs a number after it",
    "Not": "NOT needs a condition after it",
    "Order": "ORDER BY needs a column after it",
    "Group": "GROUP BY needs a column after it",
    "Limit": "LIMIT needs a number after it",
    "Join": "JOIN needs a table after it",
    "From": "FROM needs a table after it",
    "Alias": "AS needs a name after it",
    "Cast": "CAST needs (value AS type)",
}
_KEYWORDS = ("SELECT", "WITH", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "JOIN", "UNION")


def _what_is_wrong(description: str, highlight: str, before: str) -> str:
    import difflib

    missing = re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>", description)
    if missing:
        kind = missing.group(2)
        if kind in _NEEDS:
            return _NEEDS[kind]
        return (
            f"{highlight or kind.upper()} needs a value on each side"
            if missing.group(1) == "expression"
            else (f"{highlight or kind.upper()} is incomplete")
        )
    expecting = re.match(r"Expecting (\S+)", description)
    if expecting:
        return f"expected {expecting.group(1)} before {highlight!r}" if highlight else f"expected {expecting.group(1)}"
    words = before.split()
    if words and words[0].upper() not in _KEYWORDS:
        close = difflib.get_close_matches(words[0].upper(), _KEYWORDS, n=1)
        if close:
            return f"{words[0]!r} is not a SQL keyword (did you mean {close[0]}?)"
    if "Unexpected token" in description or "Invalid expression" in description:
        return f"{highlight!r} is not expected here" if highlight else "the query ends too early"
    return re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", description)


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


# --- local: DuckDB over Iceberg tables read through the catalog ----------------------------------
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


@dataclass(frozen=True)
class ScanPlan:
    """What a source's scan reads: the columns the query uses and a filter implied by its WHERE."""

    columns: tuple[str, ...] = ("*",)
    row_filter: BooleanExpression | None = None


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise CliError(_MISSING.format(name="duckdb")) from exc
    return duckdb


def _run_local(target: Target, sql: str) -> pa.Table:
    return run_on_catalog(LakeCatalog.of(target), sql, target.curated_database)


def run_on_catalog(catalog: LakeCatalog, sql: str, default_database: str) -> pa.Table:
    """Athena SQL ``sql`` on DuckDB over the tables and views of ``catalog`` (unqualified tables in
    ``default_database``): what ``lake query`` runs on the stand-in."""
    tree = parse(sql)
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        raise CliError(
            f"the stand-in runs queries (SELECT, WITH, UNION), not {tree.key.upper()} statements; "
            "tables are created by dropping files into raw/"
        )
    names = athena_column_names(tree)
    duckdb = _duckdb()
    table_refs(tree, default_database)
    expand_views(tree, catalog)
    sources = bind_sources(tree, catalog)
    columns: dict[str, dict[str, dict[str, str]]] = {}
    for source in sources.values():
        columns.setdefault(source.ref.database, {})[source.name] = {
            f.name: athena_type(f.field_type) for f in source.schema.fields
        }
    qualified = _qualify(tree, columns)
    plans = scan_plans(qualified, sources)
    duckdb_sql = _duckdb_text(tree, qualified, columns)
    context = _QueryContext(sql, columns)
    try:
        return _execute(duckdb, duckdb_sql, sources, plans, names, stream=True, context=context)
    except _ScannedTwiceError:
        # The plan reads a table more than once (a self-join, a view used twice): a stream can be
        # read only once, so each table is read into memory before the query runs.
        return _execute(duckdb, duckdb_sql, sources, plans, names, stream=False, context=context)


@dataclass(frozen=True)
class _QueryContext:
    """What an error message may point at: the user's SQL and the columns of the tables it reads."""

    sql: str
    columns: dict[str, dict[str, dict[str, str]]]


class _ScannedTwiceError(Exception):
    """DuckDB's plan scans a streamed table twice."""


def _execute(
    duckdb: Any,
    sql: str,
    sources: dict[TableRef, Source],
    plans: dict[TableRef, ScanPlan],
    names: list[str] | None,
    *,
    stream: bool,
    context: _QueryContext | None = None,
) -> pa.Table:
    connection = duckdb.connect()
    arrow_names: dict[str, TableRef] = {}
    failures: dict[TableRef, list[str]] = defaultdict(list)
    try:
        connection.execute("SET TimeZone = 'UTC'")  # Athena's session time zone
        for schema in sorted({key.database for key in sources}):
            connection.execute(f"CREATE SCHEMA {quote(schema, 'duckdb')}")
        for number, (key, source) in enumerate(sorted(sources.items())):
            plan = plans.get(key, ScanPlan())
            try:
                reader = scan(source.table, source.snapshot, plan.columns, plan.row_filter, failures[source.ref])
                data: pa.RecordBatchReader | pa.Table = reader if stream else reader.read_all()
            except (OSError, pa.ArrowException) as exc:
                raise CliError(unreadable(exc, source.ref)) from exc
            arrow_name = f"__lake_table_{number}"
            arrow_names[arrow_name] = source.ref
            connection.register(arrow_name, data)
            view = quote_table(key.database, key.table, "duckdb")
            connection.execute(arrow_view(view, arrow_name, data.schema.names))
        relation = connection.sql(sql)
        result = relation.to_arrow_table() if relation is not None else pa.table({})
        types = [str(t) for t in relation.types] if relation is not None else []
    except duckdb.Error as exc:
        if stream and "already been consumed" in str(exc):
            raise _ScannedTwiceError from exc
        for ref, found in failures.items():
            if found:  # a data file, not the query
                raise CliError(unreadable(found[0], ref)) from exc
        raise CliError(_duckdb_message(exc, arrow_names, context)) from exc
    except (OSError, pa.ArrowException) as exc:
        raise CliError(unreadable(exc)) from exc
    finally:
        connection.close()
    return _athena_shaped(result, types, names)


def _catalog_tables(tree: Any) -> list[Any]:
    """The tree's table nodes that name catalog tables (``table_refs`` gave each its database)."""
    from sqlglot import exp

    return [t for t in tree.find_all(exp.Table) if t.db and isinstance(t.this, exp.Identifier)]


def _ref(node: Any) -> TableRef:
    return TableRef(node.db.lower(), node.name.lower())


def expand_views(tree: Any, catalog: LakeCatalog) -> None:
    """Replace every view the tree names by its SQL (Athena's dialect), views inside views too."""
    from sqlglot import exp

    for _ in range(MAX_VIEW_DEPTH + 1):
        views = [node for node in _catalog_tables(tree) if catalog.is_view(_ref(node))]
        if not views:
            return
        for node in views:
            ref = _ref(node)
            if node.args.get("version") is not None:
                raise CliError(
                    f"{ref} is a view; time travel reads a table: name the table the view reads "
                    "(e.g. its <name>_sources table) with FOR VERSION AS OF"
                )
            view = catalog.view(ref)
            try:
                body = parse(view.sql)
            except CliError as exc:
                raise CliError(f"view {ref}: {exc}") from exc
            table_refs(body, view.database)
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(ref.table))
            node.replace(exp.Subquery(this=body, alias=alias))
    raise CliError(
        f"views nest more than {MAX_VIEW_DEPTH} deep in this query (does a view name itself?); fix the view's SQL"
    )


def bind_sources(tree: Any, catalog: LakeCatalog) -> dict[TableRef, Source]:
    """Each Iceberg table the tree reads, at the snapshot it reads; a table read with
    ``FOR ... AS OF`` is renamed in the tree to a name of its own for that snapshot."""
    from sqlglot import exp

    sources: dict[TableRef, Source] = {}
    for node in _catalog_tables(tree):
        ref = _ref(node)
        table = catalog.table(ref)
        version = node.args.get("version")
        name = ref.table
        if version is None:
            snapshot = snapshot_at(table, ref)
        else:
            snapshot = _snapshot_of_clause(version, table, ref)
            name = f"{ref.table}__snapshot_{snapshot.snapshot_id if snapshot is not None else 'none'}"
            node.set("version", None)
            if not node.args.get("alias"):
                node.set("alias", exp.TableAlias(this=exp.to_identifier(ref.table)))
            node.set("this", exp.to_identifier(name))
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
        raise CliError(
            f"FOR VERSION AS OF {value.sql(dialect='athena')} on {ref}: give a snapshot id (a whole number, "
            "as `lake tables` and the Dataset Processed event show) or a branch or tag name in quotes"
        )
    return snapshot_at(table, ref, moment=_timestamp(value, ref))


def _timestamp(value: Any, ref: TableRef) -> dt.datetime:
    duckdb = _duckdb()
    connection = duckdb.connect()
    shown = value.sql(dialect="athena")
    try:
        connection.execute("SET TimeZone = 'UTC'")
        row = connection.execute(f"SELECT {value.sql(dialect='duckdb')}").fetchone()
    except duckdb.Error as exc:
        raise CliError(
            f"FOR TIMESTAMP AS OF {shown} on {ref}: {str(exc).splitlines()[0]}; "
            "give a timestamp, e.g. TIMESTAMP '2026-03-01 10:00:00 UTC'"
        ) from exc
    finally:
        connection.close()
    moment = row[0] if row else None
    if isinstance(moment, dt.datetime):
        return moment
    if isinstance(moment, dt.date):
        return dt.datetime.combine(moment, dt.time(), tzinfo=dt.UTC)
    raise CliError(
        f"FOR TIMESTAMP AS OF {shown} on {ref} is not a timestamp; give one, "
        "e.g. TIMESTAMP '2026-03-01 10:00:00 UTC' or current_timestamp - interval '1' hour"
    )


# --- what each scan reads ------------------------------------------------------------------------
def scan_plans(qualified: Any, sources: dict[TableRef, Source]) -> dict[TableRef, ScanPlan]:
    """Per source, the columns the query uses and the comparisons every read of it must satisfy.

    Both err on the side of reading more: a column is kept when any column of the query has its
    name, and a filter is pushed only when it is a null-rejecting comparison with a constant in
    the WHERE of the SELECT that reads the table (so it holds however the table is joined), for
    every place the query reads that table. DuckDB still evaluates the whole query on what is read.
    """
    from functools import reduce

    from pyiceberg.expressions import Or
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    if qualified is None or any(isinstance(s.parent, exp.Select) for s in qualified.find_all(exp.Star)):
        return {key: ScanPlan() for key in sources}
    used = {column.name.lower() for column in qualified.find_all(exp.Column)}
    occurrences: dict[TableRef, int] = defaultdict(int)
    for node in _catalog_tables(qualified):
        occurrences[_ref(node)] += 1
    filters: dict[TableRef, list[BooleanExpression | None]] = defaultdict(list)
    inherited: dict[int, list[Any]] = defaultdict(list)
    # Outer scopes first, so that what a SELECT filters reaches the derived tables (views) it reads.
    for scope in reversed(traverse_scope(qualified)):
        where = scope.expression.args.get("where") if isinstance(scope.expression, exp.Select) else None
        conjuncts = [*(_conjuncts(where.this) if where is not None else []), *inherited[id(scope.expression)]]
        for alias, (_, source) in scope.selected_sources.items():
            if isinstance(source, exp.Table) and _ref(source) in sources:
                filters[_ref(source)].append(_iceberg_filter(conjuncts, alias, sources[_ref(source)].schema))
            elif not isinstance(source, exp.Table) and source.is_derived_table:
                inner = source.expression
                inherited[id(inner)] += [
                    c for c in map(lambda c: _through(c, alias, inner), conjuncts) if c is not None
                ]
    plans = {}
    for key, bound in sources.items():
        names = [f.name for f in bound.schema.fields]
        # count(*) uses no column, but a scan needs one to count its rows
        columns = tuple(n for n in names if n.lower() in used) or tuple(names[:1])
        found = filters.get(key, [])
        complete = len(found) == occurrences[key] and all(f is not None for f in found)
        row_filter = reduce(Or, [f for f in found if f is not None]) if found and complete else None
        plans[key] = ScanPlan(columns or ("*",), row_filter)
    return plans


def _through(condition: Any, alias: str, inner: Any) -> Any:
    """``condition`` on derived table ``alias`` rewritten onto the columns of its SELECT ``inner``,
    when filtering ``inner``'s rows first cannot change which of its rows pass: the columns are
    plain columns of ``inner``, which neither aggregates nor limits, and every window function of
    ``inner`` is partitioned by them (a filter then drops whole partitions). Else None."""
    from sqlglot import exp

    if not isinstance(inner, exp.Select) or _predicate_columns(condition, alias) is None:
        return None
    if any(inner.args.get(arg) for arg in ("group", "having", "limit", "offset", "qualify", "distinct")):
        return None
    if any(isinstance(p.unalias(), exp.AggFunc) or p.find(exp.AggFunc) for p in inner.selects):
        return None
    projections = {p.alias_or_name.lower(): p.unalias() for p in inner.selects}
    windows = list(inner.find_all(exp.Window))
    rewritten = condition.copy()
    for column in list(rewritten.find_all(exp.Column)):
        projected = projections.get(column.name.lower())
        if not isinstance(projected, exp.Column):
            return None
        for window in windows:
            keys = {k.name.lower() for k in window.args.get("partition_by") or [] if isinstance(k, exp.Column)}
            if projected.name.lower() not in keys:
                return None
        column.replace(projected.copy())
    return rewritten


def _predicate_columns(condition: Any, alias: str) -> set[str] | None:
    """The columns of a condition that reads only ``alias``'s columns and constants, else None."""
    from sqlglot import exp

    columns = list(condition.find_all(exp.Column))
    if not columns or any(c.table.lower() != alias.lower() for c in columns):
        return None
    if condition.find(exp.Subquery, exp.Select, exp.Window, exp.AggFunc):
        return None
    return {c.name.lower() for c in columns}


def _conjuncts(condition: Any) -> list[Any]:
    from sqlglot import exp

    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        return [*_conjuncts(condition.this), *_conjuncts(condition.expression)]
    return [condition]


def _iceberg_filter(conjuncts: list[Any], alias: str, schema: Schema) -> BooleanExpression | None:
    from functools import reduce

    from pyiceberg.expressions import And

    predicates = [p for c in conjuncts if (p := _predicate(c, alias, schema)) is not None]
    return reduce(And, predicates) if predicates else None


def _predicate(condition: Any, alias: str, schema: Schema) -> BooleanExpression | None:
    """``condition`` as a pyiceberg expression when it compares a column of ``alias`` with constants
    of the column's own type (no coercion that could change which rows match); else None."""
    from pyiceberg import expressions as ie
    from pyiceberg.expressions.literals import literal
    from sqlglot import exp

    compare = {exp.EQ: ie.EqualTo, exp.GT: ie.GreaterThan, exp.GTE: ie.GreaterThanOrEqual,
               exp.LT: ie.LessThan, exp.LTE: ie.LessThanOrEqual}  # fmt: skip
    mirrored = {exp.EQ: ie.EqualTo, exp.GT: ie.LessThan, exp.GTE: ie.LessThanOrEqual,
                exp.LT: ie.GreaterThan, exp.LTE: ie.GreaterThanOrEqual}  # fmt: skip
    kind = type(condition)
    if kind in compare:
        left, right = condition.this, condition.expression
        for column, constant, make in ((left, right, compare[kind]), (right, left, mirrored[kind])):
            field = _field(column, alias, schema)
            if field is not None and (value := _constant(constant, field.field_type)) is not _NOT_CONSTANT:
                return make(term=field.name, value=value)
        return None
    field = _field(condition.this, alias, schema) if isinstance(condition, exp.In | exp.Between) else None
    if field is None:
        return None
    if isinstance(condition, exp.In) and not condition.args.get("query"):
        values = [_constant(e, field.field_type) for e in condition.expressions]
        if values and all(v is not _NOT_CONSTANT for v in values):
            return ie.In(term=field.name, values={literal(v) for v in values})
    if isinstance(condition, exp.Between):
        low = _constant(condition.args.get("low"), field.field_type)
        high = _constant(condition.args.get("high"), field.field_type)
        if low is not _NOT_CONSTANT and high is not _NOT_CONSTANT:
            return ie.And(
                ie.GreaterThanOrEqual(term=field.name, value=low), ie.LessThanOrEqual(term=field.name, value=high)
            )
    return None


def _field(node: Any, alias: str, schema: Schema) -> Any:
    from sqlglot import exp

    if not isinstance(node, exp.Column) or node.table.lower() != alias.lower():
        return None
    for field in schema.fields:
        if field.name.lower() == node.name.lower():
            return field
    return None


_NOT_CONSTANT = object()


def _constant(node: Any, kind: Any) -> Any:
    """The Python value of a literal of Iceberg type ``kind``, or ``_NOT_CONSTANT``. Floats and
    decimals are left to DuckDB (NaN and rounding compare differently)."""
    from pyiceberg import types as t
    from sqlglot import exp

    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    if isinstance(kind, t.IntegerType | t.LongType) and isinstance(node, exp.Literal) and node.is_int:
        return -int(node.this) if negative else int(node.this)
    if negative:
        return _NOT_CONSTANT
    if isinstance(kind, t.StringType) and isinstance(node, exp.Literal) and node.is_string:
        return node.this
    if isinstance(kind, t.BooleanType) and isinstance(node, exp.Boolean):
        return bool(node.this)
    if not (isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string):
        return _NOT_CONSTANT
    text = node.this.this.strip()
    try:
        if isinstance(kind, t.DateType) and node.to.is_type(exp.DataType.Type.DATE):
            return dt.date.fromisoformat(text).isoformat()
        if isinstance(kind, t.TimestampType | t.TimestamptzType) and node.to.is_type(*exp.DataType.TEMPORAL_TYPES):
            moment = dt.datetime.fromisoformat(re.sub(r"\s*UTC$", "+00:00", text))
            if moment.tzinfo is not None and isinstance(kind, t.TimestampType):
                return _NOT_CONSTANT  # a zone on a zoneless column: leave it to DuckDB
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return (moment - _EPOCH) // dt.timedelta(microseconds=1)  # micros, as Iceberg stores them
    except ValueError:
        return _NOT_CONSTANT
    return _NOT_CONSTANT


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --- DuckDB's dialect ----------------------------------------------------------------------------
# The translation is shared with the refresh stage (handlers.sql).
_qualify = qualify
_duckdb_text = duckdb_text


def _duckdb_message(exc: Exception, sources: dict[str, TableRef], context: _QueryContext | None = None) -> str:
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break  # DuckDB's caret display of the position
        if line.strip():
            lines.append(line.strip())
    message = " ".join(lines)
    for arrow_name, ref in sources.items():
        if f"'{arrow_name}'" in message or f'"{arrow_name}"' in message:  # a file, not the query
            return unreadable(message, ref)
    if "Parquet" in message or "parquet" in message:
        return unreadable(message)
    if context is not None:
        rewritten = _binder_message(message, context)
        if rewritten is not None:
            return rewritten
    return f"{message}; check the query's names and types (`lake tables` lists the tables)"


def position(sql: str, word: str) -> str:
    """``line L, column C`` of the first whole-word ``word`` in ``sql`` (case-insensitive), or ``""``."""
    found = re.search(rf"(?<![\w.\"]){re.escape(word)}(?!\w)", sql, flags=re.IGNORECASE) or re.search(
        re.escape(word), sql, flags=re.IGNORECASE
    )
    if found is None:
        return ""
    line = sql.count("\n", 0, found.start()) + 1
    column = found.start() - (sql.rfind("\n", 0, found.start()) + 1) + 1
    return f"line {line}, column {column}"


def near_names(name: str, candidates: list[str], count: int = 3) -> list[str]:
    """The candidates that look most like ``name`` (a typo, another case), best first."""
    import difflib

    lowered = {c.lower(): c for c in candidates}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.6)]


def _binder_message(message: str, context: _QueryContext) -> str | None:
    """DuckDB's binder errors about the user's query, as one line in the user's terms."""
    unknown = re.search(r'(?:Referenced column|does not have a column named) "([^"]+)"', message)
    if unknown:
        name = unknown.group(1)
        tables = [
            (f"{database}.{table}", list(cols)) for database, by_table in context.columns.items()
            for table, cols in by_table.items()
        ]  # fmt: skip
        everything = [c for _, cols in tables for c in cols]
        # A bare ``Created at`` reads as the column ``Created``: the name it begins is the one meant.
        near = list(dict.fromkeys([*_begun_by(name, everything), *near_names(name, everything)]))[:3]
        where = position(context.sql, name)
        read = ", ".join(t for t, _ in tables) or "the query's tables"
        shown = near or everything[:12]
        listed = ", ".join(map(_as_written, shown))
        quoting = "a name with spaces or punctuation is written in double quotes"
        odd = any(_as_written(n) != n for n in shown)
        if near:
            hint = f"did you mean {listed}?" + (f" {quoting[0].upper()}{quoting[1:]}" if odd else "")
        else:
            hint = f"its columns: {listed}" + (f"; {quoting}" if odd else "")
        return (
            f"column {name}{f' (at {where})' if where else ''} is not in {read}; {hint} "
            "(`lake describe TABLE` lists a table's columns)"
        )
    missing_function = re.search(r"Function with name (\w+) does not exist", message)
    if missing_function:
        # A bare ``Total (USD)`` reads as a call of a function ``total``.
        columns = [c for by_table in context.columns.values() for cs in by_table.values() for c in cs]
        begun = _begun_by(missing_function.group(1), columns)
        if begun:
            return (
                f"{missing_function.group(1)}(...) is not a function; did you mean the column "
                f"{_as_written(begun[0])}? A name with spaces or punctuation is written in double quotes"
            )
    no_function = re.search(r"No function matches the given name and argument types '(\w+)\(([^)]*)\)'", message)
    if no_function:
        function, arguments = no_function.groups()
        where = position(context.sql, function)
        return (
            f"{function}({arguments.lower()}){f' at {where}' if where else ''}: {function}() does not take "
            f"{'text' if 'VARCHAR' in arguments else arguments.lower()} values; check the column's type with "
            "`lake describe TABLE`, or convert it, e.g. CAST(x AS double)"
        )
    return None


def _begun_by(word: str, names: list[str]) -> list[str]:
    """The ``names`` that are ``word`` then a space or punctuation (``Created at`` for ``created``)."""
    return [n for n in names if n.lower().startswith(word.lower()) and re.match(r"\W", n[len(word) :] or "x")]


def _as_written(name: str) -> str:
    """``name`` as a query must write it: bare when it is a plain word, else in double quotes."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else quote(name)


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
        raise CliError(athena_message(str(exc), lambda ref: LakeCatalog.of(target).missing(ref))) from exc
    return pa.Table.from_pandas(frame, preserve_index=False)


def athena_message(error: str, missing_table: Any = None) -> str:
    """Athena's error as one line in the user's terms, like the stand-in's (``missing_table(ref)``
    gives the message for a table that does not exist, with the names near it)."""
    text = " ".join(error.split())
    where = re.search(r"line (\d+):(\d+): ", text)
    at = f"line {where.group(1)}, column {where.group(2)}" if where else ""
    column = re.search(r"Column '([^']+)' cannot be resolved", text)
    if column:
        return (
            f"column {column.group(1)}{f' (at {at})' if at else ''} cannot be resolved; check its name "
            "(`lake describe TABLE` lists a table's columns)"
        )
    table = re.search(r"Table '(?:awsdatacatalog\.)?([\w]+)\.([\w]+)' does not exist", text)
    if table:
        ref = TableRef(table.group(1), table.group(2))
        if missing_table is not None:
            try:
                return str(missing_table(ref))
            except Exception:  # the near names are a courtesy; the plain message still helps
                pass
        return f"table {ref} does not exist; `lake tables` lists the tables"
    if "SYNTAX_ERROR" in text or "mismatched input" in text:
        detail = text.split(": ", 2)[-1] if at else text
        detail = re.sub(r"\. Expecting: .*$", "", detail)
        bad = re.search(r"(?:mismatched input|token recognition error at:) '([^']*)'", text)
        hint = _quoting_hint(bad.group(1), "") if bad else ""
        return f"SQL syntax error{f' at {at}' if at else ''}: {detail}{hint}; fix the query (Athena SQL)"
    return f"Athena: {text}; check the query (`lake tables` lists tables)"
