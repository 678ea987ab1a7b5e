"""query/fileio.py: Iceberg's own files are written in one go and read once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from query.fileio import LakeFileIO, RecentFiles


def test_a_metadata_file_written_knows_its_length_and_is_read_again_from_memory(tmp_path: Path) -> None:
    io = LakeFileIO()
    location = f"file://{tmp_path}/00001-a.metadata.json"
    output = io.new_output(location)
    # WHEN pyiceberg writes a metadata file (it asks for no overwrite: the name is new)
    with output.create(overwrite=False) as stream:
        stream.write(b'{"format-version": 2')
        stream.write(b"}")
    # THEN the file holds every write, and its length needs no question to the store
    assert (tmp_path / "00001-a.metadata.json").read_bytes() == b'{"format-version": 2}'
    assert len(output) == 21
    # AND a later read in this process comes from memory: the file never changes
    (tmp_path / "00001-a.metadata.json").unlink()
    with io.new_input(location).open() as stream:
        assert stream.read() == b'{"format-version": 2}'


def test_a_file_whose_writing_failed_is_neither_written_nor_kept(tmp_path: Path) -> None:
    io = LakeFileIO()
    location = f"file://{tmp_path}/m-half.avro"
    output = io.new_output(location)
    with pytest.raises(RuntimeError), output.create() as stream:
        stream.write(b"half")
        raise RuntimeError("the writer failed")
    assert not (tmp_path / "m-half.avro").exists()
    with pytest.raises(FileNotFoundError):
        io.new_input(location).open()
    # and a stream closed takes no more writes (pyarrow's would refuse them too)
    with output.create() as stream:
        stream.write(b"whole")
    with pytest.raises(ValueError, match="closed"):
        stream.write(b"more")
    assert (tmp_path / "m-half.avro").read_bytes() == b"whole"


def test_a_deleted_file_is_gone_from_memory_too(tmp_path: Path) -> None:
    # pyiceberg deletes the files of a commit that failed, and expiry deletes old ones: a later read
    # must fail as it would from the store, not find them in memory
    io = LakeFileIO()
    location = f"file://{tmp_path}/snap-1.avro"
    with io.new_output(location).create() as stream:
        stream.write(b"manifest list")
    io.delete(location)
    with pytest.raises(FileNotFoundError):
        io.new_input(location).open()


def test_a_manifest_read_once_is_kept_and_a_data_file_is_not(tmp_path: Path) -> None:
    io = LakeFileIO()
    (tmp_path / "m1.avro").write_bytes(b"manifest")
    (tmp_path / "d1.parquet").write_bytes(b"data")
    with io.new_input(f"file://{tmp_path}/m1.avro").open() as stream:
        assert stream.read() == b"manifest"
    with io.new_input(f"file://{tmp_path}/d1.parquet").open() as stream:
        assert stream.read() == b"data"
    (tmp_path / "m1.avro").unlink()
    (tmp_path / "d1.parquet").unlink()
    with io.new_input(f"file://{tmp_path}/m1.avro").open() as stream:
        assert stream.read() == b"manifest"
    # a data file can be large and is read by a scan's own code: always from the store
    with pytest.raises(FileNotFoundError):
        io.new_input(f"file://{tmp_path}/d1.parquet").open()


def test_a_data_file_is_still_written_over_when_pyiceberg_overwrites_it(tmp_path: Path) -> None:
    io = LakeFileIO()
    location = f"file://{tmp_path}/d.parquet"
    for body in (b"one", b"two"):
        with io.new_output(location).create(overwrite=True) as stream:
            stream.write(body)
    assert (tmp_path / "d.parquet").read_bytes() == b"two"
    assert len(io.new_input(location)) == 3


def test_the_files_kept_are_the_most_recently_used_within_the_limit() -> None:
    recent = RecentFiles(limit=12)
    recent.put("a", b"aaa")
    recent.put("b", b"bbb")
    recent.put("c", b"ccc")
    assert recent.get("a") == b"aaa"  # a is now the most recent
    recent.put("d", b"ddd")  # 12 bytes in all: still room
    recent.put("e", b"eee")  # 15: the least recently used (b) goes
    assert recent.get("b") is None
    assert [recent.get(k) for k in "acde"] == [b"aaa", b"ccc", b"ddd", b"eee"]
    # a file larger than a quarter of the limit is never kept: it would push out everything else
    recent.put("big", b"1234")
    assert recent.get("big") is None
