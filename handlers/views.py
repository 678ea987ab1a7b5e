"""Athena (Presto) views in the Glue catalog: the table a user queries under a dataset's name.

Athena stores a view as a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 of a JSON document> */``; the JSON carries the SQL and the columns
with their Presto types. Athena reads only views written exactly this way, so the writer (the
handler) and the local reader (``lake query``) share this module.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handlers.errors import PermanentError

#: The catalog name Athena's views are bound to (the Glue Data Catalog).
VIEW_CATALOG = "awsdatacatalog"
VIEW_TABLE_TYPE = "VIRTUAL_VIEW"
_PREFIX = "/* Presto View: "
_SUFFIX = " */"


#: Athena (Hive DDL) type -> the Presto/Trino type a view's columns are declared with.
PRESTO_TYPES = {
    "string": "varchar",
    "int": "integer",
    "bigint": "bigint",
    "double": "double",
    "float": "real",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp(6)",
    "binary": "varbinary",
}


class ViewDefinitionError(ValueError):
    """A Glue view whose text is not an Athena (Presto) view the lake can read."""


class ViewConflictError(PermanentError):
    """A table already holds the name of the view a keyed dataset is queried through."""

    code = "ViewConflict"


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
                "Columns": [{"Name": name, "Type": _hive_type(kind)} for name, kind in self.columns],
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
    from handlers.sql import quote, quote_table

    listed = ", ".join(quote(c) for c in columns)
    partition = ", ".join(quote(c) for c in key)
    return (
        f"SELECT {listed} FROM (SELECT *, row_number() OVER (PARTITION BY {partition} "
        f'ORDER BY "ingested_at" DESC, "source_key" DESC) AS "lake_rank" FROM {quote_table(database, table)}) '
        f'WHERE "lake_rank" = 1 OR {quote(key[0])} IS NULL'
    )


def check_view_name_free(glue: Any, database: str, name: str) -> dict[str, Any] | None:
    """The view ``database.name`` if there is one; ViewConflictError when a *table* has the name."""
    try:
        current: dict[str, Any] = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        return None
    if not is_view(current):
        raise ViewConflictError(
            f"{database}.{name} is a table, so the view showing each key once cannot take its name: its rows were "
            f"stored before the dataset had a key; delete it (aws glue delete-table --database-name {database} "
            f"--name {name}) and reprocess the dataset's raw files with `lake reprocess`"
        )
    return current


def put_keyed_view(glue: Any, database: str, name: str, sql: str, columns: Sequence[tuple[str, str]]) -> None:
    """``put_view`` for a dataset's keyed view (``columns`` with Athena types); unchanged views are not
    rewritten, and a *table* of that name is refused with what to do."""
    current = check_view_name_free(glue, database, name)
    presto = [(column, PRESTO_TYPES.get(kind, kind)) for column, kind in columns]
    if (
        current is not None
        and current.get("ViewOriginalText") == PrestoView(database, name, sql, tuple(presto)).original_text()
    ):
        return
    put_view(glue, database, name, sql, presto)


def put_view(glue: Any, database: str, name: str, sql: str, columns: Sequence[tuple[str, str]]) -> PrestoView:
    """Create view ``database.name`` (Athena SQL ``sql``; ``columns`` as (name, Presto type) pairs)
    in Glue, or replace its definition when it exists; returns what was written."""
    view = PrestoView(database, name, sql, tuple(columns))
    try:
        glue.update_table(DatabaseName=view.database, TableInput=view.table_input())
    except glue.exceptions.EntityNotFoundException:
        try:
            glue.create_table(DatabaseName=view.database, TableInput=view.table_input())
        except glue.exceptions.AlreadyExistsException:  # another worker created it in between
            glue.update_table(DatabaseName=view.database, TableInput=view.table_input())
    return view


def _hive_type(presto_type: str) -> str:
    kind = presto_type.strip().lower()
    if kind.startswith("varchar") or kind == "char":
        return "string"
    if kind.startswith("timestamp"):
        return "timestamp"
    return {"integer": "int", "real": "float", "varbinary": "binary"}.get(kind, kind)
