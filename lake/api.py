"""The lake from Python: :func:`read` a table and run a :func:`query`, as pandas or Arrow.

Pointed at the lake the same way as the ``lake`` command: ``endpoint_url=`` (or
``LAKE_ENDPOINT_URL``) for the local stand-in, else the deployed stack (``stack=``, ``region=``,
``profile=`` or the usual AWS variables). Errors are :class:`LakeError`, with the message the
command would print.

Data frames keep the catalog's types: every column is a pandas ``ArrowDtype`` (``int64[pyarrow]``,
``date32[day][pyarrow]``, ``timestamp[us][pyarrow]``...), so a date stays a date and a whole
number with gaps stays a whole number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from lake.target import CliError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from lake.target import Target

T = TypeVar("T")


class LakeError(CliError):
    """Something the caller can fix: a missing table, a query mistake, a lake that does not answer."""


def _target(endpoint_url: str | None, stack: str | None, region: str | None, profile: str | None) -> Target:
    from lake.target import resolve

    return resolve(endpoint_url, region, stack, profile)


def _guarded(call: Callable[[], T], target: Callable[[], Target | None]) -> T:
    """``call()``, with any failure turned into a LakeError carrying the CLI's one-line message."""
    from lake.target import explain

    try:
        return call()
    except LakeError:
        raise
    except Exception as exc:  # every failure becomes the one-line message the CLI prints
        raise LakeError(str(explain(exc, target()))) from exc


def _frame(table: pa.Table, arrow: bool) -> pa.Table | pd.DataFrame:
    if arrow:
        return table
    import pandas as pd

    return table.to_pandas(types_mapper=pd.ArrowDtype)


def read(
    table: str,
    *,
    arrow: bool = False,
    snapshot: int | str | None = None,
    endpoint_url: str | None = None,
    stack: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> Any:
    """Every row of ``table`` (``orders``, ``lake_curated.orders``, ``lake_quarantine.orders``) as a
    pandas DataFrame, or an Arrow table with ``arrow=True``. ``snapshot`` reads an older snapshot of
    an Iceberg table (an id from ``lake describe`` or the Dataset Processed event, or a tag)."""
    targets: list[Target] = []

    def run() -> pa.Table:
        from lake.engine import LakeCatalog, TableRef, scan, snapshot_at

        target = _target(endpoint_url, stack, region, profile)
        targets.append(target)
        ref = parse_name(table, target.curated_database)
        catalog = LakeCatalog.of(target)
        if catalog.is_view(ref):
            if snapshot is not None:
                raise LakeError(
                    f"{ref} is a view; an older snapshot is read from its table: "
                    f"lake.read('{ref.database}.{ref.table}_sources', snapshot={snapshot!r})"
                )
            from lake.engine import run_query
            from query.sql import quote_table

            return run_query(target, f"SELECT * FROM {quote_table(ref.database, ref.table)}")
        iceberg = catalog.table(ref)
        at = snapshot_at(iceberg, TableRef(ref.database, ref.table), version=snapshot)
        return scan(iceberg, at).read_all()

    result = _guarded(run, lambda: targets[0] if targets else None)
    return _frame(result, arrow)


def query(
    sql: str,
    *,
    arrow: bool = False,
    endpoint_url: str | None = None,
    stack: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> Any:
    """The result of Athena SQL ``sql`` as a pandas DataFrame (Arrow with ``arrow=True``): DuckDB over
    the stand-in's tables, or Athena in the stack's workgroup. Unqualified tables are curated ones."""
    targets: list[Target] = []

    def run() -> pa.Table:
        from lake.engine import run_query

        target = _target(endpoint_url, stack, region, profile)
        targets.append(target)
        return run_query(target, sql)

    result = _guarded(run, lambda: targets[0] if targets else None)
    return _frame(result, arrow)


def parse_name(name: str, default_database: str) -> Any:
    """``table`` or ``database.table`` as a TableRef; a LakeError for anything else."""
    from lake.engine import TableRef

    parts = name.strip().strip('"').split(".")
    if not all(parts) or len(parts) > 2:
        raise LakeError(f"{name!r} is not a table name; give table or database.table, e.g. lake_curated.orders")
    if len(parts) == 1:
        return TableRef(default_database, parts[0].lower())
    return TableRef(parts[0].lower(), parts[1].lower())
