"""Errors of DuckDB and Athena as one line in the user's terms: the column they meant, where it is
in their query, how to quote a name with spaces; a damaged data file named as such."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from query.parse import quoting_hint
from query.sql import TableRef, quote


@dataclass(frozen=True)
class QueryContext:
    """What an error message may point at: the user's SQL and the columns of the tables it reads."""

    sql: str
    columns: dict[str, dict[str, dict[str, str]]]


def duckdb_message(exc: Exception, sources: dict[str, TableRef], context: QueryContext | None = None) -> str:
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break  # DuckDB's caret display of the position
        if line.strip():
            lines.append(line.strip())
    message = " ".join(lines)
    for arrow_name, ref in sources.items():
        if f"'{arrow_name}'" in message or f'"{arrow_name}"' in message:  # a file, not the query
            return unreadable(message, ref)
    if "Parquet" in message or "parquet" in message:
        return unreadable(message)
    if context is not None:
        rewritten = binder_message(message, context)
        if rewritten is not None:
            return rewritten
    return f"{message}; check the query's names and types (`lake tables` lists the tables)"


def position(sql: str, word: str) -> str:
    """``line L, column C`` of the first whole-word ``word`` in ``sql`` (case-insensitive), or ``""``."""
    found = re.search(rf"(?<![\w.\"]){re.escape(word)}(?!\w)", sql, flags=re.IGNORECASE) or re.search(
        re.escape(word), sql, flags=re.IGNORECASE
    )
    if found is None:
        return ""
    line = sql.count("\n", 0, found.start()) + 1
    column = found.start() - (sql.rfind("\n", 0, found.start()) + 1) + 1
    return f"line {line}, column {column}"


def near_names(name: str, candidates: list[str], count: int = 3) -> list[str]:
    """The candidates that look most like ``name`` (a typo, another case), best first."""
    import difflib

    lowered = {c.lower(): c for c in candidates}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.6)]


def binder_message(message: str, context: QueryContext) -> str | None:
    """DuckDB's binder errors about the user's query, as one line in the user's terms."""
    unknown = re.search(r'(?:Referenced column|does not have a column named) "([^"]+)"', message)
    if unknown:
        name = unknown.group(1)
        tables = [
            (f"{database}.{table}", list(cols)) for database, by_table in context.columns.items()
            for table, cols in by_table.items()
        ]  # fmt: skip
        everything = [c for _, cols in tables for c in cols]
        # A bare ``Created at`` reads as the column ``Created``: the name it begins is the one meant.
        near = list(dict.fromkeys([*_begun_by(name, everything), *near_names(name, everything)]))[:3]
        where = position(context.sql, name)
        read = ", ".join(t for t, _ in tables) or "the query's tables"
        shown = near or everything[:12]
        listed = ", ".join(map(_as_written, shown))
        quoting = "a name with spaces or punctuation is written in double quotes"
        odd = any(_as_written(n) != n for n in shown)
        if near:
            hint = f"did you mean {listed}?" + (f" {quoting[0].upper()}{quoting[1:]}" if odd else "")
        else:
            hint = f"its columns: {listed}" + (f"; {quoting}" if odd else "")
        return (
            f"column {name}{f' (at {where})' if where else ''} is not in {read}; {hint} "
            "(`lake describe TABLE` lists a table's columns)"
        )
    missing_function = re.search(r"Function with name (\w+) does not exist", message)
    if missing_function:
        # A bare ``Total (USD)`` reads as a call of a function ``total``.
        columns = [c for by_table in context.columns.values() for cs in by_table.values() for c in cs]
        begun = _begun_by(missing_function.group(1), columns)
        if begun:
            return (
                f"{missing_function.group(1)}(...) is not a function; did you mean the column "
                f"{_as_written(begun[0])}? A name with spaces or punctuation is written in double quotes"
            )
    no_function = re.search(r"No function matches the given name and argument types '(\w+)\(([^)]*)\)'", message)
    if no_function:
        function, arguments = no_function.groups()
        where = position(context.sql, function)
        return (
            f"{function}({arguments.lower()}){f' at {where}' if where else ''}: {function}() does not take "
            f"{'text' if 'VARCHAR' in arguments else arguments.lower()} values; check the column's type with "
            "`lake describe TABLE`, or convert it, e.g. CAST(x AS double)"
        )
    return None


def _begun_by(word: str, names: list[str]) -> list[str]:
    """The ``names`` that are ``word`` then a space or punctuation (``Created at`` for ``created``)."""
    return [n for n in names if n.lower().startswith(word.lower()) and re.match(r"\W", n[len(word) :] or "x")]


def _as_written(name: str) -> str:
    """``name`` as a query must write it: bare when it is a plain word, else in double quotes."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else quote(name)


def unreadable(exc: Exception | str, ref: TableRef | None = None) -> str:
    """The one-line message for table files that cannot be read."""
    detail = " ".join(str(exc).split())
    where = f" of {ref}" if ref is not None else ""
    return (
        f"cannot read the files{where}: {detail}; remove the damaged object, "
        "or reprocess its source with `lake reprocess`"
    )


def athena_message(error: str, missing_table: Any = None) -> str:
    """Athena's error as one line in the user's terms, like the stand-in's (``missing_table(ref)``
    gives the message for a table that does not exist, with the names near it)."""
    text = " ".join(error.split())
    where = re.search(r"line (\d+):(\d+): ", text)
    at = f"line {where.group(1)}, column {where.group(2)}" if where else ""
    column = re.search(r"Column '([^']+)' cannot be resolved", text)
    if column:
        return (
            f"column {column.group(1)}{f' (at {at})' if at else ''} cannot be resolved; check its name "
            "(`lake describe TABLE` lists a table's columns)"
        )
    table = re.search(r"Table '(?:awsdatacatalog\.)?([\w]+)\.([\w]+)' does not exist", text)
    if table:
        ref = TableRef(table.group(1), table.group(2))
        if missing_table is not None:
            try:
                return str(missing_table(ref))
            except Exception:  # the near names are a courtesy; the plain message still helps
                pass
        return f"table {ref} does not exist; `lake tables` lists the tables"
    if "SYNTAX_ERROR" in text or "mismatched input" in text:
        detail = text.split(": ", 2)[-1] if at else text
        detail = re.sub(r"\. Expecting: .*$", "", detail)
        bad = re.search(r"(?:mismatched input|token recognition error at:) '([^']*)'", text)
        hint = quoting_hint(bad.group(1), "") if bad else ""
        return f"SQL syntax error{f' at {at}' if at else ''}: {detail}{hint}; fix the query (Athena SQL)"
    return f"Athena: {text}; check the query (`lake tables` lists tables)"
