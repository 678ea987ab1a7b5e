"""A stand-in for ``public.ecr.aws/lambda/python:3.13`` made with debootstrap (no registry needed).

What matters for the image is the same as on the real base:

- the Python minor version: Debian 13 (trixie) ships Python 3.13, the Dockerfile's base's version
  (checked against the Dockerfile's default ``BASE_IMAGE`` tag, so the two cannot drift);
- the wheels: trixie's glibc (2.41) is newer than Amazon Linux 2023's (2.34), so it could load
  wheels the real base cannot. The Dockerfile never lets pip pick by the build machine's glibc:
  it installs for ``--platform manylinux_2_34_<arch>``, the real base's tag, on either base;
- the layout: ``python3`` and ``pip`` on PATH from ``/var/lang``, ``LAMBDA_TASK_ROOT=/var/task``,
  and an ENTRYPOINT ``/lambda-entrypoint.sh`` that runs the image's CMD under ``awslambdaric``
  (the runtime interface client the AWS base images use) against ``AWS_LAMBDA_RUNTIME_API``;
- the commands: the real base is Amazon Linux 2023 minimal (no ``find``, no ``xargs``). Every
  command on PATH that it lacks is removed from the stand-in (``al2023.COMMANDS``, written from
  amazonlinux/amazon-linux-2023#585), and ``/bin/sh`` is bash as there, so a ``RUN`` step that
  would stop on the real base stops here too (the first stand-in had Debian's ``find``, and hid it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.infra.image.al2023 import COMMANDS

ROOT = Path(__file__).resolve().parents[3]
SUITE = "trixie"
PYTHON_MINOR = "3.13"  # trixie's python3
#: Commands kept on the stand-in's PATH: the real base's, and the interpreter the venv links to.
KEPT_COMMANDS = COMMANDS | {f"python{PYTHON_MINOR}"}
#: The tag names the command set, so a changed list builds a new base instead of reusing the cached one.
BASE_IMAGE = (
    f"localhost/lake-lambda-base:py{PYTHON_MINOR.replace('.', '')}-"
    + hashlib.sha256(" ".join(sorted(KEPT_COMMANDS)).encode()).hexdigest()[:12]
)
#: Where a Debian root file system keeps commands (``/bin`` and ``/sbin`` link into ``/usr`` on trixie).
BIN_DIRS = ("usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "bin", "sbin")
MIRROR = "http://deb.debian.org/debian"
#: The runtime interface client of the AWS Python base images, pinned so the test is repeatable.
AWSLAMBDARIC = "awslambdaric==4.2.2"
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_LANG = "/var/lang"
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PATH = f"{LAMBDA_LANG}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENTRYPOINT = "/lambda-entrypoint.sh"
# What the AWS base's entrypoint does with a runtime API (without one it starts the emulator, which
# this stand-in does not have): run the handler named by CMD under the runtime interface client.
ENTRYPOINT_SCRIPT = f"""#!/bin/sh
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" >&2
  exit 142
fi
if [ -z "${{AWS_LAMBDA_RUNTIME_API:-}}" ]; then
  echo "AWS_LAMBDA_RUNTIME_API is not set: this stand-in base has no runtime interface emulator" >&2
  exit 1
fi
export _HANDLER="$1"
cd "${{LAMBDA_TASK_ROOT}}"
exec {LAMBDA_LANG}/bin/python3 -m awslambdaric "$_HANDLER"
"""


class BaseMismatchError(Exception):
    """The stand-in base would not match the Dockerfile's real base where it matters."""


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, echoing it, failing loudly."""
    shown = " ".join(a if len(a) < 120 and "\n" not in a else "<script>" for a in args)
    print("+", shown, file=sys.stderr, flush=True)
    return subprocess.run(args, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def image_exists(name: str) -> bool:
    """Whether buildah's local store has ``name``."""
    return (
        subprocess.run(["buildah", "inspect", "--type", "image", name], check=False, capture_output=True).returncode
        == 0
    )


def ensure_tools() -> None:
    """Install buildah and debootstrap from Debian if missing (the machine runs as root)."""
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        run("apt-get", "update", "-q")
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, "ca-certificates")


def dockerfile_python_minor(dockerfile: Path = ROOT / "Dockerfile") -> str:
    """The Python minor version of the Dockerfile's default base (``.../lambda/python:3.13[@sha256:…]``)."""
    found = re.search(r"^ARG BASE_IMAGE=\S*/lambda/python:(\d+\.\d+)\b", dockerfile.read_text(), re.MULTILINE)
    if not found:
        raise BaseMismatchError(
            f"{dockerfile.name}'s default BASE_IMAGE is not public.ecr.aws/lambda/python:<3.N>; "
            "tests/infra/image/base.py builds a stand-in for that base only"
        )
    return found.group(1)


def _resolve_in(rootfs: Path, link: Path) -> Path | None:
    """Where a symlink inside ``rootfs`` ends, read as the chroot would (absolute targets under ``rootfs``)."""
    path = link
    for _ in range(16):
        if not path.is_symlink():
            return path
        target = Path(os.readlink(path))
        path = rootfs / target.relative_to("/") if target.is_absolute() else path.parent / target
    return None


