"""Vendor exports recognised as downloaded, and the mapping settings for any other shape.

An :class:`KnownExport` is one tool's export (Google Ads' campaign report, Shopify's orders
export): recognised by its header's column signature, it says which of its columns is which
contract column and supplies what the export implies but does not say (the channel of a Meta
export is ``meta``). ``settings/<dataset>.json`` may add ``columns`` (contract column → header in
the export) and ``constants`` (contract column → value) for shapes nobody declared; settings win
over a recognised shape.

:func:`prepare` applies both to a file's table before its contract resolves the columns, and
:func:`suggest_mapping` finds, for a shape that does not fit, the headers closest to each missing
contract column (``lake try`` prints them as settings JSON to paste).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from analytics.errors import SettingsError


class ContractColumn(Protocol):
    """What recognising an export reads of a contract column (an :class:`analytics.contract.Column`)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def required(self) -> bool: ...
    def accepted_names(self) -> list[str]: ...


class Contract(Protocol):
    """What recognising an export needs of a dataset's contract (an :class:`analytics.contract.Contract`,
    which imports this module: the dependency runs one way)."""

    @property
    def dataset(self) -> str: ...
    @property
    def columns(self) -> Sequence[ContractColumn]: ...
    def resolve(
        self,
        header: Sequence[str],
        *,
        preset: Mapping[str, str] | None = None,
        strict: bool = True,
        shown: Sequence[str] = (),
    ) -> dict[str, str]: ...


#: Folds a recognised export's rows into the contract's grain (Shopify: line items → orders).
Reshape = Callable[[pa.Table, Mapping[str, str]], "Reshaped"]


def normalise(name: str) -> str:
    """Lowercase, other characters as one underscore: ``Amount spent (USD)`` → ``amount_spent_usd``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class Reshaped:
    """A recognised export brought to the contract's grain, and the extra tables it also fills."""

    table: pa.Table
    #: For each row of the file, the row of ``table`` it went into; -1 for a row left out (a failed
    #: payment: not a sale). Quarantine shows a rejected row's file rows, with their numbers.
    origin: np.ndarray
    #: Extra rows by table name (Shopify's ``order_items``), already in that table's columns.
    extra: Mapping[str, pa.Table] = field(default_factory=dict)
    #: What the reshaping did, for the completion event (``{"line_items": 42, "orders": 17}``).
    facts: Mapping[str, int | str] = field(default_factory=dict)

    @classmethod
    def kept(cls, table: pa.Table, keep: np.ndarray, facts: Mapping[str, int | str]) -> Reshaped:
        """``table``'s rows where ``keep`` is true, one output row per file row."""
        origin = np.where(keep, np.cumsum(keep) - 1, -1)
        return cls(table.filter(pa.array(keep)) if not keep.all() else table, origin, facts=facts)


@dataclass(frozen=True)
class KnownExport:
    """One tool's export: how to recognise it and how it maps onto the dataset's contract."""

    #: The ``source_format`` the completion event names (``google_ads``, ``shopify_orders``).
    name: str
    #: What a person calls it (``Google Ads campaign report``).
    title: str
    #: Patterns (regular expressions over normalised header names, matched whole) every one of which
    #: some header must match for the export to be recognised.
    signature: tuple[str, ...]
    #: Contract column → pattern of the export header that holds it (normalised, matched whole); the
    #: first header matching wins. Columns not listed resolve through the contract's aliases.
    columns: Mapping[str, str] = field(default_factory=dict)
    #: Contract column → value, used when the file has no column for it (the platform's channel).
    constants: Mapping[str, str] = field(default_factory=dict)
    #: Contract column → (header pattern, regex with one group): a constant read from a header's
    #: own text, e.g. the currency of Meta's ``Amount spent (EUR)``.
    from_header: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: Brings the export's rows to the contract's grain (called with the resolved column mapping).
    reshape: Reshape | None = None
    #: Contract columns holding personal data detection cannot see by name or content (WooCommerce's
    #: customer is a person's name), with their kind: pseudonymised in curated and quarantine rows.
    personal: Mapping[str, str] = field(default_factory=dict)
    #: Where the vendor documents the export's columns (the fixtures are written from it).
    documented_at: str = ""

    def matches(self, normalised: Sequence[str]) -> bool:
        return all(any(re.fullmatch(p, h) for h in normalised) for p in self.signature)


