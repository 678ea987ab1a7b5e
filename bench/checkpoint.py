"""What a checkpoint of the stand-in costs (issue 21: a crash-safe stand-in).

A stand-in is filled with a lake of realistic size, through its own S3 API: ``FILES`` raw files of
100 KiB, and for each three warehouse objects (Iceberg data, manifest, metadata) of 20 KiB, with
messages on the processing queue. Measured, each the median of five:

- the steady checkpoint: one more raw file, then a checkpoint (what every announcement and upload
  pays while the stand-in holds its requests back; bodies already on disk are not written again);
- the baseline: one pickle with every body inside (how the state was saved before checkpoints,
  which is what a checkpoint would cost without the separate bodies);
- the first checkpoint (every body written) and a restore, once each.

``LAKE_BENCH_CHECKPOINT_FILES`` (default 1000: 100 MiB raw, 60 MiB warehouse) sets the size.
Run with ``uv run python -m bench.checkpoint``.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lake.standin.server import StandIn, client, free_port
from lake.standin.state import StateDir

RAW_BYTES = 100 * 1024
WAREHOUSE_BYTES = 20 * 1024


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    files = int(os.environ.get("LAKE_BENCH_CHECKPOINT_FILES", "1000"))
    with tempfile.TemporaryDirectory() as tmp:
        state = StateDir(Path(tmp) / "lake")
        stand_in = StandIn(port=free_port(), state_dir=state)
        endpoints = stand_in.start()
        assert stand_in.checkpoints is not None
        stand_in.checkpoints.stop()  # measured here, one at a time
        s3 = client("s3", endpoints.endpoint_url)
        bucket = endpoints.topology.bucket
        with stand_in.checkpoints.paused():  # filled without a checkpoint per upload
            for i in range(files):
                s3.put_object(Bucket=bucket, Key=f"raw/bench/{i:05d}.csv", Body=os.urandom(RAW_BYTES))
                for part in ("data/a.parquet", "metadata/snap.avro", "metadata/v.metadata.json"):
                    body = os.urandom(WAREHOUSE_BYTES)
                    s3.put_object(Bucket=bucket, Key=f"curated/bench/{i:05d}/{part}", Body=body)
        total = files * (RAW_BYTES + 3 * WAREHOUSE_BYTES)
        started = time.perf_counter()
        stand_in._save()
        first = time.perf_counter() - started

        steady = []
        for i in range(5):
            s3.put_object(Bucket=bucket, Key=f"raw/bench/extra{i}.csv", Body=os.urandom(RAW_BYTES))
            started = time.perf_counter()
            stand_in._save()
            steady.append(time.perf_counter() - started)
        size = state.state_file.stat().st_size

        baseline = []
        for _ in range(5):
            started = time.perf_counter()
            _whole_pickle(Path(tmp) / "whole.state")
            baseline.append(time.perf_counter() - started)
        stand_in.checkpoints = None
        stand_in.stop()

        restarted = StandIn(port=free_port(), state_dir=state)
        started = time.perf_counter()
        restarted.state_dir.restore()  # type: ignore[union-attr]
        restore = time.perf_counter() - started

    print(
        f"lake of {files} raw files + {3 * files} warehouse objects ({total / 2**20:.0f} MiB of bodies), "
        f"state file {size / 2**20:.1f} MiB without the bodies"
    )
    print(f"  checkpoint after one more file: {_median_ms(steady):.0f} ms (median of 5)")
    print(
        f"  baseline, one pickle with every body: {_median_ms(baseline):.0f} ms "
        f"(ratio {_median_ms(steady) / _median_ms(baseline):.2f})"
    )
    print(f"  first checkpoint (every body written once): {first * 1000:.0f} ms; restore: {restore * 1000:.0f} ms")
    return 0


def _whole_pickle(path: Path) -> None:
    """The pre-checkpoint save: moto's backends pickled with every object body inside, fsynced."""
    import pickle

    from moto.backends import get_backend

    from lake.standin.state import _LOCK_TYPES, SERVICES

    class Whole(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            factory = _LOCK_TYPES.get(type(obj))
            if factory is not None:
                return factory, ()
            if isinstance(obj, threading.Condition | threading.Event | threading.Semaphore):
                return type(obj), ()
            return NotImplemented

    state = {}
    for service in SERVICES:
        backends = get_backend(service)  # type: ignore[call-overload]
        state[service] = {a: dict(dict.items(r)) for a, r in dict.items(backends)}
    buffer = io.BytesIO()
    Whole(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    with path.open("wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())


if __name__ == "__main__":
    sys.exit(main())
