"""Every speed kernel gives exactly what the plain pyarrow.compute / pandas / numpy call it stands in
for gives, on values chosen to hit the edges: empty strings, nulls, non-ASCII bytes, sliced arrays."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analytics import _kernels as k

TEXT_POOL = ["", " ", "a", " a", "a ", "\ta", "a\n", "\u00a0a", "é", "-5", "(1)", "1%", "x-y", "ab(", "%", "T", "a b"]


def _arrays(seed: int, pool: list[str], count: int = 300, nulls: float = 0.05) -> list[pa.Array]:
    """Small string arrays from ``pool``, some with nulls, most sliced (a non-zero buffer offset)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for _ in range(count):
        n = int(rng.integers(1, 10))
        items = [None if rng.random() < nulls else str(rng.choice(pool)) for _ in range(n)]
        arrays.append(pa.array(items, pa.string()).slice(int(rng.integers(0, n))))
    return arrays


def _mask(arr: pa.Array) -> list[bool]:
    return [bool(v) for v in pc.fill_null(arr, False).to_pylist()]


@pytest.mark.parametrize("nulls", [0.0, 0.1])
def test_trim_whitespace_equals_utf8_trim_whitespace(nulls: float) -> None:
    for arr in _arrays(0, TEXT_POOL, nulls=nulls):
        assert k.trim_whitespace(arr).equals(pc.utf8_trim_whitespace(arr))


def test_null_token_candidates_cover_every_token_and_refuse_values_to_trim() -> None:
    tokens = ["", "-", "--", "n/a", "NA", "null"]
    start = k.first_bytes(tokens)
    for arr in _arrays(1, [*TEXT_POOL, *tokens], nulls=0.0):
        candidates = k.null_token_candidates(arr, start)
        if not pc.utf8_trim_whitespace(arr).equals(arr):
            assert candidates is None
        elif candidates is not None:
            is_token = np.array(_mask(pc.is_in(arr, value_set=pa.array(tokens))), dtype=bool)
            assert not (is_token & ~candidates).any()


@pytest.mark.parametrize("nulls", [0.0, 0.1])
def test_byte_scans_equal_substring_kernels(nulls: float) -> None:
    for arr in _arrays(2, TEXT_POOL, nulls=nulls):
        expected = np.logical_or(_mask(pc.match_substring(arr, "-")), _mask(pc.match_substring(arr, "%")))
        assert k.rows_with(arr, "-%").tolist() == expected.tolist()
        assert k.rows_at_edge(arr, "(", last=False).tolist() == _mask(pc.starts_with(arr, "("))
        assert k.rows_at_edge(arr, "%", last=True).tolist() == _mask(pc.ends_with(arr, "%"))
        spaced = pc.or_(pc.match_substring(arr, " "), pc.match_substring(arr, "T"))
        assert k.may_hold_time(arr) == bool(pc.any(spaced).as_py())


def test_date_part_matches_split_on_mixed_values() -> None:
    rng = np.random.default_rng(0)
    pool = ["2024-01-31 13:45:00", "2024-01-31T13:45", "not a date", "", "2024-01-31", "2024-01-3", "x T y", "ab"]
    for _ in range(500):
        n = int(rng.integers(1, 8))
        arr = pa.array([str(v) for v in rng.choice(pool, n)]).slice(int(rng.integers(0, n)))
        assert k.date_part(arr).equals(k.split_date_part(arr))


def test_factorize_ints_matches_pandas() -> None:
    rng = np.random.default_rng(0)
    for dtype in (np.int64, np.int32, np.uint64, np.int16):
        for high in (3, 1000, 2**40):
            values = rng.integers(0, min(high, np.iinfo(dtype).max), 500).astype(dtype)
            codes, uniques = k.factorize_ints(values)
            expected_codes, expected_uniques = pd.factorize(values)
            assert np.array_equal(codes, expected_codes) and np.array_equal(uniques, expected_uniques)


def test_stable_order_matches_argsort() -> None:
    values = np.random.default_rng(0).integers(600, 630, 5000)
    assert np.array_equal(k.stable_order(values), np.argsort(values, kind="stable"))


def _same_groups(codes: np.ndarray, reference: np.ndarray) -> bool:
    """Whether two labellings split the rows alike (numbered by first appearance, they are equal)."""
    return bool(np.array_equal(pd.factorize(codes)[0], pd.factorize(reference)[0]))


def _typed_table(seed: int, n: int = 400) -> pa.Table:
    rng = np.random.default_rng(seed)

    def some(values: list[object]) -> list[object]:
        return [None if rng.random() < 0.1 else values[int(i)] for i in rng.integers(0, len(values), n)]

    return pa.table(
        {
            "text": pa.array(some(["a", "b", "é", "", "x" * 70, "x" * 71, "y" * 200, "y" * 201]), pa.string()),
            "number": pa.array(some([1.5, 2.0, -0.0, 3.25]), pa.float64()),
            "count": pa.array(some([1, 2, 3, 2**40]), pa.int64()),
            "day": pa.array(some([date(2026, 1, 1), date(2026, 1, 2)]), pa.date32()),
            "flag": pa.array(some([True, False]), pa.bool_()),
        }
    )


@pytest.mark.parametrize("seed", range(3))
def test_row_codes_group_like_pandas_groupby(seed: int) -> None:
    table = _typed_table(seed)
    for columns in (["text"], ["number", "count"], ["text", "number", "count", "day", "flag"]):
        reference = table.to_pandas().groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
        assert _same_groups(k.row_codes(table, columns), reference)


@pytest.mark.parametrize("seed", range(3))
def test_hashes_tell_values_apart_as_the_values_do(seed: int) -> None:
    table = _typed_table(seed).slice(7)
    for name in table.column_names:
        values = table.column(name).combine_chunks()
        reference = pd.factorize(pd.Series(values.to_pylist(), dtype=object), use_na_sentinel=False)[0]
        assert _same_groups(k.column_hashes(values), reference), name
    rows = table.to_pandas().groupby(table.column_names, dropna=False, sort=False).ngroup().to_numpy()
    assert _same_groups(k.row_hashes(table), rows)
