"""What every report section shares: the query port, the sources it may read, the page's pieces.

A section asks SQL (Athena's dialect) for small aggregates and draws them; it never reads a
table's rows into Python. What it cannot draw becomes a note, never an exception.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

#: Runs one Athena (Trino) SQL statement and returns its result: the refresh stage's ``query``.
Query = Callable[[str], pa.Table]


class ReportError(ValueError):
    """A report was asked for something that does not exist (a dataset name, an as_of date)."""


@dataclass(frozen=True)
class Sources:
    """The tables a report may read, by the names its SQL uses.

    Curated tables are named unqualified (``customer_segments``); the quarantine and the ledger live
    in other databases, so they are found by their last part (``lake_quarantine.orders``,
    ``lake_ops.processing_log``, or ``processing_log`` unqualified).
    """

    names: frozenset[str]

    def has(self, name: str) -> bool:
        return name in self.names

    def quarantine(self, dataset: str) -> str | None:
        """The quarantine table of ``dataset``: ``<db>.<dataset>`` where the database names quarantine."""
        found = sorted(n for n in self.names if n.endswith(f".{dataset}") and "quarantine" in n.split(".")[0])
        return found[0] if found else None

    def ledger(self) -> str | None:
        found = sorted(n for n in self.names if n == "processing_log" or n.endswith(".processing_log"))
        return found[0] if found else None


def sql_string(value: str) -> str:
    """A SQL string literal: quotes doubled, so a name can never end the literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_date(value: dt.date) -> str:
    return f"DATE '{value.isoformat()}'"


def sql_name(name: str) -> str:
    """A table name for SQL, ``table`` or ``database.table``: each dotted part double-quoted
    (quotes inside doubled)."""
    return ".".join(sql_column(part) for part in name.split("."))


def sql_column(name: str) -> str:
    """A column name for SQL, double-quoted whole (quotes inside doubled): a header's ``a.b``,
    ``Order #`` or ``at`` is one column, as Athena and DuckDB both read ``"a.b"``."""
    return '"' + name.replace('"', '""') + '"'


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """A small query result as dicts (NaN as None, so a missing value is one thing)."""
    out = []
    for row in table.to_pylist():
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out


@dataclass
class Section:
    """One part of a page: a heading, how to read it, then figures and tables in order."""

    title: str
    anchor: str
    intro: str = ""
    #: Trusted markup built by :mod:`reports.page`, in the order it shows.
    parts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass
class Context:
    """What every section of one report gets."""

    dataset: str
    query: Query
    sources: Sources
    as_of: dt.date | None
    #: The refresh's facts (``{"name", "version", "metrics"}``, as in its event): what the models
    #: fitted but keep in no table (BG/NBD's and Gamma-Gamma's parameters).
    facts: tuple[Mapping[str, Any], ...] = ()
    #: Where the lake runs, for prices (``ops``): the function's architecture and the region, as the
    #: stack reports them (None: not known; the default architecture and us-east-1 are priced).
    architecture: str | None = None
    region: str | None = None


def as_of_dates(query: Query, table: str) -> list[dt.date]:
    """The snapshots of a model table, oldest first."""
    result = query(f"SELECT DISTINCT as_of FROM {sql_name(table)} WHERE as_of IS NOT NULL ORDER BY as_of")
    return [v for v in result.column("as_of").to_pylist() if v is not None]


def choose_as_of(dataset: str, table: str, available: Sequence[dt.date], wanted: dt.date | None) -> dt.date | None:
    """The snapshot to draw: ``wanted`` (which must exist) or the newest."""
    if not available:
        return None
    if wanted is None:
        return available[-1]
    if wanted not in available:
        shown = ", ".join(d.isoformat() for d in available[-12:])
        raise ReportError(
            f"{dataset} has no {table} snapshot as of {wanted.isoformat()}: its as_of dates are {shown}; "
            "pick one of them, or leave as_of out for the newest"
        )
    return wanted


def previous(available: Iterable[dt.date], as_of: dt.date) -> dt.date | None:
    """The snapshot before ``as_of``, if any."""
    earlier = [d for d in available if d < as_of]
    return earlier[-1] if earlier else None
