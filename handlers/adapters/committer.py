"""One committer per table at a time: the files many workers stage land in grouped commits.

A worker that staged and uploaded a file's data files for a table describes its change as a
**commit intent** (the table, the data files, the source keys whose rows the commit removes first,
the schema the files were written with) and hands it to the table's committer:

* It tries the table's **commit lease** (``committer#<database>.<table>`` in the idempotency table,
  a conditional write with an expiry). With the lease it is the committer: it lists the intents
  others left under ``<table location>/intents/pending/`` and commits them with its own in **one
  transaction**: ``delete(source_key IN keys)`` of the keys they replace or remove, plus
  ``add_files`` of all their files; then, while the lease lasts, what landed meanwhile. Each file's
  rows still appear atomically with the removal of its key's old rows, and the table takes one
  commit for the group instead of one per file.
* Without the lease it writes its intent under ``pending/``, flags it on the lease record (a count
  the holder reset when it took the lease), and waits for the committer at work. A holder lists
  pending intents only when there may be some: the record it took over counted flags, or was a lease
  that expired instead of being given back. Before giving the lease back it commits what was flagged
  meanwhile (while half the lease is left; flags it leaves tell the next holder to list). So a file
  on an idle table costs the lease's two writes and no listing, and an intent flagged during a
  commit does not wait for its own worker.
* Each intent learns its snapshot id: the committer's own from its commit, the others' from a
  ``done`` marker it writes beside their intent (a waiting worker polls for it: observed state, never
  a guessed delay, and tries the lease now and then, in case its intent was missed). The completion
  event goes out after the commit and carries that snapshot.

Exactly once: the snapshot summary of a group names its intents (``lake.intents``). Before every
attempt the committer reloads the table and skips intents a snapshot already holds, and the catalog
swap is conditional on the version it read (Glue ``VersionId``; pyiceberg's own re-apply is off). So
a committer that lost its lease (a zombie), a commit whose response was lost, or a committer killed
between its commit and its markers can never commit an intent twice: whoever comes next finds the
intent in a snapshot and reports that snapshot.

An intent from a raw key's worker is committed only while that worker still holds the key's lease
(``source#…``): a worker that died leaves an intent nobody waits for, and its message is delivered
again; committing that intent later could put an older version back over a newer one, so it is
abandoned instead. A file whose schema no longer matches the table (another intent widened a column
meanwhile) is refused back to its worker, whose message is retried against the new schema.

Without coordination (a tool, a benchmark, the refresh's model tables) :class:`DirectCommitter`
commits each intent at once, through the same transaction code.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

import topology
from handlers.errors import CommitConflictError, TableChangedError

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

logger = logging.getLogger(__name__)
# A group's delete names every key it replaces; a key new to the table matches no row, as expected.
warnings.filterwarnings("ignore", message="Delete operation did not match any records", category=UserWarning)

SOURCE_KEY = "source_key"
#: Snapshot summary property naming the intents a snapshot holds (comma-separated ids).
INTENTS_PROPERTY = "lake.intents"
#: Record prefix of a table's commit lease in the idempotency table.
COMMITTER_RECORD_PREFIX = "committer#"
#: The lease record's count of intents flagged as pending since its holder took it (or since the
#: last holder let go): a holder lists pending intents only when there may be some.
PENDING_ATTRIBUTE = "pending"
#: Intents committed in one transaction at most (the rest wait for the next group).
MAX_GROUP = 200
#: Snapshots looked through for intents already committed (a group's snapshots are its newest).
RECENT_SNAPSHOTS = 200
#: A waiting worker's first look at its marker (and at the lease), after writing its intent. It waits
#: because a holder is at work, whose group commit takes longer than this (pending intents are listed
#: before it): looking sooner finds nothing, and every look is a request to the stand-in or to S3.
FIRST_LOOK_SECONDS = 0.25
#: Longest wait between two looks (each one 1.5 times longer than the one before).
POLL_SECONDS = 1.0
#: A waiting worker tries the lease every third look (and at once when flagging its intent finds the
#: lease free): for an intent its holder did not commit before letting go, or a holder that died.
LEASE_EVERY = 3
#: Groups a committer commits while it holds the lease (what landed during the previous one).
DRAIN_ROUNDS = 5
#: Attempts at one group's commit when other writers (schema changes, maintenance) move the table.
COMMIT_ATTEMPTS = 8

#: A data file's footer sent along with its intent at most (a group reads up to MAX_GROUP intents at
#: once); a larger one is read from the file by the committer. A footer is a few kilobytes for the
#: lake's files: one row group of some tens of columns.
MAX_FOOTER_BYTES = 64 * 1024
#: (the file's type, the table's current type) that Iceberg reads without rewriting the file.
_PROMOTIONS = {("int", "long"), ("float", "double")}


@dataclass(frozen=True)
class Holder:
    """The raw key's lease a worker holds while its intent is pending."""

    bucket: str
    key: str
    owner: str


