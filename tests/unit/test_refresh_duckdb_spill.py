"""DuckDB in the refresh function spills where Lambda can write (/tmp), not to its read-only /var/task."""

from __future__ import annotations

import tempfile
from pathlib import Path

from handlers.stages.refresh_queries import RefreshQueries
from query.catalog import Catalog
from query.local import DuckDBEngine


def test_duckdb_spills_under_the_temporary_directory() -> None:
    # GIVEN the refresh's DuckDB engine with the function's memory limit
    queries = RefreshQueries(DuckDBEngine(Catalog(glue=None, database="lake_curated"), pinned={}, memory_limit_mb=256))
    # WHEN a query asks where it would spill
    result = queries("SELECT current_setting('temp_directory') AS spill")
    # THEN it is under the temporary directory, which Lambda lets the function write
    spill = Path(result.column("spill")[0].as_py())
    assert spill.is_relative_to(Path(tempfile.gettempdir()))
