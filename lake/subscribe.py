"""``lake events``: follow completion and failure events."""

from __future__ import annotations

import argparse
from typing import Any

from lake.target import CliError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("events", parents=[common], help="follow completion and failure events")
    parser.set_defaults(func=_todo)


def _todo(args: argparse.Namespace) -> int:
    raise CliError("not built yet")
