"""The per-file stage without storage: a local file, the dataset's pipeline, a staging sink."""

from __future__ import annotations

import datetime as dt
import io

from analytics.base import QUARANTINE_REASON_CODE, SourceInfo
from analytics.registry import get_pipeline
from handlers.adapters.reader import SourceReader
from handlers.adapters.staging import Lineage, StagingSink
from handlers.stages.file import FileOutcome, stage_file

KEY = "raw/visits/march.csv"


def staged(text: str, tolerance: float, dataset: str = "visits") -> FileOutcome:
    pipeline = get_pipeline(dataset)
    pipeline.tolerance = tolerance
    now = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)
    source = SourceInfo(dataset, "s1", KEY, now.date(), {})
    reader = SourceReader(KEY, "csv", lambda: io.BytesIO(text.encode()))
    with StagingSink(list(pipeline.tables(source)), lineage=Lineage(KEY, "v1", "s1", now)) as sink:
        return stage_file(reader, pipeline, source, sink)


def test_a_file_within_its_tolerance_is_staged_with_its_unreadable_lines_quarantined() -> None:
    # GIVEN 9 good rows and a line with too many fields, under a tolerance of 20%
    outcome = staged("a,b\n" + "1,2\n" * 9 + "1,2,3,4\n", tolerance=0.2)
    # THEN it is accepted: its rows counted, the line quarantined with its reason, nothing refused
    assert outcome.refusal is None and outcome.quarantined is None
    assert (outcome.rows_in, outcome.rejected, dict(outcome.reasons)) == (10, 1, {"malformed_row": 1})
    assert (outcome.lines, outcome.read.format, outcome.read.delimiter) == (10, "csv", ",")
    assert outcome.process_ms is not None


def test_a_file_over_its_tolerance_is_refused_whole_with_every_row_quarantined() -> None:
    # GIVEN 5 good rows and 5 unreadable lines, under a tolerance of 20%
    outcome = staged("a,b\n" + "1,2\n" * 5 + "1,2,3,4\n" * 5, tolerance=0.2)
    # THEN the file is refused by its tolerance, its outputs are gone, and every row is quarantined
    refusal = outcome.refusal
    assert refusal is not None and refusal.code == "file_rejected" and refusal.cause is None
    assert refusal.message.startswith(f"{KEY}: 5 of 10 rows (50%) were rejected")
    assert outcome.quarantined is not None
    codes = outcome.quarantined.column(QUARANTINE_REASON_CODE).to_pylist()
    assert sorted(codes) == ["file_rejected"] * 5 + ["malformed_row"] * 5
    assert (outcome.rows_in, outcome.rejected, dict(outcome.reasons)) == (
        10,
        10,
        {"malformed_row": 5, "file_rejected": 5},
    )
    assert all(not staged.files for staged in outcome.sink.tables.values())


def test_a_file_that_cannot_be_read_is_refused_and_says_so_with_its_key() -> None:
    # GIVEN a header without rows
    outcome = staged("a,b\n", tolerance=0.2)
    # THEN it is refused as unreadable, naming the key; no rows were read, none quarantined
    refusal = outcome.refusal
    assert refusal is not None and refusal.code == "unreadable" and not refusal.whole_file
    assert refusal.error is refusal.cause and refusal.message.startswith(f"{KEY}: has a header (a, b) but no data rows")
    assert (outcome.rows_in, outcome.rejected, outcome.quarantined, outcome.process_ms) == (0, 0, None, None)
