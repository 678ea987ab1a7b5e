"""The shared contract machinery: header matching, the background writer, deduplication."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from analytics.base import DateHistory, SourceInfo
from analytics.contract import BackgroundWriter, Column, Contract, deduplicate, normalise_header
from analytics.errors import ContractError

from .conftest import CollectingSink

CONTRACT = Contract(
    "demo",
    (
        Column("spend", "number", aliases=("Amount Spent (USD)", "Cost")),
        Column("note", "text", required=False),
    ),
)


def test_headers_match_ignoring_case_spaces_and_punctuation() -> None:
    assert normalise_header(" Amount Spent (USD) ") == "amount_spent_usd"
    assert CONTRACT.resolve(["AMOUNT SPENT (usd)", "x"]) == {"spend": "AMOUNT SPENT (usd)"}
    # the canonical name wins over an alias when a file has both
    assert CONTRACT.resolve(["Cost", "Spend"]) == {"spend": "Spend"}
    with pytest.raises(ContractError, match=r"missing required column\(s\) spend.*'Cost'"):
        CONTRACT.resolve(["note"])


class FailingSink(CollectingSink):
    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        if table == "bad":
            raise OSError("disk full")
        super().write(table, data)


def test_background_writes_keep_their_order_and_report_failures() -> None:
    sink = FailingSink()
    with BackgroundWriter(sink) as writer:
        for name in ("a", "b", "c"):
            writer.write(name, pa.table({"x": [1]}))
    assert list(sink.written) == ["a", "b", "c"]
    with pytest.raises(OSError, match="disk full"), BackgroundWriter(FailingSink()) as writer:
        writer.write("bad", pa.table({"x": [1]}))


def test_deduplicate_groups_rows_by_partition_and_keeps_the_last() -> None:
    table = pa.table({"k": ["a", "b", "a", "c"], "v": [1, 2, 3, 4]})
    out, exact, superseded = deduplicate(table, ["k"], partition_code=np.array([2, 1, 2, 1]))
    assert out.column("v").to_pylist() == [2, 4, 3]  # partition 1 first, file order inside
    assert (exact, superseded) == (0, 1)


def test_the_tolerance_rule_refuses_only_above_the_share_and_reads_it_from_settings() -> None:
    from analytics.contract import Tolerance
    from analytics.errors import SettingsError

    tolerance = Tolerance.from_settings({"tolerance": 0.25}, "orders")
    # exactly the share is tolerated, one row more is not; an empty file is never refused
    assert not tolerance.exceeded(25, 100)
    assert tolerance.exceeded(26, 100)
    assert not tolerance.exceeded(0, 0)
    assert Tolerance.from_settings({}, "orders").share == 0.20
    assert "26 of 100 rows (26%)" in tolerance.refusal(26, 100, {"invalid_date": 20, "missing_value": 6})
    # a share just above the tolerance is never rounded onto it
    assert "(20.1%) were rejected, more than the dataset's tolerance of 20%" in Tolerance(0.2).refusal(201, 1000, {})
    assert "tolerance of 2.5%" in Tolerance(0.025).refusal(3, 100, {})
    for bad in (1.5, -0.1, "20%", True):
        with pytest.raises(SettingsError, match=r"settings/orders.json: tolerance must be a share between 0 and 1"):
            Tolerance.from_settings({"tolerance": bad}, "orders")


def _source(
    settings: dict[str, object] | None = None, history: DateHistory | None = None
) -> tuple[SourceInfo, list[int]]:
    """A source whose export-shape history answers ``history``, and a list that counts its lookups."""
    looked_up: list[int] = []

    def date_history() -> DateHistory:
        looked_up.append(1)
        return history or DateHistory()

    return SourceInfo("demo", "s1", "raw/demo/a.csv", date(2026, 1, 1), settings or {}, date_history), looked_up


PARSED = Contract(
    "demo",
    (
        Column("day", "date"),
        Column("booked", "date", required=False, date_order_setting=None, follows_history=False),
        Column("channel", "label", lower=True),
        Column("currency", "label", required=False),
        Column("spend", "number", currency=True),
        Column("clicks", "integer"),
        Column("converted", "flag"),
        Column("order_id", "id", required=False),
    ),
)


def test_each_column_is_parsed_as_its_kind_and_options_declare() -> None:
    # GIVEN a file whose columns a contract declares, with a DMY date order in the settings
    source, _ = _source({"date_order": "DMY"})
    columns = {
        "day": pa.array(["03/04/2026", "05/04/2026"]),
        "booked": pa.array(["03/04/2026", "2026-04-05"]),
        "channel": pa.array(["Google  Ads", "META"]),
        "currency": pa.array(["Usd", "EUR"]),
        "spend": pa.array(["$1,234.50", "7,00 €"]),
        "clicks": pa.array(["12", "1.5"]),
        "converted": pa.array(["yes", "0"]),
        "order_id": pa.array(["o2", "o1"]),
    }
    # WHEN the contract parses them
    parsed = PARSED.parse(columns, source, encoded=("channel",), hashed=("order_id",))
    # THEN each kind has its parser: dates follow the setting unless the column opts out of it
    assert parsed["day"].values.to_pylist() == [date(2026, 4, 3), date(2026, 4, 5)]
    assert parsed["day"].date_decision is not None and parsed["day"].date_decision.basis == "setting date_order"
    assert parsed["booked"].values.to_pylist() == [date(2026, 3, 4), date(2026, 4, 5)]
    # labels are lower-cased only where declared; money keeps its currency where declared
    assert parsed["channel"].values.to_pylist() == ["google ads", "meta"]
    assert parsed["currency"].values.to_pylist() == ["Usd", "EUR"]
    assert parsed["spend"].number_format.currency is not None
    assert parsed["spend"].number_format.currency.to_pylist() == ["USD", "EUR"]
    assert parsed["clicks"].invalid.tolist() == [False, True]
    assert parsed["converted"].values.to_pylist() == [True, False]
    # and the key helpers asked for come along
    assert parsed["channel"].encoded is not None and parsed["channel"].encoded.dictionary.to_pylist() == [
        "google ads",
        "meta",
    ]
    assert parsed["order_id"].hashes is not None and parsed["order_id"].distinct
    assert parsed["currency"].encoded is None and parsed["currency"].hashes is None


def test_dates_borrow_the_order_history_proved_unless_the_column_opts_out() -> None:
    proved = DateHistory("DMY", "raw/demo/old.csv", None, "3 value(s) with a first part above 12")
    source, looked_up = _source(history=proved)
    parsed = PARSED.parse({"day": pa.array(["03/04/2026"]), "booked": pa.array(["03/04/2026"])}, source)
    assert parsed["day"].values.to_pylist() == [date(2026, 4, 3)]
    assert parsed["booked"].values.to_pylist() == [date(2026, 3, 4)]  # US default, history never read
    assert looked_up == [1]


def test_undeclared_columns_and_options_that_do_not_fit_the_kind_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="demo contract declares no column"):
        PARSED.parse({"nope": pa.array(["x"])}, _source()[0])
    with pytest.raises(ValueError, match="column spend: lower=True applies to text, label and id columns"):
        Column("spend", "number", lower=True)
    with pytest.raises(ValueError, match="column day: currency=True applies to number columns"):
        Column("day", "date", currency=True)