@dataclass(frozen=True)
class Footer:
    """A data file's length and Parquet footer, as its writer knows them: the committer builds the
    file's manifest entry from them instead of reading the file back (a HEAD and a GET or two each,
    on the one path of a table that runs one commit at a time)."""

    size: int
    #: The footer as a Parquet file of no rows (pyarrow's ``FileMetaData.write_metadata_file``).
    metadata: bytes

    @classmethod
    def of(cls, path: Path) -> Footer | None:
        """The footer of the local file ``path`` (about to be uploaded); None when it is too large to
        send along (:data:`MAX_FOOTER_BYTES`: many columns times many row groups), and the committer
        reads it from the file instead."""
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.read_metadata(path).write_metadata_file(sink)
        if sink.tell() > MAX_FOOTER_BYTES:
            return None
        return cls(path.stat().st_size, sink.getvalue().to_pybytes())


class _FooterFile:
    """What pyiceberg's ``parquet_file_to_data_file`` reads of a data file: its length and footer."""

    def __init__(self, footer: Footer) -> None:
        self._footer = footer

    def __len__(self) -> int:
        return self._footer.size

    def open(self, seekable: bool = True) -> pa.NativeFile:
        return pa.BufferReader(self._footer.metadata)


class _FooterIO:
    """The file IO ``parquet_file_to_data_file`` is given: the intents' footers, never S3."""

    def __init__(self, footers: Mapping[str, Footer]) -> None:
        self._footers = footers

    def new_input(self, location: str) -> _FooterFile:
        return _FooterFile(self._footers[location])


@dataclass(frozen=True)
class Intent:
    """One worker's change to one table: files to add and source keys whose rows go first."""

    database: str
    table: str
    #: ``s3://bucket/prefix/table``: where the table lives, and under it its intents.
    location: str
    files: tuple[str, ...] = ()
    #: Path → length and footer of those of ``files`` its writer described (every file, from this
    #: version on; an intent left pending by an earlier version has none, and its files are read).
    footers: dict[str, Footer] = field(default_factory=dict)
    deletes: tuple[str, ...] = ()
    #: The schema (with column docs) the files were written with; None for a removal only.
    schema: pa.Schema | None = None
    summary: dict[str, str] = field(default_factory=dict)
    holder: Holder | None = None
    #: 48 random bits: short, as every snapshot summary of a group lists its ids; a new id meets one of
    #: the ~40,000 a committer compares it with (RECENT_SNAPSHOTS x MAX_GROUP) once in ~7 billion.
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.table}"

    def to_json(self) -> bytes:
        body = {
            "id": self.id,
            "database": self.database,
            "table": self.table,
            "location": self.location,
            "files": list(self.files),
            "footers": {p: [f.size, base64.b64encode(f.metadata).decode()] for p, f in self.footers.items()},
            "deletes": list(self.deletes),
            "schema": base64.b64encode(self.schema.serialize().to_pybytes()).decode() if self.schema else None,
            "summary": self.summary,
            "holder": [self.holder.bucket, self.holder.key, self.holder.owner] if self.holder else None,
            "created": self.created,
        }
        return json.dumps(body).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Intent:
        body = json.loads(data)
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(body["schema"]))) if body["schema"] else None
        holder = Holder(*body["holder"]) if body["holder"] else None
        return cls(
            database=body["database"],
            table=body["table"],
            location=body["location"],
            files=tuple(body["files"]),
            footers={p: Footer(size, base64.b64decode(text)) for p, (size, text) in body.get("footers", {}).items()},
            deletes=tuple(body["deletes"]),
            schema=schema,
            summary=dict(body["summary"]),
            holder=holder,
            id=body["id"],
            created=float(body["created"]),
        )


