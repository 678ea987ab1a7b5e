"""Plays Lambda's SQS event source mappings against the stand-in: the per-file function and the
refresh function, each behind its own queue.

Long polls the queue, gathers batches by batch size and batching window, invokes the handler with
exactly the Lambda SQS event shape in worker processes (one per concurrent execution, up to the
maximum concurrency), deletes only the records that succeeded, and leaves the rest to reappear
after the visibility timeout, so SQS itself redrives them to the DLQ after maxReceiveCount.
A raised exception, a timeout or a crashed worker fails the whole batch, as on Lambda.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from handlers.adapters.failure_records import FailureLog
from lake.standin.server import Endpoints, client
from topology import QueueSettings


class LocalContext:
    """The Lambda context object, with a remaining-time clock that counts down the timeout."""

    def __init__(self, function_name: str, timeout_ms: int, memory_mb: int, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The exact event Lambda builds for a batch of messages received from SQS."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {k: str(v) for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": {
                    name: {
                        "stringValue": a.get("StringValue"),
                        "binaryValue": a.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": a["DataType"],
                    }
                    for name, a in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass
class BatchOutcome:
    """What happened to one invocation; given to the runner's listener."""

    records: int
    succeeded: int
    failed: int
    error: str | None = None
    keys: list[str] = field(default_factory=list)
    #: Which function ran: ``lake-processor`` (per file) or ``lake-refresh``.
    function: str = "lake-processor"


