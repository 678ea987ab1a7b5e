"""The manual's column tables, rendered from the table specs that own them.

Each built-in output table's columns are described once, in its ``TableSpec`` (and the lineage
columns in ``handlers.adapters.staging.LINEAGE_SCHEMA``); the same text becomes the Glue column comments.
In ``docs/*.md`` a table between ``<!-- columns:NAME -->`` and ``<!-- /columns -->`` is generated
(``<!-- columns:NAME minus:OTHER -->`` leaves out the columns table OTHER already lists)::

    uv run python -m lake.cli.docs           # rewrite the tables
    uv run python -m lake.cli.docs --check   # list the pages whose tables differ from the specs
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pyarrow as pa

from analytics.base import TableSpec, column_doc
from handlers.adapters.iceberg import athena_type
from handlers.adapters.staging import LINEAGE_DOCS, LINEAGE_SCHEMA

DOCS = Path(__file__).resolve().parents[2] / "docs"
REWRITE_COMMAND = "uv run python -m lake.cli.docs"
#: The lineage columns every row carries, as a table of their own (docs/tables.md).
LINEAGE = "lineage"

_MARKED = re.compile(
    r"(?P<open><!-- columns:(?P<name>[\w<>]+)(?: minus:(?P<minus>[\w<>]+))? -->\n)"
    r"(?P<body>.*?)(?P<close><!-- /columns -->)",
    re.DOTALL,
)


class ColumnDocsError(Exception):
    """A column table in the docs cannot be rendered from the specs."""


def output_specs() -> dict[str, TableSpec]:
    """Every built-in output table with a fixed schema, by name (``<dataset>_scores`` for any dataset)."""
    from analytics.ad_performance import AD_PERFORMANCE, CAMPAIGN_KPIS, KPI_ANOMALIES
    from analytics.clv import CUSTOMER_VALUE
    from analytics.experiment_history import EXPERIMENT_CROSSED_USERS, EXPERIMENT_RESULTS_HISTORY
    from analytics.experiment_statistics import EXPERIMENT_RESULTS
    from analytics.experiments import EXPERIMENT_EXPOSURES
    from analytics.kpi_history import CAMPAIGN_KPIS_HISTORY, KPI_ANOMALIES_HISTORY
    from analytics.orders import CUSTOMER_RFM, CUSTOMER_SEGMENTS, ORDER_ITEMS, ORDERS
    from analytics.profile import PROFILE_TABLE_SPEC
    from analytics.scoring import scores_table_spec
    from handlers.adapters.ledger import PROCESSING_LOG

    specs = [
        AD_PERFORMANCE, CAMPAIGN_KPIS, KPI_ANOMALIES, ORDERS, ORDER_ITEMS, CUSTOMER_RFM, CUSTOMER_SEGMENTS,
        CUSTOMER_VALUE, EXPERIMENT_EXPOSURES, EXPERIMENT_RESULTS, EXPERIMENT_RESULTS_HISTORY, EXPERIMENT_CROSSED_USERS,
        CAMPAIGN_KPIS_HISTORY, KPI_ANOMALIES_HISTORY, PROFILE_TABLE_SPEC, scores_table_spec("<dataset>"),
        PROCESSING_LOG,
    ]  # fmt: skip
    return {spec.name: spec for spec in specs}


def _schema(name: str) -> tuple[pa.Schema, str | None]:
    """The columns table ``name`` lists and its partition column."""
    if name == LINEAGE:
        return LINEAGE_SCHEMA, None
    spec = output_specs().get(name)
    if spec is None or spec.schema is None:
        known = ", ".join([LINEAGE, *sorted(output_specs())])
        raise ColumnDocsError(f"<!-- columns:{name} --> names no output table; use one of {known}")
    return spec.schema, spec.partition_column


def column_meaning(name: str, field: pa.Field) -> str:
    """What a column of table ``name`` means: its spec's words, else the lineage column's."""
    meaning = column_doc(field) or LINEAGE_DOCS.get(field.name, "")
    if not meaning:
        raise ColumnDocsError(
            f"column {field.name} of table {name} has no description; give it one with col(name, type, doc) "
            "in the table's TableSpec"
        )
    return meaning


def render(name: str, minus: str | None = None) -> str:
    """The ``| column | type | meaning |`` table of ``name`` (without the columns of ``minus``)."""
    schema, partition = _schema(name)
    left_out = set(_schema(minus)[0].names) if minus else set()
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for field in schema:
        if field.name in left_out:
            continue
        meaning = column_meaning(name, field).replace("|", "\\|")
        if field.name == partition:
            meaning = f"**partition**: {meaning}"
        lines.append(f"| {field.name} | {athena_type(field.type)} | {meaning} |")
    # Blank lines around the table, so no Markdown reads a marker as one of its rows.
    return "\n" + "\n".join(lines) + "\n\n"


def _readable(pattern: str) -> str:
    """A header pattern as a person reads it: ``conv_value|total_conv`` → ``conv value`` or ``total conv``."""
    from analytics.exports import alternatives

    def plain(alternative: str) -> str:
        text = re.sub(r"\(_?([^()]*)\)\?", r" [\1]", alternative)  # an optional part: [in brackets]
        return text.replace("[a-z]{3}", "XXX").replace("_", " ")

    return " or ".join(f"`{plain(a)}`" for a in alternatives(pattern))


def render_exports(dataset: str) -> str:
    """The ``| export | recognised by | columns it maps | implies |`` table of ``dataset``'s spec."""
    from analytics.registry import spec

    found = spec(dataset)
    if found is None or not found.exports:
        raise ColumnDocsError(f"<!-- exports:{dataset} --> names no built-in dataset with recognised exports")
    lines = [
        "| export (`source_format`) | recognised by headers | columns it maps | supplies | documented at |",
        "|---|---|---|---|---|",
    ]
    for shape in found.exports:
        signature = "; ".join(_readable(p) for p in shape.signature)
        columns = "; ".join(f"{name} ← {_readable(p)}" for name, p in shape.columns.items())
        supplies = [f"{name} = `{value}`" for name, value in shape.constants.items()]
        supplies += [f"{name} from the header of {_readable(p)}" for name, (p, _) in shape.from_header.items()]
        if shape.reshape is not None:
            supplies.append((shape.reshape.__doc__ or "reshaped").strip().splitlines()[0])
        cells = [f"{shape.title} (`{shape.name}`)", signature, columns, "; ".join(supplies) or "–", shape.documented_at]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n" + "\n".join(lines) + "\n\n"


