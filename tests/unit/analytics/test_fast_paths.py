"""The parsers' speed shortcuts give exactly what the plain computations they replace give (the
byte-level kernels themselves: test_kernels.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analytics import cleaning
from analytics.cleaning import _NULL_SPELLINGS, normalise_text, parse_number
from analytics.contract import duplicate_rows


def _reference_normalise(arr: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.is_in(trimmed, value_set=_NULL_SPELLINGS), pa.scalar(None, pa.string()), trimmed)


@pytest.mark.parametrize("seed", range(3))
def test_normalise_text_matches_trim_and_lookup(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = ["", " ", "a", " a", "a ", "\ta", "\u00a0a", "é", "-", "--", "N/A", "nan", "(not set)", "(x)", "n", "x"]
    for _ in range(300):
        k = int(rng.integers(1, 10))
        items = [None if rng.random() < 0.05 else str(rng.choice(pool)) for _ in range(k)]
        arr = pa.array(items, pa.string()).slice(int(rng.integers(0, k)))
        assert normalise_text(arr).equals(_reference_normalise(arr))


MONEY_POOLS = [
    ["$38.38", "$1,234.50", "-$5", "(12.50)", "12.5%", "--", "abc", "1,5", "129.90", "1e400", " $7 "],
    ["1,50", "2,75", "1.234,50", "3", "12,00", "1.234"],
]


@pytest.mark.parametrize("pool", MONEY_POOLS)
def test_money_parsed_per_distinct_value_equals_per_row(pool: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    arr = pa.array([None if rng.random() < 0.01 else str(v) for v in rng.choice(pool, 5000)], pa.string())
    by_value, by_value_fmt = parse_number(arr, currency=True)
    monkeypatch.setattr(cleaning, "_worth_dictionary", lambda text: False)
    by_row, by_row_fmt = parse_number(arr, currency=True)
    assert by_value.values.equals(by_row.values)
    assert np.array_equal(by_value.missing, by_row.missing) and np.array_equal(by_value.invalid, by_row.invalid)
    assert by_value_fmt.decimal_comma == by_row_fmt.decimal_comma
    assert by_value_fmt.currency is not None and by_row_fmt.currency is not None
    assert by_value_fmt.currency.equals(by_row_fmt.currency)


def test_duplicate_rows_unique_key_shortcut_agrees() -> None:
    table = pa.table({"k": [f"o{i:04d}" for i in range(200)], "v": list(range(200))})
    plain = duplicate_rows(table, ["k"])
    shortcut = duplicate_rows(table, ["k"], key_unique=True)
    assert np.array_equal(plain[0], shortcut[0]) and plain[1:] == shortcut[1:] == (0, 0)
