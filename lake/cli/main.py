# PYTHON_ARGCOMPLETE_OK  (argcomplete's global completion looks for this marker)
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
from lake.cli import describe, dlq, maintain, put, querying, report, status, subscribe, trial
from lake.standin.state import default_state_dir
from lake.target import DEFAULT_STACK, ENV_ENDPOINT_URL, CliError, Target, explain, resolve


def _up(args: argparse.Namespace) -> int:
    from lake.cli.subscribe import Subscription
    from lake.cli.summary import summarize
    from lake.standin.runner import BatchOutcome, Runner
    from lake.standin.server import CREDENTIALS, StandIn
    from lake.standin.state import StateDir

    # Tests and scripts read these lines through a pipe: one flush per line.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    queue = topology.DEFAULT.queue.on_stand_in()
    if args.workers is not None:
        if args.workers < 1:
            raise CliError(f"--workers must be at least 1, not {args.workers}")
        queue = queue.with_workers(args.workers)
    refresh_queue = topology.DEFAULT.refresh.queue
    if args.retry_after is not None:
        if args.retry_after < 1:
            raise CliError(f"--retry-after must be at least 1 second, not {args.retry_after}")
        queue = queue.retrying_after(args.retry_after)
        refresh_queue = refresh_queue.retrying_after(args.retry_after)
    state = StateDir(args.state_dir)
    stand_in = StandIn(port=args.port, queue=queue, state_dir=state, refresh_queue=refresh_queue)
    stand_in.check_port()
    state.claim(stand_in.endpoint_url, args.log)
    try:
        if args.fresh:
            moved = state.discard()
            print(f"starting fresh; the previous state was moved to {moved}" if moved else "starting fresh")
        with stand_in as endpoints:
            topo = endpoints.topology
            url = endpoints.endpoint_url
            print(f"Local stand-in for AWS on {url} (region {endpoints.region})")
            restored = stand_in.restored
            if restored is not None and restored.rebuild_from is not None:
                print(
                    f"  state:   {state} (the saved lake was made by moto {restored.moto}; rebuilt from its "
                    f"{restored.raw_objects} raw objects by reprocessing; the old state is in {restored.moved_to})"
                )
            elif restored is not None:
                print(f"  state:   {state} (restored, {restored.describe()}); saved as it changes")
            else:
                print(f"  state:   {state} (empty); saved as it changes, restored by the next `lake up`")
            print(f"  bucket:  s3://{topo.bucket}   drop files under raw/<dataset>/")
            print(
                f"  retries: a failed message comes back after {topo.queue.seconds_before_retry} s; after "
                f"{topo.queue.max_receive_count} receives it waits in {topo.dlq_name} (`lake dlq`)"
            )
            print("  in another terminal (the stand-in accepts any credentials; these are the AWS CLI's):")
            print(
                f"    export {ENV_ENDPOINT_URL}={url} AWS_ACCESS_KEY_ID={CREDENTIALS['AWS_ACCESS_KEY_ID']} "
                f"AWS_SECRET_ACCESS_KEY={CREDENTIALS['AWS_SECRET_ACCESS_KEY']} AWS_DEFAULT_REGION={endpoints.region}"
            )
            print(f"    aws --endpoint-url {url} s3 cp data.csv s3://{topo.bucket}/raw/<dataset>/")
            print("    uv run lake put data.csv --dataset <dataset>;  uv run lake events --follow;  uv run lake status")

            def line(outcome: BatchOutcome) -> None:
                # Completion events say how each file went; only what produces no event is shown here.
                files = ", ".join(outcome.keys)
                if outcome.error:
                    print(
                        f"  ⚠ {files}: invocation of {outcome.records} record(s) failed: {outcome.error} (retried "
                        f"after {topo.queue.seconds_before_retry} s; log: {args.log})"
                    )
                elif outcome.failed:
                    print(
                        f"  ↻ {outcome.failed} of {outcome.records} record(s) failed transiently ({files}); retried "
                        f"after {topo.queue.seconds_before_retry} s (log: {args.log})"
                    )

            target = resolve(endpoint_url=url, region=endpoints.region)
            with Runner(endpoints, log_path=args.log, listener=line), Subscription(target) as subscription:
                print(f"ready: processing s3://{topo.bucket}/raw/ (Ctrl-C to stop)")
                for event in subscription.stream(stop=stop):
                    summary = summarize(event.get("detail", {}))
                    state.remember(event, summary)
                    print(f"  {summary}")
            print("stopping: saving the state…")
        saved = stand_in.saved
        checkpoints = f" ({stand_in.checkpoints.describe()} while it ran)" if stand_in.checkpoints else ""
        print(f"stopped; state {saved.describe()} in {state}{checkpoints}" if saved else "stopped")
    finally:
        state.release()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lake.cli.demo import run_demo

    return run_demo(Path(args.workdir), port=args.port, state_dir=Path(args.state_dir) if args.state_dir else None)


