"""The stand-in emits S3 "Object Deleted" events as AWS does (moto 5.2 does not), through the raw rule.

moto delivers an S3 event to the rule's queue within the S3 request, so once a call returns its
event is in the queue (or never will be); the positive checks show it, which lets the negative
check wait on a single receive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from lake.standin.s3_events import EMPTY_ETAG
from lake.standin.server import StandIn, client, free_port
from tests.conftest import Lake

SAMPLE = json.loads((Path(__file__).parent.parent / "events/s3_object_deleted.json").read_text())


def routed(lake: Lake, count: int) -> list[dict[str, Any]]:
    """Exactly ``count`` events from the raw rule's queue, in the order S3 emitted them."""
    events: list[dict[str, Any]] = []
    for _ in range(20):
        for message in lake.receive(lake.endpoints.queue_url, wait=1):
            events.append(json.loads(message["Body"]))
            lake.sqs.delete_message(QueueUrl=lake.endpoints.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if len(events) >= count:
            break
    assert len(events) == count, f"expected {count} routed events, got {[e['detail-type'] for e in events]}"
    # The queue is not FIFO: order the key's events by sequencer, as a consumer must.
    return sorted(events, key=lambda e: e["detail"]["object"]["sequencer"])


def assert_shaped_like_aws(event: dict[str, Any], deletion_type: str) -> None:
    """Same fields as the AWS sample payload, and Powertools' model accepts it."""
    assert event.keys() == SAMPLE.keys()
    assert event["detail"].keys() == SAMPLE["detail"].keys()
    assert event["detail"]["object"].keys() == SAMPLE["detail"]["object"].keys()  # no size
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Deleted")
    assert (event["detail"]["reason"], event["detail"]["deletion-type"]) == ("DeleteObject", deletion_type)
    assert parse(event=event, model=S3EventNotificationEventBridgeModel).detail.deletion_type == deletion_type


def test_deleting_a_raw_object_emits_object_deleted_with_the_marker_after_its_creations(lake: Lake) -> None:
    # GIVEN an object under raw/ uploaded twice (two versions)
    key = "raw/web_sessions/march 2026+é.csv"
    lake.put(key, b"a\n1\n")
    lake.put(key, b"a\n2\n")
    # WHEN a user deletes it without naming a version (a delete marker is created)
    marker = lake.s3.delete_object(Bucket=lake.bucket, Key=key)["VersionId"]
    # THEN the raw rule's queue receives both creations and then one Object Deleted event
    first, second, deleted = routed(lake, 3)
    assert [first["detail-type"], second["detail-type"]] == ["Object Created", "Object Created"]
    assert_shaped_like_aws(deleted, "Delete Marker Created")
    obj = deleted["detail"]["object"]
    assert (deleted["detail"]["bucket"]["name"], obj["key"]) == (lake.bucket, key)
    assert (obj["version-id"], obj["etag"]) == (marker, EMPTY_ETAG)
    # AND its sequencer is larger than those of the key's creations, each event with an id of its own
    assert first["detail"]["object"]["sequencer"] < second["detail"]["object"]["sequencer"] < obj["sequencer"]
    assert len({first["id"], second["id"], deleted["id"]}) == 3


def test_deleting_a_named_version_emits_a_permanent_deletion_of_that_version(lake: Lake) -> None:
    # GIVEN two versions of a raw object
    key = "raw/orders/2026-03.csv"
    lake.put(key, b"a\n1\n")
    lake.put(key, b"a\n2\n")
    created = routed(lake, 2)
    old = created[0]["detail"]["object"]
    # WHEN the older version is deleted by its version id
    lake.s3.delete_object(Bucket=lake.bucket, Key=key, VersionId=old["version-id"])
    # THEN one Object Deleted event names that version and its ETag, later than its creations
    [deleted] = routed(lake, 1)
    assert_shaped_like_aws(deleted, "Permanently Deleted")
    obj = deleted["detail"]["object"]
    assert (obj["key"], obj["version-id"], obj["etag"]) == (key, old["version-id"], old["etag"])
    assert obj["sequencer"] > max(e["detail"]["object"]["sequencer"] for e in created)
    # AND the newer version is still there
    assert lake.s3.get_object(Bucket=lake.bucket, Key=key)["Body"].read() == b"a\n2\n"


def test_a_batch_delete_emits_one_event_per_deleted_object(lake: Lake) -> None:
    # GIVEN three raw objects (what `aws s3 rm --recursive` deletes with one DeleteObjects call)
    keys = [f"raw/experiments/part-{i}.jsonl" for i in range(3)]
    for key in keys:
        lake.put(key, b'{"a": 1}\n')
    created = routed(lake, 3)
    # WHEN they are deleted in one batch
    answer = lake.s3.delete_objects(Bucket=lake.bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    markers = {d["Key"]: d["DeleteMarkerVersionId"] for d in answer["Deleted"]}
    # THEN each gets its own Object Deleted event naming its delete marker, after every creation
    deleted = routed(lake, 3)
    for event in deleted:
        assert_shaped_like_aws(event, "Delete Marker Created")
    assert {e["detail"]["object"]["key"]: e["detail"]["object"]["version-id"] for e in deleted} == markers
    assert min(e["detail"]["object"]["sequencer"] for e in deleted) > max(
        e["detail"]["object"]["sequencer"] for e in created
    )


def test_a_bucket_without_eventbridge_notifications_emits_nothing(lake: Lake) -> None:
    # GIVEN the lake bucket with its EventBridge notifications switched off
    key = "raw/web_sessions/quiet.csv"
    lake.s3.put_bucket_notification_configuration(Bucket=lake.bucket, NotificationConfiguration={})
    # WHEN an object is put, deleted by version and deleted (a marker)
    version = lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=b"a\n1\n")["VersionId"]
    lake.put(key, b"a\n2\n")
    lake.s3.delete_object(Bucket=lake.bucket, Key=key, VersionId=version)
    lake.s3.delete_object(Bucket=lake.bucket, Key=key)
    # THEN nothing reaches the raw rule's queue
    assert lake.receive(lake.endpoints.queue_url, wait=1) == []
    # AND once they are on again, a deletion does (so the silence above was the configuration)
    lake.s3.put_bucket_notification_configuration(
        Bucket=lake.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    lake.s3.delete_object(Bucket=lake.bucket, Key=key)
    [deleted] = routed(lake, 1)
    assert deleted["detail"]["object"]["key"] == key


def test_an_unversioned_bucket_reports_a_permanent_deletion_without_a_version(lake: Lake) -> None:
    # GIVEN an unversioned bucket with EventBridge notifications, routed to the processing queue
    bucket = "lake-unversioned"
    lake.s3.create_bucket(Bucket=bucket)
    lake.s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    topo = lake.endpoints.topology
    events = client("events", lake.endpoints.endpoint_url)
    events.put_rule(Name="unversioned-raw", EventPattern=json.dumps(topo.raw_object_events_pattern(bucket)))
    events.put_targets(Rule="unversioned-raw", Targets=[{"Id": "q", "Arn": lake.endpoints.queue_arn}])
    key = "raw/orders/april.csv"
    etag = lake.s3.put_object(Bucket=bucket, Key=key, Body=b"a\n1\n")["ETag"].strip('"')
    # WHEN the object is deleted (and a key that never existed, which deletes nothing)
    lake.s3.delete_object(Bucket=bucket, Key=key)
    lake.s3.delete_object(Bucket=bucket, Key="raw/orders/never.csv")
    # THEN one permanent deletion names the object and its ETag, with no version id
    created, deleted = routed(lake, 2)
    assert created["detail-type"] == "Object Created"
    assert deleted["detail-type"] == "Object Deleted"
    assert deleted["detail"]["deletion-type"] == "Permanently Deleted"
    assert deleted["detail"]["object"].keys() == {"key", "etag", "sequencer"}
    assert (deleted["detail"]["object"]["key"], deleted["detail"]["object"]["etag"]) == (key, etag)
    assert lake.receive(lake.endpoints.queue_url, wait=1) == []


def test_a_second_stand_in_in_the_process_emits_each_deletion_once(lake: Lake, moto_server: StandIn) -> None:
    # GIVEN a second stand-in started in this process (moto keeps one state per process)
    with StandIn(port=free_port(), topo=moto_server.topology) as second:
        # WHEN an object is put and deleted through it
        s3 = client("s3", second.endpoint_url)
        key = "raw/web_sessions/twice.csv"
        s3.put_object(Bucket=lake.bucket, Key=key, Body=b"a\n1\n")
        s3.delete_object(Bucket=lake.bucket, Key=key)
    # THEN each event arrives once: the hook is installed once, not once per stand-in
    created, deleted = routed(lake, 2)
    assert (created["detail-type"], deleted["detail-type"]) == ("Object Created", "Object Deleted")
    assert lake.receive(lake.endpoints.queue_url, wait=1) == []
