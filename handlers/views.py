"""Athena views in the Glue catalog: the view a keyed dataset is queried through.

Athena stores a view as a Glue table of type ``VIRTUAL_VIEW`` whose ``ViewOriginalText`` is
``/* Presto View: <base64 of a JSON document> */`` (the SQL, its catalog and schema, and the
columns with Presto types). Written here through the Glue API so the handler needs no Athena call;
``lake query`` reads the same text back locally.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

#: Athena (Hive DDL) type -> the Presto/Trino type a view's columns are declared with.
_PRESTO_TYPES = {
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
_PREFIX = "/* Presto View: "
_SUFFIX = " */"


def presto_view_text(sql: str, database: str, columns: Sequence[tuple[str, str]]) -> str:
    """The ``ViewOriginalText`` Athena writes for a view of ``sql`` with ``columns`` (name, Athena type)."""
    document = {
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": name, "type": _PRESTO_TYPES.get(kind, kind)} for name, kind in columns],
        "owner": "lake",
        "runAsInvoker": False,
        "properties": {},
    }
    return _PREFIX + base64.b64encode(json.dumps(document).encode()).decode() + _SUFFIX


def view_sql(text: str) -> str | None:
    """The SQL of a ``ViewOriginalText`` written like Athena's; None for anything else."""
    if not (text.startswith(_PREFIX) and text.endswith(_SUFFIX)):
        return None
    document = json.loads(base64.b64decode(text[len(_PREFIX) : -len(_SUFFIX)]))
    sql: str = document["originalSql"]
    return sql


def latest_by_key_sql(database: str, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """Athena SQL showing each key once, from the newest source that has it.

    Newest is the source object that landed last (``ingested_at``, then ``source_key`` to break a
    tie). A row whose first key column is null has no key and is always shown.
    """
    listed = ", ".join(f'"{c}"' for c in columns)
    partition = ", ".join(f'"{c}"' for c in key)
    return (
        f"SELECT {listed} FROM (SELECT *, row_number() OVER (PARTITION BY {partition} "
        f'ORDER BY "ingested_at" DESC, "source_key" DESC) AS "lake_rank" FROM "{database}"."{table}") '
        f'WHERE "lake_rank" = 1 OR "{key[0]}" IS NULL'
    )


def put_view(glue: Any, database: str, name: str, sql: str, columns: Sequence[tuple[str, str]], comment: str) -> None:
    """Create or replace the view ``database.name`` (a Glue ``VIRTUAL_VIEW``, as Athena's DDL makes)."""
    table_input = {
        "Name": name,
        "Description": comment,
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": presto_view_text(sql, database, columns),
        "ViewExpandedText": "/* Presto View */",
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in columns],
            "SerdeInfo": {},
            "Location": "",
        },
    }
    try:
        current = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        current = None
    if current is None:
        try:
            glue.create_table(DatabaseName=database, TableInput=table_input)
            return
        except glue.exceptions.AlreadyExistsException:
            current = glue.get_table(DatabaseName=database, Name=name)["Table"]
    if current.get("ViewOriginalText") != table_input["ViewOriginalText"]:
        glue.update_table(DatabaseName=database, TableInput=table_input)
