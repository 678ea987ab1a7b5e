"""One Athena SQL statement parsed, or one line that says where it goes wrong and what to write instead."""

from __future__ import annotations

import re
from typing import Any

from query.errors import QueryError


def _sqlglot() -> Any:
    try:
        import sqlglot
    except ImportError as exc:
        raise QueryError(MISSING.format(name="sqlglot")) from exc
    return sqlglot


MISSING = (
    "local queries need {name}, which is part of the development environment; "
    "install it with `make install` and run `uv run lake ...`"
)


def parse(sql: str) -> Any:
    """The single statement of ``sql``, parsed in Athena's dialect; a one-line QueryError otherwise."""
    sqlglot = _sqlglot()
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise QueryError(syntax_message(exc, sql)) from exc
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}; run them one at a time")
    return statements[0]


def syntax_message(exc: Any, sql: str = "") -> str:
    """One line that says where the query goes wrong and what is missing, not sqlglot's internals
    (``Required keyword: 'this' missing for Where``)."""
    if not exc.errors:
        return f"SQL syntax error: {' '.join(str(exc).split())}; check the query"
    error = exc.errors[0]
    highlight = str(error.get("highlight") or "").strip()
    before = re.sub(r"\s+", " ", str(error.get("start_context") or "")).lstrip()
    # sqlglot points at the end of the offending token; people count from its start.
    column = max(int(error["col"]) - len(highlight) + 1, 1) if highlight else error["col"]
    first = sql.split(None, 1)[0] if sql.strip() else ""
    if (
        first.isalpha()
        and first.upper() not in _KEYWORDS
        and "not a SQL keyword" in _what_is_wrong(str(error["description"]), highlight, first)
    ):
        column = sql.index(first) + 1  # a misspelt first keyword: point at it, not where sqlglot gave up
    near = f' near "{("…" + before[-30:]) if len(before) > 30 else before}{highlight}"' if highlight else ""
    return (
        f"SQL syntax error at line {error['line']}, column {column}{near}: "
        f"{_what_is_wrong(str(error['description']), highlight, before)}{quoting_hint(highlight, before)}; "
        "fix the query (Athena SQL)"
    )


def quoting_hint(highlight: str, before: str) -> str:
    """For a syntax error at a character that is no SQL but is in headers (``Order #``): how to
    write such a name."""
    words = before.split()
    if highlight.startswith("`") or (words and "`" in words[-1]):
        return '; Athena SQL quotes a name with double quotes, not backticks: "1st", not `1st`'
    if highlight and highlight[0] in "#$?@%&!~":
        example = f"{words[-1]} {highlight}" if words and words[-1].upper() not in _KEYWORDS else "Order #"
        return f'; a column name with spaces or punctuation is written in double quotes, e.g. "{example}"'
    return ""


#: What a clause or operator that sqlglot found incomplete needs after it.
_NEEDS = {
    "Where": "WHERE needs a condition after it",
    "Having": "HAVING needs a condition after it",
    "Neg": "'-' needs a number after it",
    "Not": "NOT needs a condition after it",
    "Order": "ORDER BY needs a column after it",
    "Group": "GROUP BY needs a column after it",
    "Limit": "LIMIT needs a number after it",
    "Join": "JOIN needs a table after it",
    "From": "FROM needs a table after it",
    "Alias": "AS needs a name after it",
    "Cast": "CAST needs (value AS type)",
}
_KEYWORDS = ("SELECT", "WITH", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "JOIN", "UNION")


def _what_is_wrong(description: str, highlight: str, before: str) -> str:
    import difflib

    missing = re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>", description)
    if missing:
        kind = missing.group(2)
        if kind in _NEEDS:
            return _NEEDS[kind]
        return (
            f"{highlight or kind.upper()} needs a value on each side"
            if missing.group(1) == "expression"
            else (f"{highlight or kind.upper()} is incomplete")
        )
    expecting = re.match(r"Expecting (\S+)", description)
    if expecting:
        return f"expected {expecting.group(1)} before {highlight!r}" if highlight else f"expected {expecting.group(1)}"
    words = before.split()
    if words and words[0].upper() not in _KEYWORDS:
        close = difflib.get_close_matches(words[0].upper(), _KEYWORDS, n=1)
        if close:
            return f"{words[0]!r} is not a SQL keyword (did you mean {close[0]}?)"
    if "Unexpected token" in description or "Invalid expression" in description:
        return f"{highlight!r} is not expected here" if highlight else "the query ends too early"
    return re.sub(r"<class '[\w.]*?(\w+)'>", r"\1", description)