def general_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts, before or after its name."""
    general = argparse.ArgumentParser(add_help=False)
    general.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return general


def common_options() -> argparse.ArgumentParser:
    """Options of the commands that work on a lake: where it is (the stand-in or AWS), and --debug."""
    common = argparse.ArgumentParser(add_help=False, parents=[general_options()])
    where = common.add_argument_group("where the lake is")
    where.add_argument(
        "--endpoint-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help=f"the local stand-in, e.g. http://127.0.0.1:{topology.LOCAL_DEFAULT_PORT} (default: ${ENV_ENDPOINT_URL}; "
        "without either, AWS with the default profile and region)",
    )
    aws = common.add_argument_group("AWS only (ignored with --endpoint-url)")
    aws.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: the profile's)")
    aws.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile (default: the default profile)")
    aws.add_argument(
        "--stack", default=argparse.SUPPRESS, help=f"the deployed CloudFormation stack (default: {DEFAULT_STACK})"
    )
    return common


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lake-processor")
    except PackageNotFoundError:
        return "unknown (not installed; run `make install`)"


def build_parser() -> argparse.ArgumentParser:
    general = general_options()
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="lake",
        description="Event-driven S3 data lake: files dropped under raw/ become Iceberg tables you can query. "
        "Runs on this machine (`lake up`) or on AWS (the deployed stack).",
        epilog="`lake COMMAND --help` shows a command's options. Shell completion: "
        'eval "$(register-python-argcomplete lake)" (docs/cli.md).',
        parents=[general],
    )
    parser.add_argument("--version", action="version", version=f"lake {_version()}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser(
        "up",
        parents=[general],
        help="run the local stand-in for AWS and the processor in the foreground",
        description="Start a moto server provisioned like the deployed stack (bucket, queues, bus, Glue, "
        "DynamoDB) and a runner that plays Lambda's SQS poller, then print each completion event. The lake's "
        "state is restored from --state-dir and saved there as it changes, so even a kill -9 loses nothing announced.",
    )
    up.add_argument(
        "--port",
        type=int,
        default=topology.LOCAL_DEFAULT_PORT,
        help="the port on 127.0.0.1 the stand-in listens on (default: %(default)s)",
    )
    up.add_argument("--log", default=".lake-worker.log", help="where the handler's logs go (default: %(default)s)")
    up.add_argument(
        "--state-dir",
        default=default_state_dir(),
        metavar="DIR",
        help="where the stand-in keeps objects, tables, queues and idempotency records between runs "
        "(default: $LAKE_STATE_DIR, else .lake)",
    )
    up.add_argument(
        "--fresh",
        action="store_true",
        help="start with an empty lake; the saved state is moved aside to DIR/discarded/, not deleted",
    )
    up.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"worker processes that take batches at once, as Lambda instances would (default: "
        f"{topology.LOCAL_MAX_CONCURRENCY}; deployed: up to {topology.DEFAULT.queue.max_concurrency}); their files "
        "are committed in groups, one committer per table",
    )
    up.add_argument(
        "--retry-after",
        type=int,
        default=None,
        metavar="SECONDS",
        help=f"retry a failed message after SECONDS instead of the deployed visibility timeout "
        f"({topology.DEFAULT.queue.visibility_timeout_seconds} s), to see retries and the DLQ quickly",
    )
    up.set_defaults(func=_up)
    demo = sub.add_parser(
        "demo",
        parents=[general],
        help="run the whole pipeline on sample files and stop",
        description="Start a throwaway stand-in on a free port, drop the sample files (then a second month of "
        "orders), show the events, query the tables and how customers moved between segments, then stop. "
        "Nothing is kept unless --state-dir is given.",
    )
    demo.add_argument("--port", type=int, default=None, help="the stand-in's port (default: a free port)")
    demo.add_argument("--workdir", default=".demo", help="where the sample files and the log go (default: %(default)s)")
    demo.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help="keep the demo's lake in DIR (which must hold none yet) to explore it afterwards with "
        "`lake up --state-dir DIR` (default: nothing is kept)",
    )
    demo.set_defaults(func=_demo)
    status.register(sub, general)
    for module in (put, subscribe, querying, report, describe, trial, maintain, dlq):
        module.register(sub, common)
    return parser


def overview(parser: argparse.ArgumentParser) -> str:
    """``lake`` alone: every command on one line."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = [(c.dest, c.help or "") for a in actions for c in a._choices_actions]
    width = max(len(name) for name, _ in commands)
    lines = [f"lake {_version()}: files dropped under raw/ become Iceberg tables you can query.", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in commands]
    lines += [
        "",
        "`lake COMMAND --help` for its options; start here: `lake up` (then `lake put`, `lake query`), or `lake demo`.",
    ]
    return "\n".join(lines)


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion when argcomplete is installed (the dev group; docs/cli.md); a no-op otherwise."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _complete(parser)
    args = parser.parse_args(argv)
    if args.command is None:
        print(overview(parser))
        return 0
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
