"""The staging sink: partitions, row groups, widening mid-file, reading back."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from analytics.base import SourceInfo, TableSpec
from analytics.generic import GenericPipeline
from handlers.adapters.staging import NULL_PARTITION, Lineage, StagingSink, partition_value

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
        assert sink.tables["t"].rows == {"2026-01-01": 3, "2026-01-02": 2, NULL_PARTITION: 1}
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


def test_month_partitions_group_the_days_of_a_month_into_one_file() -> None:
    # GIVEN a table partitioned by month(date)
    spec = TableSpec("t", "date", "test", partition_transform="month")
    days = [dt.date(2026, 1, 31), dt.date(2026, 2, 1), dt.date(2026, 1, 1), dt.date(2026, 2, 28)]
    with StagingSink([spec]) as sink:
        # WHEN rows of four days in two months arrive
        sink.write("t", pa.table({"n": [1, 2, 3, 4], "date": days}))
        # THEN there is one staged file per month, and every row keeps its own date
        assert sink.tables["t"].rows == {"2026-01-01": 2, "2026-02-01": 2}
        back = sink.read_table("t")
        assert back is not None and sorted(back.column("date").to_pylist()) == sorted(days)


def test_every_staged_row_and_reject_names_its_source() -> None:
    # GIVEN a sink staging one source's rows
    landed = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    lineage = Lineage("raw/pay/a.csv", "v2", "abc123", landed)
    with StagingSink([TableSpec("t", "day", "test")], lineage=lineage) as sink:
        sink.write("t", pa.table({"n": [1, 2], "day": [dt.date(2026, 1, 1)] * 2}))
        sink.quarantine(pa.table({"n": ["x"], "_row_number": [3], "_reason_code": ["bad"], "_reason": ["bad"]}))
        # THEN rows and rejects carry the raw key, its version, the source id and when it landed
        for table in (sink.read_table("t"), sink.quarantine_table()):
            assert table is not None
            assert set(table.column("source_key").to_pylist()) == {"raw/pay/a.csv"}
            assert set(table.column("source_version").to_pylist()) == {"v2"}
            assert set(table.column("source_id").to_pylist()) == {"abc123"}
            assert set(table.column("ingested_at").to_pylist()) == {dt.datetime(2026, 3, 4, 5, 6, 7)}


def test_partition_values_truncate_dates_and_timestamps_like_iceberg() -> None:
    dates = pa.array([dt.date(2026, 5, 17), None], pa.date32())
    assert partition_value("month", dates).to_pylist() == [dt.date(2026, 5, 1), None]
    assert partition_value("year", dates).to_pylist() == [dt.date(2026, 1, 1), None]
    assert partition_value("identity", dates) is dates