@dataclass(frozen=True)
class Prepared:
    """A file's table as the contract will see it."""

    table: pa.Table
    #: Contract column → header of ``table`` fixed by the recognised shape or the settings.
    mapping: dict[str, str]
    #: The recognised export (None: no shape matched, the contract's aliases apply).
    shape: KnownExport | None = None
    #: Contract columns filled with a constant, and the value.
    constants: dict[str, str] = field(default_factory=dict)
    extra: Mapping[str, pa.Table] = field(default_factory=dict)
    facts: Mapping[str, int | str] = field(default_factory=dict)
    #: The file's own table (with any constant columns) when ``table`` was reshaped from it.
    source: pa.Table | None = None
    #: For each row of ``source``, the row of ``table`` it went into (-1: left out); None: not reshaped.
    origin: np.ndarray | None = None
    #: The file's own header, for messages (constant columns are not the file's).
    header: tuple[str, ...] = ()

    def source_rows(self, rows: np.ndarray) -> np.ndarray:
        """Positions in the file of the rows that made ``table``'s ``rows`` (a boolean mask over ``table``)."""
        if self.origin is None:
            return np.flatnonzero(rows)
        return np.flatnonzero((self.origin >= 0) & rows[np.maximum(self.origin, 0)])

    @property
    def source_format(self) -> str:
        """The recognised export's name; ``settings`` when the settings' mapping was used, else ``csv``-like
        files read by their aliases are ``generic``."""
        if self.shape is not None:
            return self.shape.name
        return "settings" if self.mapping or self.constants else "generic"


