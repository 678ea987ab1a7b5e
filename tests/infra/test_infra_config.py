"""Context validation: bad deploy options fail with a message that names the key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import topology
from infra.app import build_app
from infra.config import ConfigError, DeploySettings

pytestmark = pytest.mark.infra


def settings(**context: Any) -> DeploySettings:
    return DeploySettings.from_node(cdk.App(context=context))


def test_defaults_follow_the_topology() -> None:
    s = settings()
    assert s.function_timeout_seconds == topology.DEFAULT.queue.function_timeout_seconds
    assert s.visibility_timeout_seconds == topology.DEFAULT.queue.visibility_timeout_seconds
    assert s.bucket_encryption == "s3"


def test_defaults_are_graviton_a_pinned_base_and_no_reservation() -> None:
    s = settings()
    assert s.architecture == "arm64"
    assert re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.1[23]@sha256:[0-9a-f]{64}", s.base_image)
    assert s.reserved_concurrency is None
    # Fires while the DLQ still holds the messages (SQS's maximum retention, the topology's 14 days).
    assert s.dead_letter_age_alarm_days < topology.DEFAULT.queue.dlq_retention_days
    assert s.athena_bytes_scanned_cutoff_bytes == 10 * 1024**3


def test_x86_64_stays_selectable_and_a_reservation_is_an_option() -> None:
    s = settings(architecture="x86_64", reservedConcurrency="60")
    assert (s.architecture, s.reserved_concurrency) == ("x86_64", 60)


def test_the_maximum_concurrency_is_a_deploy_setting_and_a_reservation_must_cover_it() -> None:
    assert settings().max_concurrency == topology.DEFAULT.queue.max_concurrency == 50
    assert settings(maxConcurrency="8", reservedConcurrency="8").reserved_concurrency == 8
    with pytest.raises(ConfigError, match=r"reservedConcurrency=10 must be in \[50, 1000\]"):
        settings(reservedConcurrency=10)


def test_longer_function_timeout_raises_visibility_timeout_to_six_times() -> None:
    assert settings(functionTimeoutSeconds=900).visibility_timeout_seconds == 5400


def test_cli_strings_are_accepted() -> None:
    # `cdk deploy -c functionMemoryMb=4096` passes strings.
    assert settings(functionMemoryMb="4096", architecture="ARM64").function_memory_mb == 4096


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"bucketEncryption": "aes"}, "bucketEncryption"),
        ({"architecture": "sparc"}, "architecture"),
        ({"functionTimeoutSeconds": 901}, "functionTimeoutSeconds"),
        ({"functionMemoryMb": "lots"}, "functionMemoryMb"),
        ({"logRetentionDays": 10}, "logRetentionDays"),
        ({"architecture": "aarch64x"}, "must be one of arm64, x86_64"),
        # A tag alone is not a pin: AWS republishes it weekly.
        ({"baseImage": "public.ecr.aws/lambda/python:3.12"}, "baseImage.*must be pinned by digest"),
        ({"baseImage": "public.ecr.aws/lambda/python:3.12@sha256:abc"}, "baseImage.*sha256:<64 hex digits>"),
        ({"baseImage": "public.ecr.aws/lambda/python:3.12@sha256:" + "G" * 64}, "baseImage"),
        ({"baseImage": "public.ecr.aws/lambda/python:3.12@md5:" + "a" * 64}, "baseImage"),
        ({"reservedConcurrency": 1}, r"reservedConcurrency=1 must be in \[50, 1000\]"),
        ({"maxConcurrency": 1}, r"maxConcurrency=1 must be in \[2, 1000\]"),
        ({"reservedConcurrency": "many"}, "reservedConcurrency"),
        ({"deadLetterAgeAlarmDays": 14}, r"deadLetterAgeAlarmDays=14 must be in \[1, 13\]"),
        ({"athenaBytesScannedCutoffMb": 5}, "athenaBytesScannedCutoffMb"),
    ],
)
def test_bad_context_is_refused_in_one_line_with_the_key_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        settings(**context)
    assert "\n" not in str(refused.value)


def test_a_bad_context_value_fails_synth_of_the_whole_app() -> None:
    with pytest.raises(ConfigError, match="baseImage"):
        build_app(context={"baseImage": "python:latest"})


INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"architecture": "sparc"}, ("architecture", "'sparc'", "arm64, x86_64")),
        ({"functionTimeoutSeconds": "901"}, ("functionTimeoutSeconds", "901", "[1, 900]")),
    ],
)
def test_app_py_run_as_the_cdk_cli_runs_it_refuses_a_bad_value_in_one_line(
    context: dict[str, str], named: tuple[str, ...], tmp_path: Path
) -> None:
    # GIVEN `cdk synth -c key=value`: the CLI runs `python app.py` in infra/ with the context in CDK_CONTEXT_JSON
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
        # jsii's own end-of-life banner for an old Node, not the app's output
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        )
        .stdout.strip()
        .lstrip("v")
        .split(".")[0],
    }
    # WHEN it runs
    answer = subprocess.run(
        [sys.executable, "app.py"], cwd=INFRA, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    # THEN it fails with one line naming the option, the value and what is allowed; no traceback
    assert answer.returncode == 2, answer
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in answer.stderr, answer.stderr
    assert all(part in lines[0] for part in named), lines[0]
    assert not list(tmp_path.glob("*.template.json"))
