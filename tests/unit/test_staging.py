"""The staging sink: partitions, row groups, widening mid-file, reading back."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from analytics.base import SourceInfo, TableSpec
from analytics.generic import GenericPipeline
from handlers.staging import HIVE_NULL_PARTITION, StagingSink

SOURCE = SourceInfo(dataset="pay", source_id="s1", key="raw/pay/a.csv", ingest_date=dt.date(2026, 11, 1))


def staged_rows(sink: StagingSink, table: str) -> list[dict[str, object]]:
    sink.close_writers()
    return [row for path in sink.tables[table].files.values() for row in pq.read_table(path).to_pylist()]


def test_rows_are_split_by_partition_value_whatever_their_order() -> None:
    spec = TableSpec("t", "day", "test")
    with StagingSink([spec]) as sink:
        days = [dt.date(2026, 1, 2), dt.date(2026, 1, 1), dt.date(2026, 1, 2), None, dt.date(2026, 1, 1)]
        sink.write("t", pa.table({"n": [1, 2, 3, 4, 5], "day": days}))
        sink.write("t", pa.table({"n": [6], "day": [dt.date(2026, 1, 1)]}))
        assert sink.tables["t"].rows == {"2026-01-01": 3, "2026-01-02": 2, HIVE_NULL_PARTITION: 1}
        back = sink.read_table("t")
        assert back is not None
        assert sorted(zip(back.column("n").to_pylist(), back.column("day").to_pylist(), strict=True)) == sorted(
            zip([1, 2, 3, 4, 5, 6], [*days, dt.date(2026, 1, 1)], strict=True)
        )


def test_decimals_after_whole_numbers_widen_the_column_instead_of_being_quarantined() -> None:
    # GIVEN a file whose first batch has whole amounts and a later batch decimals
    first = {"id": [str(i) for i in range(200_000)], "amount": [str(i % 50) for i in range(200_000)]}
    later = {"id": ["200000", "200001"], "amount": ["2.5", "x"]}
    pipeline = GenericPipeline("pay")
    with StagingSink(list(pipeline.tables(SOURCE))) as sink:
        # WHEN the generic pipeline stages it
        result = pipeline.run(iter([pa.record_batch(first), pa.record_batch(later)]), SOURCE, sink)
        rows = staged_rows(sink, "pay")
        # THEN the whole column is double, every number kept, only the non-number quarantined
        assert sink.tables["pay"].schema.field("amount").type == pa.float64()  # type: ignore[union-attr]
        assert len(rows) == 200_001
        assert sum(r["amount"] for r in rows) == sum(i % 50 for i in range(200_000)) + 2.5
        assert result.rows_rejected == 1
