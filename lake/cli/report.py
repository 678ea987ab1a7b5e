"""``lake report DATASET [--as-of DATE] [--out FILE] [--open]``: a dataset's report, or the ledger's.

Each refresh of a dataset draws its report from the refreshed tables and stores it in the lake
bucket as ``reports/<dataset>/<as_of>.html`` and ``reports/<dataset>/latest.html`` (one
self-contained page; docs/reports.md). This command fetches one to a file. A dataset without
models over its history (no refresh draws its report) and ``ops`` (the processing ledger,
``lake_ops.processing_log``) are drawn here, from their tables as they stand, through
``lake query``'s path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import topology
from lake.target import CliError, Target

#: The report drawn from the processing ledger rather than fetched.
OPS = "ops"


@dataclass(frozen=True)
class Fetched:
    """One report's page and the date it is of (``latest``'s resolved to its ``as_of``)."""

    dataset: str
    as_of: str
    html: str
    #: Where it came from: the stored page's ``s3://`` URI, or the tables it was drawn from now.
    source: str


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "report",
        parents=[common],
        help="fetch a dataset's report (drawn by each refresh), or draw `ops` from the processing ledger",
        description="Write a dataset's report (one self-contained HTML page, drawn by each refresh of the dataset "
        "into s3://<bucket>/reports/<dataset>/) to a file, or draw `ops`: files, rows, failures, time per MB and "
        "cost per GB from lake_ops.processing_log. See docs/reports.md.",
    )
    parser.add_argument(
        "dataset", metavar="DATASET", help=f"a dataset with models over its history (orders, experiments, ...) or {OPS}"
    )
    parser.add_argument(
        "--as-of",
        type=_date,
        default=None,
        metavar="DATE",
        help="the refresh's as_of (YYYY-MM-DD) to fetch (default: the latest); for ops, the last day drawn",
    )
    parser.add_argument("--out", metavar="FILE", help="where to write it (default: DATASET-AS_OF.html here)")
    parser.add_argument("--open", action="store_true", help="open it in the web browser afterwards")
    parser.set_defaults(func=_report)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; give it as YYYY-MM-DD, e.g. 2026-05-31") from None


def _report(args: argparse.Namespace) -> int:
    target = args.target()
    fetched = draw_ops(target, args.as_of) if args.dataset == OPS else fetch(target, args.dataset, args.as_of)
    path = save(fetched, Path(args.out) if args.out else None)
    print(
        f"wrote {path} ({path.stat().st_size:,} bytes): report of {fetched.dataset} as of {fetched.as_of} "
        f"({fetched.source})"
    )
    if args.open and not webbrowser.open(path.resolve().as_uri()):
        print(f"no web browser found here; open {path.resolve().as_uri()} yourself", file=sys.stderr)
    return 0


def report_key(dataset: str, name: str) -> str:
    """``reports/<dataset>/<name>.html``, ``name`` an as_of or ``latest``."""
    return f"{topology.REPORTS_PREFIX}{dataset}/{name}.html"


def fetch(target: Target, dataset: str, as_of: dt.date | None = None) -> Fetched:
    """The stored report of ``dataset`` as of ``as_of`` (the latest when None)."""
    from analytics.registry import dataset_table_name, refreshers

    name = dataset_table_name(dataset)
    s3 = target.client("s3")
    key = report_key(name, as_of.isoformat() if as_of else "latest")
    try:
        got = s3.get_object(Bucket=target.bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        stored = stored_reports(target, name)
        if stored:
            raise CliError(
                f"no report of {name} as of {as_of}; there are reports as of {', '.join(stored)} "
                "(--as-of one of them, or leave it out for the latest)"
            ) from None
        if not refreshers(name):
            return draw_now(target, name, as_of)
        raise CliError(
            f"no report of {name} yet in s3://{target.bucket}/{topology.REPORTS_PREFIX}{name}/ on {target.where}: "
            f"each refresh writes one; drop a file under raw/{name}/ and wait for `Dataset Models Updated` "
            "(`lake events --follow`)"
        ) from None
    html = got["Body"].read().decode("utf-8")
    dated = got.get("Metadata", {}).get("as-of") or (as_of.isoformat() if as_of else "latest")
    return Fetched(name, dated, html, f"s3://{target.bucket}/{key}")


def stored_reports(target: Target, dataset: str) -> list[str]:
    """The as_of dates ``dataset`` has a report of, oldest first."""
    prefix = f"{topology.REPORTS_PREFIX}{dataset}/"
    pages = target.client("s3").get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix)
    names = [o["Key"].removeprefix(prefix).removesuffix(".html") for page in pages for o in page.get("Contents", [])]
    return sorted(n for n in names if n != "latest")


def draw_now(target: Target, dataset: str, as_of: dt.date | None = None) -> Fetched:
    """The report of a dataset without models over its history (no refresh draws one), drawn now
    from its table, its profiles and its quarantine through ``lake query``'s path."""
    from lake.engine import run_query
    from reports import build_report, curated_inputs

    curated = _table_names(target, target.curated_database) & curated_inputs(dataset)
    quarantined = dataset in _table_names(target, target.quarantine_database)
    if dataset not in curated and not quarantined:
        raise CliError(
            f"no table of {dataset} on {target.where}: drop a file under raw/{dataset}/ first "
            "(`lake tables` lists the datasets there are)"
        )
    tables = curated | ({f"{target.quarantine_database}.{dataset}"} if quarantined else set())
    drawn = build_report(dataset, lambda sql: run_query(target, sql), frozenset(tables), as_of)
    day = as_of or dt.datetime.now(dt.UTC).date()
    return Fetched(dataset, day.isoformat(), drawn.html, f"drawn now from {', '.join(sorted(tables))}")


