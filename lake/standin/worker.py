"""One warm execution environment for the runner: ``python -m lake.standin.worker module.function``.

Reads one JSON invocation per line on stdin and answers one JSON line on the original stdout;
whatever the handler prints goes to stderr (the runner's log), as in a Lambda runtime.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

import topology
from lake.standin.runner import LocalContext


def _die_with_the_runner() -> None:
    """Exit when the runner's process is gone (a ``kill -9`` of ``lake up``), rather than finish an
    invocation against whatever listens on its port next: the restarted stand-in hands the batch out
    again."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()


def main() -> int:
    _die_with_the_runner()
    handler_path = sys.argv[1]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints and logs go to the log, not into the protocol
    sys.stdout = sys.stderr
    module_name, _, func_name = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), func_name)
    protocol.write(json.dumps({"status": "ready"}) + "\n")
    # Fault injection for the runner's own tests: die on the first invocation, as an OOM kill would.
    crash_marker = os.environ.get(topology.ENV_WORKER_CRASH_ONCE)
    for line in sys.stdin:
        request = json.loads(line)
        if crash_marker and not os.path.exists(crash_marker):
            open(crash_marker, "w").close()
            os._exit(137)
        context = LocalContext("lake-processor", request["timeout_ms"], request["memory_mb"], request["region"])
        try:
            answer = {"status": "ok", "result": handler(request["event"], context)}
        except Exception:
            answer = {"status": "error", "error": traceback.format_exc()}
        protocol.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
