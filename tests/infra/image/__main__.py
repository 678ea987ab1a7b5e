"""``make image-test``: build the Dockerfile with buildah and run it the way Lambda does, on one real file.

1. a stand-in for the Lambda Python base from debootstrap (same Python minor version; see ``base.py``;
   cached in buildah's store after the first run);
2. ``buildah build --isolation chroot`` of the repository's Dockerfile on that base (wheels chosen
   for the real base's ``manylinux_2_34``);
3. the local stand-in for AWS (moto server on 127.0.0.1, provisioned from the topology like the stack)
   and a Lambda Runtime API stand-in (``runtime_api.py``);
4. the image's ENTRYPOINT + CMD started in a container, as Lambda starts it: ``awslambdaric`` polls
   the runtime API for events and posts the handler's answers;
5. a malformed event (not an SQS batch): the function answers with a clear error and keeps polling;
6. one real file dropped under ``raw/``: the S3 event the stand-in routes to the processing queue is
   handed, as the exact Lambda SQS event, to the same running function; checks: no batch item
   failures, Parquet under ``curated/``, a "Dataset Processed" event on the example subscriber queue;
7. an orders file through the same function, then the refresh request it sent (FIFO queue) handed to
   a second container of the same image started with the refresh function's CMD, as the stack
   overrides it (``infra/refresh.py``): checks a "Dataset Models Updated" event (DuckDB, scikit-learn
   and scipy load and run on the base).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import topology
from analytics.samples import orders_csv
from infra.refresh import REFRESH_HANDLER
from lake.cli.samples import web_sessions_csv
from lake.standin.runner import lambda_sqs_event
from lake.standin.server import Endpoints, StandIn, client, free_port
from tests.infra.image.al2023 import COMMANDS
from tests.infra.image.base import PYTHON_MINOR, build_base, ensure_tools, run
from tests.infra.image.runtime_api import Invocation, RuntimeApi

ROOT = Path(__file__).resolve().parents[3]
WORKDIR = ROOT / "build" / "image-test"
IMAGE = "localhost/lake-processor:image-test"
DATASET = "web_sessions"
FUNCTION = "lake-processor"
MEMORY_MB = 3008
#: Generous: the first record of a cold function imports pandas, pyarrow, pyiceberg and friends.
ANSWER_TIMEOUT_S = 240.0


def log(message: str) -> None:
    print(f"[image-test] {message}", file=sys.stderr, flush=True)


def build_image(base_image: str) -> None:
    run(
        "buildah",
        "build",
        "--isolation",
        "chroot",
        "--layers",
        "--pull=never",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "-f",
        str(ROOT / "Dockerfile"),
        "-t",
        IMAGE,
        str(ROOT),
    )


def image_command(image: str = IMAGE) -> list[str]:
    """ENTRYPOINT + CMD of the image, as Lambda runs them: tests the image's own, not a string repeated here."""
    config = json.loads(run("buildah", "inspect", "--type", "image", image, capture_output=True).stdout)
    oci = config["OCIv1"]["config"]
    return [*(oci.get("Entrypoint") or []), *(oci.get("Cmd") or [])]