_EXPORTS = re.compile(r"(?P<open><!-- exports:(?P<name>\w+) -->\n)(?P<body>.*?)(?P<close><!-- /exports -->)", re.DOTALL)


def rendered(text: str) -> str:
    """``text`` with every marked column table and export table rendered from the specs."""
    text = _MARKED.sub(lambda m: m["open"] + render(m["name"], m["minus"]) + m["close"], text)
    return _EXPORTS.sub(lambda m: m["open"] + render_exports(m["name"]) + m["close"], text)


def marked_tables(docs: Path = DOCS) -> dict[str, Path]:
    """Table name -> the page whose markers list its columns."""
    return {m["name"]: page for page in sorted(docs.glob("*.md")) for m in _MARKED.finditer(page.read_text())}


def stale_pages(docs: Path = DOCS) -> list[Path]:
    """Pages whose column tables differ from what the specs render."""
    return [page for page in sorted(docs.glob("*.md")) if rendered(page.read_text()) != page.read_text()]


def rewrite(docs: Path = DOCS) -> list[Path]:
    """Render every marked column table in place; the pages that changed."""
    changed = stale_pages(docs)
    for page in changed:
        page.write_text(rendered(page.read_text()))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lake.cli.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the pages that differ; exit 1 if any")
    args = parser.parse_args(argv)
    try:
        pages = stale_pages() if args.check else rewrite()
    except ColumnDocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for page in pages:
        print(f"{page.relative_to(DOCS.parent)}: {'differs from the specs' if args.check else 'rewritten'}")
    if args.check and pages:
        print(f"run `{REWRITE_COMMAND}` to rewrite them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