def _table_names(target: Target, database: str) -> set[str]:
    glue = target.client("glue")
    try:
        pages = glue.get_paginator("get_tables").paginate(DatabaseName=database)
        return {t["Name"] for page in pages for t in page["TableList"]}
    except glue.exceptions.EntityNotFoundException:
        return set()


def draw_ops(target: Target, as_of: dt.date | None = None) -> Fetched:
    """The processing ledger's report, drawn now from ``lake_ops.processing_log``."""
    from lake.engine import run_query
    from reports import build_report

    database = target.ops_database
    glue = target.client("glue")
    try:
        tables = frozenset(
            t["Name"]
            for page in glue.get_paginator("get_tables").paginate(DatabaseName=database)
            for t in page["TableList"]
        )
    except glue.exceptions.EntityNotFoundException:
        raise CliError(
            f"{target.where} has no {database} database, where the processing ledger lives: it came with the "
            "ledger; redeploy the stack (`npx cdk deploy`, docs/deploy.md) and process a file"
        ) from None
    drawn = build_report(
        OPS,
        lambda sql: run_query(target, qualify(sql, database)),
        tables,
        as_of,
        # Priced as deployed: the architecture the stack reports, in its region.
        architecture=target.architecture,
        region=target.region,
    )
    day = as_of or dt.datetime.now(dt.UTC).date()
    return Fetched(OPS, day.isoformat(), drawn.html, f"drawn now from {database}.{topology.PROCESSING_LOG_TABLE}")


def qualify(sql: str, database: str) -> str:
    """``sql`` with every unqualified table (not a CTE) read from ``database``."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="athena")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name and not table.args.get("db") and table.name.lower() not in ctes:
            table.set("db", exp.to_identifier(database))
    return str(tree.sql(dialect="athena"))


def save(fetched: Fetched, out: Path | None) -> Path:
    """Write the page to ``out`` (default ``<dataset>-<as_of>.html`` here); its path."""
    path = out or Path(f"{fetched.dataset}-{fetched.as_of}.html")
    if path.is_dir():
        path = path / f"{fetched.dataset}-{fetched.as_of}.html"
    try:
        path.write_text(fetched.html, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}; choose another --out") from None
    return path
