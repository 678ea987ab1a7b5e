"""A stand-in for ``public.ecr.aws/lambda/python:3.11`` made with debootstrap (no registry needed).

It has the layout the Dockerfile relies on: ``python3.11`` and ``pip`` on PATH from ``/var/lang``
and ``LAMBDA_TASK_ROOT=/var/task``. It lacks the Lambda runtime interface client; the image test
calls the handler itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BASE_IMAGE = "localhost/lake-lambda-base:py311"
SUITE = "bookworm"  # Debian 12 ships Python 3.11, the Lambda runtime's version.
MIRROR = "http://deb.debian.org/debian"
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_LANG = "/var/lang"
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PATH = f"{LAMBDA_LANG}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


def build_base(workdir: Path) -> str:
    """Build (once; cached in buildah's store) the debootstrap base image and return its name."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    rootfs = workdir / "rootfs"
    if not (rootfs / "usr/bin/python3.11").exists():
        partial = workdir / "rootfs.partial"
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
    if not (rootfs / LAMBDA_LANG.lstrip("/") / "bin/pip").exists():
        # A venv at /var/lang gives /var/lang/bin/python3.11 and pip, like the Lambda base image.
        run("chroot", str(rootfs), "/usr/bin/python3.11", "-m", "venv", LAMBDA_LANG)
    (rootfs / LAMBDA_TASK_ROOT.lstrip("/")).mkdir(parents=True, exist_ok=True)
    # The build reaches PyPI through this machine's network; trust what the machine trusts
    # (extra CAs of a TLS-inspecting proxy, for one). Public trust anchors only, no secrets.
    extra_cas = sorted(HOST_EXTRA_CAS.glob("*.crt"))
    if extra_cas:
        target = rootfs / HOST_EXTRA_CAS.relative_to("/")
        target.mkdir(parents=True, exist_ok=True)
        for ca in extra_cas:
            shutil.copy2(ca, target / ca.name)
        run("chroot", str(rootfs), "update-ca-certificates")
    tarball = workdir / "rootfs.tar"
    run(
        "tar",
        "-C",
        str(rootfs),
        "--exclude=./proc/*",
        "--exclude=./sys/*",
        "--exclude=./dev/*",
        "-cf",
        str(tarball),
        ".",
    )
    container = run("buildah", "from", "scratch", capture_output=True).stdout.strip()
    try:
        run("buildah", "add", container, str(tarball), "/")
        run(
            "buildah",
            "config",
            "--env",
            f"PATH={PATH}",
            "--env",
            f"LAMBDA_TASK_ROOT={LAMBDA_TASK_ROOT}",
            "--env",
            "LANG=C.UTF-8",
            # Debian's venv pip would use its own certifi bundle; point it at the system store.
            "--env",
            f"PIP_CERT={CA_BUNDLE}",
            "--workingdir",
            LAMBDA_TASK_ROOT,
            container,
        )
        run("buildah", "commit", "--quiet", container, BASE_IMAGE)
    finally:
        run("buildah", "rm", container, capture_output=True)
        tarball.unlink(missing_ok=True)
    return BASE_IMAGE
