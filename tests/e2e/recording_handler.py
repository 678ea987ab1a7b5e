"""A stand-in Lambda function for testing the runner itself (not the processor).

Behaviour is chosen per message body (or a process request's ``reason``): ``sleep:<s>`` sleeps,
``raise`` raises, ``fail`` is reported as a batch item failure, anything else succeeds.
Every event is appended to ``RUNNER_TEST_LOG``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with open(os.environ["RUNNER_TEST_LOG"], "a") as log:
        log.write(json.dumps({"event": event, "remaining_ms": context.get_remaining_time_in_millis()}) + "\n")
    failures = []
    for record in event["Records"]:
        body = record["body"]
        if body.startswith("{"):  # a process request: its reason says what to do
            body = json.loads(body)["detail"]["reason"]
        if body.startswith("sleep:"):
            time.sleep(float(body.split(":", 1)[1]))
        elif body == "raise":
            raise RuntimeError("the function raised")
        elif body == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
