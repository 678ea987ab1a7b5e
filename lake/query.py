"""``lake query`` and ``lake tables``: Athena SQL over the catalogued tables, and what is in them.

Output formats, the same for both commands and for the stand-in and Athena:

* ``table`` (default): aligned text for people; NULL for missing values; the row count on stderr.
* ``csv``: a header line, then one line per row; missing values are empty fields.
* ``json``: JSON lines, one object per row; dates and timestamps as ISO 8601 text, decimals as
  text (exact), NaN/infinity and missing values as null.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import json
import math
import sys
from collections.abc import Iterable
from typing import IO, Any

import pyarrow as pa

FORMATS = ("table", "csv", "json")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    query = sub.add_parser(
        "query",
        parents=[common],
        help="run Athena SQL over the lake's tables (DuckDB on the stand-in, Athena on AWS)",
        description="Run one Athena SQL query. Tables are database.table (lake_curated, lake_quarantine); "
        "an unqualified table is in lake_curated.",
    )
    query.add_argument("sql", metavar="SQL", help='e.g. "SELECT channel, sum(spend) FROM ad_performance GROUP BY 1"')
    query.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    query.set_defaults(func=_query)
    tables = sub.add_parser(
        "tables", parents=[common], help="list databases, tables, partitions, row counts and last update"
    )
    tables.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    tables.set_defaults(func=_tables)


def _query(args: argparse.Namespace) -> int:
    from lake.athena import run_query

    result = run_query(args.target(), args.sql)
    write(result, args.format, sys.stdout)
    if args.format == "table":
        print(f"({result.num_rows:,} row{'' if result.num_rows == 1 else 's'})", file=sys.stderr)
    return 0


def _tables(args: argparse.Namespace) -> int:
    from lake.tables import list_tables

    target = args.target()
    listing = list_tables(target)
    if listing.num_rows == 0 and args.format == "table":
        print(
            f"no tables yet in {target.curated_database} or {target.quarantine_database}; "
            "drop a file with `lake put FILE --dataset NAME`"
        )
        return 0
    write(listing, args.format, sys.stdout, null="-")
    return 0


# --- formatting ----------------------------------------------------------------------------------
def write(table: pa.Table, fmt: str, out: IO[str], null: str = "NULL") -> None:
    """``table`` in format ``fmt`` (``table``, ``csv`` or ``json``) on ``out``; ``null`` stands for a
    missing value in the text table."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows([_csv_value(v) for v in row] for row in _rows(table))
    elif fmt == "json":
        for row in _rows(table):
            out.write(json.dumps(dict(zip(table.column_names, map(_json_value, row), strict=True))) + "\n")
    else:
        out.write(render(table, null) + "\n")


def render(table: pa.Table, null: str = "NULL") -> str:
    """An aligned text table: a header, a rule, numbers right-aligned."""
    cells = [[null if v is None else _text_value(v) for v in row] for row in _rows(table)]
    numeric = [_is_number(t) for t in table.schema.types]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(table.column_names)]

    def line(values: Iterable[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(table.column_names), line("-" * w for w in widths), *(line(row) for row in cells)])


def _rows(table: pa.Table) -> Iterable[tuple[Any, ...]]:
    columns = [column.to_pylist() for column in table.columns]
    return zip(*columns, strict=True)


def _is_number(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype))


def _text_value(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e15 or abs(value) < 1e-4):
            return f"{value:.6g}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return _csv_value(value)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(_json_value(value))
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value
