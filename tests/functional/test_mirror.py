"""The lake mirrors raw/: a new version replaces a key's rows, a deletion removes them, keys merge.

The handler runs in-process against the moto server; tables are read back through the Iceberg
catalog, and views through the SQL stored in Glue, run by DuckDB.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pyarrow as pa

from handlers.bootstrap import build_processor
from handlers.settings import Settings
from query.views import view_sql
from tests.conftest import Lake, wait_until
from tests.functional.conftest import (
    Invoke,
    curated_rows,
    iceberg_table,
    next_messages,
    quarantine_rows,
    read_rows,
    send,
)

V1 = b"sku,region,amount\nA,north,10\nB,south,20\nC,east,30\n"
V2 = b"sku,region,amount\nA,north,11\nB,south,21\n"


def view_rows(lake: Lake, name: str) -> list[dict[str, Any]]:
    """The rows of a Glue view, by running the Athena SQL stored in it with DuckDB over its table."""
    import duckdb
    import sqlglot

    view = lake.glue.get_table(DatabaseName="lake_curated", Name=name)["Table"]
    assert view["TableType"] == "VIRTUAL_VIEW"
    sql = view_sql(view["ViewOriginalText"])
    assert sql is not None
    sources = read_rows(lake, "lake_curated", f"{name}_sources")
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA lake_curated")
    connection.register("sources_arrow", sources)
    connection.execute(f"CREATE VIEW lake_curated.{name}_sources AS SELECT * FROM sources_arrow")
    result: list[dict[str, Any]] = (
        connection.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).to_arrow_table().to_pylist()
    )
    return result


def amounts(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {r["sku"]: r["amount"] for r in rows}


def test_a_new_version_of_a_key_replaces_its_rows(lake: Lake, invoke: Invoke) -> None:
    # GIVEN sales.csv processed once
    lake.put("raw/sales/sales.csv", V1)
    invoke(next_messages(lake))
    # WHEN a corrected export is uploaded under the same key
    lake.put("raw/sales/sales.csv", V2)
    invoke(next_messages(lake))
    # THEN the table holds the second version's rows only, not both
    rows = curated_rows(lake, "sales")
    assert amounts(rows) == {"A": 11, "B": 21}
    version = lake.s3.head_object(Bucket=lake.bucket, Key="raw/sales/sales.csv")["VersionId"]
    assert {r["source_version"] for r in rows} == {version}
    events = lake.events(2)
    assert [e["detail"]["change"] for e in events] == ["created", "replaced"]


def test_an_older_version_delivered_after_a_newer_one_does_not_win(lake: Lake, invoke: Invoke) -> None:
    # GIVEN two versions of one key, whose events are delivered newest first
    lake.put("raw/sales/sales.csv", V1)
    lake.put("raw/sales/sales.csv", V2)
    first, second = next_messages(lake, 2)
    older, newer = sorted(
        (first, second), key=lambda m: json.loads(m["Body"])["detail"]["object"]["version-id"] != _versions(lake)[0]
    )
    invoke([newer])
    invoke([older])
    # THEN the table shows the newer version, and the late event says why it changed nothing
    assert amounts(curated_rows(lake, "sales")) == {"A": 11, "B": 21}
    events = lake.events(2)
    assert [e["detail"]["change"] for e in events] == ["created", "unchanged"]
    assert "no longer the key's current version" in events[1]["detail"]["note"]


def _versions(lake: Lake) -> list[str]:
    """Version ids of raw/sales/sales.csv, oldest first."""
    listed = lake.s3.list_object_versions(Bucket=lake.bucket, Prefix="raw/sales/sales.csv")["Versions"]
    return [v["VersionId"] for v in sorted(listed, key=lambda v: v["LastModified"]) if not v["IsLatest"]] + [
        v["VersionId"] for v in listed if v["IsLatest"]
    ]


def test_deleting_the_raw_object_removes_its_rows_and_its_quarantine(lake: Lake, invoke: Invoke) -> None:
    # GIVEN a file with a malformed line, processed
    lake.put("settings/sales.json", b'{"tolerance": 0.5}')
    lake.put("raw/sales/sales.csv", V1 + b"D,west,40,extra\n")
    [created] = next_messages(lake)
    invoke([created])
    assert len(curated_rows(lake, "sales")) == 3 and len(quarantine_rows(lake, "sales")) == 1
    # WHEN the raw object is deleted (aws s3 rm) and S3 announces it (Object Deleted, a delete marker)
    lake.s3.delete_object(Bucket=lake.bucket, Key="raw/sales/sales.csv")
    [deleted] = next_messages(lake)
    assert json.loads(deleted["Body"])["detail-type"] == "Object Deleted"
    assert invoke([deleted]) == {"batchItemFailures": []}
    # THEN its rows are gone from the table and from the quarantine, in one commit each
    assert curated_rows(lake, "sales") == []
    assert quarantine_rows(lake, "sales") == []
    [_, removed] = lake.events(2)
    assert removed["detail"]["change"] == "removed"
    outputs = {o["table"]: o for o in removed["detail"]["outputs"]}
    assert sorted(outputs) == ["dataset_profiles", "sales"]  # the file's profile rows went too
    assert removed["detail"]["quarantine"]["snapshot_id"] is not None
    # AND the table's history still has the rows (time travel), the latest snapshot does not
    table = iceberg_table(lake, "lake_curated", "sales")
    assert table.current_snapshot().snapshot_id == outputs["sales"]["snapshot_id"]
    assert read_rows(lake, "lake_curated", "sales", table.current_snapshot().parent_snapshot_id).num_rows == 3


def test_a_deletion_event_for_a_key_that_exists_again_changes_nothing(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/sales/sales.csv", V1)
    [created] = next_messages(lake)
    invoke([created])
    lake.s3.delete_object(Bucket=lake.bucket, Key="raw/sales/sales.csv")
    lake.put("raw/sales/sales.csv", V2)  # uploaded again before the deletion was processed
    messages = next_messages(lake, 2)
    [deleted] = [m for m in messages if json.loads(m["Body"])["detail-type"] == "Object Deleted"]
    [recreated] = [m for m in messages if m is not deleted]
    invoke([deleted])
    invoke([recreated])
    assert amounts(curated_rows(lake, "sales")) == {"A": 11, "B": 21}


def test_an_overlapping_re_export_replaces_keys_and_deleting_it_brings_the_older_rows_back(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN orders keyed by order_id: a monthly export, then a re-export overlapping it (a late refund)
    header = "order_id,customer_id,order_date,amount\n"
    march = header + "o1,c1,2026-03-01,10.00\no2,c2,2026-03-02,20.00\no3,c1,2026-03-03,30.00\n"
    corrected = header + "o3,c1,2026-03-03,0.00\no4,c3,2026-03-04,40.00\n"
    lake.put("raw/orders/2026-03.csv", march.encode())
    invoke(next_messages(lake))
    # S3's LastModified has whole seconds: the re-export lands in a later second, as a real one does
    # (within one second the view falls back to the key names' order, see docs/tables.md)
    landed = lake.s3.head_object(Bucket=lake.bucket, Key="raw/orders/2026-03.csv")["LastModified"]
    assert wait_until(lambda: dt.datetime.now(dt.UTC) >= landed + dt.timedelta(seconds=1), timeout=10)
    lake.put("raw/orders/2026-03-corrected.csv", corrected.encode())
    [created] = next_messages(lake)
    invoke([created])
    # THEN the orders view shows each order once, from the newest source that has it
    rows = view_rows(lake, "orders")
    assert sorted((r["order_id"], r["amount"]) for r in rows) == [
        ("o1", 10.0), ("o2", 20.0), ("o3", 0.0), ("o4", 40.0),
    ]  # fmt: skip
    # AND every source's rows stay queryable in orders_sources
    assert len(curated_rows(lake, "orders")) == 5
    # WHEN the newer source is deleted, the older rows come back
    lake.s3.delete_object(Bucket=lake.bucket, Key="raw/orders/2026-03-corrected.csv")
    invoke(next_messages(lake))
    rows = view_rows(lake, "orders")
    assert sorted((r["order_id"], r["amount"]) for r in rows) == [("o1", 10.0), ("o2", 20.0), ("o3", 30.0)]


def test_a_key_declared_in_settings_merges_files_and_quarantines_rows_without_one(lake: Lake, invoke: Invoke) -> None:
    lake.put("settings/stock.json", json.dumps({"key": ["SKU", "Store"], "tolerance": 0.5}).encode())
    lake.put("raw/stock/mon.csv", b"SKU,Store,qty\nA,1,5\nB,1,7\n,1,9\n")
    invoke(next_messages(lake))
    lake.put("raw/stock/tue.csv", b"SKU,Store,qty\nA,1,4\nA,1,3\n")
    invoke(next_messages(lake))
    rows = view_rows(lake, "stock")
    assert sorted((r["sku"], r["store"], r["qty"]) for r in rows) == [("A", 1, 4), ("B", 1, 7)]
    reasons = sorted(r["_reason_code"] for r in quarantine_rows(lake, "stock"))
    assert reasons == ["duplicate_key", "missing_key"]


def test_a_key_naming_a_column_the_file_lacks_fails_the_file_with_the_fix(lake: Lake, invoke: Invoke) -> None:
    lake.put("settings/stock.json", b'{"key": ["sku", "warehouse"]}')
    lake.put("raw/stock/mon.csv", b"sku,qty\nA,5\n")
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1)
    assert event["detail"]["status"] == "failed"
    assert "names key column(s) warehouse, which this file does not have" in event["detail"]["error"]["message"]
    assert curated_rows(lake, "stock") == []
    assert len(quarantine_rows(lake, "stock")) == 1  # nothing lost: the row waits in quarantine


def test_the_snapshot_in_an_event_holds_exactly_that_files_rows(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/sales/mon.csv", V1)
    invoke(next_messages(lake))
    lake.put("raw/sales/tue.csv", V2)
    invoke(next_messages(lake))
    first, second = lake.events(2)
    snapshot = first["detail"]["outputs"][0]["snapshot_id"]
    at_first = read_rows(lake, "lake_curated", "sales", snapshot)
    assert sorted(at_first.column("sku").to_pylist()) == ["A", "B", "C"]
    latest = read_rows(lake, "lake_curated", "sales", second["detail"]["outputs"][0]["snapshot_id"])
    assert latest.num_rows == 5


def test_two_workers_committing_to_one_table_at_once_both_land(lake: Lake, invoke: Invoke) -> None:
    # GIVEN the table exists, and six files of the dataset land together
    lake.put("raw/sales/seed.csv", V1)
    invoke(next_messages(lake))
    for n in range(6):
        lake.put(f"raw/sales/part-{n}.csv", f"sku,region,amount\nP{n},north,{n}\n".encode())
    messages = next_messages(lake, 6)
    # WHEN two workers (two processors, as two Lambda instances) commit them concurrently
    workers = [build_processor(Settings.from_env()) for _ in range(2)]
    errors: list[BaseException] = []

    def work(worker: Any, batch: list[dict[str, Any]]) -> None:
        try:
            for message in batch:
                worker.handle_body(message["Body"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w, messages[i::2])) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every commit landed (conflicts were retried against fresh metadata), none twice
    assert errors == []
    skus = sorted(r["sku"] for r in curated_rows(lake, "sales"))
    assert skus == sorted(["A", "B", "C", *(f"P{n}" for n in range(6))])


def test_a_reader_during_a_replace_sees_the_old_or_the_new_rows_never_both(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/sales/sales.csv", V1)
    invoke(next_messages(lake))
    lake.put("raw/sales/sales.csv", V2)
    [message] = next_messages(lake)
    seen: list[tuple[str, ...]] = []
    done = threading.Event()

    def read() -> None:
        table = iceberg_table(lake, "lake_curated", "sales")
        while not done.is_set():
            table.refresh()
            rows = table.scan(selected_fields=("sku", "amount")).to_arrow()
            seen.append(tuple(sorted(f"{s}={a}" for s, a in zip(*rows.to_pydict().values(), strict=True))))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        invoke([message])
    finally:
        done.set()
        reader.join()
    # THEN every read saw one whole version (the reader ran throughout the commit), and the new one won
    assert seen and set(seen) <= {("A=10", "B=20", "C=30"), ("A=11", "B=21")}
    assert amounts(curated_rows(lake, "sales")) == {"A": 11, "B": 21}


def test_lineage_columns_name_the_source_in_every_table_of_a_contract_dataset(lake: Lake, invoke: Invoke) -> None:
    lake.put("raw/experiments/part-1.csv", b"experiment,variant,user,converted\nexp,control,u1,1\nexp,b,u2,0\n")
    invoke(next_messages(lake))
    for table in ("experiment_results_by_file", "experiment_exposures_sources"):
        rows = read_rows(lake, "lake_curated", table)
        assert rows.num_rows > 0
        assert set(rows.column("source_key").to_pylist()) == {"raw/experiments/part-1.csv"}
        assert pa.types.is_timestamp(rows.schema.field("ingested_at").type)


def test_a_deletion_event_naming_the_key_url_encoded_removes_its_rows(lake: Lake, invoke: Invoke) -> None:
    from urllib.parse import quote_plus

    key = "raw/sales/my sales é.csv"
    lake.put(key, V1)
    invoke(next_messages(lake))
    lake.s3.delete_object(Bucket=lake.bucket, Key=key)
    [deleted] = next_messages(lake)
    event = json.loads(deleted["Body"])
    event["detail"]["object"]["key"] = quote_plus(key, safe="/")  # as S3 notifications encode keys
    send(lake, json.dumps(event))
    invoke(next_messages(lake))
    assert curated_rows(lake, "sales") == []


def test_a_file_refused_after_some_tables_committed_is_still_removed_whole_by_a_deletion(
    lake: Lake, invoke: Invoke
) -> None:
    # GIVEN a numeric table, then a new version of the key whose column is text (refused on commit)
    lake.put("raw/sales/s.csv", V1)
    invoke(next_messages(lake))
    lake.put("raw/sales/s.csv", b"sku,region,amount\nA,north,lots\nB,south,some\n")
    invoke(next_messages(lake))
    assert lake.events(2)[1]["detail"]["error"]["type"] == "SchemaConflictError"
    # WHEN the raw object is deleted
    lake.s3.delete_object(Bucket=lake.bucket, Key="raw/sales/s.csv")
    invoke(next_messages(lake))
    # THEN no table keeps rows of it (neither the first version's nor what the refused one committed)
    assert curated_rows(lake, "sales") == []
    assert [r for r in curated_rows(lake, "dataset_profiles") if r["source_key"] == "raw/sales/s.csv"] == []


def test_a_table_created_by_another_worker_after_this_one_looked_is_joined_not_failed(
    lake: Lake, invoke: Invoke, monkeypatch: Any
) -> None:
    # GIVEN two datasets' first files, which both write the shared dataset_profiles table, and a
    # worker that looks for the table, finds none, and is overtaken by a second worker before it
    # creates the table (the interleaving of two first files landing together)
    from pyiceberg.catalog.glue import GlueCatalog

    lake.put("raw/sales/sales.csv", V1)
    lake.put("raw/stock/stock.csv", b"sku,on_hand\nA,3\nB,4\n")
    first, second = next_messages(lake, 2)
    overtaker = build_processor(Settings.from_env())
    create = GlueCatalog.create_table_transaction
    overtaken: list[str] = []

    def create_after_the_other_worker(catalog: Any, identifier: Any, *args: Any, **kwargs: Any) -> Any:
        if not overtaken:
            overtaken.append(str(identifier))
            overtaker.handle_body(second["Body"])  # creates every table the first worker is about to create
        return create(catalog, identifier, *args, **kwargs)

    monkeypatch.setattr(GlueCatalog, "create_table_transaction", create_after_the_other_worker)
    # WHEN the first worker goes on to create the table
    response = invoke([first])
    # THEN it joins the other worker's table instead of failing on a commit conflict, and both land
    assert overtaken, "the first worker never created a table"
    assert response["batchItemFailures"] == []
    profiles = read_rows(lake, "lake_curated", "dataset_profiles")
    assert sorted(set(profiles.column("source_key").to_pylist())) == ["raw/sales/sales.csv", "raw/stock/stock.csv"]
