"""Cold start and size of the built Lambda image, against a bare interpreter started in the same image.

The image is the one ``make image-test`` builds (``localhost/lake-processor:image-test``): reused
when present, built here (base included, a few minutes the first time) when not. Each cold start
is a fresh container running the image's ENTRYPOINT + CMD under a Lambda Runtime API stand-in with
one SQS batch of one new file waiting, timed from starting the process to the function's answer
for that record; the baseline is ``python3 -c pass`` started the same way. Without buildah (or as
non-root) the suite says so and reports nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 3


def log(message: str) -> None:
    print(f"  {message}", flush=True)


def image_created(image: str) -> str | None:
    answer = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, text=True, check=False
    )
    if answer.returncode != 0:
        return None
    return str(json.loads(answer.stdout)["OCIv1"].get("created", "?"))


def ensure_image() -> str:
    from tests.infra.image.__main__ import IMAGE, WORKDIR, build_image
    from tests.infra.image.base import build_base

    created = image_created(IMAGE)
    if created:
        log(f"reusing {IMAGE}, built by make image-test at {created} (rebuild with make image-test)")
        return IMAGE
    log(f"no {IMAGE} yet: building it as make image-test does")
    WORKDIR.mkdir(parents=True, exist_ok=True)
    build_image(build_base(WORKDIR))
    return IMAGE


def sizes(image: str) -> dict[str, int]:
    """Uncompressed bytes of the whole image and of /var/task, and the bytecode coverage of /var/task."""
    container = subprocess.run(["buildah", "from", "--pull=never", image], capture_output=True, text=True, check=True)
    name = container.stdout.strip()
    try:
        root = Path(
            subprocess.run(["buildah", "mount", name], capture_output=True, text=True, check=True).stdout.strip()
        )
        task = root / "var/task"

        def du(path: Path) -> int:
            return int(
                subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
            )

        sources = [p for p in task.rglob("*.py") if "__pycache__" not in p.parts]
        compiled = [p for p in sources if any((p.parent / "__pycache__").glob(f"{p.stem}.cpython-*.pyc"))]
        return {"image": du(root), "task": du(task), "modules": len(sources), "compiled": len(compiled)}
    finally:
        subprocess.run(["buildah", "umount", name], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def bare_python_seconds(image: str, work: Path) -> float:
    from tests.infra.image.__main__ import start_function

    times = []
    for _ in range(RUNS):
        with start_function(image, ["python3", "-c", "pass"], {}, work / "bare.log") as function:
            function.process.wait(timeout=120)
            times.append(time.monotonic() - function.started_at)
    return statistics.median(times)


def cold_start_seconds(image: str, work: Path, extra_env: dict[str, str]) -> tuple[float, float]:
    """Median (start → first poll, start → first record answered) over fresh containers."""
    from lake.standin.server import StandIn, free_port
    from tests.infra.image.__main__ import (
        ANSWER_TIMEOUT_S,
        drop_file,
        function_arn,
        image_command,
        lambda_environment,
        start_function,
    )
    from tests.infra.image.runtime_api import RuntimeApi

    command = image_command(image)
    inits, firsts = [], []
    with StandIn(port=free_port()) as endpoints:
        for run in range(RUNS + 1):
            event = drop_file(endpoints, f"bench-{time.time_ns()}.csv")
            with RuntimeApi(function_arn(endpoints)) as api:
                invocation = api.submit(event)  # waiting before the process starts, as for a cold start
                env = lambda_environment(endpoints, api.address)
                with start_function(image, command, env, work / "function.log", extra_env) as function:
                    api.wait(invocation, timeout=ANSWER_TIMEOUT_S)
                if invocation.body != {"batchItemFailures": []}:
                    raise RuntimeError(f"the function did not process the file: {invocation.body}")
                assert api.first_poll_at is not None and invocation.answered_at is not None
                if run == 0:
                    continue  # warms the host's page cache for the image's files, as a busy Lambda host has
                inits.append(api.first_poll_at - function.started_at)
                firsts.append(invocation.answered_at - function.started_at)
    return statistics.median(inits), statistics.median(firsts)


def main() -> int:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        print("  skipped: needs buildah and root (make image-test installs buildah on Debian)")
        return 0
    work = Path(os.environ.get("LAKE_BENCH_DIR", "build/bench"))
    work.mkdir(parents=True, exist_ok=True)
    image = ensure_image()

    found = sizes(image)
    print("# the Lambda image (uncompressed; the base here is the Debian stand-in, not Amazon Linux)")
    whole, task = found["image"] / 1e6, found["task"] / 1e6
    log(f"whole image {whole:.0f} MB, of which /var/task (dependencies + code) {task:.0f} MB")
    log(f"bytecode cached at build time for {found['compiled']} of {found['modules']} modules under /var/task")

    print(f"# cold start inside the image, median of {RUNS} fresh containers (after one warm-up)")
    bare = bare_python_seconds(image, work)
    init, first = cold_start_seconds(image, work, {})
    # PYTHONPYCACHEPREFIX sends Python to an empty cache: what a cold start costs without the
    # build-time bytecode (on Lambda, /var/task is read-only and /tmp starts empty each time).
    init_nopyc, first_nopyc = cold_start_seconds(image, work, {"PYTHONPYCACHEPREFIX": "/tmp/no-bytecode"})
    log(f"python3 -c pass: {bare:.2f}s")
    log(f"with build-time bytecode:    handler loaded {init:.2f}s, first record done {first:.2f}s")
    log(f"without (compiled at start): handler loaded {init_nopyc:.2f}s, first record done {first_nopyc:.2f}s")
    print(f"INFO  cold start ratio first-record/bare-python: {first / bare:.1f}x")
    print(f"INFO  cold start ratio with/without build-time bytecode: {first / first_nopyc:.2f}")
    ok = first < first_nopyc
    print(f"{'PASS' if ok else 'MISS'}  build-time bytecode shortens the cold start: {first:.2f}s < {first_nopyc:.2f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
