"""Writing Athena (Presto) views into the Glue catalog: the table a user queries under a dataset's name.

The format Athena reads (``/* Presto View: ... */``) is the engine's (:mod:`query.views`), which
reads views back when it expands them; this module creates and replaces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.errors import PermanentError
from query.types import PRESTO_TYPES
from query.views import PrestoView, is_view, latest_by_key_sql

__all__ = [
    "ViewConflictError",
    "check_view_name_free",
    "is_view",
    "latest_by_key_sql",
    "put_keyed_view",
    "put_view",
]


class ViewConflictError(PermanentError):
    """A table already holds the name of the view a keyed dataset is queried through."""

    code = "ViewConflict"


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
