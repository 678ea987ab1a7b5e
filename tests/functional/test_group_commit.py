"""Files of many workers land in grouped commits, one committer per table at a time (handlers/adapters/committer.py).

Real processors (as Lambda instances) against the moto server, in threads. The test holds or breaks
the table's commit lease to make a group, a dead committer or a zombie committer happen on purpose,
and waits on observed state (pending intents in S3, rows in the table), never on a guessed delay.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

import topology
from handlers.adapters.committer import COMMITTER_RECORD_PREFIX, Holder, Intent, commit_group
from handlers.bootstrap import build_processor
from handlers.errors import SourceBusyError
from handlers.settings import Settings
from lake.standin.server import client
from tests.conftest import Lake, wait_until
from tests.functional.conftest import Invoke, curated_rows, iceberg_table, next_messages

SEED = b"sku,region,amount\nA,north,1\nB,south,2\n"
TABLE = "lake_curated.sales"


def pending(lake: Lake, table: str = "sales") -> list[str]:
    listed = lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix=f"curated/{table}/intents/pending/")
    return [o["Key"] for o in listed.get("Contents", [])]


def records(lake: Lake) -> Any:
    return client("dynamodb", lake.endpoints.endpoint_url)


def hold_lease(lake: Lake, qualified: str, seconds: float, owner: str = "test") -> None:
    """Take the table's commit lease as a committer at work (or dead) would hold it."""
    records(lake).put_item(
        TableName=lake.endpoints.topology.idempotency_table,
        Item={
            topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{COMMITTER_RECORD_PREFIX}{qualified}"},
            "lease_owner": {"S": owner},
            "lease_until": {"N": str(time.time() + seconds)},
        },
    )


def release_lease(lake: Lake, qualified: str) -> None:
    records(lake).delete_item(
        TableName=lake.endpoints.topology.idempotency_table,
        Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{COMMITTER_RECORD_PREFIX}{qualified}"}},
    )


class Workers:
    """Processors in threads, each handling its messages; their details and errors kept."""

    def __init__(self, count: int) -> None:
        self.processors = [build_processor(Settings.from_env()) for _ in range(count)]
        self.details: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def start(self, messages: list[dict[str, Any]]) -> None:
        def work(processor: Any, batch: list[dict[str, Any]]) -> None:
            for message in batch:
                try:
                    self.details.append(processor.handle_body(message["Body"]))
                except BaseException as exc:  # kept for the assertions
                    self.errors.append(exc)

        count = len(self.processors)
        for i, processor in enumerate(self.processors):
            thread = threading.Thread(target=work, args=(processor, messages[i::count]))
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(300)

    def run(self, messages: list[dict[str, Any]]) -> None:
        """Handle ``messages`` and wait until done (the instance stays warm for the next run)."""
        self.threads.clear()
        self.start(messages)
        self.join()


