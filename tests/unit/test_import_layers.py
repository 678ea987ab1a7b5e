"""The layer rules bite: `make lint` runs import-linter (`lint-imports`) with the contracts in
pyproject.toml's ``[tool.importlinter]``; a forbidden import placed in a copy of the packages fails it.

Each probe sits inside a function, as the project's lazy imports do (the Lambda's cold start), so a
rule that only saw module-level imports would let it through.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PACKAGES = ("analytics", "query", "handlers", "lake", "reports", "bench", "topology")


def copy_of_the_packages(into: Path) -> Path:
    """The packages and pyproject.toml, as they are, in a folder of their own."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def lint_imports(folder: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` run from ``folder`` (it puts its working directory first on sys.path)."""
    argv = [LINT_IMPORTS, "--no-cache", "--no-logo", *(f"--contract={c}" for c in contracts)]
    return subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=120, check=False)


def probe(folder: Path, package: str, statement: str) -> str:
    """A module of ``package`` (a folder path: ``handlers/adapters``) importing ``statement`` inside a
    function; returns its dotted name."""
    (folder / package / "_layer_probe.py").write_text(f"def probe() -> None:\n    {statement}\n")
    return f"{package.replace('/', '.')}._layer_probe"


def test_the_packages_as_they_are_keep_every_layer(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_packages(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("contract", "package", "statement", "forbidden"),
    [
        ("analytics-pure", "analytics", "import boto3", "boto3"),
        ("analytics-pure", "analytics", "from botocore.config import Config", "botocore"),
        ("analytics-pure", "analytics", "from pyiceberg.catalog import load_catalog", "pyiceberg"),
        ("analytics-pure", "analytics", "from handlers import process", "handlers"),
        ("analytics-pure", "analytics", "import lake.cli.main", "lake"),
        ("analytics-pure", "analytics", "from reports import build_report", "reports"),
        ("analytics-pure", "analytics", "from query import DuckDBEngine", "query"),
        ("query-engine-below-handlers", "query", "from handlers.errors import PermanentError", "handlers"),
        ("query-engine-below-handlers", "query", "from lake.target import CliError", "lake"),
        ("handlers-no-lake", "handlers", "from lake.standin.server import StandIn", "lake"),
        ("reports-no-bench", "reports", "import bench.cost", "bench"),
        ("topology-ours-free", "topology", "import analytics.registry", "analytics"),
    ],
)
def test_a_forbidden_import_fails_the_lint(
    tmp_path: Path, contract: str, package: str, statement: str, forbidden: str
) -> None:
    # GIVEN the packages with one module importing what its layer forbids
    folder = copy_of_the_packages(tmp_path)
    module = probe(folder, package, statement)
    # WHEN the linter checks that layer's contract
    result = lint_imports(folder, contract)
    # THEN it fails, naming the module, the import and the contract broken
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{module} -> {forbidden}" in result.stdout, result.stdout
    assert "1 broken" in result.stdout


def test_an_import_through_another_package_of_ours_fails_too(tmp_path: Path) -> None:
    # GIVEN analytics importing a module of ours that may import boto3 (topology may)
    folder = copy_of_the_packages(tmp_path)
    (folder / "topology" / "_aws.py").write_text("import boto3\n")
    module = probe(folder, "analytics", "import topology._aws")
    # WHEN the linter checks analytics
    result = lint_imports(folder, "analytics-pure")
    # THEN the chain breaks the rule, though analytics never names boto3
    assert result.returncode == 1, result.stdout + result.stderr
    assert module in result.stdout and "topology._aws -> boto3" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("contract", "subpackage", "statement", "importer", "imported"),
    [
        # an AWS adapter reaching up into a stage, a stage up into the composition root
        (
            "handlers-layers",
            "handlers/adapters",
            "from handlers.stages.object_processor import ObjectProcessor",
            "handlers.adapters._layer_probe",
            "handlers.stages.object_processor",
        ),
        (
            "handlers-layers",
            "handlers/stages",
            "from handlers.bootstrap import build_processor",
            "handlers.stages._layer_probe",
            "handlers.bootstrap",
        ),
        # the stand-in reaching up into the command
        (
            "lake-layers",
            "lake/standin",
            "from lake.cli.main import main",
            "lake.standin._layer_probe",
            "lake.cli.main",
        ),
    ],
)
def test_a_lower_layer_importing_a_higher_one_fails_the_lint(
    tmp_path: Path, contract: str, subpackage: str, statement: str, importer: str, imported: str
) -> None:
    # GIVEN a module of a lower layer importing a module of a higher one
    folder = copy_of_the_packages(tmp_path)
    assert probe(folder, subpackage, statement) == importer
    # WHEN the linter checks that package's layers
    result = lint_imports(folder, contract)
    # THEN it fails, naming the import that goes the wrong way
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not allowed to import" in result.stdout, result.stdout
    assert f"{importer} -> {imported}" in result.stdout, result.stdout