@dataclass(frozen=True)
class Lease:
    """A table's commit lease, taken."""

    owner: str
    #: Whether intents may be pending: a waiting worker flagged one since the last holder let go (or
    #: the last holder let go with flags it had no time for), or the last holder's lease expired
    #: instead (it may have died with intents listed). Otherwise the holder commits its own intent
    #: without listing.
    pending: bool
    taken: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Outcome:
    """What became of an intent: committed in a snapshot, or refused with the reason."""

    #: committed | abandoned | refused | outdated (checked against a table that has changed since: a
    #: column widened, which never narrows back, or the table dropped: refused, never committed later)
    status: str
    snapshot_id: int | None = None
    message: str = ""

    def to_json(self) -> bytes:
        return json.dumps({"status": self.status, "snapshot_id": self.snapshot_id, "message": self.message}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Outcome:
        body = json.loads(data)
        return cls(body["status"], body.get("snapshot_id"), body.get("message", ""))


class Committer(Protocol):
    def commit(self, table: Table, intent: Intent, *, fresh: bool = True) -> Outcome:
        """Commit ``intent`` to ``table``, alone or with others; its outcome. ``fresh`` false: the table
        may be behind the catalog (a process's recent copy), and is reloaded before a commit is built on it."""
        ...


def _in_keys(keys: Sequence[str]) -> Any:
    """``source_key IN keys`` (pyiceberg's expression; its stubs mistype the constructors)."""
    from pyiceberg.expressions import EqualTo, In

    if len(keys) == 1:
        return EqualTo(SOURCE_KEY, keys[0])  # type: ignore[call-arg, arg-type]
    return In(SOURCE_KEY, set(keys))  # type: ignore[call-arg, arg-type]


def committed_intents(table: Table) -> dict[str, int]:
    """Intent id → snapshot id, for the intents the table's recent snapshots hold."""
    found: dict[str, int] = {}
    for snapshot in table.metadata.snapshots[-RECENT_SNAPSHOTS:]:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        for intent_id in filter(None, summary.get(INTENTS_PROPERTY, "").split(",")):
            found[intent_id] = snapshot.snapshot_id
    return found


def _group_summary(intents: Sequence[Intent]) -> dict[str, str]:
    """Snapshot properties of a group: one intent's own, or what the intents share and how many."""
    ids = ",".join(i.id for i in intents)
    if len(intents) == 1:
        return {**intents[0].summary, INTENTS_PROPERTY: ids}
    keys = sorted({i.summary.get("lake.source-key", "") for i in intents} - {""})
    summary = {INTENTS_PROPERTY: ids, "lake.group-size": str(len(intents))}
    if keys:
        summary["lake.source-key"] = keys[0] if len(keys) == 1 else f"{len(keys)} sources"
    triggers = sorted({i.summary.get("lake.trigger", "") for i in intents} - {""})
    if triggers:
        summary["lake.trigger"] = ",".join(triggers)
    return summary


def add_data_files(
    tx: Transaction, paths: Sequence[str], footers: Mapping[str, Footer], summary: dict[str, str]
) -> None:
    """Add the data files ``paths`` to the table in ``tx`` as pyiceberg's ``add_files`` does (one
    append, merged as the table's properties say), from the footers their writers sent along: no data
    file is read. Should any come without one (an intent of an earlier version, or a footer too large
    to send), all are read instead."""
    from pyiceberg.io import FileIO
    from pyiceberg.io.pyarrow import parquet_file_to_data_file
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_bool

    if not all(path in footers for path in paths):
        tx.add_files(list(paths), snapshot_properties=summary, check_duplicate_files=False)
        return
    if len(set(paths)) != len(paths):
        raise ValueError("File paths must be unique")  # as add_files refuses them
    metadata = tx.table_metadata
    if metadata.name_mapping() is None:
        tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: metadata.schema().name_mapping.model_dump_json()})
        metadata = tx.table_metadata
    merge = property_as_bool(
        metadata.properties, TableProperties.MANIFEST_MERGE_ENABLED, TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT
    )
    update = tx.update_snapshot(snapshot_properties=summary)
    io = cast(FileIO, _FooterIO(footers))
    with update.merge_append() if merge else update.fast_append() as append:
        for path in paths:
            append.append_data_file(parquet_file_to_data_file(io=io, table_metadata=metadata, file_path=path))


