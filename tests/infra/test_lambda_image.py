"""The Lambda image: locked runtime requirements only, wheels that load on the real base, a small
build context, a CMD that resolves, a wheel with every package."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.conftest import Synth
from tests.infra.image import al2023
from tests.infra.image.base import KEPT_COMMANDS, dockerfile_python_minor, reduce_to_real_base

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
REQUIREMENTS = ROOT / "infra" / "lambda-requirements.txt"
#: The same command as ``make requirements`` (hashes included: the image installs with --require-hashes).
EXPORT = ["uv", "export", "--frozen", "--no-default-groups", "--no-emit-project", "--format", "requirements.txt"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def pins(text: str) -> list[str]:
    """The requirements, one per entry (``name==version --hash=... --hash=...``), comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_match_the_lock() -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to export the lock (make install puts it on PATH)"
    exported = subprocess.run([uv, *EXPORT[1:]], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert pins(REQUIREMENTS.read_text()) == pins(exported), (
        "infra/lambda-requirements.txt is stale; regenerate it with: make requirements"
    )


def test_every_requirement_is_pinned_with_hashes() -> None:
    # pip --require-hashes refuses a file where any requirement lacks one.
    for entry in pins(REQUIREMENTS.read_text()):
        assert re.match(r"^[A-Za-z0-9._-]+(\[[^]]*\])?==\S+", entry), entry
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"no hash for {entry.split()[0]}"


def test_requirements_hold_runtime_dependencies_only() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {canonical(re.split(r"[=<> ;\[]", line)[0]) for line in pins(REQUIREMENTS.read_text())}
    runtime = {canonical(re.split(r"[=<>~\[ ]", d)[0]) for d in pyproject["project"]["dependencies"]}
    assert runtime <= names
    # Every group stays out of the image (the export has --no-default-groups; the notebook group is
    # not even a default one): none of their packages may be pinned there unless the runtime needs it.
    assert set(pyproject["tool"]["uv"]["default-groups"]) <= set(pyproject["dependency-groups"])
    for group in pyproject["dependency-groups"]:
        only_there = {canonical(re.split(r"[=<>~\[ ]", d)[0]) for d in pyproject["dependency-groups"][group]}
        assert not (only_there - runtime) & names, f"{group} packages leaked into the image"
    assert all("==" in line for line in pins(REQUIREMENTS.read_text())), "every requirement is pinned"


def test_functions_do_not_need_what_the_image_leaves_out() -> None:
    # awswrangler (Athena for `lake query`) and jsonschema (tests) are not runtime dependencies.
    for package in ("awswrangler", "jsonschema"):
        assert not [line for line in pins(REQUIREMENTS.read_text()) if canonical(line).startswith(f"{package}==")]
        users = [
            str(path.relative_to(ROOT))
            for top in ("handlers", "query", "analytics", "topology")
            for path in (ROOT / top).rglob("*.py")
            if re.search(rf"^\s*(import|from) {package}\b", path.read_text(), re.MULTILINE)
        ]
        assert not users, f"{users} import {package}, which the image does not install; add it back to dependencies"


def arg_default(name: str) -> str:
    [value] = [args.partition("=")[2] for kw, args in instructions() if kw == "ARG" and args.startswith(f"{name}=")]
    return value


def test_dockerfile_base_image_is_an_overridable_lambda_python_on_amazon_linux_2023() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=public.ecr.aws/lambda/python:3.13")
    assert steps[1] == ("FROM", "${BASE_IMAGE}")
    # The architecture comes from the build's --platform (or --build-arg TARGETARCH=arm64).
    assert ("ARG", "TARGETARCH") in steps
    assert arg_default("MANYLINUX") == "manylinux_2_34", "Amazon Linux 2023 has glibc 2.34"


def test_matplotlib_keeps_its_cache_where_lambda_lets_a_function_write() -> None:
    # Only /tmp is writable in Lambda: anywhere else matplotlib warns on every cold start.
    env = dict(args.split("=", 1) for kw, args in instructions() if kw == "ENV")
    assert env["MPLCONFIGDIR"].startswith("/tmp/")


def test_dockerfile_installs_the_locked_requirements_and_copies_only_the_code() -> None:
    steps = instructions()
    copies = [args.split() for kw, args in steps if kw == "COPY"]
    sources = [c[0] for c in copies]
    assert sources == ["infra/lambda-requirements.txt", "topology/", "analytics/", "query/", "handlers/", "reports/"]
    installed_from = copies[0][1]
    [install] = [args for kw, args in steps if kw == "RUN" and "pip install" in args]
    assert f"-r {installed_from}" in install and '--target "${LAMBDA_TASK_ROOT}"' in install
    assert "--no-cache-dir" in install
    # Wheels for the real base's platform, not for the glibc of whatever machine builds the image.
    assert "--platform manylinux_2_${minor}_${arch}" in install and "--only-binary=:all:" in install


def test_dockerfile_compiles_every_module_it_installs_or_copies() -> None:
    # /var/task is read-only in Lambda: whatever is not compiled at build time is compiled on every
    # cold start. The dependencies are compiled in their layer, the code after it is copied.
    steps = instructions()
    [install_step] = [i for i, (kw, args) in enumerate(steps) if kw == "RUN" and "pip install" in args]
    assert "compileall" in steps[install_step][1].split("pip install")[1]
    last_copy = max(i for i, (kw, _) in enumerate(steps) if kw == "COPY")
    compiles = [args for kw, args in steps[last_copy:] if kw == "RUN" and "compileall" in args]
    assert compiles, "no compileall after the code is copied"
    for package in ("topology", "analytics", "query", "handlers", "reports"):
        assert f"${{LAMBDA_TASK_ROOT}}/{package}" in compiles[0]
    assert all("--invalidation-mode unchecked-hash" in args for kw, args in steps if "compileall" in args)


# --- only the commands the real base ships ------------------------------------------------------
def test_every_run_step_calls_only_what_the_real_base_ships() -> None:
    # GIVEN the Dockerfile's RUN steps, parsed as bash (the real base's /bin/sh)
    steps = al2023.run_steps(DOCKERFILE.read_text())
    assert len(steps) >= 2 and all(list(al2023.commands(step)) for step in steps)
    # THEN each command is a bash builtin or on Amazon Linux 2023 minimal (no find, no xargs)
    assert al2023.foreign_commands(DOCKERFILE.read_text()) == [], (
        "a RUN step calls a command the Lambda base does not have (tests/infra/image/al2023.py); "
        "write it in Python (python3 -c ...) instead"
    )


@pytest.mark.parametrize(
    "added",
    [
        'find "${LAMBDA_TASK_ROOT}" -depth -type d -name tests -exec rm -rf {} +',
        "ls /var/task | xargs -n1 echo",
        'for f in a b; do gzip -9 "$f"; done',
        'echo "$(sed -n 1p /etc/os-release)"',
    ],
)
def test_the_command_check_refuses_what_the_real_base_lacks(added: str) -> None:
    # GIVEN the Dockerfile with the old cleanup (or another command AL2023-minimal lacks) put back
    text = DOCKERFILE.read_text().replace("rm /tmp/requirements.txt;", f"rm /tmp/requirements.txt; {added};")
    assert text != DOCKERFILE.read_text()
    # THEN the check names it
    assert set(al2023.foreign_commands(text)) & {"find", "xargs", "gzip", "sed"}


def test_the_command_list_names_its_packages() -> None:
    assert {"find", "xargs", "gzip", "tar", "sed", "which", "perl", "dpkg", "apt-get"}.isdisjoint(al2023.COMMANDS)
    assert {"bash", "sh", "rm", "uname", "python3", "pip", "dnf"} <= al2023.COMMANDS
    assert al2023.COMMANDS <= KEPT_COMMANDS


def test_the_stand_in_base_is_reduced_to_the_real_base_commands(tmp_path: Path) -> None:
    # GIVEN a Debian-like root file system: find, xargs, dash as sh, awk through the alternatives
    bin_dir = tmp_path / "usr/bin"
    bin_dir.mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    for name in ("find", "xargs", "bash", "dash", "python3.13", "rm", "mawk", "tar"):
        (bin_dir / name).write_text("#!/bin/true\n")
    (bin_dir / "python3").symlink_to("python3.13")
    (bin_dir / "sh").symlink_to("dash")
    (tmp_path / "etc/alternatives").mkdir(parents=True)
    (tmp_path / "etc/alternatives/awk").symlink_to("/usr/bin/mawk")
    (bin_dir / "awk").symlink_to("/etc/alternatives/awk")
    # WHEN it is reduced
    removed = reduce_to_real_base(tmp_path)
    # THEN only the real base's commands are left, awk still resolves, and sh is bash
    assert set(removed) == {"find", "xargs", "dash", "tar"}
    assert {p.name for p in bin_dir.iterdir()} == {"bash", "python3.13", "python3", "rm", "mawk", "awk", "sh"}
    assert (bin_dir / "sh").resolve() == (bin_dir / "bash").resolve()


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at top level: functions, assignments and imports."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def test_dockerfile_cmd_names_a_callable_that_imports() -> None:
    [cmd] = [json.loads(args) for kw, args in instructions() if kw == "CMD"]
    assert cmd == ["handlers.process.lambda_handler"]
    module_name, _, function = cmd[0].rpartition(".")
    path = ROOT / Path(*module_name.split(".")).with_suffix(".py")
    assert path.exists(), f"CMD names {module_name}, but {path.relative_to(ROOT)} does not exist"
    assert function in top_level_names(ast.parse(path.read_text())), f"{module_name} defines no {function}"
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function))


