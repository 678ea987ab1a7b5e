"""``lake query`` and ``lake tables``: Athena SQL over the catalogued tables, and what is in them.

Output formats (``-o/--output``, ``--format`` is the same option), the same for both commands and
for the stand-in and Athena:

* ``table`` (default): aligned text for people; NULL for missing values; the row count on stderr.
  On a terminal at most :data:`TERMINAL_LIMIT` rows are shown, with a line saying how many were
  left out (``--limit N``, ``--all``).
* ``csv``: a header line, then one line per row; missing values are empty fields.
* ``json``: JSON lines, one object per row; numbers as JSON numbers (decimals with every digit),
  booleans as true/false, dates and timestamps as ISO 8601 text, NaN/infinity and missing values
  as null.
* ``parquet``: the result with its column types (dates stay dates), for pandas, DuckDB, Spark.

``--out FILE`` writes the result to a file instead of the terminal.
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

from lake.target import CliError

FORMATS = ("table", "csv", "json", "parquet")
#: Rows a query shows on a terminal unless ``--limit`` or ``--all`` says otherwise.
TERMINAL_LIMIT = 100


def output_options(parser: argparse.ArgumentParser) -> None:
    """``-o/--output`` (alias ``--format``) and ``--out``, as every command that prints rows has them."""
    parser.add_argument(
        "-o",
        "--output",
        "--format",
        dest="format",
        choices=FORMATS,
        default="table",
        metavar="FORMAT",
        help="table (aligned text, the default), csv, json (JSON lines, typed) or parquet",
    )
    parser.add_argument("--out", metavar="FILE", help="write the result to FILE instead of the terminal")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    query = sub.add_parser(
        "query",
        parents=[common],
        help="run Athena SQL over the lake's tables (DuckDB on the stand-in, Athena on AWS)",
        description="Run one Athena SQL query. Tables are database.table (lake_curated, lake_quarantine); "
        f"an unqualified table is in lake_curated. On a terminal at most {TERMINAL_LIMIT} rows are shown "
        "(--limit, --all). See docs/query.md.",
    )
    query.add_argument("sql", metavar="SQL", help='e.g. "SELECT channel, sum(spend) FROM ad_performance GROUP BY 1"')
    output_options(query)
    limit = query.add_mutually_exclusive_group()
    limit.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"at most N rows (default: {TERMINAL_LIMIT} on a terminal, all when piped or written with --out)",
    )
    limit.add_argument("--all", action="store_true", help="every row, also on a terminal")
    query.set_defaults(func=_query)
    tables = sub.add_parser(
        "tables", parents=[common], help="list databases, tables, partitions, row counts and last update"
    )
    output_options(tables)
    tables.set_defaults(func=_tables)


def row_limit(args: argparse.Namespace, terminal: bool) -> int | None:
    """The rows to show: ``--limit``, all with ``--all``/``--out``/a pipe, else the terminal's share."""
    if args.limit is not None:
        if args.limit < 0:
            raise CliError(f"--limit must be 0 or more, not {args.limit}")
        return int(args.limit)
    if args.all or args.out or not terminal:
        return None
    return TERMINAL_LIMIT


def _query(args: argparse.Namespace) -> int:
    from lake.engine import run_query

    if args.format == "parquet" and not args.out and sys.stdout.isatty():
        raise CliError("Parquet is binary: write it to a file with --out FILE (or pipe it), e.g. --out result.parquet")
    result = run_query(args.target(), args.sql)
    limit = row_limit(args, sys.stdout.isatty())
    shown = result if limit is None or result.num_rows <= limit else result.slice(0, limit)
    emit(shown, args.format, args.out)
    left_out = result.num_rows - shown.num_rows
    if left_out:
        print(
            f"({shown.num_rows:,} of {result.num_rows:,} rows shown, {left_out:,} left out; "
            "--limit N or --all for more, --out FILE to save them all)",
            file=sys.stderr,
        )
    elif args.format == "table" and args.out is None:
        print(f"({result.num_rows:,} row{'' if result.num_rows == 1 else 's'})", file=sys.stderr)
    if args.out:
        print(f"wrote {shown.num_rows:,} row{'' if shown.num_rows == 1 else 's'} to {args.out}", file=sys.stderr)
    return 0


def emit(table: pa.Table, fmt: str, out: str | None, null: str = "NULL") -> None:
    """``table`` in ``fmt`` on stdout, or in the file ``out``."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if out is None:
            sys.stdout.flush()
            pq.write_table(table, sys.stdout.buffer)
        else:
            _writable(out)
            pq.write_table(table, out)
        return
    if out is None:
        write(table, fmt, sys.stdout, null)
        return
    _writable(out)
    with open(out, "w", encoding="utf-8", newline="") as stream:
        write(table, fmt, stream, null)


def _writable(path: str) -> None:
    from pathlib import Path

    folder = Path(path).parent
    if not folder.is_dir():
        raise CliError(f"--out {path}: folder {folder} does not exist; create it or choose another path")


def _tables(args: argparse.Namespace) -> int:
    from lake.cli.tables import list_tables

    target = args.target()
    listing = list_tables(target)
    if listing.num_rows == 0 and args.format == "table":
        print(
            f"no tables yet in {target.curated_database} or {target.quarantine_database}; "
            "drop a file with `lake put FILE --dataset NAME`"
        )
        return 0
    emit(listing, args.format, args.out, null="-")
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
        keys = [json.dumps(name) for name in table.column_names]
        for row in _rows(table):
            fields = (f"{key}: {_json_text(value)}" for key, value in zip(keys, row, strict=True))
            out.write("{" + ", ".join(fields) + "}\n")
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
    if isinstance(value, str):
        # One row, one line: a line break inside a value would break the alignment.
        return value.replace("\r", "\\r").replace("\n", "\\n") if "\n" in value or "\r" in value else value
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


def _json_text(value: Any) -> str:
    """One JSON value; a decimal is written as a number with every digit it has (``12.50``)."""
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return str(value) if "E" not in str(value) else format(value, "f")
    return json.dumps(_json_value(value))


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):  # inside a list or map: a double's digits
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value
