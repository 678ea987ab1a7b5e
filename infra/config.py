"""Deployment settings read once from CDK context (``cdk deploy -c key=value`` or ``cdk.json``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs import Construct

import topology

#: The Lambda base image the Dockerfile builds on, pinned by digest so a rebuild installs onto exactly
#: the base that was tested (AWS republishes the tag weekly). The digest is the multi-architecture
#: index's, so one pin serves arm64 and x86_64. Refresh it with
#: ``skopeo inspect --raw docker://public.ecr.aws/lambda/python:3.13 | sha256sum`` (or ``crane digest``).
DEFAULT_BASE_IMAGE = (
    "public.ecr.aws/lambda/python:3.13@sha256:e29b87b66ee86899ac3f1e7ae19f7d761ac4504d58432810f917531f9b92687f"
)
#: ``<repository>[:<tag>]@sha256:<64 hex digits>``; a tag alone is refused.
_PINNED_IMAGE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._/:-]*[a-z0-9])@(?P<digest>sha256:[0-9a-f]{64})$")

#: Context keys, with the defaults a first deployment gets. docs/deploy.md lists the same keys.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "bucketEncryption": "s3",
    "quarantineExpirationDays": 90,
    "athenaResultsExpirationDays": 7,
    "noncurrentVersionExpirationDays": 30,
    "functionMemoryMb": 3008,
    "functionTimeoutSeconds": topology.DEFAULT.queue.function_timeout_seconds,
    "ephemeralStorageMb": 2048,
    # Graviton: about 20% cheaper per GB-second than x86_64 for the same work (docs/deploy.md, Cost).
    "architecture": "arm64",
    "baseImage": DEFAULT_BASE_IMAGE,
    "alarmEmail": "",
    "oldestMessageAlarmSeconds": 900,
    "deadLetterAgeAlarmDays": 10,
    "archiveRetentionDays": 30,
    "logRetentionDays": 30,
    "athenaBytesScannedCutoffMb": 10240,
    # Empty: no reservation (the function shares the account's unreserved pool).
    "maxConcurrency": topology.DEFAULT.queue.max_concurrency,
    "reservedConcurrency": "",
}

ENCRYPTIONS = ("s3", "kms")
#: The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653)
ARCHITECTURES = ("arm64", "x86_64")
#: Athena refuses a per-query cutoff below 10 MB (10,000,000 bytes).
ATHENA_MIN_CUTOFF_MB = 10
#: How long EventBridge keeps retrying a target (its maximum) before the event goes to the rule's DLQ.
EVENT_RETRY_ATTEMPTS = 185
EVENT_MAX_AGE_SECONDS = 24 * 3600


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
    base_image: str
    alarm_email: str
    oldest_message_alarm_seconds: int
    dead_letter_age_alarm_days: int
    archive_retention_days: int
    log_retention_days: int
    athena_bytes_scanned_cutoff_mb: int
    max_concurrency: int
    reserved_concurrency: int | None

    @property
    def athena_bytes_scanned_cutoff_bytes(self) -> int:
        return self.athena_bytes_scanned_cutoff_mb * 1024 * 1024

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

        def pinned_image(key: str) -> str:
            value = str(get(key)).strip()
            match = _PINNED_IMAGE.match(value)
            if match is None:
                raise ConfigError(
                    f"context {key}={value!r} must be pinned by digest: <repository>:<tag>@sha256:<64 hex digits> "
                    f"(find it with: skopeo inspect --raw docker://<repository>:<tag> | sha256sum)"
                )
            return value

        def optional_integer(key: str, low: int, high: int) -> int | None:
            if str(get(key)).strip().lower() in ("", "none", "off"):
                return None
            return integer(key, low, high)

        def log_retention() -> int:
            value = integer("logRetentionDays", 1, 3653)
            if value not in LOG_RETENTION_DAYS:
                raise ConfigError(f"context logRetentionDays={value} must be one of {LOG_RETENTION_DAYS}")
            return value

        dlq_days = topology.DEFAULT.queue.dlq_retention_days
        # 2 is the event source's floor; 1000 the default account limit.
        max_concurrency = integer("maxConcurrency", 2, 1000)
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
            base_image=pinned_image("baseImage"),
            alarm_email=str(get("alarmEmail")).strip(),
            oldest_message_alarm_seconds=integer("oldestMessageAlarmSeconds", 60, 14 * 24 * 3600),
            # Must fire while the messages can still be redriven: before the DLQ's retention ends.
            dead_letter_age_alarm_days=integer("deadLetterAgeAlarmDays", 1, dlq_days - 1),
            archive_retention_days=integer("archiveRetentionDays", 1, 3650),
            log_retention_days=log_retention(),
            athena_bytes_scanned_cutoff_mb=integer("athenaBytesScannedCutoffMb", ATHENA_MIN_CUTOFF_MB, 10 * 1024**2),
            # Below the event source's maximum concurrency, Lambda would throttle its own poller;
            # 1000 is the default account limit.
            max_concurrency=max_concurrency,
            reserved_concurrency=optional_integer("reservedConcurrency", max_concurrency, 1000),
        )
