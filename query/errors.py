"""The engine's errors. Whether a failure is worth running again is decided by type, never by message."""

from __future__ import annotations


class QueryError(Exception):
    """A query that cannot run as written, or that names what the lake does not have (a table, a
    column, a snapshot): running it again cannot help. The message is one line that says what to fix."""


class AthenaQueryError(Exception):
    """Athena could not finish a query (failed, cancelled, or timed out): worth running again."""
