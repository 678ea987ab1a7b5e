"""Settings read once from the environment, then passed on as a frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import topology


@dataclass(frozen=True)
class Settings:
    """Everything the handler needs to know about where it runs."""

    bucket: str
    region: str
    bus_name: str
    curated_database: str
    quarantine_database: str
    idempotency_table: str
    idempotency_ttl_seconds: int
    #: SQS receives before the message moves to the DLQ: the last attempt announces the failure.
    max_receive_count: int
    #: The Glue database of the processing ledger (``processing_log``).
    ops_database: str = topology.DEFAULT.ops_database
    #: How long a message's failure record is kept: as long as the dead-letter queue keeps the message.
    failure_ttl_seconds: int = topology.DEFAULT.queue.dlq_retention_days * 86400
    #: ``None`` on AWS; the stand-in's URL (``http://127.0.0.1:4566``) locally.
    endpoint_url: str | None = None
    #: Idempotency can be switched off for tools that must reprocess (never in production).
    idempotency_enabled: bool = True
    #: Types an operator trusts in users' skops models beyond skops' defaults (``LAKE_TRUSTED_MODEL_TYPES``).
    trusted_model_types: tuple[str, ...] = ()
    #: How long a raw key's lease lasts when the invocation's remaining time is unknown.
    lease_seconds: int = topology.DEFAULT.queue.function_timeout_seconds
    #: On AWS: the role Glue's table optimizers run as; they are switched on for each new table.
    optimizer_role_arn: str | None = None
    #: The refresh queue: after each commit of a dataset with models over its history, a request goes
    #: there. ``None`` (not configured) sends none.
    refresh_queue_url: str | None = None
    #: The refresh's Athena workgroup (AWS); ``None`` runs every refresh on DuckDB in the function.
    athena_workgroup: str | None = None
    #: Bytes of input Parquet above which a refresh's SQL runs on Athena.
    refresh_athena_threshold_bytes: int = topology.DEFAULT.refresh.athena_threshold_bytes
    #: The Secrets Manager secret (name or ARN) holding the pseudonym key of personal data.
    pseudonym_secret: str = topology.DEFAULT.pseudonym_secret_name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``LAKE_*`` and the standard ``AWS_*`` variables."""
        env = os.environ if env is None else env
        default = topology.DEFAULT
        return cls(
            bucket=env.get(topology.ENV_BUCKET, default.bucket),
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", topology.LOCAL_REGION)),
            bus_name=env.get(topology.ENV_EVENT_BUS, default.bus_name),
            curated_database=env.get(topology.ENV_CURATED_DATABASE, default.curated_database),
            quarantine_database=env.get(topology.ENV_QUARANTINE_DATABASE, default.quarantine_database),
            ops_database=env.get(topology.ENV_OPS_DATABASE, default.ops_database),
            idempotency_table=env.get(topology.ENV_IDEMPOTENCY_TABLE, default.idempotency_table),
            idempotency_ttl_seconds=int(
                env.get(topology.ENV_IDEMPOTENCY_TTL_SECONDS, str(default.idempotency_ttl_seconds))
            ),
            max_receive_count=int(env.get(topology.ENV_MAX_RECEIVE_COUNT, str(default.queue.max_receive_count))),
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            idempotency_enabled=env.get(topology.ENV_IDEMPOTENCY, "on").lower() not in {"off", "0", "false"},
            trusted_model_types=tuple(
                t.strip() for t in env.get(topology.ENV_TRUSTED_MODEL_TYPES, "").split(",") if t.strip()
            ),
            optimizer_role_arn=env.get(topology.ENV_TABLE_OPTIMIZER_ROLE_ARN) or None,
            refresh_queue_url=env.get(topology.ENV_REFRESH_QUEUE_URL) or None,
            athena_workgroup=env.get(topology.ENV_ATHENA_WORKGROUP) or None,
            refresh_athena_threshold_bytes=int(
                env.get(topology.ENV_REFRESH_ATHENA_THRESHOLD_BYTES, str(default.refresh.athena_threshold_bytes))
            ),
            pseudonym_secret=env.get(topology.ENV_PSEUDONYM_SECRET) or default.pseudonym_secret_name,
        )