def _schema_refusal(table: Table, intent: Intent) -> str | None:
    """Why the intent's files no longer fit the table's columns (None: they fit)."""
    if intent.schema is None or not intent.files:
        return None
    from pyiceberg.catalog import Catalog

    current = {f.name: str(f.field_type) for f in table.schema().fields}
    for f in Catalog._convert_schema_if_needed(intent.schema).fields:
        ours, theirs = str(f.field_type), current.get(f.name)
        if theirs is not None and ours != theirs and (ours, theirs) not in _PROMOTIONS:
            return (
                f"column {f.name} of table {intent.qualified} changed to {theirs} after this file was written as "
                f"{ours}; the message is retried against the new column type"
            )
    return None


def schema_behind(table: Table, schema: pa.Schema) -> bool:
    """Whether ``schema`` has a column the table lacks, or a description the table's column lacks
    (a table created before its spec described it, or since reworded)."""
    from analytics.base import column_doc

    fields = {f.name: f for f in table.schema().fields}
    return any(f.name not in fields or (column_doc(f) or None) not in (None, fields[f.name].doc) for f in schema)


def without_commit_retries(table: Table) -> Table:
    """The same table whose transactions fail on a concurrent commit instead of re-applying."""
    from pyiceberg.table import Table as IcebergTable

    metadata = table.metadata.model_copy(
        update={"properties": {**table.metadata.properties, "commit.retry.num-retries": "0"}}
    )
    return IcebergTable(
        identifier=table.name(), metadata=metadata, metadata_location=table.metadata_location, io=table.io,
        catalog=table.catalog,
    )  # fmt: skip


