"""Naming the data file behind a read DuckDB could not finish (``query.scan.damaged_fragment``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from query.scan import damaged_fragment


def files(tmp_path: Path) -> tuple[ds.Dataset, Path]:
    """Two data files; the second with its pages overwritten behind a sound footer."""
    sound, damaged = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for path in (sound, damaged):
        pq.write_table(pa.table({"x": list(range(1000)), "y": [str(i) for i in range(1000)]}), path)
    body = damaged.read_bytes()
    pages_end = len(body) - 8 - int.from_bytes(body[-8:-4], "little")
    damaged.write_bytes(body[:4] + b"\xff" * (pages_end - 4) + body[pages_end:])
    return ds.dataset([str(sound), str(damaged)], format="parquet"), damaged


def test_a_decoding_error_names_the_file_whose_pages_do_not_read(tmp_path: Path) -> None:
    dataset, damaged = files(tmp_path)
    found = damaged_fragment(
        dataset, "Invalid Input Error: reading the stream failed: Deserializing page header failed."
    )
    assert found is not None
    assert found.startswith(f"{damaged}: ")


def test_a_failed_request_blames_no_file(tmp_path: Path) -> None:
    dataset, _ = files(tmp_path)
    error = "IO Error: AWS Error NETWORK_CONNECTION during GetObject operation on curated/t/data/a.parquet"
    assert damaged_fragment(dataset, error) is None
