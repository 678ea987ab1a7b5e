"""Deployment settings read once from CDK context (``cdk deploy -c key=value`` or ``cdk.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct

import topology

#: Context keys, with the defaults a first deployment gets. docs/deploy.md lists the same keys.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "bucketEncryption": "s3",
    "quarantineExpirationDays": 90,
    "athenaResultsExpirationDays": 7,
    "noncurrentVersionExpirationDays": 30,
    "functionMemoryMb": 3008,
    "functionTimeoutSeconds": topology.DEFAULT.queue.function_timeout_seconds,
    "ephemeralStorageMb": 2048,
    "architecture": "x86_64",
    "alarmEmail": "",
    "oldestMessageAlarmSeconds": 900,
    "archiveRetentionDays": 30,
    "logRetentionDays": 30,
}

ENCRYPTIONS = ("s3", "kms")
#: The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653)
ARCHITECTURES = ("x86_64", "arm64")


class ConfigError(ValueError):
    """A context value is out of range; the message names the key and the allowed values."""


@dataclass(frozen=True)
class DeploySettings:
    """Everything a deployment may tune; the topology fixes the rest."""

    bucket_encryption: str
    quarantine_expiration_days: int
    athena_results_expiration_days: int
    noncurrent_version_expiration_days: int
    function_memory_mb: int
    function_timeout_seconds: int
    ephemeral_storage_mb: int
    architecture: str
    alarm_email: str
    oldest_message_alarm_seconds: int
    archive_retention_days: int
    log_retention_days: int

    @property
    def visibility_timeout_seconds(self) -> int:
        """At least the topology's value and at least six times the function timeout (AWS guidance)."""
        return max(topology.DEFAULT.queue.visibility_timeout_seconds, 6 * self.function_timeout_seconds)

    @classmethod
    def from_node(cls, scope: Construct) -> DeploySettings:
        """Read and validate every context key, falling back to :data:`CONTEXT_DEFAULTS`."""

        def get(key: str) -> Any:
            value = scope.node.try_get_context(key)
            return CONTEXT_DEFAULTS[key] if value is None else value

        def integer(key: str, low: int, high: int) -> int:
            raw = get(key)
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"context {key}={raw!r} must be an integer in [{low}, {high}]") from None
            if not low <= value <= high:
                raise ConfigError(f"context {key}={value} must be in [{low}, {high}]")
            return value

        def choice(key: str, allowed: tuple[str, ...]) -> str:
            value = str(get(key)).lower()
            if value not in allowed:
                raise ConfigError(f"context {key}={value!r} must be one of {', '.join(allowed)}")
            return value

        def log_retention() -> int:
            value = integer("logRetentionDays", 1, 3653)
            if value not in LOG_RETENTION_DAYS:
                raise ConfigError(f"context logRetentionDays={value} must be one of {LOG_RETENTION_DAYS}")
            return value

        return cls(
            bucket_encryption=choice("bucketEncryption", ENCRYPTIONS),
            quarantine_expiration_days=integer("quarantineExpirationDays", 1, 3650),
            athena_results_expiration_days=integer("athenaResultsExpirationDays", 1, 3650),
            noncurrent_version_expiration_days=integer("noncurrentVersionExpirationDays", 1, 3650),
            function_memory_mb=integer("functionMemoryMb", 128, 10240),
            # 900 s is Lambda's ceiling; 6x that is still under SQS's 12 h visibility limit.
            function_timeout_seconds=integer("functionTimeoutSeconds", 1, 900),
            ephemeral_storage_mb=integer("ephemeralStorageMb", 512, 10240),
            architecture=choice("architecture", ARCHITECTURES),
            alarm_email=str(get("alarmEmail")).strip(),
            oldest_message_alarm_seconds=integer("oldestMessageAlarmSeconds", 60, 14 * 24 * 3600),
            archive_retention_days=integer("archiveRetentionDays", 1, 3650),
            log_retention_days=log_retention(),
        )