def commit_group(
    table: Table, intents: Sequence[Intent], abandoned: dict[str, str] | None = None
) -> dict[str, Outcome]:
    """Commit ``intents`` to ``table`` in one transaction; an outcome for each.

    Reloads the table before each attempt and skips intents a snapshot already holds; the catalog
    swap is conditional on the metadata read, so no intent is ever committed twice. ``abandoned``
    (intent id → why) are left out unless a snapshot already holds them.
    """
    abandoned = abandoned or {}
    from pyiceberg.exceptions import CommitFailedException

    outcomes: dict[str, Outcome] = {}
    delay = 0.1
    for attempt in range(COMMIT_ATTEMPTS):
        if attempt:
            table.refresh()
        done = committed_intents(table)
        todo = []
        for intent in intents:
            if intent.id in outcomes:
                continue
            if intent.id in done:
                outcomes[intent.id] = Outcome("committed", done[intent.id])
                continue
            if intent.id in abandoned:
                outcomes[intent.id] = Outcome("abandoned", message=abandoned[intent.id])
                continue
            refusal = _schema_refusal(table, intent)
            if refusal is not None:
                outcomes[intent.id] = Outcome("outdated", message=refusal)
                continue
            todo.append(intent)
        if not todo:
            return outcomes
        summary = _group_summary(todo)
        deletes = sorted({k for i in todo for k in i.deletes})
        files = [f for i in todo for f in i.files]
        single = without_commit_retries(table)
        unchanged = single.metadata  # with its retries turned off: never handed back to ``table``
        before = table.current_snapshot()
        try:
            with single.transaction() as tx:
                schemas = [i.schema for i in todo if i.schema is not None and i.files]
                behind = [s for s in schemas if schema_behind(single, s)]
                if behind:
                    with tx.update_schema() as update:
                        for schema in behind:
                            update.union_by_name(schema)
                if deletes:
                    tx.delete(_in_keys(deletes), snapshot_properties=summary)
                if files:
                    add_data_files(tx, files, {p: f for i in todo for p, f in i.footers.items()}, summary)
        except CommitFailedException:
            logger.info("group commit to %s lost a race (attempt %d); reloading", table.name(), attempt + 1)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        # The transaction's table holds what the catalog accepted: the table as this commit left it,
        # with no reload (and not a later commit's snapshot, should another writer follow at once).
        if single.metadata is not unchanged:
            table.metadata, table.metadata_location = single.metadata, single.metadata_location
        after = table.current_snapshot()
        changed = after is not None and (before is None or after.snapshot_id != before.snapshot_id)
        snapshot = after.snapshot_id if changed and after is not None else None
        for intent in todo:
            outcomes[intent.id] = Outcome("committed", snapshot)
        return outcomes
    message = (
        f"table {intents[0].qualified} kept changing under its group commit past {COMMIT_ATTEMPTS} attempts; "
        "the message will be retried (if this persists, something else commits to the table all the time)"
    )
    for intent in intents:
        outcomes.setdefault(intent.id, Outcome("refused", message=message))
    return outcomes


