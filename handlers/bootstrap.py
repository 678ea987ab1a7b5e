"""Composition root: builds clients once per process and wires the processor."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from handlers.adapters.export_shapes import ExportShapes
from handlers.adapters.failure_records import FailureLog
from handlers.adapters.ledger import Ledger, LedgerPublisher
from handlers.adapters.source_records import SourceRegister
from handlers.adapters.store import LakeStore
from handlers.errors import ProcessingInProgressError
from handlers.settings import Settings
from handlers.stages.object_processor import ObjectProcessor

if TYPE_CHECKING:
    from handlers.stages.refresh_service import RefreshService

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=60,
    s3={"addressing_style": "path"},
)


#: One boto3 session per region and one client per service, region and endpoint, in a process. A
#: new session parses each service's model again (0.6 s for the five clients against 0.1 s from a
#: session that made some before, timed while other tests ran), and even then a client costs about
#: 20 ms. A warm function builds its processor once anyway; a process that builds processors again
#: (a test, a benchmark) gets the same clients, so nothing may stub, close or register event
#: handlers on them (a client that gets handlers is made with :func:`new_client`). Credentials and
#: profile are read when a region's session makes its first client, as a Lambda function's are.
#: Clients are thread-safe; a session is not, so they are made one at a time.
_SESSIONS: dict[str, boto3.session.Session] = {}
_CLIENTS: dict[tuple[str, str | None, str], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _made_by(session: boto3.session.Session, settings: Settings, service: str) -> Any:
    return session.client(service, endpoint_url=settings.endpoint_url, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def new_client(settings: Settings, service: str) -> Any:
    """A new boto3 client of ``service`` (from the region's session), pointed at the stand-in when local."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(settings.region)
        if session is None:
            session = _SESSIONS[settings.region] = boto3.session.Session(region_name=settings.region)
        return _made_by(session, settings, service)


def client(settings: Settings, service: str) -> Any:
    """The process's boto3 client of ``service``, pointed at the stand-in when local."""
    key = (settings.region, settings.endpoint_url, service)
    made = _CLIENTS.get(key)
    if made is None:
        made = new_client(settings, service)
        with _SESSIONS_LOCK:
            made = _CLIENTS.setdefault(key, made)
    return made


def clients(settings: Settings, own: bool = False) -> dict[str, Any]:
    """boto3 clients for every service the processor uses, pointed at the stand-in when local; with
    ``own``, new ones from a session of their own (as another Lambda instance has: a benchmark's
    workers; a process forked while another thread makes a client must use these, as the lock
    guarding the shared session may be held for ever in the child)."""
    services = ("s3", "glue", "events", "dynamodb", "sqs")
    if own:
        session = boto3.session.Session(region_name=settings.region)
        return {name: _made_by(session, settings, name) for name in services}
    return {name: client(settings, name) for name in services}


def idempotency_wrapper(
    settings: Settings, dynamodb: Any
) -> Callable[[Callable[[], dict[str, Any]], dict[str, str]], dict[str, Any]]:
    """Powertools idempotency over DynamoDB keyed on bucket + key + version/ETag (+ request id)."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, version, request]",
        expires_after_seconds=settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
    )

    # The work of the record at hand, per thread: an invocation may process several records at once.
    pending = threading.local()

    @idempotent_function(data_keyword_argument="identity", persistence_store=persistence, config=config)
    def run(identity: dict[str, str]) -> dict[str, Any]:
        work: Callable[[], dict[str, Any]] = pending.work
        return work()

    def run_once(work: Callable[[], dict[str, Any]], identity: dict[str, str]) -> dict[str, Any]:
        pending.work = work
        try:
            return run(identity=identity)
        except IdempotencyAlreadyInProgressError as exc:
            raise ProcessingInProgressError(
                f"s3://{identity['bucket']}/{identity['key']} is being processed by another invocation; "
                "this delivery will be retried"
            ) from exc
        finally:
            pending.work = None

    # Each invocation registers its own context so in-progress records expire with that invocation.
    run_once.register_context = config.register_lambda_context  # type: ignore[attr-defined]
    return run_once


def _store(settings: Settings, c: dict[str, Any]) -> LakeStore:
    from handlers.adapters.committer import GroupCommitter
    from query.catalog import glue_catalog

    return LakeStore(
        c["s3"],
        c["glue"],
        settings.bucket,
        settings.curated_database,
        settings.quarantine_database,
        catalog=glue_catalog(c["glue"], settings.region, settings.endpoint_url),
        optimizer_role_arn=settings.optimizer_role_arn,
        # Files of many workers land in one commit per table at a time (handlers/adapters/committer.py).
        committer=GroupCommitter(c["s3"], c["dynamodb"], settings.bucket, settings.idempotency_table),
    )


def build_processor(settings: Settings) -> ObjectProcessor:
    """A processor wired to real AWS (or the stand-in, through ``AWS_ENDPOINT_URL``)."""
    from handlers.adapters.pseudonym_key import read_pseudonym_key
    from handlers.adapters.refresh_requests import RefreshRequester

    c = clients(settings)
    # Read once per process: a warm function keeps it; a failed read fails the batch and is retried.
    pseudonym_key = read_pseudonym_key(client(settings, "secretsmanager"), settings.pseudonym_secret)
    # Powertools' persistence layer registers an event handler on its client: a client of its own, so
    # handlers do not pile up on the shared one each time a process builds a processor.
    run_once = idempotency_wrapper(settings, new_client(settings, "dynamodb")) if settings.idempotency_enabled else None
    store = _store(settings, c)
    ledger = Ledger(store.tables, settings.ops_database)
    return ObjectProcessor(
        settings=settings,
        store=store,
        publisher=LedgerPublisher(c["events"], settings.bus_name, ledger),
        sources=SourceRegister(c["dynamodb"], settings.idempotency_table),
        run_once=run_once,
        failures=FailureLog(c["dynamodb"], settings.idempotency_table, settings.failure_ttl_seconds),
        refresh=RefreshRequester(c["sqs"], settings.refresh_queue_url) if settings.refresh_queue_url else None,
        shapes=ExportShapes(c["dynamodb"], settings.idempotency_table),
        ledger=ledger,
        pseudonym_key=pseudonym_key,
    )


def build_refresh_service(settings: Settings) -> RefreshService:
    """The refresh stage wired to real AWS (or the stand-in); Athena's client is built on first use."""
    from handlers.stages.refresh_service import RefreshRecords, RefreshService
    from query.catalog import Catalog

    c = clients(settings)
    store = _store(settings, c)
    ledger = Ledger(store.tables, settings.ops_database)

    def athena() -> Any:
        return client(settings, "athena")

    return RefreshService(
        settings=settings,
        store=store,
        resolver=Catalog(c["glue"], database=settings.curated_database, iceberg_catalog=store.tables.catalog),
        publisher=LedgerPublisher(c["events"], settings.bus_name, ledger),
        records=RefreshRecords(c["dynamodb"], settings.idempotency_table),
        athena=athena,
        ledger=ledger,
        s3=c["s3"],
    )
