"""The ``lake`` command: run the local stand-in and the demo; drop files, follow events, query,
list and maintain tables, look after the dead-letter queue and reprocess, locally or on AWS
(``lake.target``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import topology
from lake import dlq, maintain, put, query, subscribe
from lake.target import DEFAULT_STACK, ENV_ENDPOINT_URL, CliError, Target, explain, resolve


def _up(args: argparse.Namespace) -> int:
    from lake.runner import BatchOutcome, Runner
    from lake.standin import CREDENTIALS, StandIn
    from lake.subscribe import Subscription
    from lake.summary import summarize

    # Tests and scripts read these lines through a pipe: one flush per line.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    queue = refresh_queue = None
    if args.retry_after is not None:
        if args.retry_after < 1:
            raise CliError(f"--retry-after must be at least 1 second, not {args.retry_after}")
        queue = topology.DEFAULT.queue.retrying_after(args.retry_after)
        refresh_queue = topology.DEFAULT.refresh.queue.retrying_after(args.retry_after)
    stand_in = StandIn(port=args.port, queue=queue, refresh_queue=refresh_queue)
    with stand_in as endpoints:
        topo = endpoints.topology
        url = endpoints.endpoint_url
        print(f"Local stand-in for AWS on {url} (region {endpoints.region})")
        print(f"  bucket:  s3://{topo.bucket}   drop files under raw/<dataset>/")
        print(
            f"  retries: a failed message comes back after {topo.queue.visibility_timeout_seconds} s; after "
            f"{topo.queue.max_receive_count} receives it waits in {topo.dlq_name} (`lake dlq`)"
        )
        print("  in another terminal (the stand-in accepts any credentials; these are the AWS CLI's):")
        print(
            f"    export {ENV_ENDPOINT_URL}={url} AWS_ACCESS_KEY_ID={CREDENTIALS['AWS_ACCESS_KEY_ID']} "
            f"AWS_SECRET_ACCESS_KEY={CREDENTIALS['AWS_SECRET_ACCESS_KEY']} AWS_DEFAULT_REGION={endpoints.region}"
        )
        print(f"    aws --endpoint-url {url} s3 cp data.csv s3://{topo.bucket}/raw/<dataset>/")
        print("    uv run lake put data.csv --dataset <dataset>;  uv run lake events --follow;  uv run lake tables")

        def line(outcome: BatchOutcome) -> None:
            # Completion events say how each file went; only what produces no event is shown here.
            if outcome.error:
                print(
                    f"  ⚠ invocation of {outcome.records} record(s) failed: {outcome.error} (retried after the "
                    f"visibility timeout; log: {args.log})"
                )
            elif outcome.failed:
                print(
                    f"  ↻ {outcome.failed} of {outcome.records} record(s) failed transiently; retried after the "
                    f"visibility timeout (log: {args.log})"
                )

        target = resolve(endpoint_url=url, region=endpoints.region)
        with Runner(endpoints, log_path=args.log, listener=line), Subscription(target) as subscription:
            print(f"ready: processing s3://{topo.bucket}/raw/ (Ctrl-C to stop)")
            for event in subscription.stream(stop=stop):
                print(f"  {summarize(event.get('detail', {}))}")
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
    up.add_argument(
        "--retry-after",
        type=int,
        default=None,
        metavar="SECONDS",
        help=f"retry a failed message after SECONDS instead of the deployed visibility timeout "
        f"({topology.DEFAULT.queue.visibility_timeout_seconds} s), to see retries and the DLQ quickly; "
        "the batching window and the local function's timeout shrink to fit within SECONDS",
    )
    up.set_defaults(func=_up)
    demo = sub.add_parser("demo", parents=[common], help="run the whole pipeline on sample files and stop")
    demo.add_argument("--port", type=int, default=None, help="default: a free port")
    demo.add_argument("--workdir", default=".demo")
    demo.set_defaults(func=_demo)
    for module in (put, subscribe, query, maintain, dlq):
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
