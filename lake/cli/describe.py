"""``lake describe TABLE``: a table's columns, types and comments, partitioning, rows, the raw
objects its rows came from, and its snapshots. A view is described with the tables it reads."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from query.types import athena_type_of_presto

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lake.engine import LakeCatalog, TableRef
    from lake.target import Target

#: Sources and snapshots listed, newest first.
LATEST = 5


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    describe = sub.add_parser(
        "describe",
        parents=[common],
        help="show a table's columns, types, partitioning, rows, sources and snapshots",
        description="Describe a table or view of the lake: columns with their types and comments, the partition "
        "spec, the row count, the raw objects its rows came from, and its snapshots (for time travel).",
    )
    describe.add_argument("table", metavar="TABLE", help="table or database.table, e.g. lake_quarantine.orders")
    describe.add_argument(
        "-o", "--output", "--format", dest="format", choices=("table", "json"), default="table", metavar="FORMAT",
        help="table (text for people, the default) or json (one document)",
    )  # fmt: skip
    describe.set_defaults(func=_describe)


@dataclass
class Column:
    name: str
    type: str
    comment: str | None = None


@dataclass
class Source:
    key: str
    rows: int
    ingested_at: str | None


@dataclass
class Snapshot:
    snapshot_id: int
    committed_at: str
    operation: str
    rows: int | None
    source: str | None


@dataclass
class Description:
    """What ``lake describe`` shows about one table or view."""

    name: str
    kind: str
    comment: str | None = None
    columns: list[Column] = field(default_factory=list)
    partitioning: str | None = None
    rows: int | None = None
    location: str | None = None
    sources: int | None = None
    latest_sources: list[Source] = field(default_factory=list)
    snapshots: int | None = None
    latest_snapshots: list[Snapshot] = field(default_factory=list)
    #: For a view: its SQL and the tables it reads, each described.
    sql: str | None = None
    reads: list[Description] = field(default_factory=list)


def describe(target: Target, name: str) -> Description:
    """The description of ``name`` (``table`` or ``database.table``) on ``target``."""
    from lake.api import parse_name
    from lake.engine import LakeCatalog

    catalog = LakeCatalog.of(target)
    ref = parse_name(name, target.curated_database)
    return _describe_ref(catalog, ref)


def _describe_ref(catalog: LakeCatalog, ref: TableRef) -> Description:
    from query.parse import parse
    from query.sql import table_refs

    if catalog.is_view(ref):
        view = catalog.view(ref)
        reads = table_refs(parse(view.sql), view.database)
        return Description(
            name=str(ref),
            kind="view",
            comment="each key once, from the newest source that has it" if ref.table + "_sources" in
            {r.table for r in reads} else None,
            columns=[Column(n, athena_type_of_presto(t)) for n, t in view.columns],
            sql=view.sql,
            reads=[_describe_ref(catalog, r) for r in reads if r != ref],
        )  # fmt: skip
    return _describe_table(ref, catalog.table(ref))


def _describe_table(ref: TableRef, table: Table) -> Description:
    from lake.engine import athena_type, commit_time, partition_spec

    current = table.current_snapshot()
    summary = current.summary if current is not None else None
    description = Description(
        name=str(ref),
        kind="iceberg table",
        comment=table.properties.get("comment"),
        columns=[Column(f.name, athena_type(f.field_type), f.doc) for f in table.schema().fields],
        partitioning=partition_spec(table),
        rows=int(summary.get("total-records", 0) or 0) if summary is not None else 0,
        location=table.location(),
        snapshots=len(table.snapshots()),
    )
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)[:LATEST]:
        s = snapshot.summary
        rows = s.get("total-records") if s is not None else None
        description.latest_snapshots.append(
            Snapshot(
                snapshot.snapshot_id,
                f"{commit_time(snapshot):%Y-%m-%d %H:%M:%S} UTC",
                s.operation.value if s is not None else "?",
                int(rows) if rows is not None else None,
                s.get("lake.source-key") if s is not None else None,
            )
        )
    names = {f.name for f in table.schema().fields}
    if current is not None and "source_key" in names:
        _add_sources(description, table, current, "ingested_at" in names)
    return description


def _add_sources(description: Description, table: Table, current: Any, timed: bool) -> None:
    """How many raw objects the rows came from, and the latest few (reads two columns only)."""
    from lake.engine import scan

    columns = ("source_key", "ingested_at") if timed else ("source_key",)
    rows = scan(table, current, columns).read_all()
    aggregates = [("source_key", "count")] + ([("ingested_at", "max")] if timed else [])
    grouped = rows.group_by("source_key").aggregate(aggregates)
    description.sources = grouped.num_rows
    if timed:
        grouped = grouped.sort_by([("ingested_at_max", "descending"), ("source_key", "ascending")])
    else:
        grouped = grouped.sort_by("source_key")
    for row in grouped.slice(0, LATEST).to_pylist():
        moment = row.get("ingested_at_max")
        description.latest_sources.append(
            Source(row["source_key"], int(row["source_key_count"]), f"{moment:%Y-%m-%d %H:%M:%S}" if moment else None)
        )


def _describe(args: argparse.Namespace) -> int:
    description = describe(args.target(), args.table)
    if args.format == "json":
        print(json.dumps(asdict(description), indent=2))
    else:
        sys.stdout.write(render(description))
    return 0


def render(d: Description, indent: str = "") -> str:
    """The description as text for a terminal."""
    import pyarrow as pa

    from lake.cli.querying import render as render_table

    lines = [f"{indent}{d.name} ({d.kind})"]
    if d.comment:
        lines.append(f"{indent}  {d.comment}")
    columns = pa.Table.from_pylist(
        [{"column": c.name, "type": c.type, "comment": c.comment or ""} for c in d.columns],
        schema=pa.schema([("column", pa.string()), ("type", pa.string()), ("comment", pa.string())]),
    )
    if not any(c.comment for c in d.columns):
        columns = columns.drop_columns(["comment"])
    lines.append(f"{indent}columns ({len(d.columns)}):")
    lines += [f"{indent}  {line}" for line in render_table(columns).splitlines()]
    if d.kind == "view":
        lines.append(f"{indent}sql: {' '.join((d.sql or '').split())}")
        out = "\n".join(lines) + "\n"
        for inner in d.reads:
            out += f"{indent}reads:\n" + render(inner, indent + "  ")
        return out
    lines.append(f"{indent}partitioning: {d.partitioning or 'none'}")
    lines.append(f"{indent}rows: {d.rows:,}" if d.rows is not None else f"{indent}rows: ?")
    lines.append(f"{indent}location: {d.location}")
    if d.sources is not None:
        lines.append(f"{indent}sources: {d.sources:,} raw object{'' if d.sources == 1 else 's'}; latest:")
        lines += [
            f"{indent}  {s.key}  {s.rows:,} rows" + (f"  ingested {s.ingested_at}" if s.ingested_at else "")
            for s in d.latest_sources
        ]
    lines.append(f"{indent}snapshots: {d.snapshots} (newest first; read one with FOR VERSION AS OF <id>)")
    lines += [
        f"{indent}  {s.snapshot_id}  {s.committed_at}  {s.operation:<9} "
        + (f"{s.rows:,} rows" if s.rows is not None else "? rows")
        + (f"  {s.source}" if s.source else "")
        for s in d.latest_snapshots
    ]
    return "\n".join(lines) + "\n"
