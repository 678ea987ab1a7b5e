"""What the stand-in adds to moto so it behaves like AWS where the lake depends on it.

Glue's ``UpdateTable`` takes a ``VersionId`` and refuses the update with
``ConcurrentModificationException`` when the table changed since that version: Iceberg's Glue
catalog commits through it, and two writers committing at once rely on it (the loser re-applies
its change on the fresh metadata). moto 5 ignores ``VersionId``, so two concurrent commits both
"succeed" and one is lost. The stand-in runs moto in-process, so it checks the version under a lock
before moto applies the update.
"""

from __future__ import annotations

import threading
from typing import Any

_GLUE_LOCK = threading.Lock()


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
