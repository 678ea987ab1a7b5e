"""How the data work uses threads: column parsers side by side (Arrow kernels release the GIL), and
the models' BLAS/OpenMP held to one thread while several files run in one process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")


def in_parallel(jobs: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent column parsers on a few threads; Arrow kernels release the GIL.

    Results are keyed by job name, so the outcome does not depend on which thread finishes first.
    """
    workers = min(len(jobs), os.cpu_count() or 1, 4)
    if workers <= 1:
        return {name: job() for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="parse") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


_controller: ThreadpoolController | None = None
_controller_lock = threading.Lock()


def single_threaded() -> AbstractContextManager[object]:
    """``threadpool_limits(limits=1)`` for BLAS and OpenMP, with the libraries looked up once.

    ``threadpool_limits`` scans the process's loaded libraries on every call (about 15 ms); the
    models run once per file, so the controller is built on first use and kept.
    """
    global _controller
    with _controller_lock:
        if _controller is None:
            _controller = ThreadpoolController()
        controller = _controller
    return controller.limit(limits=1)
