"""``lake put PATH... --dataset NAME``: upload files or folders to ``raw/<dataset>/``."""

from __future__ import annotations

import argparse
from typing import Any

from lake.target import CliError


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("put", parents=[common], help="upload files or folders to raw/<dataset>/")
    parser.set_defaults(func=_todo)


def _todo(args: argparse.Namespace) -> int:
    raise CliError("not built yet")
