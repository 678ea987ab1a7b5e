"""What the stand-in adds to moto so it behaves like AWS where the lake depends on it.

Glue's ``UpdateTable`` takes a ``VersionId`` and refuses the update with
``ConcurrentModificationException`` when the table changed since that version: Iceberg's Glue
catalog commits through it, and two writers committing at once rely on it (the loser re-applies
its change on the fresh metadata). moto 5 ignores ``VersionId``, so two concurrent commits both
"succeed" and one is lost. The stand-in runs moto in-process, so it checks the version under a lock
before moto applies the update.

SQS long polling on a FIFO queue: while a message group has a message in flight, its later
messages are visible but may not be delivered. moto's ``ReceiveMessage`` then waits for "any
visible message", which holds at once, and spins for the whole ``WaitTimeSeconds`` (20 s) at full
CPU. The stand-in runs moto in the caller's process, so that spin starves every other request:
with a refresh in flight and requests queued behind it, each file's processing took 8-48 s instead
of 2-7 s. The stand-in makes the wait a real wait: until a message is sent, or briefly, to look
again for messages whose visibility ran out or whose group was freed. While it sleeps, the
request steps out of the checkpoint gate (``lake.standin.checkpoint``), so a long poll never holds a
checkpoint back.

One cost, not a behaviour: moto's server finds the service of every request by listing its own
package's folders (``moto.backends.list_of_moto_modules``: a ``listdir`` and an ``isdir`` call for
each of its ~180 entries). Sampling every thread of `tests/functional/test_refresh.py` with py-spy,
that listing was a quarter of the server thread's time and nearly a tenth of the whole run's. The
folders of an installed package do not change while it runs, so the stand-in lists them once.
"""

from __future__ import annotations

import threading
from typing import Any

_GLUE_LOCK = threading.Lock()
#: How long a long poll that found nothing deliverable sleeps before it looks again, unless a
#: message is sent first (which wakes it at once).
SQS_RECHECK_SECONDS = 0.2


def glue_update_table_checks_version() -> None:
    """Make moto's Glue ``UpdateTable`` honour ``VersionId`` like Glue does (idempotent)."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue.responses import GlueResponse

    original = GlueResponse.update_table
    if getattr(original, "checks_version", False):
        return

    def update_table(self: Any) -> Any:
        version = self.parameters.get("VersionId")
        database = self.parameters.get("DatabaseName")
        name = (self.parameters.get("TableInput") or {}).get("Name")
        with _GLUE_LOCK:
            if version is not None:
                table = self.glue_backend.get_table(database, name)
                current = str(table._current_version)
                if current != str(version):
                    raise JsonRESTError(
                        "ConcurrentModificationException",
                        f"Update table failed due to concurrent modifications: version {version} is not the "
                        f"table's current version {current}",
                    )
            return original(self)

    update_table.checks_version = True  # type: ignore[attr-defined]
    GlueResponse.update_table = update_table  # type: ignore[method-assign]


def sqs_long_poll_waits() -> None:
    """Make moto's SQS long poll sleep between looks instead of spinning (idempotent)."""
    from moto.sqs.models import Queue

    if getattr(Queue.wait_for_messages, "sleeps", False):
        return

    def wait_for_messages(self: Any, timeout: int) -> None:
        # moto calls this after a pass that delivered nothing; ``add_message`` notifies the
        # condition, so a sent message ends the wait at once. The pass before is complete, so a
        # checkpoint may be taken meanwhile (``lake.standin.checkpoint``).
        from lake.standin.checkpoint import GATE

        with GATE.stepped_out(), self._messages_lock:
            self._messages_lock.wait(timeout=min(timeout, SQS_RECHECK_SECONDS))

    wait_for_messages.sleeps = True  # type: ignore[attr-defined]
    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


def moto_modules_listed_once() -> None:
    """Make moto list its service folders once instead of on every request (idempotent)."""
    from moto import backends

    if getattr(backends.list_of_moto_modules, "listed_once", False):
        return
    names = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return names

    list_of_moto_modules.listed_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules
