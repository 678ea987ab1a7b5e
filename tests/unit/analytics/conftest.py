"""Fixtures for the analytics unit tests: an in-memory sink (a fake, not a mock) and CSV runners."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from analytics.base import Pipeline, PipelineResult, SourceInfo, TableSpec


class CollectingSink:
    """Keeps every table written and every quarantined row in memory, like the staging sink."""

    def __init__(self) -> None:
        self.written: dict[str, list[pa.Table]] = {}
        self.rejected: list[pa.Table] = []

    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        self.written.setdefault(table, []).append(data if isinstance(data, pa.Table) else pa.Table.from_batches([data]))

    def quarantine(self, rows: pa.Table | pa.RecordBatch) -> None:
        self.rejected.append(rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows]))

    def table(self, name: str) -> pa.Table:
        return pa.concat_tables(self.written[name])

    def quarantined(self) -> pa.Table:
        return pa.concat_tables(self.rejected, promote_options="permissive")

    @property
    def quarantined_rows(self) -> int:
        return sum(t.num_rows for t in self.rejected)


def source_for(dataset: str, settings: Mapping[str, Any] | None = None) -> SourceInfo:
    return SourceInfo(dataset, f"src-{dataset}", f"raw/{dataset}/file.csv", date(2024, 6, 1), dict(settings or {}))


def csv_batches(text: str, block_size: int | None = None) -> list[pa.RecordBatch]:
    """The CSV as the handler reads it: every column a string, in record batches."""
    header = pacsv.read_csv(io.BytesIO(text.split("\n", 1)[0].encode() + b"\n")).column_names
    reader = pacsv.open_csv(
        io.BytesIO(text.encode()),
        read_options=pacsv.ReadOptions(block_size=block_size or 1 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return list(reader)


RunCsv = Callable[..., tuple[PipelineResult, CollectingSink]]


@pytest.fixture
def run_csv() -> RunCsv:
    """Run a pipeline over CSV text; returns the result and the sink."""

    def run(
        pipeline: Pipeline, text: str, settings: Mapping[str, Any] | None = None, **kw: Any
    ) -> tuple[PipelineResult, CollectingSink]:
        sink = CollectingSink()
        result = pipeline.run(iter(csv_batches(text, **kw)), source_for(pipeline.dataset, settings), sink)
        return result, sink

    return run


def assert_matches_spec(table: pa.Table, spec: TableSpec) -> None:
    assert spec.schema is not None
    assert table.schema.equals(spec.schema), f"{spec.name}: {table.schema} != {spec.schema}"
    assert spec.partition_column in table.column_names