def alternatives(pattern: str) -> list[str]:
    """``pattern``'s top-level ``|`` alternatives, in the order written (the order of preference)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(pattern):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    return [*parts, pattern[start:]]


def first_header(header: Sequence[str], pattern: str, taken: Collection[str] = ()) -> str | None:
    """The header ``pattern`` matches (over normalised names), preferring its earlier alternatives
    (``day|reporting_starts``: a ``Day`` column over ``Reporting starts``), skipping ``taken`` ones."""
    for alternative in alternatives(pattern):
        for h in header:
            if h not in taken and re.fullmatch(alternative, normalise(h)):
                return h
    return None


def recognise(shapes: Sequence[KnownExport], header: Sequence[str]) -> KnownExport | None:
    """The most specific shape (longest signature) whose signature ``header`` matches."""
    names = [normalise(h) for h in header]
    found = [s for s in shapes if s.matches(names)]
    return max(found, key=lambda s: len(s.signature)) if found else None


def _setting(settings: Mapping[str, Any], name: str, dataset: str) -> dict[str, str]:
    value = settings.get(name, {})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        example = '{"channel": "Platform"}' if name == "columns" else '{"channel": "pinterest"}'
        raise SettingsError(
            f"settings/{dataset}.json: {name} must be an object of column names to strings, e.g. {example}; "
            f"not {value!r}"
        )
    return dict(value)


def prepare(
    table: pa.Table,
    contract: Contract,
    shapes: Sequence[KnownExport],
    settings: Mapping[str, Any],
) -> Prepared:
    """Recognise ``table``'s export and apply it and the settings' ``columns``/``constants``.

    A constant becomes a column ``_constant_<column>``: a recognised export's fills a gap only (the
    file's own column wins), a settings constant wins over the file. Mapped headers are left as they
    are, and a reshaped export keeps the file's table beside its own (``source``), so a quarantined
    row shows the export's own names and values. Raises :class:`SettingsError` for a setting naming
    a header the file does not have, or one column both mapped and constant.
    """
    dataset = contract.dataset
    header = list(table.column_names)
    declared = {c.name for c in contract.columns}
    columns = _setting(settings, "columns", dataset)
    constants = _setting(settings, "constants", dataset)
    both = sorted(set(columns) & set(constants))
    if both:
        raise SettingsError(
            f"settings/{dataset}.json both maps and sets a constant for {', '.join(both)}; keep one of the two"
        )
    placeholders = sorted(k for k, v in constants.items() if v.startswith("<") and v.endswith(">"))
    if placeholders:
        raise SettingsError(
            f"settings/{dataset}.json: the constant of {', '.join(placeholders)} is still a placeholder "
            f"({constants[placeholders[0]]!r}); put the value every row should have"
        )
    for name in (*columns, *constants):
        if name not in declared:
            raise SettingsError(
                f"settings/{dataset}.json maps {name!r}, which is not a column of the {dataset} contract "
                f"({', '.join(sorted(declared))}); fix the name"
            )
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(normalise(h), h)
    mapping: dict[str, str] = {}
    for name, wanted in columns.items():
        found = wanted if wanted in header else by_norm.get(normalise(wanted))
        if found is None:
            raise SettingsError(
                f"settings/{dataset}.json maps {name} to the header {wanted!r}, which this file does not have "
                f"(its headers: {', '.join(repr(h) for h in header)}); fix the mapping or the export"
            )
        mapping[name] = found
    shape = recognise(shapes, header)
    implied: dict[str, str] = {}
    if shape is not None:
        for name, pattern in shape.columns.items():
            if name in mapping:
                continue
            hit = first_header(header, pattern, taken=mapping.values())
            if hit is not None:
                mapping[name] = hit
        implied.update(shape.constants)
        for name, (pattern, capture) in shape.from_header.items():
            for h in header:
                if re.fullmatch(pattern, normalise(h)) and (m := re.search(capture, h)):
                    implied[name] = m.group(1)
                    break
    implied.update(constants)
    resolved = _resolvable(contract, header, mapping)
    added: dict[str, str] = {}
    for name, value in implied.items():
        # An export's constant fills a gap (the file's own column wins); a constant the settings set
        # wins over the file and over what a recognised export maps.
        if name not in constants and (name in mapping or name in resolved):
            continue
        column_name = f"_constant_{name}"
        table = table.append_column(column_name, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
        mapping[name] = column_name
        added[name] = value
    if shape is None or shape.reshape is None:
        return Prepared(table, mapping, shape, added, header=tuple(header))
    full = {**contract.resolve(table.column_names, preset=mapping, strict=False), **mapping}
    reshaped = shape.reshape(table, full)
    if len(reshaped.origin) != table.num_rows:
        raise ValueError(f"{shape.name}: reshape gave {len(reshaped.origin)} origins for {table.num_rows} rows")
    mapping = {k: v for k, v in full.items() if v in reshaped.table.column_names}
    return Prepared(
        reshaped.table,
        mapping,
        shape,
        added,
        reshaped.extra,
        reshaped.facts,
        source=table,
        origin=reshaped.origin,
        header=tuple(header),
    )


def _resolvable(contract: Contract, header: Sequence[str], mapping: Mapping[str, str]) -> set[str]:
    """Contract columns the header resolves to by their aliases, besides ``mapping``."""
    return set(contract.resolve(header, preset=mapping, strict=False))


def suggest_mapping(
    contract: Contract, header: Sequence[str], limit: int = 3, missing: Collection[str] | None = None
) -> dict[str, list[str]]:
    """For each required contract column the header does not resolve (or each of ``missing``), the
    closest headers (best first).

    Closeness is difflib's ratio between normalised names, raised when a header's words contain one
    of the column's accepted names (``Total Spent`` for ``spend``'s alias ``spent``).
    """
    resolved = contract.resolve(header, strict=False)
    unused = [h for h in header if h not in resolved.values()]
    out: dict[str, list[str]] = {}
    for column in contract.columns:
        wanted = column.name in missing if missing is not None else column.required and column.name not in resolved
        if not wanted:
            continue
        names = column.accepted_names()
        scored = []
        for h in unused:
            n = normalise(h)
            words = set(n.split("_"))
            score = max(difflib.SequenceMatcher(None, n, a).ratio() for a in names)
            if any(set(a.split("_")) <= words for a in names):
                score += 0.5
            scored.append((score, h))
        out[column.name] = [h for score, h in sorted(scored, key=lambda t: -t[0]) if score >= 0.45][:limit]
    return out


def mapping_settings(
    contract: Contract, header: Sequence[str], missing: Collection[str] | None = None
) -> dict[str, Any]:
    """The ``settings/<dataset>.json`` fragment a file would need: each missing column's closest header
    (no header given to two columns, the surest pairs first), or a constant placeholder where none is close."""
    suggestions = suggest_mapping(contract, header, limit=len(header), missing=missing)
    columns: dict[str, str] = {}
    taken: set[str] = set()
    # Surest first: a column with few candidates takes its best before one with many alternatives.
    for name, found in sorted(suggestions.items(), key=lambda item: len(item[1])):
        pick = next((h for h in found if h not in taken), None)
        if pick is not None:
            columns[name] = pick
            taken.add(pick)
    kinds = {c.name: c.kind for c in contract.columns}
    # A constant makes sense for what a whole file shares (its channel, currency, country), never a measure.
    constants = {
        name: f"<the {name} of every row>"
        for name in suggestions
        if name not in columns and kinds[name] in ("label", "text", "id")
    }
    out: dict[str, Any] = {}
    if columns:
        out["columns"] = {name: columns[name] for name in suggestions if name in columns}
    if constants:
        out["constants"] = constants
    return out
