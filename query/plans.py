"""What each scan of a query reads: the columns it uses, and the comparisons of its WHERE clauses
(``date = DATE '2026-03-04'``, ``n IN (1, 2)``, ...) as pyiceberg expressions, so that partitions
and files that cannot match are never opened. Both err on the side of reading more: DuckDB still
evaluates the whole query on what is read."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from query.sql import TableRef

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.schema import Schema


@dataclass(frozen=True)
class ScanPlan:
    """What a source's scan reads: the columns the query uses and a filter implied by its WHERE."""

    columns: tuple[str, ...] = ("*",)
    row_filter: BooleanExpression | None = None


def catalog_tables(tree: Any) -> list[Any]:
    """The tree's table nodes that name catalog tables (:func:`query.sql.table_refs` gave each its database)."""
    from sqlglot import exp

    return [t for t in tree.find_all(exp.Table) if t.db and isinstance(t.this, exp.Identifier)]


def ref_of(node: Any) -> TableRef:
    """The catalog table a table node names."""
    return TableRef(node.db.lower(), node.name.lower())


def scan_plans(qualified: Any, schemas: Mapping[TableRef, Schema]) -> dict[TableRef, ScanPlan]:
    """Per source, the columns the query uses and the comparisons every read of it must satisfy.

    Both err on the side of reading more: a column is kept when any column of the query has its
    name, and a filter is pushed only when it is a null-rejecting comparison with a constant in
    the WHERE of the SELECT that reads the table (so it holds however the table is joined), for
    every place the query reads that table. DuckDB still evaluates the whole query on what is read.
    """
    from functools import reduce

    from pyiceberg.expressions import Or
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    if qualified is None or any(isinstance(s.parent, exp.Select) for s in qualified.find_all(exp.Star)):
        return {key: ScanPlan() for key in schemas}
    used = {column.name.lower() for column in qualified.find_all(exp.Column)}
    occurrences: dict[TableRef, int] = defaultdict(int)
    for node in catalog_tables(qualified):
        occurrences[ref_of(node)] += 1
    filters: dict[TableRef, list[BooleanExpression | None]] = defaultdict(list)
    inherited: dict[int, list[Any]] = defaultdict(list)
    # Outer scopes first, so that what a SELECT filters reaches the derived tables (views) it reads.
    for scope in reversed(traverse_scope(qualified)):
        where = scope.expression.args.get("where") if isinstance(scope.expression, exp.Select) else None
        conjuncts = [*(_conjuncts(where.this) if where is not None else []), *inherited[id(scope.expression)]]
        for alias, (_, source) in scope.selected_sources.items():
            if isinstance(source, exp.Table) and ref_of(source) in schemas:
                filters[ref_of(source)].append(_iceberg_filter(conjuncts, alias, schemas[ref_of(source)]))
            elif not isinstance(source, exp.Table) and source.is_derived_table:
                inner = source.expression
                inherited[id(inner)] += [
                    c for c in map(lambda c: _through(c, alias, inner), conjuncts) if c is not None
                ]
    plans = {}
    for key, schema in schemas.items():
        names = [f.name for f in schema.fields]
        # count(*) uses no column, but a scan needs one to count its rows
        columns = tuple(n for n in names if n.lower() in used) or tuple(names[:1])
        found = filters.get(key, [])
        complete = len(found) == occurrences[key] and all(f is not None for f in found)
        row_filter = reduce(Or, [f for f in found if f is not None]) if found and complete else None
        plans[key] = ScanPlan(columns or ("*",), row_filter)
    return plans


def _through(condition: Any, alias: str, inner: Any) -> Any:
    """``condition`` on derived table ``alias`` rewritten onto the columns of its SELECT ``inner``,
    when filtering ``inner``'s rows first cannot change which of its rows pass: the columns are
    plain columns of ``inner``, which neither aggregates nor limits, and every window function of
    ``inner`` is partitioned by them (a filter then drops whole partitions). Else None."""
    from sqlglot import exp

    if not isinstance(inner, exp.Select) or _predicate_columns(condition, alias) is None:
        return None
    if any(inner.args.get(arg) for arg in ("group", "having", "limit", "offset", "qualify", "distinct")):
        return None
    if any(isinstance(p.unalias(), exp.AggFunc) or p.find(exp.AggFunc) for p in inner.selects):
        return None
    projections = {p.alias_or_name.lower(): p.unalias() for p in inner.selects}
    windows = list(inner.find_all(exp.Window))
    rewritten = condition.copy()
    for column in list(rewritten.find_all(exp.Column)):
        projected = projections.get(column.name.lower())
        if not isinstance(projected, exp.Column):
            return None
        for window in windows:
            keys = {k.name.lower() for k in window.args.get("partition_by") or [] if isinstance(k, exp.Column)}
            if projected.name.lower() not in keys:
                return None
        column.replace(projected.copy())
    return rewritten


