"""``make image-test``: build the Dockerfile with buildah and run its handler on one real file.

1. a Lambda-like base image from debootstrap (cached in buildah's store after the first run);
2. ``buildah build --isolation chroot`` of the repository's Dockerfile on that base;
3. the local stand-in (moto server on 127.0.0.1, provisioned from the topology like the stack);
4. one real file dropped under ``raw/``; the S3 event the stand-in routes to the processing queue
   is handed, as the exact Lambda SQS event, to the handler named by the image's CMD, run inside
   the image with ``buildah run --isolation chroot``;
5. checks: no batch item failures, Parquet under ``curated/``, a "Dataset Processed" event on the
   example subscriber queue.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import topology
from lake.runner import lambda_sqs_event
from lake.samples import web_sessions_csv
from lake.standin import StandIn, client, free_port
from tests.infra.image.base import build_base, ensure_tools, run

ROOT = Path(__file__).resolve().parents[3]
WORKDIR = ROOT / "build" / "image-test"
IMAGE = "localhost/lake-processor:image-test"
DATASET = "web_sessions"

# Runs inside the image: import the CMD's module.function and call it with a Lambda-like context.
# Only the standard library and the image's own packages are available there.
DRIVER = """
import importlib, json, sys, uuid
handler_path = sys.argv[1]
module_name, _, function_name = handler_path.rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)

class Context:
    function_name = "lake-processor"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:lake-processor"
    memory_limit_in_mb = 3008
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/lake-processor"
    log_stream_name = "image-test"
    def get_remaining_time_in_millis(self):
        return 300_000

event = json.load(sys.stdin)
result = handler(event, Context())
print("IMAGE-TEST-RESULT " + json.dumps(result))
"""


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


def image_cmd() -> str:
    """The handler the image names: tests the image's CMD, not a string repeated here."""
    config = json.loads(run("buildah", "inspect", "--type", "image", IMAGE, capture_output=True).stdout)
    [handler] = config["OCIv1"]["config"]["Cmd"]
    return str(handler)


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


def run_handler_in_image(handler: str, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    container = run("buildah", "from", "--pull=never", IMAGE, capture_output=True).stdout.strip()
    try:
        env_args = [arg for key, value in sorted(env.items()) for arg in ("--env", f"{key}={value}")]
        answer = run(
            "buildah",
            "run",
            "--isolation",
            "chroot",
            "--network",
            "host",
            *env_args,
            container,
            "--",
            "python3.11",
            "-c",
            DRIVER,
            handler,
            input=json.dumps(event),
            capture_output=True,
        )
    finally:
        run("buildah", "rm", container, capture_output=True)
    sys.stderr.write(answer.stderr[-4000:])
    [line] = [x for x in answer.stdout.splitlines() if x.startswith("IMAGE-TEST-RESULT ")]
    result: dict[str, Any] = json.loads(line.removeprefix("IMAGE-TEST-RESULT "))
    return result


def main() -> int:
    started = time.monotonic()
    WORKDIR.mkdir(parents=True, exist_ok=True)
    ensure_tools()
    base = build_base(WORKDIR)
    log(f"base image {base} ready after {time.monotonic() - started:.0f}s")
    build_image(base)
    handler = image_cmd()
    log(f"image {IMAGE} built after {time.monotonic() - started:.0f}s; CMD {handler}")

    with StandIn(port=free_port()) as endpoints:
        topo = endpoints.topology
        s3, sqs = client("s3", endpoints.endpoint_url), client("sqs", endpoints.endpoint_url)
        key = f"{topology.RAW_PREFIX}{DATASET}/image-test.csv"
        s3.put_object(Bucket=topo.bucket, Key=key, Body=web_sessions_csv(rows=200).encode())
        messages = receive_all(sqs, endpoints.queue_url, want=1)
        assert len(messages) == 1, f"the stand-in routed {len(messages)} messages for one file, expected 1"
        event = lambda_sqs_event(messages, endpoints.queue_arn, endpoints.region)

        result = run_handler_in_image(handler, event, endpoints.handler_env())
        log(f"handler answered {result}")
        assert result == {"batchItemFailures": []}, f"the handler failed the record: {result}"

        curated = s3.list_objects_v2(Bucket=topo.bucket, Prefix=topology.CURATED_PREFIX).get("Contents", [])
        parquet = [o["Key"] for o in curated if o["Key"].endswith(".parquet")]
        assert parquet, "no Parquet under curated/ after the handler succeeded"
        events = receive_all(sqs, endpoints.subscriber_queue_url, want=1)
        detail_types = [json.loads(m["Body"])["detail-type"] for m in events]
        assert topology.DETAIL_TYPE_PROCESSED in detail_types, f"completion events seen: {detail_types}"
        log(f"curated outputs: {parquet}")

    log(f"PASSED in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
