"""``lake maintain [TABLE ...]``: keep the lake's Iceberg tables from growing without bound.

Every source is its own commit, so a table collects small data files and snapshots. On AWS,
Glue's table optimizers (compaction, snapshot retention, orphan-file deletion) do the upkeep for
every table the processor creates; this command is for the stand-in (or, with ``--force``, a
one-off run against AWS). It:

* compacts: in each partition with at least ``--min-files`` small files (below three quarters of
  the table's ``write.target-file-size-bytes``), the files are read through the table and written
  again as few files, all partitions in one snapshot. The commit names the files it replaces, so
  it fails rather than resurrect rows when a writer replaced a source in between (pyiceberg
  checks that every replaced file still exists);
* expires snapshots older than ``--older-than`` beyond the newest ``--retain-last`` (the current
  snapshot, branches and tags are kept), then deletes the data and manifest files that only the
  expired snapshots referenced. ``FOR VERSION AS OF`` an expired snapshot fails afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lake.engine import LakeCatalog, TableRef, is_iceberg
from lake.target import Target

if TYPE_CHECKING:
    from pyiceberg.table import FileScanTask, Table
    from pyiceberg.table.snapshots import Snapshot

#: Marks the snapshots this command writes (``lake tables`` and readers can tell them apart).
MAINTENANCE_PROPERTY = "lake.maintenance"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    maintain = sub.add_parser(
        "maintain",
        parents=[common],
        help="compact small files and expire old snapshots of the Iceberg tables (Glue's optimizers do it on AWS)",
        description="Compact small data files and expire old snapshots of the lake's Iceberg tables. On AWS the "
        "stack's Glue table optimizers do this; the command changes nothing there unless --force.",
    )
    maintain.add_argument(
        "tables",
        nargs="*",
        metavar="TABLE",
        help="database.table, or a table of lake_curated (default: every Iceberg table of lake_curated and "
        "lake_quarantine)",
    )
    maintain.add_argument(
        "--older-than",
        type=duration,
        default=dt.timedelta(days=7),
        metavar="AGE",
        help="expire snapshots older than AGE, e.g. 7d, 12h, 30m, 0s (default: 7d)",
    )
    maintain.add_argument(
        "--retain-last",
        type=_at_least_one,
        default=5,
        metavar="N",
        help="always keep the newest N snapshots (default: 5)",
    )
    maintain.add_argument(
        "--min-files",
        type=_at_least_two,
        default=5,
        metavar="N",
        help="compact a partition once it has N small files (default: 5)",
    )
    maintain.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    maintain.add_argument("--force", action="store_true", help="on AWS, run the maintenance from here anyway")
    maintain.set_defaults(func=_maintain)


def duration(text: str) -> dt.timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` as a timedelta (argparse type)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age; write a number and a unit: 7d, 12h, 30m or 0s")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return dt.timedelta(**{unit: int(match.group(1))})


def _at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least {minimum}")
        return value

    return parse


_at_least_one = _at_least(1)
_at_least_two = _at_least(2)


@dataclass(frozen=True)
class Options:
    older_than: dt.timedelta
    retain_last: int
    min_files: int
    dry_run: bool


@dataclass(frozen=True)
class MaintenanceReport:
    """What maintaining one table did (or, on a dry run, would do)."""

    ref: TableRef
    files_before: int
    files_after: int
    partitions_compacted: int
    snapshots_before: int
    snapshots_after: int
    files_deleted: int
    dry_run: bool

    def line(self) -> str:
        would = "would " if self.dry_run else ""
        compaction = (
            f"{would}compact {self.partitions_compacted} partition(s): data files {self.files_before} → "
            f"{self.files_after}"
            if self.partitions_compacted
            else f"no partition to compact ({self.files_before} data files)"
        )
        expired = self.snapshots_before - self.snapshots_after
        expiry = (
            f"{would}expire {expired} snapshot(s): {self.snapshots_before} → {self.snapshots_after}, "
            f"{would}delete {self.files_deleted} file(s) only they referenced"
            if expired
            else f"no snapshot to expire ({self.snapshots_before} kept)"
        )
        return f"{self.ref}: {compaction}; {expiry}"


def _maintain(args: argparse.Namespace) -> int:
    target: Target = args.target()
    if not target.local and not args.force:
        print(
            f"On AWS, Glue's table optimizers compact, expire snapshots and delete orphan files of every table the "
            f"processor creates ({target.where}); nothing changed. Pass --force to run this maintenance from here."
        )
        return 0
    options = Options(args.older_than, args.retain_last, args.min_files, args.dry_run)
    catalog = LakeCatalog.of(target)
    for ref in _tables(catalog, target, args.tables):
        print(maintain_table(catalog, ref, options).line())
        sys.stdout.flush()
    return 0


def _tables(catalog: LakeCatalog, target: Target, names: list[str]) -> list[TableRef]:
    if names:
        refs = []
        for name in names:
            database, _, table = name.lower().rpartition(".")
            refs.append(TableRef(database or target.curated_database, table))
        return refs
    return [
        TableRef(database, str(entry["Name"]))
        for database in (target.curated_database, target.quarantine_database, target.ops_database)
        for entry in catalog.entries(database)
        if is_iceberg(entry)
    ]


def maintain_table(catalog: LakeCatalog, ref: TableRef, options: Options) -> MaintenanceReport:
    """Compact, then expire snapshots of Iceberg table ``ref``."""
    table = catalog.table(ref)
    groups = _small_file_groups(table, options.min_files)
    files_before = _data_file_count(table)
    rewritten = sum(len(tasks) for tasks in groups)
    files_after = files_before - rewritten + len(groups)  # estimated on a dry run: one file per partition
    if groups and not options.dry_run:
        _compact(table, groups)
        table = table.refresh()
        files_after = _data_file_count(table)
    snapshots_before = len(table.snapshots())
    expired = _expired(table, options)
    deleted = _unreferenced_files(table, expired)
    if expired and not options.dry_run:
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in expired]).commit()
        for path in sorted(deleted):
            table.io.delete(path)
    return MaintenanceReport(
        ref=ref,
        files_before=files_before,
        files_after=files_after,
        partitions_compacted=len(groups),
        snapshots_before=snapshots_before,
        snapshots_after=snapshots_before - len(expired),
        files_deleted=len(deleted),
        dry_run=options.dry_run,
    )


def _data_file_count(table: Table) -> int:
    return len(list(table.scan().plan_files())) if table.current_snapshot() is not None else 0


def _small_file_groups(table: Table, min_files: int) -> list[list[FileScanTask]]:
    """Per partition (and spec), the small files of the current snapshot, where there are enough."""
    if table.current_snapshot() is None:
        return []
    from handlers.adapters.table_properties import TARGET_FILE_SIZE_BYTES

    target_size = int(table.properties.get("write.target-file-size-bytes", TARGET_FILE_SIZE_BYTES))
    groups: dict[tuple[int, Any], list[FileScanTask]] = defaultdict(list)
    for task in table.scan().plan_files():
        # Files with row deletes against them are left to a writer that understands them.
        if task.file.file_size_in_bytes < target_size * 3 // 4 and not task.delete_files:
            groups[task.file.spec_id, task.file.partition].append(task)
    return [tasks for _, tasks in sorted(groups.items(), key=lambda kv: str(kv[0])) if len(tasks) >= min_files]


def _compact(table: Table, groups: list[list[FileScanTask]]) -> None:
    """Rewrite each group's files as one file (or a few, at the target size), in one snapshot."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    schema = table.schema()
    with table.transaction() as transaction:
        update = transaction.update_snapshot(snapshot_properties={MAINTENANCE_PROPERTY: "compaction"})
        with update.overwrite() as rewrite:
            for tasks in groups:
                rows = ArrowScan(table.metadata, table.io, schema, AlwaysTrue()).to_table(tasks)
                # pyiceberg has no rewrite API yet (0.12); its own writer makes the new files,
                # partitioned and sized by the table's spec and properties.
                for data_file in _dataframe_to_data_files(table.metadata, rows, table.io, uuid.uuid4()):
                    rewrite.append_data_file(data_file)
                for task in tasks:
                    rewrite.delete_data_file(task.file)


def _expired(table: Table, options: Options) -> list[Snapshot]:
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    cutoff = now_ms - int(options.older_than.total_seconds() * 1000)
    newest_first = sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    kept = {s.snapshot_id for s in newest_first[: options.retain_last]}
    kept |= {ref.snapshot_id for ref in table.metadata.refs.values()}  # main, branches, tags
    return [s for s in newest_first if s.snapshot_id not in kept and s.timestamp_ms < cutoff]


def _unreferenced_files(table: Table, expired: list[Snapshot]) -> set[str]:
    """Data files, manifests and manifest lists that only ``expired`` snapshots reference."""
    if not expired:
        return set()
    gone = {s.snapshot_id for s in expired}
    dropped: set[str] = set()
    kept: set[str] = set()
    for snapshot in table.snapshots():
        (dropped if snapshot.snapshot_id in gone else kept).update(_files_of(table, snapshot))
    return dropped - kept


def _files_of(table: Table, snapshot: Snapshot) -> set[str]:
    files = {snapshot.manifest_list}
    for manifest in snapshot.manifests(table.io):
        files.add(manifest.manifest_path)
        files.update(entry.data_file.file_path for entry in manifest.fetch_manifest_entry(table.io))
    return files
