"""Athena SQL written once, run on Athena or on DuckDB: the names a statement reads, and its translation.

The engine parses SQL in Athena's dialect (:func:`query.parse.parse`), finds the catalog tables it
reads (:func:`table_refs`), types it from the tables' columns (so Athena's semantics survive where
DuckDB's differ, e.g. ``bigint / bigint`` divides whole numbers) and writes it in DuckDB's with sqlglot.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from query.errors import QueryError

#: The catalog Athena names the Glue Data Catalog; ``awsdatacatalog.db.table`` is ``db.table``.
GLUE_CATALOG = "awsdatacatalog"

#: ``{database: {table: {column: athena type}}}``: what sqlglot types a query's columns from.
Columns = dict[str, dict[str, dict[str, str]]]


def quote(name: str, dialect: str = "athena") -> str:
    """``name`` as one quoted SQL identifier of ``dialect``, whatever it holds: spaces, ``#``, a
    keyword (``at``, ``select``), a leading digit, a dot, or a quote (``a"b`` is ``"a""b"``)."""
    from sqlglot import exp

    return str(exp.to_identifier(name, quoted=True).sql(dialect=dialect))


def quote_table(database: str, table: str, dialect: str = "athena") -> str:
    """``database.table`` with each part quoted (:func:`quote`)."""
    return f"{quote(database, dialect)}.{quote(table, dialect)}"


def arrow_view(view: str, arrow_name: str, columns: list[str]) -> str:
    """DuckDB's ``CREATE VIEW`` of an Arrow table registered as ``arrow_name`` (with ``columns``),
    each column named as the translated SQL names it: sqlglot writes names lower case, as Athena
    reads them, and DuckDB matches other cases of ASCII letters only (``Ça va`` is not ``ça va``).
    ``view`` is the view's name, quoted."""
    lowered = [name.lower() for name in columns]
    if len(set(lowered)) < len(lowered):  # two names one to Athena: DuckDB tells them apart as written
        return f"CREATE VIEW {view} AS SELECT * FROM {quote(arrow_name, 'duckdb')}"
    listed = ", ".join(
        quote(name, "duckdb") if name == low else f"{quote(name, 'duckdb')} AS {quote(low, 'duckdb')}"
        for name, low in zip(columns, lowered, strict=True)
    )
    return f"CREATE VIEW {view} AS SELECT {listed or '*'} FROM {quote(arrow_name, 'duckdb')}"


def _schema(catalog: Columns) -> Any:
    """sqlglot's schema of ``catalog``. sqlglot parses each name it is given as SQL (``Order #``
    would be cut at ``#``, `` x `` trimmed), so every name goes in quoted: the name exactly as stored."""
    from sqlglot.schema import MappingSchema

    quoted = {
        quote(database): {
            quote(table): {quote(column): kind for column, kind in columns.items()} for table, columns in tables.items()
        }
        for database, tables in catalog.items()
    }
    return MappingSchema(dict[str, object](quoted), dialect="athena")


def qualify(tree: Any, catalog: Columns) -> Any:
    """``tree`` with every column tied to its table and ``*`` expanded, or None when sqlglot
    cannot (DuckDB then reports what is wrong with the query)."""
    import sqlglot
    from sqlglot.optimizer.qualify import qualify as sqlglot_qualify

    try:
        return sqlglot_qualify(
            tree.copy(),
            dialect="athena",
            schema=_schema(catalog),
            expand_stars=True,
            quote_identifiers=False,
            identify=False,
        )
    except sqlglot.errors.SqlglotError:
        return None


def duckdb_text(tree: Any, qualified: Any, catalog: Columns) -> str:
    """``tree`` in DuckDB's dialect, typed through ``qualified`` (from :func:`qualify`) when it can be.

    The qualified tree names every column itself (``*`` expanded from the catalog), so each
    identifier is written quoted: a column a file's header named ``Order #`` or ``at`` is then one
    name to DuckDB, not a syntax error. DuckDB matches quoted names regardless of case, as Athena does.
    """
    import sqlglot
    from sqlglot.optimizer.annotate_types import annotate_types

    if qualified is None:
        return str(tree.sql(dialect="duckdb"))
    try:
        typed = annotate_types(qualified.copy(), schema=_schema(catalog), dialect="athena")
        return str(typed.sql(dialect="duckdb", identify=True))
    except sqlglot.errors.SqlglotError:
        return str(tree.sql(dialect="duckdb"))


#: Translations kept per process: sqlglot's qualification and typing cost tens of milliseconds a
#: statement, and a warm refresh function (or a report, or ``lake query`` in a loop) runs the same
#: statements over the same columns again and again.
TRANSLATIONS_KEPT = 512
_translations: OrderedDict[tuple[str, str], tuple[Any, str]] = OrderedDict()
_translations_lock = threading.Lock()


def translate(tree: Any, catalog: Columns) -> tuple[Any, str]:
    """``(qualify(tree, catalog), duckdb_text(...))``, remembered for the statement and the columns it
    was typed from (both as text, so a changed column type is a new translation). The qualified tree
    is shared between callers: read it, never change it."""
    key = (tree.sql(dialect="athena"), json.dumps(catalog, sort_keys=True))
    with _translations_lock:
        if key in _translations:
            _translations.move_to_end(key)
            return _translations[key]
    qualified = qualify(tree, catalog)
    translated = (qualified, duckdb_text(tree, qualified, catalog))
    with _translations_lock:
        _translations[key] = translated
        while len(_translations) > TRANSLATIONS_KEPT:
            _translations.popitem(last=False)
    return translated


def to_duckdb(tree: Any, catalog: Columns) -> str:
    """``tree`` (parsed in Athena's dialect) in DuckDB's dialect, typed from the catalog's columns."""
    return translate(tree, catalog)[1]


def transpile(sql: str, catalog: Columns, default_database: str | None = None) -> str:
    """One Athena SQL statement in DuckDB's dialect (see :func:`to_duckdb`); tables named without
    a database are in ``default_database`` (the workgroup's, as Athena reads them)."""
    import sqlglot

    tree = sqlglot.parse_one(sql, read="athena")
    if default_database:
        table_refs(tree, default_database)
    return to_duckdb(tree, catalog)


@dataclass(frozen=True, order=True)
class TableRef:
    """A table named by a query, with its database resolved."""

    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


def table_refs(tree: Any, default_database: str) -> list[TableRef]:
    """The catalog tables ``tree`` reads (CTEs left out), qualified (unqualified ones are in
    ``default_database``), and the tree rewritten so that every such table carries its database and
    no catalog. A QueryError for a table of another catalog than the lake's."""
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
            raise QueryError(
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
    """The result's column names as Athena gives them, when the outer query is a plain SELECT:
    lower case, and ``_col<N>`` for an expression without an alias."""
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