def reload(table: Table) -> bool:
    """Bring ``table``, a process's recent copy, up to the catalog's, in place; False when the catalog
    no longer has that table (dropped, or dropped and created again: another table's id)."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        fresh = table.catalog.load_table(table.name())
    except NoSuchTableError:
        return False
    if fresh.metadata.table_uuid != table.metadata.table_uuid:
        return False
    table.metadata, table.metadata_location, table.io, table.config = (
        fresh.metadata, fresh.metadata_location, fresh.io, fresh.config
    )  # fmt: skip
    return True


def _table_gone(intent: Intent) -> Outcome:
    return Outcome(
        "outdated",
        message=f"table {intent.qualified} was dropped or created again since this file was checked against it",
    )


def result_of(intent: Intent, outcome: Outcome) -> int | None:
    """The snapshot id of a committed intent; a refused or abandoned one raises for a retry
    (:class:`TableChangedError` for an outdated one: checked against a table that changed since)."""
    if outcome.status == "committed":
        return outcome.snapshot_id
    message = outcome.message or f"the commit of {intent.qualified} was {outcome.status}"
    if outcome.status == "outdated":
        raise TableChangedError(message)
    raise CommitConflictError(message)


class DirectCommitter:
    """Commits each intent at once, alone (no coordination between workers)."""

    def commit(self, table: Table, intent: Intent, *, fresh: bool = True) -> Outcome:
        if not fresh and not reload(table):
            return _table_gone(intent)
        return commit_group(table, [intent])[intent.id]


def _key_prefix(intent_location: str, bucket: str) -> str:
    prefix = f"s3://{bucket}/"
    if not intent_location.startswith(prefix):
        raise ValueError(f"table location {intent_location} is not in the lake bucket {bucket}")
    return f"{intent_location.removeprefix(prefix)}/intents/"


class GroupCommitter:
    """Intents pending in S3 beside each table; a DynamoDB lease makes one worker the table's committer."""

    def __init__(
        self,
        s3: Any,
        dynamodb: Any,
        bucket: str,
        records_table: str,
        lease_seconds: float = 30.0,
        wait_seconds: float = 240.0,
    ) -> None:
        self._s3 = s3
        self._dynamodb = dynamodb
        self.bucket = bucket
        self.records_table = records_table
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds

    # --- the worker's side -------------------------------------------------------------------------
    def commit(self, table: Table, intent: Intent, *, fresh: bool = True) -> Outcome:
        """Hand ``intent`` to the table's committer (becoming it when the lease is free); its outcome.

        With the lease free (an idle table) the worker commits at once, with whatever others left
        pending, and never writes its own intent: if it dies meanwhile, its message is retried and
        the snapshot summary still says whether the intent landed. A worker that waits never reads
        ``table``, so a recent copy of it (``fresh`` false) costs a waiting file no catalog request."""
        prefix = _key_prefix(intent.location, self.bucket)
        lease = self._take_lease(intent.qualified)
        if lease is not None:
            current = fresh
            try:
                if not current:
                    if not reload(table):
                        return _table_gone(intent)  # its intent was never written: nothing to withdraw
                    current = True
                return self._drain(table, intent, prefix, listing=lease.pending)[intent.id]
            finally:
                # (a table that could not be reloaded settles nothing: the lease goes back flagged)
                self._release_lease(intent.qualified, lease, table if current else None, prefix)
        pending = f"{prefix}pending/{int(intent.created * 1000):013d}-{intent.id}.json"
        done = f"{prefix}done/{intent.id}.json"
        self._s3.put_object(Bucket=self.bucket, Key=pending, Body=intent.to_json())
        try:
            try_lease = self._flag_pending(intent.qualified)
        except (ClientError, BotoCoreError):  # only a hint: the lease is tried instead
            logger.warning("flagging an intent on the commit lease of %s failed", intent.qualified, exc_info=True)
            try_lease = True
        deadline = time.monotonic() + self.wait_seconds
        delay, looks = FIRST_LOOK_SECONDS, 0
        while True:
            lease = self._take_lease(intent.qualified) if try_lease else None
            if lease is not None:
                try:
                    table.refresh()  # others committed meanwhile: build the group on the table as it is now
                    ours = self._drain(table, intent, prefix)[intent.id]
                finally:
                    self._release_lease(intent.qualified, lease, table, prefix)
                self._s3.delete_object(Bucket=self.bucket, Key=pending)  # when it was beyond the listing
                return ours
            time.sleep(delay)
            delay, looks = min(delay * 1.5, POLL_SECONDS), looks + 1
            outcome = self._read_done(done)
            if outcome is not None:
                return outcome
            try_lease = looks % LEASE_EVERY == 0
            if time.monotonic() > deadline:
                self._s3.delete_object(Bucket=self.bucket, Key=pending)
                outcome = self._read_done(done)  # committed while we gave up: take it
                if outcome is not None:
                    return outcome
                return Outcome(
                    "refused",
                    message=(
                        f"no committer of table {intent.qualified} took this file's intent within "
                        f"{self.wait_seconds:.0f} s; the message will be retried"
                    ),
                )

    def _read_done(self, key: str) -> Outcome | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        self._s3.delete_object(Bucket=self.bucket, Key=key)
        return Outcome.from_json(body)

    # --- the committer's side ----------------------------------------------------------------------
    def _drain(self, table: Table, mine: Intent, prefix: str, listing: bool = True) -> dict[str, Outcome]:
        """Commit our intent with every pending one, then, while the lease lasts, the intents that
        landed meanwhile (at most DRAIN_ROUNDS groups): waiting workers need not take the lease.

        When ours was the only one (an idle table), it does not look again: a file that landed during
        that commit flagged itself on the lease, so the holder commits it before letting go
        (:meth:`_release_lease`); ``listing`` false (nothing flagged when the lease was taken), ours is
        committed without a listing at all."""
        started = time.monotonic()
        outcomes = self._drain_once(table, mine, prefix, listing)
        if len(outcomes) <= 1:
            return outcomes
        for _ in range(DRAIN_ROUNDS - 1):
            if time.monotonic() - started > self.lease_seconds / 3:
                break
            more = self._drain_once(table, None, prefix)
            if not more:
                break
        return outcomes

    def _drain_once(self, table: Table, mine: Intent | None, prefix: str, listing: bool = True) -> dict[str, Outcome]:
        """Commit the pending intents of the table (oldest first, at most MAX_GROUP), with ``mine``,
        in one group; their outcomes (empty: nothing was pending). ``listing`` false: nothing can be
        pending (the lease said so), ``mine`` is committed alone without a listing.

        Should ``table`` still be behind the catalog, the conditional swap fails and the group is built
        again on the reloaded table."""
        keys = []
        if listing:
            listed = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{prefix}pending/", MaxKeys=MAX_GROUP)
            keys = [o["Key"] for o in listed.get("Contents", [])]
        if mine is not None and not any(k.endswith(f"-{mine.id}.json") for k in keys):
            keys.append("")  # ours, held in memory (not written, or beyond the listing)
        if not keys:
            return {}

        def read(key: str) -> Intent | None:
            if mine is not None and (not key or key.endswith(f"-{mine.id}.json")):
                return mine
            try:
                return Intent.from_json(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            except self._s3.exceptions.NoSuchKey:  # withdrawn, or committed by the previous holder
                return None

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="intents") as pool:
            found = list(pool.map(read, keys))
            intents = {i.id: (k, i) for k, i in zip(keys, found, strict=True) if i is not None}
            ours = mine.id if mine is not None else None
            gone = self._abandoned([i for _, i in intents.values() if i.id != ours])  # ours: held
            abandoned = {
                i: f"the worker of this intent no longer holds the lease of s3://{h.bucket}/{h.key}; "
                "its file is retried"
                for i, h in gone.items()
            }
            outcomes = commit_group(table, [i for _, i in intents.values()], abandoned)

            def mark(intent_id: str) -> None:
                self._s3.put_object(
                    Bucket=self.bucket, Key=f"{prefix}done/{intent_id}.json", Body=outcomes[intent_id].to_json()
                )

            # An abandoned intent's worker is gone: nobody would read (or delete) its marker.
            waiting = [i for i in intents if i != ours and outcomes[i].status != "abandoned"]
            list(pool.map(mark, waiting))
        written = [{"Key": key} for key, _ in intents.values() if key]
        if written:
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": written, "Quiet": True})
        grouped = sum(o.status == "committed" for o in outcomes.values())
        if grouped > 1:
            logger.info("%d intents of %s in one group commit", grouped, prefix)
        return outcomes

    def _abandoned(self, intents: Sequence[Intent]) -> dict[str, Holder]:
        """Intents whose worker no longer holds its raw key's lease (died, or gave up)."""
        held = {i.id: i.holder for i in intents if i.holder is not None}
        if not held:
            return {}
        from handlers.adapters.source_records import source_record_id

        ids = sorted({source_record_id(h.bucket, h.key) for h in held.values()})
        items: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 100):
            keys = [{topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": i}} for i in ids[start : start + 100]]
            request = {self.records_table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._dynamodb.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.records_table, []):
                    items[item[topology.IDEMPOTENCY_KEY_ATTRIBUTE]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
        now = time.time()
        gone = {}
        for intent_id, holder in held.items():
            item = items.get(source_record_id(holder.bucket, holder.key), {})
            owner = item.get("lease_owner", {}).get("S")
            until = float(item.get("lease_until", {}).get("N", "0"))
            if owner != holder.owner or until < now:
                gone[intent_id] = holder
        return gone

    def _lease_key(self, qualified: str) -> dict[str, Any]:
        return {topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{COMMITTER_RECORD_PREFIX}{qualified}"}}

    def _take_lease(self, qualified: str) -> Lease | None:
        """The table's commit lease, if it is free (or expired); None while another holds it."""
        owner, now = uuid.uuid4().hex, time.time()
        try:
            answer = self._dynamodb.put_item(
                TableName=self.records_table,
                Item={
                    **self._lease_key(qualified),
                    "lease_owner": {"S": owner},
                    "lease_until": {"N": str(round(now + self.lease_seconds, 3))},
                    PENDING_ATTRIBUTE: {"N": "0"},
                },
                ConditionExpression="attribute_not_exists(lease_owner) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": str(round(now, 3))}},
                ReturnValues="ALL_OLD",
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        old = answer.get("Attributes", {})
        # A lease that expired instead of being given back: its holder may have died with intents listed.
        flagged = int(old.get(PENDING_ATTRIBUTE, {}).get("N", "0")) > 0
        return Lease(owner, pending=flagged or "lease_owner" in old)

    def _flag_pending(self, qualified: str) -> bool:
        """Tell the table's lease that an intent is pending (its holder looks again before letting go,
        the next holder looks at all); whether the lease is free now (its holder let go meanwhile)."""
        answer = self._dynamodb.update_item(
            TableName=self.records_table,
            Key=self._lease_key(qualified),
            UpdateExpression=f"ADD {PENDING_ATTRIBUTE} :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
        item = answer.get("Attributes", {})
        return "lease_owner" not in item or float(item.get("lease_until", {}).get("N", "0")) < time.time()

    def _release_lease(self, qualified: str, lease: Lease, table: Table | None = None, prefix: str = "") -> None:
        """Give the lease back. While intents were flagged during our commit (and half the lease is
        left), commit what is pending first, so a flagged intent does not wait for its own worker.
        Given back any other way (no time left, rounds used up, an error), the record is flagged, so
        the next holder lists. An error here never fails the commit it follows: the lease then ends
        at its expiry."""
        conditional = self._dynamodb.exceptions.ConditionalCheckFailedException
        zero = {":zero": {"N": "0"}}
        try:
            for _ in range(DRAIN_ROUNDS):
                if table is None or time.monotonic() - lease.taken > self.lease_seconds / 2:
                    break
                try:
                    self._give_back(qualified, lease.owner, f"AND {PENDING_ATTRIBUTE} = :zero", values=zero)
                    return
                except conditional:
                    pass  # flagged meanwhile (or no longer ours: the next write says which)
                self._dynamodb.update_item(
                    TableName=self.records_table,
                    Key=self._lease_key(qualified),
                    UpdateExpression=f"SET {PENDING_ATTRIBUTE} = :zero",
                    ConditionExpression="lease_owner = :owner",
                    ExpressionAttributeValues={":owner": {"S": lease.owner}, **zero},
                )
                self._drain_once(table, None, prefix)
        except conditional:
            logger.warning("commit lease of %s expired before it was released", qualified)
            return
        except Exception:  # the flagged intents are left to the next holder, or to their own workers
            logger.exception("settling the intents flagged during the commit lease of %s failed", qualified)
        try:
            self._give_back(qualified, lease.owner, flag=True)
        except conditional:
            logger.warning("commit lease of %s expired before it was released", qualified)
        except (ClientError, BotoCoreError):
            logger.exception("giving back the commit lease of %s failed: it ends at its expiry", qualified)

    def _give_back(
        self, qualified: str, owner: str, condition: str = "", values: dict[str, Any] | None = None, flag: bool = False
    ) -> None:
        """Remove the lease's owner and expiry (the record's flag count stays; ``flag``: add one, for
        the next holder to list), if it is still ours and ``condition`` (``AND …``, more of the
        condition expression) holds."""
        self._dynamodb.update_item(
            TableName=self.records_table,
            Key=self._lease_key(qualified),
            UpdateExpression="REMOVE lease_owner, lease_until" + (f" ADD {PENDING_ATTRIBUTE} :one" if flag else ""),
            ConditionExpression=f"lease_owner = :owner {condition}".strip(),
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                **(values or {}),
                **({":one": {"N": "1"}} if flag else {}),
            },
        )
