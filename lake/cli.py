"""The ``lake`` command: run the local stand-in, the demo, and (later) talk to the lake."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

import topology


def _up(args: argparse.Namespace) -> int:
    from lake.runner import BatchOutcome, Runner
    from lake.standin import StandIn

    stand_in = StandIn(port=args.port)
    with stand_in as endpoints:
        topo = endpoints.topology
        print(f"Local stand-in for AWS on {endpoints.endpoint_url} (region {endpoints.region})")
        print(f"  bucket:  s3://{topo.bucket}   drop files under raw/<dataset>/")
        print(
            f"  try:     aws --endpoint-url {endpoints.endpoint_url} s3 cp data.csv s3://{topo.bucket}/raw/<dataset>/"
        )
        print("  credentials: any (the stand-in accepts every key); Ctrl-C stops everything")

        def line(outcome: BatchOutcome) -> None:
            state = f"failed: {outcome.error}" if outcome.error else f"{outcome.succeeded} ok, {outcome.failed} retry"
            print(f"  invocation: {outcome.records} record(s), {state}", flush=True)

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        with Runner(endpoints, log_path=args.log, listener=line), contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        print("stopped")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lake.demo import run_demo

    return run_demo(Path(args.workdir), port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lake", description="Event-driven S3 data-lake processor")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the local stand-in and the runner in the foreground")
    up.add_argument("--port", type=int, default=topology.LOCAL_DEFAULT_PORT)
    up.add_argument("--log", default=".lake-worker.log", help="where the handler's logs go")
    up.set_defaults(func=_up)
    demo = sub.add_parser("demo", help="run the whole pipeline on sample files and stop")
    demo.add_argument("--port", type=int, default=None, help="default: a free port")
    demo.add_argument("--workdir", default=".demo")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"lake: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
