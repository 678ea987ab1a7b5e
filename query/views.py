"""Athena (Presto) views as the Glue catalog stores them.

Athena stores a view as a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 of a JSON document> */``; the JSON carries the SQL and the columns
with their Presto types. Athena reads only views written exactly this way, so the writer (the
handlers' :mod:`handlers.adapters.views`) and the engine, which expands views, share this format.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

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
