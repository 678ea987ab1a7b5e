"""The Lambda image: locked runtime requirements only, a small build context, a CMD that resolves."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.infra.conftest import Synth

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
    for group in ("dev", "infra"):
        only_there = {canonical(re.split(r"[=<>~\[ ]", d)[0]) for d in pyproject["dependency-groups"][group]}
        assert not (only_there - runtime) & names, f"{group} packages leaked into the image"
    assert all("==" in line for line in pins(REQUIREMENTS.read_text())), "every requirement is pinned"


def test_dockerfile_base_image_is_an_overridable_lambda_python_311() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=public.ecr.aws/lambda/python:3.11")
    assert steps[1] == ("FROM", "${BASE_IMAGE}")


def test_dockerfile_installs_the_locked_requirements_and_copies_only_the_code() -> None:
    steps = instructions()
    copies = [args.split() for kw, args in steps if kw == "COPY"]
    sources = [c[0] for c in copies]
    assert sources == ["infra/lambda-requirements.txt", "topology/", "analytics/", "handlers/"]
    installed_from = copies[0][1]
    [install] = [args for kw, args in steps if kw == "RUN" and "pip install" in args]
    assert f"-r {installed_from}" in install and '--target "${LAMBDA_TASK_ROOT}"' in install
    assert "--no-cache-dir" in install


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
    assert top == {"Dockerfile", ".dockerignore", "infra", "topology", "analytics", "handlers"}
    assert {f for f in files if f.startswith("infra/")} == {"infra/lambda-requirements.txt"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
