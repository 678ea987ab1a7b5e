"""Athena (Presto) views as the Glue catalog stores them.

Athena stores a view as a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 of a JSON document> */``; the JSON carries the SQL and the columns
with their Presto types. Athena reads only views written exactly this way, so the writer (the
handlers' :mod:`handlers.adapters.views`) and the engine, which expands views, share this format.

A keyed dataset's view shows each key once, from its newest source (:func:`latest_by_key_sql`);
the engine recognises such a view (:func:`latest_by_key_of`) so that, when its table holds no key
twice, it reads the table instead of ranking every row.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from query.sql import quote, quote_table
from query.types import athena_type_of_presto

#: The catalog name Athena's views are bound to (the Glue Data Catalog).
VIEW_CATALOG = "awsdatacatalog"
VIEW_TABLE_TYPE = "VIRTUAL_VIEW"
_PREFIX = "/* Presto View: "
_SUFFIX = " */"


class ViewDefinitionError(ValueError):
    """A Glue view whose text is not an Athena (Presto) view the lake can read."""


@dataclass(frozen=True)
class PrestoView:
    """What a Glue view holds: the database it belongs to, its SQL (Athena's dialect) and columns."""

    database: str
    name: str
    sql: str
    columns: tuple[tuple[str, str], ...]

    def original_text(self) -> str:
        """``ViewOriginalText`` exactly as Athena writes it."""
        document = {
            "originalSql": self.sql,
            "catalog": VIEW_CATALOG,
            "schema": self.database,
            "columns": [{"name": name, "type": kind} for name, kind in self.columns],
            "owner": "lake",
            "runAsInvoker": False,
            "properties": {},
        }
        encoded = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
        return f"{_PREFIX}{encoded}{_SUFFIX}"

    def table_input(self) -> dict[str, Any]:
        """The Glue ``TableInput`` of the view (for ``CreateTable`` / ``UpdateTable``)."""
        return {
            "Name": self.name,
            "TableType": VIEW_TABLE_TYPE,
            "Parameters": {"presto_view": "true", "comment": "Presto View"},
            "ViewOriginalText": self.original_text(),
            "ViewExpandedText": "/* Presto View */",
            "StorageDescriptor": {
                # Athena's own views carry Hive types here; the Presto types are in the JSON.
                "Columns": [{"Name": name, "Type": athena_type_of_presto(kind)} for name, kind in self.columns],
                "SerdeInfo": {},
            },
        }


def is_view(table: dict[str, Any]) -> bool:
    """Whether a Glue ``Table`` (as ``GetTable`` returns it) is a view."""
    return table.get("TableType") == VIEW_TABLE_TYPE


def read_view(database: str, table: dict[str, Any]) -> PrestoView:
    """The view a Glue ``Table`` holds; :class:`ViewDefinitionError` when it is not an Athena view."""
    text = str(table.get("ViewOriginalText") or "")
    name = str(table.get("Name", ""))
    if not (text.startswith(_PREFIX) and text.endswith(_SUFFIX)):
        raise ViewDefinitionError(
            f"view {database}.{name} is not an Athena (Presto) view; recreate it with Athena's CREATE VIEW"
        )
    try:
        document = json.loads(base64.b64decode(text[len(_PREFIX) : -len(_SUFFIX)], validate=True))
        return PrestoView(
            database=str(document.get("schema") or database),
            name=name,
            sql=str(document["originalSql"]),
            columns=tuple((str(c["name"]), str(c["type"])) for c in document.get("columns", [])),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ViewDefinitionError(
            f"view {database}.{name} has a damaged definition ({exc}); recreate it with Athena's CREATE VIEW"
        ) from exc


def view_sql(text: str) -> str | None:
    """The SQL of a ``ViewOriginalText`` written like Athena's; None for anything else."""
    try:
        return read_view("", {"ViewOriginalText": text}).sql
    except ViewDefinitionError:
        return None


def latest_by_key_sql(database: str, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """Athena SQL showing each key once, from the newest source that has it.

    Newest is the source object that landed last (``ingested_at``, then ``source_key`` to break a
    tie). A row whose first key column is null has no key and is always shown.
    """
    listed = ", ".join(quote(c) for c in columns)
    partition = ", ".join(quote(c) for c in key)
    return (
        f"SELECT {listed} FROM (SELECT *, row_number() OVER (PARTITION BY {partition} "
        f'ORDER BY "ingested_at" DESC, "source_key" DESC) AS "lake_rank" FROM {quote_table(database, table)}) '
        f'WHERE "lake_rank" = 1 OR {quote(key[0])} IS NULL'
    )


@dataclass(frozen=True)
class LatestByKey:
    """A view :func:`latest_by_key_sql` wrote: ``columns`` of ``database.table``, each ``key`` once."""

    database: str
    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]

    def repeated_keys_sql(self) -> str:
        """Athena SQL giving a row when some key is held by more than one row of the table (rows
        without a first key column aside: the view shows them all)."""
        keys = ", ".join(quote(c) for c in self.key)
        return (
            f"SELECT 1 AS repeated FROM {quote_table(self.database, self.table)} WHERE {quote(self.key[0])} "
            f"IS NOT NULL GROUP BY {keys} HAVING count(*) > 1 LIMIT 1"
        )

    def table_sql(self) -> str:
        """Athena SQL of the view's rows when no key repeats: every row of its table, its columns."""
        listed = ", ".join(quote(c) for c in self.columns)
        return f"SELECT {listed} FROM {quote_table(self.database, self.table)}"


def latest_by_key_of(sql: str) -> LatestByKey | None:
    """The keyed view ``sql`` is, if :func:`latest_by_key_sql` wrote exactly this text; else None
    (a view a person wrote, or one an earlier version of the lake wrote differently)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="athena")
        window, table = tree.find(exp.Window), tree.find(exp.Table)
        if not isinstance(tree, exp.Select) or window is None or table is None:
            return None
        found = LatestByKey(
            database=table.db,
            table=table.name,
            columns=tuple(e.alias_or_name for e in tree.expressions),
            key=tuple(c.name for c in window.args.get("partition_by") or []),
        )
    except (sqlglot.errors.SqlglotError, AttributeError, TypeError):
        return None
    if not (found.database and found.columns and found.key):
        return None
    return found if latest_by_key_sql(found.database, found.table, found.columns, found.key) == sql else None