def _predicate_columns(condition: Any, alias: str) -> set[str] | None:
    """The columns of a condition that reads only ``alias``'s columns and constants, else None."""
    from sqlglot import exp

    columns = list(condition.find_all(exp.Column))
    if not columns or any(c.table.lower() != alias.lower() for c in columns):
        return None
    if condition.find(exp.Subquery, exp.Select, exp.Window, exp.AggFunc):
        return None
    return {c.name.lower() for c in columns}


def _conjuncts(condition: Any) -> list[Any]:
    from sqlglot import exp

    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        return [*_conjuncts(condition.this), *_conjuncts(condition.expression)]
    return [condition]


def _iceberg_filter(conjuncts: list[Any], alias: str, schema: Schema) -> BooleanExpression | None:
    from functools import reduce

    from pyiceberg.expressions import And

    predicates = [p for c in conjuncts if (p := _predicate(c, alias, schema)) is not None]
    return reduce(And, predicates) if predicates else None


def _predicate(condition: Any, alias: str, schema: Schema) -> BooleanExpression | None:
    """``condition`` as a pyiceberg expression when it compares a column of ``alias`` with constants
    of the column's own type (no coercion that could change which rows match); else None."""
    from pyiceberg import expressions as ie
    from pyiceberg.expressions.literals import literal
    from sqlglot import exp

    compare = {exp.EQ: ie.EqualTo, exp.GT: ie.GreaterThan, exp.GTE: ie.GreaterThanOrEqual,
               exp.LT: ie.LessThan, exp.LTE: ie.LessThanOrEqual}  # fmt: skip
    mirrored = {exp.EQ: ie.EqualTo, exp.GT: ie.LessThan, exp.GTE: ie.LessThanOrEqual,
                exp.LT: ie.GreaterThan, exp.LTE: ie.GreaterThanOrEqual}  # fmt: skip
    kind = type(condition)
    if kind in compare:
        left, right = condition.this, condition.expression
        for column, constant, make in ((left, right, compare[kind]), (right, left, mirrored[kind])):
            field = _field(column, alias, schema)
            if field is not None and (value := _constant(constant, field.field_type)) is not _NOT_CONSTANT:
                return make(term=field.name, value=value)
        return None
    field = _field(condition.this, alias, schema) if isinstance(condition, exp.In | exp.Between) else None
    if field is None:
        return None
    if isinstance(condition, exp.In) and not condition.args.get("query"):
        values = [_constant(e, field.field_type) for e in condition.expressions]
        if values and all(v is not _NOT_CONSTANT for v in values):
            return ie.In(term=field.name, values={literal(v) for v in values})
    if isinstance(condition, exp.Between):
        low = _constant(condition.args.get("low"), field.field_type)
        high = _constant(condition.args.get("high"), field.field_type)
        if low is not _NOT_CONSTANT and high is not _NOT_CONSTANT:
            return ie.And(
                ie.GreaterThanOrEqual(term=field.name, value=low), ie.LessThanOrEqual(term=field.name, value=high)
            )
    return None


def _field(node: Any, alias: str, schema: Schema) -> Any:
    from sqlglot import exp

    if not isinstance(node, exp.Column) or node.table.lower() != alias.lower():
        return None
    for field in schema.fields:
        if field.name.lower() == node.name.lower():
            return field
    return None


_NOT_CONSTANT = object()


def _constant(node: Any, kind: Any) -> Any:
    """The Python value of a literal of Iceberg type ``kind``, or ``_NOT_CONSTANT``. Floats and
    decimals are left to DuckDB (NaN and rounding compare differently)."""
    from pyiceberg import types as t
    from sqlglot import exp

    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    if isinstance(kind, t.IntegerType | t.LongType) and isinstance(node, exp.Literal) and node.is_int:
        return -int(node.this) if negative else int(node.this)
    if negative:
        return _NOT_CONSTANT
    if isinstance(kind, t.StringType) and isinstance(node, exp.Literal) and node.is_string:
        return node.this
    if isinstance(kind, t.BooleanType) and isinstance(node, exp.Boolean):
        return bool(node.this)
    if not (isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string):
        return _NOT_CONSTANT
    text = node.this.this.strip()
    try:
        if isinstance(kind, t.DateType) and node.to.is_type(exp.DataType.Type.DATE):
            return dt.date.fromisoformat(text).isoformat()
        if isinstance(kind, t.TimestampType | t.TimestamptzType) and node.to.is_type(*exp.DataType.TEMPORAL_TYPES):
            moment = dt.datetime.fromisoformat(re.sub(r"\s*UTC$", "+00:00", text))
            if moment.tzinfo is not None and isinstance(kind, t.TimestampType):
                return _NOT_CONSTANT  # a zone on a zoneless column: leave it to DuckDB
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return (moment - _EPOCH) // dt.timedelta(microseconds=1)  # micros, as Iceberg stores them
    except ValueError:
        return _NOT_CONSTANT
    return _NOT_CONSTANT


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
