"""The ``lake`` command: run the local stand-in and the demo; drop files, follow events, query,
list tables, look after the dead-letter queue and reprocess, locally or on AWS (``lake.target``)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

import topology
from lake import dlq, put, query, subscribe
from lake.target import DEFAULT_STACK, ENV_ENDPOINT_URL, CliError, Target, explain, resolve


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


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts, before or after its name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument(
        "--endpoint-url",
        default=argparse.SUPPRESS,
        help=f"the local stand-in, e.g. http://127.0.0.1:{topology.LOCAL_DEFAULT_PORT} (default: ${ENV_ENDPOINT_URL}; "
        "without either, AWS with the default profile and region)",
    )
    common.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: the profile's)")
    common.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile (default: the default profile)")
    common.add_argument(
        "--stack", default=argparse.SUPPRESS, help=f"the deployed CloudFormation stack (default: {DEFAULT_STACK})"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(prog="lake", description="Event-driven S3 data-lake processor", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", parents=[common], help="run the local stand-in and the runner in the foreground")
    up.add_argument("--port", type=int, default=topology.LOCAL_DEFAULT_PORT)
    up.add_argument("--log", default=".lake-worker.log", help="where the handler's logs go")
    up.set_defaults(func=_up)
    demo = sub.add_parser("demo", parents=[common], help="run the whole pipeline on sample files and stop")
    demo.add_argument("--port", type=int, default=None, help="default: a free port")
    demo.add_argument("--workdir", default=".demo")
    demo.set_defaults(func=_demo)
    for module in (put, subscribe, query, dlq):
        module.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    targets: list[Target] = []

    def target() -> Target:
        """Resolved on first use: ``up`` and ``demo`` need none, and resolving may call AWS."""
        if not targets:
            targets.append(
                resolve(
                    getattr(args, "endpoint_url", None),
                    getattr(args, "region", None),
                    getattr(args, "stack", None),
                    getattr(args, "profile", None),
                )
            )
        return targets[0]

    args.target = target
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lake query ... | head`
        return 0
    except Exception as exc:
        if debug:
            raise
        error = explain(exc, targets[0] if targets else None)
        print(f"lake: {error}", file=sys.stderr)
        return error.code if isinstance(error, CliError) else 1


if __name__ == "__main__":
    sys.exit(main())
