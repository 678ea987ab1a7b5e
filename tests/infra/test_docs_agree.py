"""docs/deploy.md agrees with the stack and the cost model: counts from the synthesized template,
the cost table from ``python -m bench.cost``, one Node version everywhere."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import cost
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"
WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def counts(synth: Synth) -> dict[str, int]:
    """Functions, queues, dead-letter queues and alarms in the template."""
    resources = synth.template_json["Resources"]
    queues = synth.resources("AWS::SQS::Queue")

    def refs(value: Any) -> set[str]:
        text = json.dumps(value)
        return {q for q in queues if f'"{q}"' in text}

    dead_letter: set[str] = set()
    for queue in queues.values():  # SQS redrive policies
        dead_letter |= refs(queue["Properties"].get("RedrivePolicy", {}))
    for rule in synth.resources("AWS::Events::Rule").values():  # EventBridge delivery DLQs
        for target in rule["Properties"].get("Targets", []):
            dead_letter |= refs(target.get("DeadLetterConfig", {}))
    return {
        "functions": sum(1 for r in resources.values() if r["Type"] == "AWS::Lambda::Function"),
        "queues": len(queues),
        "dead-letter queues": len(dead_letter),
        "alarms": len(synth.resources("AWS::CloudWatch::Alarm")),
    }


def test_the_counts_in_deploy_md_are_the_templates(synth: Synth) -> None:
    # GIVEN the synthesized template's counts
    found = counts(synth)
    assert found["dead-letter queues"] >= 2 and found["functions"] >= 2
    text = DEPLOY.read_text()
    # THEN the "In all" line of the resources table says the same
    for what, n in found.items():
        assert re.search(rf"\*\*{n} {what}\*\*", text), f"docs/deploy.md should say **{n} {what}**"
    # and so does every "each of the N DLQs" and the cost section's alarm count
    for word in re.findall(r"each of the (\w+) DLQs", text):
        assert WORDS[word] == found["dead-letter queues"], f"'each of the {word} DLQs'"
    assert f"alarm for each of the stack's {found['alarms']}" in text


def test_the_cost_model_counts_what_the_stack_has(synth: Synth) -> None:
    found = counts(synth)
    deployment = cost.Deployment()
    assert deployment.alarms == found["alarms"]
    assert deployment.functions == found["functions"]
    # Every function is fed by a queue its poller long-polls.
    mappings = synth.resources("AWS::Lambda::EventSourceMapping")
    assert deployment.polled_queues == len(mappings) == found["functions"]
    _, processor = synth.processor()
    _, refresher = synth.refresher()
    assert processor["Properties"]["MemorySize"] == deployment.memory_mb
    assert refresher["Properties"]["MemorySize"] == deployment.refresh_memory_mb
    assert processor["Properties"]["Architectures"] == [deployment.architecture]
    assert processor["Properties"]["EphemeralStorage"]["Size"] == deployment.ephemeral_mb


def doc_table() -> str:
    text = DEPLOY.read_text()
    assert text.count(cost.DOC_BEGIN) == 1 and text.count(cost.DOC_END) == 1, "the cost table's markers"
    return text.split(cost.DOC_BEGIN, 1)[1].split(cost.DOC_END, 1)[0].strip("\n")


def test_the_cost_table_in_deploy_md_is_what_the_calculator_prints() -> None:
    # GIVEN the calculator run as a reader runs it
    printed = subprocess.run(
        [sys.executable, "-m", "bench.cost"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip("\n")
    # THEN the page holds exactly its output (regenerate: paste `python -m bench.cost` between the markers)
    assert doc_table() == printed, "docs/deploy.md's cost table drifted from `python -m bench.cost`; paste its output"
    # and it prices the three workloads beside the always-on design
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "$" in line]
    assert len(rows) == 3 and all("task" in row for row in rows)


def test_the_cost_table_check_notices_a_changed_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    # A changed input (say, a measured duration) changes the table, so the check above would fail.
    slower = cost.Measured(small_file_seconds=cost.M.small_file_seconds * 2)
    assert cost.render(measured=slower) != doc_table()


def test_one_node_version_is_named_everywhere() -> None:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {
        (path.name, version) for path in texts for version in re.findall(r"\bNode(?:\.js)? (\d+)", path.read_text())
    }
    assert {version for _, version in named} == {"22"}, sorted(named)
    assert ("README.md", "22") in named and ("deploy.md", "22") in named
