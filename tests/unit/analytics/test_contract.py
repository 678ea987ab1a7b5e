"""The shared contract machinery: header matching, the background writer, deduplication."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

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
    for bad in (1.5, -0.1, "20%", True):
        with pytest.raises(SettingsError, match=r"settings/orders.json: tolerance must be a share between 0 and 1"):
            Tolerance.from_settings({"tolerance": bad}, "orders")
