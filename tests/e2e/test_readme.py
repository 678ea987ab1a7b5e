"""The README's walkthrough, run literally: its commands, extracted from the README, against `lake up`.

Only what cannot be literal is changed, each for a stated reason: the port (4566 may be taken by a
user's own `lake up` or another test), and where the state and the log go (``LAKE_STATE_DIR`` and
``--log`` in the test's tmp, not the user's ``.lake/``). The commands run from the repository's
root, as a user's would.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

import topology
from lake.standin.server import free_port
from tests.e2e.cli import Background, cli_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def block(name: str) -> str:
    """The fenced block right after ``<!-- walkthrough: NAME -->``."""
    found = re.search(rf"<!-- walkthrough: {name} -->\n```[a-z]*\n(.*?)```", README.read_text(), re.DOTALL)
    assert found, f"README.md has no block marked <!-- walkthrough: {name} -->"
    return found.group(1)


def on_port(text: str, port: int) -> str:
    return text.replace(f":{topology.LOCAL_DEFAULT_PORT}", f":{port}")


def test_the_walkthrough_files_exist_and_every_command_is_one_lake_knows() -> None:
    for path in re.findall(r"\bexamples/[\w./-]+", README.read_text()):
        assert (ROOT / path.rstrip(".")).exists(), f"README names {path}, which is not in the repository"
    from lake.cli.main import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for line in block("terminal 2").splitlines():
        if line.startswith("lake "):
            assert line.split()[1] in commands, line


def test_the_readme_walkthrough_runs_literally_against_lake_up(tmp_path: Path) -> None:
    port = free_port()
    # Terminal 1, as written, plus where this test keeps the state and the log.
    [terminal_1] = [line for line in block("terminal 1").splitlines() if line.strip()]
    argv = shlex.split(on_port(terminal_1, port))
    argv += ["--port", str(port), "--log", str(tmp_path / "worker.log")]
    env = cli_env(**{topology.ENV_STATE_DIR: str(tmp_path / "state")})
    with Background(argv, env) as up:
        up.wait_for("ready:", timeout=180)
        # Terminal 2, as written, in a shell started from the repository's root.
        script = on_port(block("terminal 2"), port)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n" + "\n".join(up.lines)
        # What the README says the first query prints is what it prints.
        expected = block("output")
        assert expected.strip() and expected in result.stdout, result.stdout
        # And what it says terminal 1 shows, it shows.
        assert up.wait_for("✔ raw/web_sessions/web_sessions.csv", timeout=60)
        assert "lake up: running" in result.stdout  # `lake status` found it
        assert up.stop() == 0
