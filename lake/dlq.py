"""``lake dlq`` and ``lake reprocess``: the operator's tools for the dead-letter queue and backfills."""

from __future__ import annotations

import argparse
from typing import Any

from lake.target import CliError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    for name in ("dlq", "reprocess"):
        sub.add_parser(name, parents=[common], help="(not built yet)").set_defaults(func=_todo)


def _todo(args: argparse.Namespace) -> int:
    raise CliError("not built yet")
