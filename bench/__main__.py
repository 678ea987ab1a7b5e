"""``make bench``: every benchmark, each a ratio against a baseline measured in the same run."""

from __future__ import annotations

import importlib
import sys

SUITES = [
    "bench.generic",
    "bench.layout",
    "bench.marketing",
    "bench.personal",
    "bench.iceberg",
    "bench.refresh",
    "bench.daily",
    "bench.athena",
    "bench.image",
    "bench.checkpoint",
]


def main() -> int:
    status = 0
    for name in SUITES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        print(f"## {name}", flush=True)
        status |= module.main()
    return status


if __name__ == "__main__":
    sys.exit(main())
