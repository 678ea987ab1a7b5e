"""The staging sink pseudonymises what a pipeline writes: every table once, never twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analytics.base import SourceInfo, TableSpec
from analytics.generic import GenericPipeline
from analytics.personal import Pseudonymiser
from analytics.profile import PROFILE_TABLE_SPEC
from handlers.adapters.staging import StagingSink

KEY = b"k" * 32
SOURCE = SourceInfo(dataset="people", source_id="s1", key="raw/people/a.csv", ingest_date=dt.date(2026, 11, 1))


def reference(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:32]


def staged(sink: StagingSink, table: str) -> list[dict[str, object]]:
    sink.close_writers()
    return [row for path in sink.tables[table].files.values() for row in pq.read_table(path).to_pylist()]


def test_a_generic_file_is_staged_with_pseudonyms_and_its_profile_shows_no_values_of_them() -> None:
    csv = b"Email,First Name,Visits\nada@example.com,Ada,3\nGRACE@example.org,Grace,5\n"
    batches = pacsv.open_csv(pa.BufferReader(csv), convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    pipeline = GenericPipeline("people")
    with StagingSink(list(pipeline.tables(SOURCE)), personal=Pseudonymiser(KEY)) as sink:
        pipeline.run(iter(batches), SOURCE, sink)
        rows = staged(sink, "people")
        assert [(r["email"], r["first_name"], r["visits"]) for r in rows] == [
            (reference("ada@example.com"), reference("ada"), 3),
            (reference("grace@example.org"), reference("grace"), 5),
        ]
        profile = {r["column"]: r for r in staged(sink, PROFILE_TABLE_SPEC.name)}
        assert profile["email"]["min"] is None and profile["first_name"]["max"] is None
        assert profile["visits"]["min"] == "3"


def test_rows_derived_from_staged_rows_are_not_pseudonymised_twice() -> None:
    spec = TableSpec("contacts", "day", "test")
    scores = TableSpec("contacts_scores", "day", "scores of staged rows")
    with StagingSink([spec], personal=Pseudonymiser(KEY)) as sink:
        sink.write("contacts", pa.table({"customer_email": ["ada@example.com"], "day": [dt.date(2026, 1, 1)]}))
        back = sink.read_table("contacts")
        assert back is not None and back.column("customer_email").to_pylist() == [reference("ada@example.com")]
        sink.add_table(scores)  # a model's scores, keyed by the staged (already pseudonymised) column
        sink.write("contacts_scores", back.select(["customer_email", "day"]))
        assert [r["customer_email"] for r in staged(sink, "contacts_scores")] == [reference("ada@example.com")]