class FunctionTimeoutError(RuntimeError):
    """The handler ran past the function's timeout; Lambda stops it and the batch is retried."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:g} s (the function's timeout)")
        self.seconds = seconds


class InvocationFailedError(RuntimeError):
    """The invocation failed as a whole: its execution environment died."""


class HandlerRaisedError(RuntimeError):
    """The handler raised; it recorded its own failures (``handlers.adapters.failure_records``) before it did."""


def message_key(message: dict[str, Any]) -> str | None:
    """The raw object a processing-queue message names (an S3 event or a process request)."""
    from handlers.errors import InvalidMessageError
    from handlers.events import parse_body

    try:
        return parse_body(message["Body"]).key
    except InvalidMessageError:
        return None


class _Worker:
    """A worker process (``lake.standin.worker``) that keeps its imports warm between invocations."""

    def __init__(self, handler: str, env: dict[str, str], log_path: str | None) -> None:
        self._handler = handler
        self._env = {**os.environ, **env}
        self._log_path = log_path
        self._start()

    def _start(self) -> None:
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lake.standin.worker", self._handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self._env,
            text=True,
        )
        if not isinstance(log, int):
            log.close()
        self._ready = False

    def await_ready(self) -> None:
        """Wait for the worker's imports (Lambda's init phase, which its timeout does not count)."""
        assert self.process.stdout is not None
        if self._ready:
            return
        line = self.process.stdout.readline()
        if json.loads(line or "{}").get("status") != "ready":
            code = self.process.wait(10)
            self.restart()
            raise RuntimeError(
                f"the function's execution environment failed to start (exit code {code}); see "
                f"{self._log_path or 'its log'}"
            )
        self._ready = True

    def invoke(self, event: dict[str, Any], timeout_ms: int, memory_mb: int, region: str) -> dict[str, Any]:
        """Run one invocation; raises ``RuntimeError`` for an error, a timeout or a crash."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"event": event, "timeout_ms": timeout_ms, "memory_mb": memory_mb, "region": region}
        try:
            self.await_ready()
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], timeout_ms / 1000)
            if not ready:
                self.restart()
                raise FunctionTimeoutError(timeout_ms / 1000)
            line = self.process.stdout.readline()
        except FunctionTimeoutError:
            raise
        except (OSError, ValueError) as exc:
            self.restart()
            raise RuntimeError(f"the execution environment crashed ({exc!r}); the batch will be retried") from exc
        if not line:
            code = self.process.poll()
            self.restart()
            raise RuntimeError(f"the execution environment exited (code {code}); the batch will be retried")
        answer = json.loads(line)
        if answer["status"] == "error":
            raise HandlerRaisedError(answer["error"])
        result: dict[str, Any] = answer.get("result") or {}
        return result

    def restart(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._start()

    def stop(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)


@dataclass(frozen=True)
class EventSourceMapping:
    """One Lambda function behind one queue, as an SQS event source mapping ties them."""

    function_name: str
    handler: str
    queue_url: str
    queue_arn: str
    settings: QueueSettings
    env: dict[str, str]


class _Poller:
    """Plays one event source mapping: polls its queue, invokes its function in warm workers."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        region: str,
        endpoint_url: str,
        log_path: str | None,
        listener: Callable[[BatchOutcome], None],
        memory_mb: int,
        failures: FailureLog,
        eager: bool = True,
    ) -> None:
        self.mapping = mapping
        # A failure the handler cannot record itself (a timeout, a crash) is recorded here, where
        # `lake dlq list` reads failures, as Lambda's own logs would tell on AWS.
        self._failures = failures
        # Eager: every execution environment is started (and warm) before the first message; lazy:
        # one is started when a batch finds none free, as Lambda does for a rarely used function.
        self.eager = eager
        self.settings = mapping.settings
        self.region = region
        self.listener = listener
        self.memory_mb = memory_mb
        self._sqs = client("sqs", endpoint_url, region)
        self._log_path = log_path
        self._stop = threading.Event()
        self._free: list[_Worker] = []
        self._slots = threading.Semaphore(self.settings.max_concurrency)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._poller: threading.Thread | None = None
        self._workers: list[_Worker] = []
        self.invocations = 0

    def start(self) -> None:
        count = self.settings.max_concurrency if self.eager else 0
        self._workers = [_Worker(self.mapping.handler, self.mapping.env, self._log_path) for _ in range(count)]
        # Poll only once the function is warm: on a loaded machine its imports can outlast a short
        # visibility timeout, and a message received meanwhile would come back into a second batch.
        for worker in self._workers:
            worker.await_ready()
        self._free = list(self._workers)
        self._poller = threading.Thread(
            target=self._poll_loop, name=f"sqs-poller-{self.mapping.function_name}", daemon=True
        )
        self._poller.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(30)
        for thread in list(self._threads):
            thread.join(self.settings.function_timeout_seconds + 5)
        for worker in self._workers:
            worker.stop()

    # --- polling -----------------------------------------------------------------------------------
    def _receive(self, max_messages: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=max(0, min(20, wait_seconds)),
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: wait for a first message, then fill up to batch size within the window."""
        batch: list[dict[str, Any]] = []
        while not batch and not self._stop.is_set():
            batch = self._receive(self.settings.batch_size, 1)
        deadline = time.monotonic() + self.settings.batching_window_seconds
        while batch and len(batch) < self.settings.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch += self._receive(self.settings.batch_size - len(batch), min(1, int(remaining)))
        return batch

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                batch = self._gather()
            except Exception:
                self._slots.release()
                time.sleep(1)  # the stand-in may be stopping; try again
                continue
            if not batch:
                self._slots.release()
                continue
            with self._lock:
                worker = self._free.pop() if self._free else None
            if worker is None:  # the semaphore keeps the count within the maximum concurrency
                worker = _Worker(self.mapping.handler, self.mapping.env, self._log_path)
                with self._lock:
                    self._workers.append(worker)
            thread = threading.Thread(target=self._invoke, args=(worker, batch), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    # --- invoking ----------------------------------------------------------------------------------
    def _invoke(self, worker: _Worker, messages: list[dict[str, Any]]) -> None:
        event = lambda_sqs_event(messages, self.mapping.queue_arn, self.region)
        raw_keys = [message_key(m) for m in messages]
        keys = [key or "(not a lake message)" for key in raw_keys]
        outcome = BatchOutcome(
            records=len(messages), succeeded=0, failed=len(messages), keys=keys, function=self.mapping.function_name
        )
        failed_messages = messages
        try:
            response = worker.invoke(event, self.settings.function_timeout_seconds * 1000, self.memory_mb, self.region)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self._sqs.delete_message_batch(
                    QueueUrl=self.mapping.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
            outcome.succeeded, outcome.failed = len(done), len(failed)
            failed_messages = [m for m in messages if m["MessageId"] in failed]
        except Exception as exc:
            # As on Lambda: the whole batch becomes visible again after the visibility timeout.
            outcome.error = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            # The handler records the failures it sees, even those it raises; a timeout or a crash
            # it never sees end, so the runner records them, as Lambda's log would tell.
            if not isinstance(exc, HandlerRaisedError):
                cause = exc if isinstance(exc, FunctionTimeoutError) else InvocationFailedError(outcome.error)
                for message, key in zip(messages, raw_keys, strict=True):
                    self._failures.record(message["MessageId"], key, cause)
            self._log(
                f"{self.mapping.function_name}: invocation of {len(messages)} record(s) ({', '.join(keys)}) "
                f"failed: {outcome.error}"
            )
        finally:
            self.invocations += 1
            with self._lock:
                self._free.append(worker)
            self._slots.release()
        if self.settings.retry_after_seconds is not None and failed_messages:
            self._retry_soon(failed_messages)
        try:
            self.listener(outcome)
        except Exception:
            traceback.print_exc()

    def _retry_soon(self, messages: list[dict[str, Any]]) -> None:
        """``lake up --retry-after``: hand failed messages out again after the short wait."""
        seconds = self.settings.retry_after_seconds
        for start in range(0, len(messages), 10):
            try:
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self.mapping.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
                        for i, m in enumerate(messages[start : start + 10])
                    ],
                )
            except Exception:  # the message still comes back, after the visibility timeout
                traceback.print_exc()

    def _log(self, text: str) -> None:
        """A line in the worker log, where the handler's own lines go (CloudWatch on AWS)."""
        if self._log_path is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self._log_path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} lake runner: {text}\n")


