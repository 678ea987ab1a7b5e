"""Where a refresh's SQL runs: DuckDB inside the function, or Athena for a dataset too big for it.

A refresher writes Athena SQL over the curated tables and views (``orders``, ``ad_performance``).
The refresh pins each input table's snapshot before any query runs (:meth:`query.Catalog.pin`) and
records those snapshot ids; :class:`query.DuckDBEngine` reads exactly those snapshots, so the recorded
inputs are exactly what was read. Above a size
threshold (the input snapshots' Parquet bytes, ``topology.RefreshSettings.athena_threshold_bytes``)
:class:`query.AthenaEngine` runs the same SQL on Athena, reading the tables' current snapshots (Athena
cannot pin a view's tables): a commit that lands between pinning and querying is then read but not
recorded, so the next request refreshes again. Never the other way round: no commit is missed.

This module gives the engine's failures the refresh's types: SQL that cannot run is permanent
(the refresh fails and says why), an Athena query that did not finish is transient (SQS retries).
"""

from __future__ import annotations

import pyarrow as pa

from handlers.errors import PermanentError, TransientError
from query import errors as engine_errors
from query.athena import AthenaEngine
from query.local import DuckDBEngine


class RefreshQueryError(PermanentError):
    """A refresher's SQL cannot run on the lake's tables (a bug in the SQL, or a table it lacks)."""

    code = "RefreshQuery"


class AthenaQueryError(TransientError):
    """Athena could not finish a refresh's query (failed, cancelled, or timed out); retried."""

    code = "AthenaQuery"


class RefreshQueries:
    """A query engine as the refreshers call it (``sql -> pyarrow.Table``), its failures typed for the refresh."""

    def __init__(self, engine: DuckDBEngine | AthenaEngine) -> None:
        self._engine = engine
        #: ``duckdb`` or ``athena``: what the Dataset Models Updated event names.
        self.engine = engine.engine

    @property
    def local(self) -> DuckDBEngine | None:
        """The DuckDB engine it runs on (None on Athena): the report's engine reuses its computed views."""
        return self._engine if isinstance(self._engine, DuckDBEngine) else None

    def __call__(self, sql: str) -> pa.Table:
        try:
            return self._engine(sql)
        except engine_errors.AthenaQueryError as exc:
            raise AthenaQueryError(f"{exc}; the refresh will be retried") from exc
        except engine_errors.QueryError as exc:
            raise RefreshQueryError(f"refresh SQL failed on {self.engine}: {exc}") from exc
