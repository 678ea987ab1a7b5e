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