PROCESSING_FUNCTION = "lake-processor"
REFRESH_FUNCTION = "lake-refresh"


class Runner:
    """Plays Lambda's event source mappings: the per-file function behind the processing queue and,
    when the stand-in has a refresh queue, the refresh function behind it (same image, own handler)."""

    def __init__(
        self,
        endpoints: Endpoints,
        handler: str = "handlers.process.lambda_handler",
        log_path: str | None = None,
        listener: Callable[[BatchOutcome], None] | None = None,
        extra_env: dict[str, str] | None = None,
        memory_mb: int = 3008,
        refresh_handler: str | None = "handlers.refresh.lambda_handler",
    ) -> None:
        self.endpoints = endpoints
        self.settings = endpoints.topology.queue
        self.handler = handler
        self.listener = listener or (lambda outcome: None)
        self.memory_mb = memory_mb
        extra = extra_env or {}
        mappings = [
            EventSourceMapping(
                PROCESSING_FUNCTION,
                handler,
                endpoints.queue_url,
                endpoints.queue_arn,
                self.settings,
                {**endpoints.handler_env(), **extra},
            )
        ]
        if refresh_handler and endpoints.refresh_queue_url:
            mappings.append(
                EventSourceMapping(
                    REFRESH_FUNCTION,
                    refresh_handler,
                    endpoints.refresh_queue_url,
                    endpoints.refresh_queue_arn,
                    endpoints.topology.refresh.queue,
                    {**endpoints.refresh_env(), **extra},
                )
            )
        failures = FailureLog(
            client("dynamodb", endpoints.endpoint_url, endpoints.region),
            endpoints.topology.idempotency_table,
            self.settings.dlq_retention_days * 86400,
        )
        self._pollers = [
            _Poller(
                m,
                endpoints.region,
                endpoints.endpoint_url,
                log_path,
                self._notify,
                endpoints.topology.refresh.memory_mb if m.function_name == REFRESH_FUNCTION else memory_mb,
                failures,
                # The refresh function is started on its first request, so runs without one pay nothing.
                eager=m.function_name != REFRESH_FUNCTION,
            )
            for m in mappings
        ]

    @property
    def mappings(self) -> list[EventSourceMapping]:
        return [p.mapping for p in self._pollers]

    @property
    def invocations(self) -> int:
        """Invocations of the per-file function."""
        return self._pollers[0].invocations

    @property
    def refresh_invocations(self) -> int:
        """Invocations of the refresh function (0 without a refresh queue)."""
        return sum(p.invocations for p in self._pollers[1:])

    def _notify(self, outcome: BatchOutcome) -> None:
        self.listener(outcome)

    def start(self) -> Runner:
        for poller in self._pollers:
            poller.start()
        return self

    def stop(self) -> None:
        for poller in self._pollers:
            poller.signal_stop()
        for poller in self._pollers:
            poller.stop()

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
