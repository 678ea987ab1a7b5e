"""``lake status``: is a ``lake up`` running, where, how deep are its queues, what did it process last.

It reads the state directory ``lake up`` writes (``lake.standin.state``): ``up.json`` while it runs, the
saved state's header and ``processed.jsonl`` after.
"""

from __future__ import annotations

import argparse
from typing import Any

import topology
from lake.standin.state import DEFAULT_STATE_DIR, StateDir, StateError, default_state_dir

#: Exit code when no ``lake up`` runs (as ``systemctl status`` does), so scripts can wait for one.
NOT_RUNNING = 3


def register(sub: Any, general: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "status",
        parents=[general],
        help="whether `lake up` is running, where, queue and DLQ depths, last files processed",
        description="Reads the state directory of `lake up`. Exit code 0 when it runs, "
        f"{NOT_RUNNING} when it does not.",
    )
    parser.add_argument(
        "--state-dir",
        default=default_state_dir(),
        metavar="DIR",
        help="the state directory `lake up` was started with (default: $LAKE_STATE_DIR, else .lake)",
    )
    parser.add_argument(
        "--last", type=int, default=5, metavar="N", help="show the last N files processed (default: %(default)s)"
    )
    parser.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    running = state.running()
    try:
        saved = state.header()
        kept = f"state in {state} ({saved.describe()})" if saved else f"no saved state in {state} yet"
    except StateError as exc:
        kept = f"the saved state cannot be used: {exc}"
    if running is None:
        print(
            f"lake up: not running; {kept}. Start it with `lake up`"
            + ("" if args.state_dir == DEFAULT_STATE_DIR else f" --state-dir {args.state_dir}")
        )
        _print_processed(state, args.last)
        return NOT_RUNNING
    url = running["endpoint_url"]
    print(f"lake up: running (pid {running['pid']}) on {url} since {running['started_at']}; log: {running['log']}")
    print(f"  {kept}; saved as it changes")
    print(f"  {_depths(url)}")
    _print_processed(state, args.last)
    return 0


def _depths(endpoint_url: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from lake.standin.server import client

    topo = topology.DEFAULT
    sqs = client("sqs", endpoint_url)
    try:
        counts = {}
        for name in (topo.queue_name, topo.dlq_name):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            counts[name] = (
                int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            )
    except (BotoCoreError, ClientError) as exc:
        return f"queues: cannot ask the stand-in ({' '.join(str(exc).split())})"
    waiting, in_flight = counts[topo.queue_name]
    dead = sum(counts[topo.dlq_name])
    dlq = f"DLQ {topo.dlq_name}: {dead} message(s)" + (" (`lake dlq` shows why)" if dead else "")
    return f"queue {topo.queue_name}: {waiting} waiting, {in_flight} in flight; {dlq}"


def _print_processed(state: StateDir, count: int) -> None:
    processed = state.processed(count) if count > 0 else []
    if not processed:
        print("  no files processed yet")
        return
    print(f"  last {len(processed)} file(s) processed:")
    for entry in processed:
        print(f"    {entry.get('time', '?')}  {entry.get('summary', '')}")