def in_container(image: str, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in a throwaway container of ``image`` (no network), its output captured."""
    container = run("buildah", "from", "--pull=never", image, capture_output=True).stdout.strip()
    try:
        return subprocess.run(
            ["buildah", "run", "--isolation", "chroot", container, "--", *command],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        run("buildah", "rm", container, capture_output=True)


def check_base_has_only_the_real_base_commands(base: str) -> None:
    """The stand-in base, like AL2023-minimal, has no find or xargs, and its /bin/sh is bash."""
    missing = in_container(base, "/bin/sh", "-c", "command -v find || command -v xargs || command -v gzip")
    assert missing.returncode != 0 and not missing.stdout.strip(), f"the base still has {missing.stdout.strip()}"
    assert not {"find", "xargs", "gzip"} & COMMANDS
    shell = in_container(base, "/bin/sh", "-c", 'echo "$BASH_VERSION"')
    assert shell.stdout.strip(), "/bin/sh of the base is not bash, as the real base's is"
    log("base: no find, xargs or gzip; /bin/sh is bash")


def check_the_ops_report_prices_in_the_image() -> None:
    """`lake report ops`'s pricing, imported from the image's own packages (bench/ is not there)."""
    script = (
        "import importlib.util, reports.ops as o; "
        "assert importlib.util.find_spec('bench') is None, 'bench is in the image'; "
        "print(o.lambda_price('arm64', 'us-east-1')[1])"
    )
    priced = in_container(IMAGE, "python3", "-c", script)
    assert priced.returncode == 0 and "per GB-second" in priced.stdout, priced.stdout + priced.stderr
    log(f"ops report price in the image: {priced.stdout.strip()}")


def lambda_environment(endpoints: Endpoints, runtime_api: str) -> dict[str, str]:
    """What Lambda sets for a function, plus the stack's environment as the stand-in names it."""
    return {
        **endpoints.handler_env(),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "image-test",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{PYTHON_MINOR}",
        "AWS_REGION": endpoints.region,
    }


@dataclass
class Function:
    """A running container: the image's entrypoint under a runtime API."""

    process: subprocess.Popen[str]
    started_at: float
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def start_function(
    image: str, command: list[str], env: dict[str, str], log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Function]:
    """Start ``command`` in a fresh container of ``image``; stop and remove the container on exit."""
    container = run("buildah", "from", "--pull=never", image, capture_output=True).stdout.strip()
    env_args = [
        arg for key, value in sorted({**env, **(extra_env or {})}.items()) for arg in ("--env", f"{key}={value}")
    ]
    log_file = log_path.open("w")
    started_at = time.monotonic()
    process = subprocess.Popen(
        ["buildah", "run", "--isolation", "chroot", "--network", "host", *env_args, container, "--", *command],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # one process group: stopping it stops the function inside too
    )
    try:
        yield Function(process=process, started_at=started_at, log_path=log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log_file.close()
        run("buildah", "rm", container, capture_output=True)


def receive_all(sqs: Any, url: str, want: int, wait_seconds: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait_seconds
    messages: list[dict[str, Any]] = []
    while len(messages) < want and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages += answer.get("Messages", [])
    return messages


def drop_file(endpoints: Endpoints, name: str, rows: int = 200, dataset: str = DATASET) -> dict[str, Any]:
    """Upload one sample file under raw/ and return the Lambda SQS event for what the rule routed."""
    s3, sqs = client("s3", endpoints.endpoint_url), client("sqs", endpoints.endpoint_url)
    key = f"{topology.RAW_PREFIX}{dataset}/{name}"
    body = orders_csv(rows, seed=3) if dataset == "orders" else web_sessions_csv(rows=rows)
    s3.put_object(Bucket=endpoints.topology.bucket, Key=key, Body=body.encode())
    messages = receive_all(sqs, endpoints.queue_url, want=1)
    assert len(messages) == 1, f"the stand-in routed {len(messages)} messages for one file, expected 1"
    return lambda_sqs_event(messages, endpoints.queue_arn, endpoints.region)


def function_arn(endpoints: Endpoints) -> str:
    return f"arn:aws:lambda:{endpoints.region}:123456789012:function:{FUNCTION}"


def answered(invocation: Invocation, function: Function) -> Invocation:
    log(f"function answered ({invocation.kind}) {json.dumps(invocation.body)[:600]}")
    assert function.alive(), f"the function's process ended after an invocation:\n{function.output()[-4000:]}"
    return invocation


def main() -> int:
    started = time.monotonic()
    WORKDIR.mkdir(parents=True, exist_ok=True)
    ensure_tools()
    base = build_base(WORKDIR)
    log(f"base image {base} ready after {time.monotonic() - started:.0f}s")
    check_base_has_only_the_real_base_commands(base)
    build_image(base)
    command = image_command()
    log(f"image {IMAGE} built after {time.monotonic() - started:.0f}s; runs {command}")
    check_the_ops_report_prices_in_the_image()

    with StandIn(port=free_port()) as endpoints, RuntimeApi(function_arn(endpoints)) as api:
        s3, sqs = client("s3", endpoints.endpoint_url), client("sqs", endpoints.endpoint_url)
        env = lambda_environment(endpoints, api.address)
        with start_function(IMAGE, command, env, WORKDIR / "function.log") as function:
            try:
                # A console test event: a clear error from the handler, and the runtime loop goes on.
                bad = answered(api.invoke({"key1": "value1"}, timeout=ANSWER_TIMEOUT_S), function)
                assert bad.kind == "error", f"a malformed event was answered with a {bad.kind}: {bad.body}"
                assert bad.body["errorType"] == "NotAnSqsBatchError", bad.body
                assert "takes SQS batches" in bad.body["errorMessage"], bad.body

                event = drop_file(endpoints, "image-test.csv")
                good = answered(api.invoke(event, timeout=ANSWER_TIMEOUT_S), function)
                assert good.kind == "response", f"the SQS batch was answered with an error: {good.body}"
                assert good.body == {"batchItemFailures": []}, f"the handler failed the record: {good.body}"

                orders_event = drop_file(endpoints, "orders.csv", rows=2_000, dataset="orders")
                orders = answered(api.invoke(orders_event, timeout=ANSWER_TIMEOUT_S), function)
                assert orders.body == {"batchItemFailures": []}, f"the handler failed the orders file: {orders.body}"
            except BaseException:
                sys.stderr.write(function.output()[-6000:])
                raise

        # The refresh function: the same image, the stack's CMD override, its own queue.
        requests = receive_all(sqs, endpoints.refresh_queue_url, want=1)
        assert len(requests) == 1, f"the orders file sent {len(requests)} refresh requests, expected 1"
        assert command[-1] == "handlers.process.lambda_handler", f"the image's CMD is not the last word of {command}"
        refresh_command = [*command[:-1], REFRESH_HANDLER]
        # A function of its own, with its own runtime API (the first one's may still hold the stopped
        # container's pending /next request, which would swallow the invocation).
        with RuntimeApi(function_arn(endpoints)) as refresh_api:
            refresh_env = {**lambda_environment(endpoints, refresh_api.address), **endpoints.refresh_env()}
            with start_function(IMAGE, refresh_command, refresh_env, WORKDIR / "refresh.log") as refresher:
                try:
                    event = lambda_sqs_event(requests, endpoints.refresh_queue_arn, endpoints.region)
                    refreshed = answered(refresh_api.invoke(event, timeout=ANSWER_TIMEOUT_S), refresher)
                    assert refreshed.body == {"batchItemFailures": []}, f"the refresh failed: {refreshed.body}"
                except BaseException:
                    sys.stderr.write(refresher.output()[-6000:])
                    raise

        curated = s3.list_objects_v2(Bucket=endpoints.topology.bucket, Prefix=topology.CURATED_PREFIX)
        parquet = [o["Key"] for o in curated.get("Contents", []) if o["Key"].endswith(".parquet")]
        assert parquet, "no Parquet under curated/ after the handler succeeded"
        events = receive_all(sqs, endpoints.subscriber_queue_url, want=3)
        detail_types = [json.loads(m["Body"])["detail-type"] for m in events]
        assert topology.DETAIL_TYPE_PROCESSED in detail_types, f"completion events seen: {detail_types}"
        assert topology.DETAIL_TYPE_MODELS_UPDATED in detail_types, f"completion events seen: {detail_types}"
        log(f"curated outputs: {len(parquet)} Parquet files")
        # What each invocation took in the image (docs/deploy.md's cost model cites these figures).
        for m in events:
            body = json.loads(m["Body"])
            detail = body["detail"]
            log(f"timings_ms of {body['detail-type']} {detail.get('dataset')}: {detail.get('timings_ms')}")
        # The refresh drew its report in the image (matplotlib and the reports package are there).
        [models] = [json.loads(m["Body"])["detail"] for m in events if topology.DETAIL_TYPE_MODELS_UPDATED in m["Body"]]
        assert models["report"], f"the refresh drew no report: {[m for m in models['models'] if m['name'] == 'report']}"
        bucket, _, key = models["report"]["uri"].removeprefix("s3://").partition("/")
        page = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        assert page.count("<svg") >= 3 and "<script" not in page, "the report has no charts"
        log(f"report: {models['report']['uri']} ({len(page):,} bytes, {page.count('<svg')} charts)")
        # Both functions appended to the processing ledger.
        ledger = s3.list_objects_v2(Bucket=endpoints.topology.bucket, Prefix=topology.OPS_PREFIX)
        ledger_files = [o["Key"] for o in ledger.get("Contents", []) if o["Key"].endswith(".parquet")]
        assert len(ledger_files) >= 2, f"ledger files under {topology.OPS_PREFIX}: {ledger_files}"
        log(f"ledger files: {len(ledger_files)}")

    log(f"PASSED in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
