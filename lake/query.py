"""``lake query`` and ``lake tables``: Athena SQL over the catalogued tables."""

from __future__ import annotations

import argparse
from typing import Any

from lake.target import CliError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    for name in ("query", "tables"):
        sub.add_parser(name, parents=[common], help="(not built yet)").set_defaults(func=_todo)


def _todo(args: argparse.Namespace) -> int:
    raise CliError("not built yet")
