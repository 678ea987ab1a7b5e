"""A file's outcome as a value: the event detail, the metrics and the ledger row are views of it."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema

from handlers.adapters.ledger import file_row
from handlers.outcome import (
    Failure,
    FileCompletion,
    ModelOutcome,
    QuarantineFacts,
    ReadFacts,
    RowCounts,
    SourceFacts,
    TableOutput,
)
from tests.conftest import SCHEMA

SOURCE = SourceFacts("lake-local", "raw/sales/march.csv", "v1", "e1", 2_000, "s1", "0055", "s3-event", None)


def refused() -> FileCompletion:
    return FileCompletion(
        event_key="0" * 32,
        change="unchanged",
        dataset="sales",
        source=SOURCE,
        processed_at="2026-12-06T14:00:00.000Z",
        outputs=(TableOutput("lake_curated", "sales", "sales", "s3://lake-local/curated/sales", 7, "day", 0, 0),),
        rows=RowCounts(input=10, rejected=10, lines=10, preamble=2),
        reasons={"malformed_row": 4, "file_rejected": 6},
        quarantine=QuarantineFacts("lake_quarantine.sales", "s3://lake-local/quarantine/sales", 8),
        models=(ModelOutcome("churn", "1", {"status": "failed", "error": "no table"}),),
        timings_ms={"process": 12.5, "total": 40.25},
        source_format="google_ads",
        export={"constant_channel": "google_ads"},
        read=ReadFacts("csv", "utf-16", "\t", 3, (), None),
        personal_data={"pseudonymised": {"quarantine": ["email"]}, "kept": [], "key_id": "0123456789ab"},
        error=Failure("ToleranceExceededError", "raw/sales/march.csv: 10 of 10 rows were rejected; fix the export"),
    )


def test_the_event_detail_follows_the_schema_and_reads_back_as_the_same_outcome() -> None:
    # GIVEN a refused file's outcome, every optional part present
    outcome = refused()
    # WHEN it is announced and a subscriber (or the ledger, or a replay) reads the JSON back
    detail = json.loads(json.dumps(outcome.event_detail()))
    # THEN the detail is valid, a failure, and parses back into the same value
    jsonschema.validate(detail, SCHEMA)
    assert detail["status"] == "failed" and detail["quarantine"]["rows"] == detail["rows"]["rejected"] == 10
    assert FileCompletion.from_detail(detail) == outcome
    assert FileCompletion.from_detail(detail).event_detail() == detail


def test_the_metrics_and_the_ledger_row_are_views_of_the_outcome() -> None:
    outcome = refused()
    assert [(m.name, m.unit, m.value) for m in outcome.metrics()] == [
        ("FilesFailed", "Count", 1),
        ("RowsIn", "Count", 10),
        ("RowsQuarantined", "Count", 10),
        ("ProcessingTime", "Milliseconds", 40.25),
    ]
    row = file_row(outcome, 1024, "req-1")
    # A refusal writes no rows, even where it committed (the key's earlier rows left the table).
    assert (row["status"], row["rows_in"], row["rows_written"], row["rows_quarantined"]) == ("failed", 10, 0, 10)
    assert json.loads(row["snapshot_ids"]) == {"lake_curated.sales": 7, "lake_quarantine.sales": 8}
    assert json.loads(row["stage_ms"]) == {"process": 12.5}
    assert (row["error_type"], row["billed_duration_ms"]) == ("ToleranceExceededError", 41)


def test_the_file_stage_and_its_outcome_import_without_pandas_or_scikit_learn() -> None:
    # The Lambda entry point reads outcomes of every record; the stage loads pandas with the first file.
    code = (
        "import sys, handlers.stages.file, handlers.outcome, handlers.process; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