def reduce_to_real_base(rootfs: Path) -> list[str]:
    """Remove every command the real base lacks from ``rootfs``; ``/bin/sh`` becomes bash. Returns
    what was removed. Raises :class:`BaseMismatchError` if a command of the list is missing here
    (the check that the rest of the stand-in still works is the image test itself)."""
    dirs = [rootfs / d for d in BIN_DIRS if (rootfs / d).is_dir() and not (rootfs / d).is_symlink()]
    keep: set[Path] = set()
    for directory in dirs:
        for entry in directory.iterdir():
            if entry.name in KEPT_COMMANDS and entry.name != "sh":  # sh becomes bash below
                keep.add(entry)
                resolved = _resolve_in(rootfs, entry)
                if resolved is not None:
                    keep.add(resolved)  # awk -> /etc/alternatives/awk -> mawk: keep mawk too
    removed = []
    for directory in dirs:
        for entry in sorted(directory.iterdir()):
            if entry not in keep and entry.name != "sh" and (entry.is_file() or entry.is_symlink()):
                entry.unlink()
                removed.append(entry.name)
    for directory in dirs:
        (directory / "sh").unlink(missing_ok=True)
    (rootfs / "usr/bin/sh").symlink_to("bash")
    left = {e.name for d in dirs for e in d.iterdir()}
    if "bash" not in left or "python3" not in left:
        raise BaseMismatchError(f"the reduced stand-in lost bash or python3; it has {sorted(left)}")
    return removed


def build_base(workdir: Path) -> str:
    """Build (once; cached in buildah's store) the debootstrap base image and return its name."""
    wanted = dockerfile_python_minor()
    if wanted != PYTHON_MINOR:
        raise BaseMismatchError(
            f"the Dockerfile's base runs Python {wanted} but the stand-in base ({SUITE}) has {PYTHON_MINOR}: "
            "pick the Debian suite that ships that version in tests/infra/image/base.py"
        )
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    rootfs = workdir / f"rootfs-{SUITE}"
    python = f"usr/bin/python{PYTHON_MINOR}"
    if not (rootfs / python).exists():
        partial = workdir / f"rootfs-{SUITE}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        run(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            SUITE,
            str(partial),
            MIRROR,
        )
        partial.rename(rootfs)
    # The build reaches PyPI through this machine's network; trust what the machine trusts
    # (extra CAs of a TLS-inspecting proxy, for one). Public trust anchors only, no secrets.
    extra_cas = sorted(HOST_EXTRA_CAS.glob("*.crt"))
    if extra_cas:
        target = rootfs / HOST_EXTRA_CAS.relative_to("/")
        target.mkdir(parents=True, exist_ok=True)
        for ca in extra_cas:
            shutil.copy2(ca, target / ca.name)
        run("chroot", str(rootfs), "update-ca-certificates")
    lang = rootfs / LAMBDA_LANG.lstrip("/")
    if not (lang / "bin/pip").exists():
        # A venv at /var/lang gives /var/lang/bin/python3 and pip, like the Lambda base image.
        run("chroot", str(rootfs), f"/{python}", "-m", "venv", LAMBDA_LANG)
    run(
        "chroot",
        str(rootfs),
        f"{LAMBDA_LANG}/bin/python3",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--cert",
        CA_BUNDLE,
        AWSLAMBDARIC,
    )
    entrypoint = rootfs / ENTRYPOINT.lstrip("/")
    entrypoint.write_text(ENTRYPOINT_SCRIPT)
    entrypoint.chmod(0o755)
    (rootfs / LAMBDA_TASK_ROOT.lstrip("/")).mkdir(parents=True, exist_ok=True)
    tarball = workdir / "rootfs.tar"
    run(
        "tar",
        "-C",
        str(rootfs),
        "--exclude=./proc/*",
        "--exclude=./sys/*",
        "--exclude=./dev/*",
        "--exclude=./var/cache/apt/*",
        "--exclude=./var/lib/apt/lists/*",
        "-cf",
        str(tarball),
        ".",
    )
    container = run("buildah", "from", "scratch", capture_output=True).stdout.strip()
    try:
        run("buildah", "add", container, str(tarball), "/")
        # Reduced in the container, not in the cached root file system, which later runs chroot into.
        mounted = Path(run("buildah", "mount", container, capture_output=True).stdout.strip())
        try:
            removed = reduce_to_real_base(mounted)
        finally:
            run("buildah", "umount", container, capture_output=True)
        print(f"removed {len(removed)} commands the real base lacks, e.g. {sorted(removed)[:10]}", file=sys.stderr)
        run(
            "buildah",
            "config",
            "--env",
            f"PATH={PATH}",
            "--env",
            f"LAMBDA_TASK_ROOT={LAMBDA_TASK_ROOT}",
            "--env",
            "LAMBDA_RUNTIME_DIR=/var/runtime",
            "--env",
            "LANG=C.UTF-8",
            # Debian's venv pip would use its own certifi bundle; point it at the system store.
            "--env",
            f"PIP_CERT={CA_BUNDLE}",
            "--workingdir",
            LAMBDA_TASK_ROOT,
            "--entrypoint",
            f'["{ENTRYPOINT}"]',
            container,
        )
        run("buildah", "commit", "--quiet", container, BASE_IMAGE)
    finally:
        run("buildah", "rm", container, capture_output=True)
        tarball.unlink(missing_ok=True)
    return BASE_IMAGE