def seeded(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/sales/seed.csv", SEED)
    invoke(next_messages(lake))


def land(lake: Lake, count: int) -> list[dict[str, Any]]:
    for n in range(count):
        lake.put(f"raw/sales/part-{n}.csv", f"sku,region,amount\nP{n},north,{n}\n".encode())
    return next_messages(lake, count)


def snapshot_intents(lake: Lake) -> list[list[str]]:
    """The intents each snapshot of the table holds (empty for a snapshot made otherwise)."""
    table = iceberg_table(lake, "lake_curated", "sales")
    found = []
    for snapshot in table.snapshots():
        text = (snapshot.summary.additional_properties if snapshot.summary else {}).get("lake.intents", "")
        found.append([i for i in text.split(",") if i])
    return found


def test_files_that_land_while_the_committer_is_busy_are_committed_together_in_one_commit(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN the sales table exists and its committer is busy (the lease is held)
    seeded(lake, invoke)
    hold_lease(lake, TABLE, seconds=300)
    # WHEN six files land and four workers stage them at once
    workers = Workers(4)
    workers.start(land(lake, 6))
    try:
        # THEN each hands its intent over and waits (nothing is committed while the lease is held)
        assert wait_until(lambda: len(pending(lake)) == 4, timeout=120, every=0.05)
        assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B"]
    finally:
        release_lease(lake, TABLE)  # the busy committer finishes
    workers.join()
    # AND once the lease is free one of them commits the four pending files in one commit
    assert workers.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", *(f"P{n}" for n in range(6))]
    groups = [len(i) for i in snapshot_intents(lake) if i]
    assert groups[0] == 4 and sum(groups) == 6  # the group of four, then the other two files
    # AND every file's event names the snapshot its rows are in (shared by the group)
    snapshots = {d["source"]["key"]: d["outputs"][0]["snapshot_id"] for d in workers.details}
    table = iceberg_table(lake, "lake_curated", "sales")
    for snapshot_id in snapshots.values():
        assert table.snapshot_by_id(snapshot_id) is not None
    assert len(set(snapshots.values())) < len(snapshots)
    # AND no intent is left behind
    assert pending(lake) == []
    assert lake.keys("curated/sales/intents/") == []


def lease_item(lake: Lake, qualified: str) -> dict[str, Any]:
    return (
        records(lake)
        .get_item(
            TableName=lake.endpoints.topology.idempotency_table,
            Key={topology.IDEMPOTENCY_KEY_ATTRIBUTE: {"S": f"{COMMITTER_RECORD_PREFIX}{qualified}"}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )


def slow_first_sales_commit(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The first sales commit from now on takes until the second event is set (observed, not timed:
    the test sets it once another worker's intent is pending); the first is set when it starts. A
    waiting worker never takes the lease itself meanwhile: only the holder commits its intent."""
    from handlers.adapters import committer

    working, flagged = threading.Event(), threading.Event()
    real_commit_group = committer.commit_group

    def slow_commit_group(table: Any, intents: Any, *args: Any) -> Any:
        if table.name()[-1] == "sales" and not working.is_set():
            working.set()
            assert flagged.wait(120)
        return real_commit_group(table, intents, *args)

    monkeypatch.setattr(committer, "commit_group", slow_commit_group)
    monkeypatch.setattr(committer, "LEASE_EVERY", 10**9)
    return working, flagged


def test_an_intent_flagged_while_the_committer_works_is_committed_by_it_before_it_lets_go(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an idle sales table: a lone file's worker takes the lease and commits without listing
    seeded(lake, invoke)
    working, flagged = slow_first_sales_commit(monkeypatch)
    [first, second] = land(lake, 2)
    holder, waiter = Workers(1), Workers(1)
    waiter.processors[0].store.tables.committer.wait_seconds = 15  # else it gives up (and fails) after this
    holder.start([first])
    assert working.wait(120)
    # WHEN another file's intent is written and flagged on the lease while the holder commits
    waiter.start([second])
    try:
        assert wait_until(
            lambda: int(lease_item(lake, TABLE).get("pending", {}).get("N", "0")) > 0 and len(pending(lake)) == 1,
            timeout=120,
            every=0.05,
        )
    finally:
        flagged.set()
    holder.join()
    waiter.join()
    # THEN the holder, before giving the lease back, commits it (its own group did not hold it)
    assert holder.errors == [] and waiter.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "P0", "P1"]
    groups = [i for i in snapshot_intents(lake) if i]
    assert len(groups) == 2 and all(len(g) == 1 for g in groups)
    # AND the lease is free, with nothing flagged, and no intent is left behind
    item = lease_item(lake, TABLE)
    assert "lease_owner" not in item and item["pending"] == {"N": "0"}
    assert pending(lake) == [] and lake.keys("curated/sales/intents/") == []


class Refusing:
    """An AWS client that answers one operation with an error (S3 unavailable, DynamoDB throttling)."""

    def __init__(self, client: Any, method: str, operation: str, code: str) -> None:
        self._client, self._method, self._operation, self._code = client, method, operation, code

    def __getattr__(self, name: str) -> Any:
        if name != self._method:
            return getattr(self._client, name)

        def refuse(**kwargs: Any) -> Any:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": self._code, "Message": "refused"}}, self._operation)  # type: ignore[arg-type]

        return refuse


@pytest.mark.parametrize("why", ["no time left", "S3 failing"])
def test_a_lease_given_back_without_settling_its_flags_tells_the_next_holder_to_list(lake: Lake, why: str) -> None:
    from handlers.adapters.committer import GroupCommitter

    s3 = client("s3", lake.endpoints.endpoint_url)
    failing = Refusing(s3, "list_objects_v2", "ListObjectsV2", "ServiceUnavailable")
    holder = GroupCommitter(failing, records(lake), lake.bucket, lake.endpoints.topology.idempotency_table)
    # GIVEN a holder, and a waiting worker's intent flagged on its lease meanwhile
    lease = holder._take_lease(TABLE)
    assert lease is not None and not lease.pending  # a fresh table: nothing can be pending
    assert holder._flag_pending(TABLE) is False  # held
    # WHEN the holder gives the lease back without committing what was flagged: no time left, or its
    # listing of the pending intents fails (after it took the flags)
    if why == "no time left":
        lease = replace(lease, taken=lease.taken - holder.lease_seconds)
    never_used = object()  # the table: the listing before any use of it fails
    holder._release_lease(TABLE, lease, table=never_used, prefix="curated/sales/intents/")  # type: ignore[arg-type]
    # THEN the lease is free and flagged, so the next holder lists the pending intents
    item = lease_item(lake, TABLE)
    assert "lease_owner" not in item and int(item["pending"]["N"]) >= 1
    following = holder._take_lease(TABLE)
    assert following is not None and following.pending


def test_an_intent_whose_flag_is_refused_still_lands_its_worker_takes_the_lease(lake: Lake, invoke: Invoke) -> None:
    # GIVEN the committer is busy, and the lease record refuses the worker's flag (throttled)
    seeded(lake, invoke)
    hold_lease(lake, TABLE, seconds=300)
    worker = Workers(1)
    committer = worker.processors[0].store.tables.committer
    committer._dynamodb = Refusing(committer._dynamodb, "update_item", "UpdateItem", "ThrottlingException")
    # WHEN a file lands
    worker.start(land(lake, 1))
    try:
        assert wait_until(lambda: len(pending(lake)) == 1, timeout=120, every=0.05)
    finally:
        release_lease(lake, TABLE)
    worker.join()
    # THEN the flag was only a hint: the worker takes the lease itself and its file lands, once
    assert worker.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "P0"]
    assert pending(lake) == []


def test_a_committer_that_lost_its_lease_and_commits_the_same_group_as_its_successor_commits_it_once(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN three files staged and pending while the committer is busy
    seeded(lake, invoke)
    hold_lease(lake, TABLE, seconds=300)
    workers = Workers(3)
    workers.start(land(lake, 3))
    try:
        assert wait_until(lambda: len(pending(lake)) == 3, timeout=120, every=0.05)
        intents = [
            Intent.from_json(lake.s3.get_object(Bucket=lake.bucket, Key=k)["Body"].read()) for k in pending(lake)
        ]
        # WHEN two committers (one of them a zombie whose lease expired) commit that group at once,
        # and neither writes its markers (killed after its commit)
        table = iceberg_table(lake, "lake_curated", "sales")
        twin = iceberg_table(lake, "lake_curated", "sales")
        outcomes: list[dict[str, Any]] = []
        racers = [threading.Thread(target=lambda t=t: outcomes.append(commit_group(t, intents))) for t in (table, twin)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(120)
    finally:
        release_lease(lake, TABLE)
    workers.join()
    # THEN the group is in the table once: one snapshot holds its intents, both committers say so
    assert workers.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "P0", "P1", "P2"]
    holding = [i for i in snapshot_intents(lake) if set(i) & {x.id for x in intents}]
    assert len(holding) == 1 and sorted(holding[0]) == sorted(x.id for x in intents)
    [first, second] = outcomes
    assert {o.snapshot_id for o in first.values()} == {o.snapshot_id for o in second.values()}
    # AND the workers, whose committer died before telling them, learn that snapshot from the next one
    assert {d["outputs"][0]["snapshot_id"] for d in workers.details} == {o.snapshot_id for o in first.values()}


def test_a_dead_committers_lease_expires_and_a_dead_workers_intent_is_abandoned_not_committed(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN a committer that died holding the lease (it expires in a few seconds), and an intent
    # left by a worker that died (its raw key's lease is no longer held)
    seeded(lake, invoke)
    hold_lease(lake, TABLE, seconds=3, owner="dead-committer")
    data = iceberg_table(lake, "lake_curated", "sales").inspect.files().column("file_path").to_pylist()[0]
    orphan = Intent(
        "lake_curated",
        "sales",
        f"s3://{lake.bucket}/curated/sales",
        files=(data,),
        deletes=("raw/sales/orphan.csv",),
        holder=Holder(lake.bucket, "raw/sales/orphan.csv", "dead-worker"),
    )
    lake.s3.put_object(
        Bucket=lake.bucket, Key=f"curated/sales/intents/pending/0000000000001-{orphan.id}.json", Body=orphan.to_json()
    )
    # WHEN a file lands
    workers = Workers(1)
    workers.start(land(lake, 1))
    workers.join()
    # THEN it is committed once the dead committer's lease expired, and the orphan's file is not
    assert workers.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "P0"]
    assert all(orphan.id not in i for i in snapshot_intents(lake))
    assert pending(lake) == [] and lake.keys("curated/sales/intents/") == []


def test_a_newer_version_or_a_deletion_while_an_intent_is_pending_waits_and_the_lake_ends_at_the_newest_state(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN version 1 of a file staged, its intent pending behind a busy committer
    seeded(lake, invoke)
    hold_lease(lake, TABLE, seconds=300)
    lake.put("raw/sales/day.csv", b"sku,region,amount\nV1,north,1\n")
    workers = Workers(1)
    workers.start(next_messages(lake))
    try:
        assert wait_until(lambda: len(pending(lake)) == 1, timeout=120, every=0.05)
        # WHEN version 2 lands meanwhile: its worker finds the key busy and is retried later (SQS)
        lake.put("raw/sales/day.csv", b"sku,region,amount\nV2,north,2\n")
        [newer] = next_messages(lake)
        late = build_processor(Settings.from_env())
        with pytest.raises(SourceBusyError):
            late.handle_body(newer["Body"])
    finally:
        release_lease(lake, TABLE)
    workers.join()
    assert workers.errors == []
    late.handle_body(newer["Body"])  # the retry
    # THEN the table holds version 2's rows only
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "V2"]
    # AND a deletion that meets a pending intent is retried the same way and removes the rows
    hold_lease(lake, TABLE, seconds=300)
    lake.put("raw/sales/day.csv", b"sku,region,amount\nV3,north,3\n")
    workers = Workers(1)
    workers.start(next_messages(lake))
    try:
        assert wait_until(lambda: len(pending(lake)) == 1, timeout=120, every=0.05)
        lake.s3.delete_object(Bucket=lake.bucket, Key="raw/sales/day.csv")
        [message] = next_messages(lake)  # the stand-in announces the deletion (Object Deleted)
        deletion = message["Body"]
        with pytest.raises(SourceBusyError):
            late.handle_body(deletion)
    finally:
        release_lease(lake, TABLE)
    workers.join()
    late.handle_body(deletion)
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B"]


def test_the_records_of_one_batch_are_staged_at_once_and_committed_together(lake: Lake, invoke: Invoke) -> None:
    # GIVEN the table exists and its committer is busy
    seeded(lake, invoke)
    hold_lease(lake, TABLE, seconds=300)
    # WHEN one invocation gets a batch of six small files
    messages = land(lake, 6)
    responses: list[dict[str, Any]] = []
    invocation = threading.Thread(target=lambda: responses.append(invoke(messages)))
    invocation.start()
    try:
        # THEN several of its records wait for the commit at once (staged while another waits)
        assert wait_until(lambda: len(pending(lake)) >= 2, timeout=120, every=0.05)
    finally:
        release_lease(lake, TABLE)
    invocation.join(300)
    # AND every file lands once, and the batch is acknowledged whole
    assert responses == [{"batchItemFailures": []}]
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", *(f"P{n}" for n in range(6))]
    assert max(len(i) for i in snapshot_intents(lake)) >= 2
    assert len([e for e in lake.events(7) if e["detail"]["status"] == "succeeded"]) == 7


def table_loads(processor: Any, table: str) -> list[str]:
    """The loads of ``table`` from the catalog (Glue GetTable for pyiceberg's ``load_table``, which a
    refresh also calls) made through ``processor``'s clients from now on: one entry each. (Processors of
    one process share their clients, so a commit's own GetTable, another processor's, is left out.)"""
    seen: list[str] = []
    glues = {id(c): c for c in (processor.store.tables.catalog.glue, processor.store._glue)}

    def count(params: dict[str, Any], **_: Any) -> None:
        frame = sys._getframe()
        while frame is not None and frame.f_code.co_name != "load_table":
            frame = frame.f_back
        if params.get("Name") == table and params.get("DatabaseName") == "lake_curated" and frame is not None:
            seen.append(table)

    for glue in glues.values():
        glue.meta.events.register("provide-client-params.glue.GetTable", count)
    return seen


def test_a_warm_instance_whose_file_waits_for_another_committer_asks_the_catalog_nothing_for_it(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a warm instance that committed a sales file a moment ago (however long this machine takes)
    seeded(lake, invoke)
    from handlers.adapters import iceberg

    monkeypatch.setattr(iceberg, "RECENT_SECONDS", 3600.0)

    [first, second, third] = land(lake, 3)
    warm = Workers(1)
    warm.run([first])
    assert warm.errors == []
    # AND another instance committing the table, slowly (until the warm one's intent is flagged)
    working, flagged = slow_first_sales_commit(monkeypatch)
    busy = Workers(1)
    busy.start([second])
    assert working.wait(120)
    # WHEN the warm instance's next file waits for that committer
    reads = table_loads(warm.processors[0], "sales")
    warm.threads.clear()
    warm.start([third])
    try:
        assert wait_until(lambda: len(pending(lake)) == 1, timeout=120, every=0.05)
    finally:
        flagged.set()
    busy.join()
    warm.join()
    # THEN its file lands, committed by the other instance
    assert warm.errors == [] and busy.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "P0", "P1", "P2"]
    # AND it checked the file against the table as it last knew it, without loading the table again
    assert reads == []


def restaged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The files staged again in the same invocation, as the log says (one line each)."""
    return [r.getMessage() for r in caplog.records if "staging the file again" in r.getMessage()]


@pytest.mark.parametrize("time_left", [True, False], ids=["in time", "waited too long to wait again"])
def test_a_file_checked_against_an_instances_older_copy_of_the_table_is_staged_again_after_a_column_widened(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, time_left: bool
) -> None:
    # GIVEN a warm instance that knows the sales table with whole-number amounts (however long this takes)
    from handlers.adapters import iceberg
    from handlers.errors import TableChangedError

    monkeypatch.setattr(iceberg, "RECENT_SECONDS", 3600.0)
    if not time_left:  # its first attempt took longer than a second one may (Lambda's timeout)
        monkeypatch.setattr(iceberg, "RESTAGE_WITHIN_SECONDS", 0.0)
    caplog.set_level("INFO", logger="handlers.adapters.iceberg")
    seeded(lake, invoke)
    lake.put("raw/sales/whole.csv", b"sku,region,amount\nW,north,1\n")
    lake.put("raw/sales/decimal.csv", b"sku,region,amount\nD,south,2.5\n")
    lake.put("raw/sales/later.csv", b"sku,region,amount\nL,east,3\n")
    [whole, decimal, later] = next_messages(lake, 3)
    warm = Workers(1)
    warm.run([whole])
    # AND another instance's file that widened amount to decimals since
    other = Workers(1)
    other.run([decimal])
    # WHEN the warm instance's next file, whole numbers again, waits for a busy committer
    hold_lease(lake, TABLE, seconds=300)
    warm.threads.clear()
    warm.start([later])
    try:
        assert wait_until(lambda: len(pending(lake)) == 1, timeout=120, every=0.05)
    finally:
        release_lease(lake, TABLE)
    warm.join()
    if not time_left:
        # THEN the file fails, for SQS to retry it against the table as it is then
        assert [type(e) for e in warm.errors] == [TableChangedError] and restaged(caplog) == []
        return
    # THEN its intent, written as whole numbers, is refused by the committer, and the file is staged
    # again against the table as it is now, in the same invocation (not left to an SQS retry)
    assert warm.errors == [] and other.errors == []
    amounts = {r["sku"]: r["amount"] for r in curated_rows(lake, "sales")}
    assert amounts == {"A": 1.0, "B": 2.0, "W": 1.0, "D": 2.5, "L": 3.0}
    columns = {f.name: str(f.field_type) for f in iceberg_table(lake, "lake_curated", "sales").schema().fields}
    assert columns["amount"] == "double"
    assert lake.keys("curated/sales/intents/") == []
    assert len(restaged(caplog)) == 1


def test_an_intent_refused_for_any_other_reason_fails_its_file_for_sqs_to_retry(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a warm instance, and a committer that refuses its next sales intent (the table kept
    # changing past the commit attempts)
    seeded(lake, invoke)
    from handlers.adapters import committer
    from handlers.errors import CommitConflictError, TableChangedError

    [first, second] = land(lake, 2)
    warm = Workers(1)
    warm.run([first])
    real_commit_group = committer.commit_group
    refused: list[str] = []

    def refuse_once(table: Any, intents: Any, *args: Any) -> Any:
        if table.name()[-1] == "sales" and not refused:
            refused.extend(i.id for i in intents)
            return {i.id: committer.Outcome("refused", message="the table kept changing") for i in intents}
        return real_commit_group(table, intents, *args)

    monkeypatch.setattr(committer, "commit_group", refuse_once)
    # WHEN the warm instance's next file is refused
    warm.run([second])
    # THEN the file fails, to be retried by SQS, without a second intent staged meanwhile: an intent
    # refused for a reason that may pass could still be committed by a later holder
    assert [type(e) for e in warm.errors] == [CommitConflictError]
    assert not isinstance(warm.errors[0], TableChangedError)
    assert len(refused) == 1
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["A", "B", "P0"]


def test_a_file_checked_against_a_copy_of_a_table_dropped_since_lands_in_the_table_as_it_is_now(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a warm instance that committed a sales file a moment ago (however long this takes)
    from handlers.adapters import iceberg

    monkeypatch.setattr(iceberg, "RECENT_SECONDS", 3600.0)
    caplog.set_level("INFO", logger="handlers.adapters.iceberg")
    seeded(lake, invoke)
    [first, second] = land(lake, 2)
    warm = Workers(1)
    warm.run([first])
    # WHEN the table is dropped (someone starts it over) before the instance's next file
    lake.glue.delete_table(DatabaseName="lake_curated", Name="sales")
    warm.run([second])
    # THEN the file lands in a new sales table, not in an error
    assert warm.errors == []
    assert sorted(r["sku"] for r in curated_rows(lake, "sales")) == ["P1"]
    assert len(restaged(caplog)) == 1
