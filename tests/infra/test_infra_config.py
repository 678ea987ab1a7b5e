"""Context validation: bad deploy options fail with a message that names the key."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest

import topology
from infra.config import ConfigError, DeploySettings

pytestmark = pytest.mark.infra


def settings(**context: Any) -> DeploySettings:
    return DeploySettings.from_node(cdk.App(context=context))


def test_defaults_follow_the_topology() -> None:
    s = settings()
    assert s.function_timeout_seconds == topology.DEFAULT.queue.function_timeout_seconds
    assert s.visibility_timeout_seconds == topology.DEFAULT.queue.visibility_timeout_seconds
    assert s.bucket_encryption == "s3"


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
    ],
)
def test_bad_context_is_refused_with_the_key_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(**context)