def test_build_context_holds_only_what_the_image_needs(synth: Synth) -> None:
    # CDK stages the Docker build context through .dockerignore exactly as it will upload it.
    [asset] = [p for p in synth.outdir.iterdir() if p.name.startswith("asset.") and (p / "Dockerfile").exists()]
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    top = {f.split("/")[0] for f in files}
    assert top == {"Dockerfile", ".dockerignore", "infra", "topology", "analytics", "query", "handlers", "reports"}
    assert {f for f in files if f.startswith("infra/")} == {"infra/lambda-requirements.txt"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


# --- wheels for the real base -------------------------------------------------------------------
INDEX = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple"
#: The Lambda architectures, as wheel platform tags name them (x86_64 and arm64 functions).
ARCHES = ("x86_64", "aarch64")


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    """The package index, or a clean skip saying why these checks did not run."""
    try:
        with urllib.request.urlopen(f"{INDEX.rstrip('/')}/pip/", timeout=15) as answer:
            answer.read(1)
    except (urllib.error.URLError, OSError) as exc:
        pytest.skip(f"the package index {INDEX} is unreachable ({exc}); the wheel checks need it")
    yield INDEX


def resolve(requirements: Path, platform: str, python: str) -> subprocess.CompletedProcess[str]:
    """uv's resolution of exactly these pins for a platform and Python, wheels only (as pip will install)."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to resolve wheels (make install puts it on PATH)"
    return subprocess.run(
        [uv, "pip", "compile", "--no-deps", "--no-header", "--no-annotate", "--only-binary", ":all:",
         "--no-python-downloads", "--python-platform", platform, "--python-version", python,
         "--index-url", INDEX, str(requirements)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("arch", ARCHES)
def test_every_locked_runtime_wheel_installs_on_the_lambda_base(index: str, arch: str) -> None:
    # GIVEN the real base's Python and glibc (from the Dockerfile's defaults)
    python = dockerfile_python_minor()
    platform = f"{arch}-{arg_default('MANYLINUX')}"
    # WHEN every locked runtime pin is resolved to a wheel for it (that tag and every older manylinux)
    answer = resolve(REQUIREMENTS, platform, python)
    # THEN each has one: a pin with none fails here, not in `cdk deploy`
    assert answer.returncode == 0, f"no wheel for Python {python} on {platform}:\n{answer.stderr}"
    resolved = {canonical(line.split("==")[0]): line.split("==")[1] for line in pins(answer.stdout)}
    locked = {
        canonical(line.split("==")[0]): line.split("==")[1].split(" ")[0]
        for line in pins(REQUIREMENTS.read_text())
        if applies_on_the_base(line, python, arch)
    }
    assert resolved == locked


def applies_on_the_base(line: str, python: str, arch: str) -> bool:
    """Whether a pin's environment marker holds in the image: tzdata is for Windows only, and a
    package locked at two versions (contourpy, split by Python version) has one for the base's Python."""
    from packaging.markers import Marker

    if ";" not in line:
        return True
    marker = line.split(";", 1)[1].split(" --hash", 1)[0].strip()
    environment = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": arch,
        "os_name": "posix",
    }
    return bool(Marker(marker).evaluate(environment))


def test_the_wheel_check_refuses_a_base_with_an_older_glibc(index: str, tmp_path: Path) -> None:
    # The check is not vacuous: the locked numpy has no wheel for glibc 2.17 (Amazon Linux 2 has
    # 2.26, between uv's 2.17 and 2.28 targets), which is why the base moved to Amazon Linux 2023.
    numpy = [line for line in pins(REQUIREMENTS.read_text()) if line.startswith("numpy==")]
    (tmp_path / "numpy.txt").write_text("\n".join(numpy))
    answer = resolve(tmp_path / "numpy.txt", "x86_64-manylinux_2_17", dockerfile_python_minor())
    assert answer.returncode != 0 and "numpy" in answer.stderr and "no usable wheels" in answer.stderr, answer


def test_the_wheel_holds_every_package_the_lake_command_imports(index: str, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv
    subprocess.run([uv, "build", "--wheel", "--quiet", "--out-dir", str(tmp_path)], cwd=ROOT, check=True)
    [wheel] = tmp_path.glob("*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    assert tops == {"analytics", "handlers", "lake", "query", "reports", "topology"}
