"""Reports: one self-contained HTML page per dataset, drawn from its refreshed tables.

``build_report(dataset, query, tables)`` asks ``query`` (Athena SQL, run on Athena or on DuckDB) for
small aggregates and draws them with matplotlib as inline SVG. The page has no script and loads
nothing, so it opens from S3, from disk or offline, and prints. Whatever cannot be drawn (a missing
table, one as_of only, one variant, one day) is a note on the page, never an error; the one error is
asking for an as_of that does not exist (:class:`ReportError`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reports.base import Context, Query, ReportError, Section, Sources

#: The processing ledger's report.
OPS = "ops"


@dataclass(frozen=True)
class Report:
    """One drawn report."""

    dataset: str
    #: The newest as_of drawn (None for a dataset without model tables).
    as_of: dt.date | None
    #: One self-contained page.
    html: str
    #: What cannot be drawn and why (also shown in the page).
    notes: tuple[str, ...]


def curated_inputs(dataset: str) -> frozenset[str]:
    """The curated tables ``dataset``'s report reads besides its model tables: the dataset's own
    table or view and, for a keyed dataset, the table under its view (histograms of its values), and
    the per-file profiles."""
    from reports.generic import PROFILES, data_table

    table = data_table(dataset)
    return frozenset({table, f"{table}_sources", PROFILES})


def build_report(
    dataset: str,
    query: Query,
    tables: frozenset[str],
    as_of: dt.date | None = None,
    facts: Sequence[Mapping[str, Any]] = (),
    architecture: str | None = None,
    region: str | None = None,
) -> Report:
    """Draw ``dataset``'s report (``"ops"``: the processing ledger) from the tables ``query`` can read.

    ``tables`` names what ``query`` can read, as its SQL names them: curated tables unqualified
    (``customer_segments``), the quarantine and the ledger by their database (``lake_quarantine.orders``,
    ``lake_ops.processing_log``). ``as_of=None`` draws the newest snapshot. ``facts`` are the refresh's
    model facts (as in its event), for what the models keep in no table (fitted parameters).
    ``architecture`` and ``region`` are the deployed function's (as the stack reports them): the
    ``ops`` report prices its GB-seconds with them (``topology.pricing``).
    Raises :class:`ReportError` only for an ``as_of`` the dataset has no snapshot of.
    """
    from reports import ads, experiments, generic, ops, orders, page

    ctx = Context(
        dataset=dataset,
        query=query,
        sources=Sources(frozenset(tables)),
        as_of=as_of,
        facts=tuple(facts),
        architecture=architecture,
        region=region,
    )
    drawn: dt.date | None = None
    sections: list[Section]
    top: list[str] = []
    if dataset == OPS:
        sections = ops.sections(ctx)
        title = "Processing ledger"
    else:
        own: list[Section] = []
        # Drawers by dataset spec name (analytics may not import reports, so they are listed here).
        drawers = {"orders": orders.sections, "experiments": experiments.sections, "ad_performance": ads.sections}
        if dataset in drawers:
            try:
                own, drawn = drawers[dataset](ctx)
            except ReportError:
                raise
            except Exception as exc:  # one unreadable table costs its sections, never the page
                top.append(f"the {dataset} sections could not be drawn: {type(exc).__name__}: {exc}")
        elif as_of is not None:
            top.append(f"as_of {as_of} picks a snapshot of model tables, and {dataset} has none: every file is drawn")
        # A model's as_of is a date in the data (the newest order), not the day files landed: the
        # profile and quarantine cover every file.
        generic_ctx = Context(dataset, query, ctx.sources, None)
        sections = own + [_drawn_or_noted(title, anchor, draw, generic_ctx) for title, anchor, draw in generic.DRAWERS]
        title = f"Report: {dataset}"
    notes = top + [f"{s.title}: {n}" for s in sections for n in s.notes]
    if dataset == OPS:
        meta = "Drawn from the processing ledger (lake_ops.processing_log)."
    elif drawn is not None:
        meta = f"Drawn from the model tables as of {drawn}; the profile and quarantine cover every file."
    else:
        meta = "Drawn from every file of the dataset."
    html = page.render(title, meta, sections, notes)
    return Report(dataset=dataset, as_of=drawn, html=html, notes=tuple(notes))


def _drawn_or_noted(title: str, anchor: str, draw: Callable[[Context], Section], ctx: Context) -> Section:
    """``draw(ctx)``, or the section saying why it could not be drawn (say, a table the function may
    not read): one failing section never costs the rest of the page."""
    try:
        return draw(ctx)
    except ReportError:
        raise
    except Exception as exc:
        section = Section(title, anchor)
        section.note(f"could not be drawn: {type(exc).__name__}: {exc}")
        return section


__all__ = ["OPS", "Query", "Report", "ReportError", "build_report", "curated_inputs"]
