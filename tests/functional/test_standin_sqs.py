"""The stand-in's SQS long poll waits like SQS does, where moto 5 spins.

On a FIFO queue whose message group has a message in flight, the group's next message is visible
but not deliverable. moto's long poll then loops for the whole wait at full CPU; the stand-in runs
moto in this process, so that loop starved every other request (a refresh in flight made each
file's processing several times slower). CPU is compared with wall time over the same poll, so the
check holds on a loaded machine: a spinning poll uses most of the time it waits.
"""

from __future__ import annotations

import threading
import time

from tests.conftest import Lake


def send(lake: Lake, body: str) -> None:
    lake.sqs.send_message(
        QueueUrl=lake.endpoints.refresh_queue_url,
        MessageBody=body,
        MessageGroupId="orders",
        MessageDeduplicationId=body,
    )


def test_a_long_poll_behind_a_message_group_in_flight_sleeps_and_then_gets_the_next_message(lake: Lake) -> None:
    # GIVEN two refresh requests for one dataset (one FIFO message group), the first in flight
    send(lake, "first")
    send(lake, "second")
    [first] = lake.receive(lake.endpoints.refresh_queue_url, wait=1, max_messages=1)
    assert first["Body"] == "first"
    # WHEN another consumer long-polls while the first is in flight
    cpu, wall = time.process_time(), time.monotonic()
    blocked = lake.receive(lake.endpoints.refresh_queue_url, wait=2)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    # THEN it gets nothing (the group is busy), and the server mostly slept while it waited
    assert blocked == []
    assert wall >= 1.5, f"the long poll returned after {wall:.2f} s instead of waiting"
    assert cpu < 0.25 * wall, f"the long poll used {cpu:.2f} s of CPU in {wall:.2f} s: moto's spin is back"
    # AND once the first is deleted, the next poll gets the second
    lake.sqs.delete_message(QueueUrl=lake.endpoints.refresh_queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert [m["Body"] for m in lake.receive(lake.endpoints.refresh_queue_url, wait=2)] == ["second"]


def test_a_long_poll_on_an_empty_queue_ends_as_soon_as_a_message_is_sent(lake: Lake) -> None:
    # GIVEN a consumer long-polling an empty queue for up to 10 s
    received: list[list[str]] = []
    poll = threading.Thread(
        target=lambda: received.append([m["Body"] for m in lake.receive(lake.endpoints.queue_url, wait=10)])
    )
    started = time.monotonic()
    poll.start()
    # WHEN a message is sent while it waits
    time.sleep(0.5)
    lake.sqs.send_message(QueueUrl=lake.endpoints.queue_url, MessageBody="hello")
    poll.join()
    # THEN the poll returns it without waiting out its 10 s
    assert received == [["hello"]]
    assert time.monotonic() - started < 8
