"""Context validation: bad deploy options fail with a message that names the key."""

from __future__ import annotations

import re
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
    s = settings(architecture="x86_64", reservedConcurrency="10")
    assert (s.architecture, s.reserved_concurrency) == ("x86_64", 10)


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
        ({"reservedConcurrency": 1}, r"reservedConcurrency=1 must be in \[2, 1000\]"),
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
