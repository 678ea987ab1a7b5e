"""A small stand-in for the Lambda Runtime API (2018-06-01), served to a function in a container.

The runtime interface client in the image (``awslambdaric``) long-polls ``GET
/runtime/invocation/next`` for an event, runs the handler, and posts the outcome to
``/runtime/invocation/<request id>/response`` or ``.../error`` (or ``/runtime/init/error`` when the
handler cannot even be loaded). This server hands out the events given to :meth:`RuntimeApi.invoke`
one at a time and returns what the function answered, with the times it was seen, so a test can check
answers and a benchmark can time a cold start.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


class RuntimeApiError(Exception):
    """The function did not answer as the Runtime API expects (no answer in time, or an init error)."""


@dataclass
class Invocation:
    """One event handed to the function and, once it answered, its outcome."""

    request_id: str
    event: Any
    deadline_ms: int
    handed_out_at: float | None = None
    answered_at: float | None = None
    #: ``"response"`` or ``"error"``.
    kind: str | None = None
    #: The parsed JSON body the function posted.
    body: Any = None
    error_type_header: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A function stopped mid-poll drops its connection; that is how every test run ends.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """Serve the Runtime API on 127.0.0.1 (a free port) until closed; use as a context manager."""

    def __init__(self, function_arn: str, timeout_ms: int = 300_000) -> None:
        self.function_arn = function_arn
        self.timeout_ms = timeout_ms
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.invocations: dict[str, Invocation] = {}
        self.init_error: Any = None
        #: When the function first asked for an event: its initialisation (imports) was done.
        self.first_poll_at: float | None = None
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API`` for the function."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def __enter__(self) -> RuntimeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def submit(self, event: Any) -> Invocation:
        """Queue ``event`` for the function's next poll."""
        invocation = Invocation(
            request_id=str(uuid.uuid4()), event=event, deadline_ms=int(time.time() * 1000) + self.timeout_ms
        )
        self.invocations[invocation.request_id] = invocation
        self.pending.put(invocation)
        return invocation

    def wait(self, invocation: Invocation, timeout: float) -> Invocation:
        """Block until the function answered ``invocation`` (or failed to start)."""
        deadline = time.monotonic() + timeout
        while not invocation.done.wait(0.2):
            if self.init_error is not None:
                raise RuntimeApiError(f"the function failed to initialise: {self.init_error}")
            if time.monotonic() > deadline:
                raise RuntimeApiError(f"no answer to invocation {invocation.request_id} within {timeout:.0f}s")
        return invocation

    def invoke(self, event: Any, timeout: float) -> Invocation:
        """Hand ``event`` to the function and wait for its answer."""
        return self.wait(self.submit(event), timeout)

    def _next(self) -> Invocation | None:
        while not self._closed.is_set():
            try:
                invocation = self.pending.get(timeout=0.2)
            except queue.Empty:
                continue
            invocation.handed_out_at = time.monotonic()
            return invocation
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            # The runtime client keeps its connection open between calls (HTTP/1.1 keep-alive).
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the test prints what matters
                pass

            def _reply(self, status: HTTPStatus, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                return json.loads(raw) if raw else None

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": f"no such endpoint {self.path}"})
                    return
                if api.first_poll_at is None:
                    api.first_poll_at = time.monotonic()
                invocation = api._next()
                if invocation is None:  # shutting down
                    self._reply(HTTPStatus.GONE, {"errorMessage": "the runtime API is closing"})
                    return
                self._reply(
                    HTTPStatus.OK,
                    invocation.event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body
                    self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                    return
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    invocation = api.invocations.get(parts[1])
                    if invocation is None or invocation.done.is_set():
                        self._reply(HTTPStatus.BAD_REQUEST, {"errorMessage": f"unknown request id {parts[1]}"})
                        return
                    invocation.answered_at = time.monotonic()
                    invocation.kind = parts[2]
                    invocation.body = body
                    invocation.error_type_header = self.headers.get("Lambda-Runtime-Function-Error-Type")
                    self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                    invocation.done.set()
                    return
                self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": f"no such endpoint {self.path}"})

        return Handler
