"""Athena SQL written once, run on Athena or on DuckDB: the translation both places share.

``lake query`` (:mod:`lake.athena`) and the refresh stage (:mod:`handlers.features`) parse SQL in
Athena's dialect, type it from the tables' columns (so Athena's semantics survive where DuckDB's
differ, e.g. ``bigint / bigint`` divides whole numbers) and write it in DuckDB's with sqlglot.
"""

from __future__ import annotations

from typing import Any

#: ``{database: {table: {column: athena type}}}``: what sqlglot types a query's columns from.
Columns = dict[str, dict[str, dict[str, str]]]


def qualify(tree: Any, catalog: Columns) -> Any:
    """``tree`` with every column tied to its table and ``*`` expanded, or None when sqlglot
    cannot (DuckDB then reports what is wrong with the query)."""
    import sqlglot
    from sqlglot.optimizer.qualify import qualify as sqlglot_qualify
    from sqlglot.schema import MappingSchema

    try:
        schema = MappingSchema(dict[str, object](catalog), dialect="athena")
        return sqlglot_qualify(
            tree.copy(),
            dialect="athena",
            schema=schema,
            expand_stars=True,
            quote_identifiers=False,
            identify=False,
        )
    except sqlglot.errors.SqlglotError:
        return None


def duckdb_text(tree: Any, qualified: Any, catalog: Columns) -> str:
    """``tree`` in DuckDB's dialect, typed through ``qualified`` (from :func:`qualify`) when it can be."""
    import sqlglot
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.schema import MappingSchema

    if qualified is None:
        return str(tree.sql(dialect="duckdb"))
    try:
        schema = MappingSchema(dict[str, object](catalog), dialect="athena")
        return str(annotate_types(qualified.copy(), schema=schema, dialect="athena").sql(dialect="duckdb"))
    except sqlglot.errors.SqlglotError:
        return str(tree.sql(dialect="duckdb"))


def to_duckdb(tree: Any, catalog: Columns) -> str:
    """``tree`` (parsed in Athena's dialect) in DuckDB's dialect, typed from the catalog's columns."""
    return duckdb_text(tree, qualify(tree, catalog), catalog)


def transpile(sql: str, catalog: Columns, default_database: str | None = None) -> str:
    """One Athena SQL statement in DuckDB's dialect (see :func:`to_duckdb`); tables named without
    a database are in ``default_database`` (the workgroup's, as Athena reads them)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="athena")
    if default_database:
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            named = table.name and isinstance(table.this, exp.Identifier)
            if named and not table.db and table.name.lower() not in ctes:
                table.set("db", exp.to_identifier(default_database))
    return to_duckdb(tree, catalog)
