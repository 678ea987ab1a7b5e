"""The local stand-in for AWS: a moto server provisioned from the topology like the CDK stack.

Same bucket notification, rule and pattern, queues with redrive, lake bus with an example
subscriber, Glue databases and idempotency table, all on 127.0.0.1. What moto lacks is filled in:
S3 "Object Deleted" events and AWS-shaped "Object Created" events (``lake.standin.s3_events``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass, replace
from typing import Any

import boto3
from botocore.config import Config

import topology
from lake.standin import s3_events
from lake.standin.checkpoint import GATE, Checkpointer
from lake.standin.state import SOURCE_PREFIXES, SavedState, StateDir
from topology import QueueSettings, Topology

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "lake-local", "AWS_SECRET_ACCESS_KEY": "lake-local"}


def free_port() -> int:
    """A TCP port nobody listens on right now (for tests that run side by side)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Endpoints:
    """Where the provisioned resources are."""

    endpoint_url: str
    region: str
    topology: Topology
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    subscriber_queue_url: str
    #: The refresh stage's FIFO queue and its FIFO dead-letter queue.
    refresh_queue_url: str = ""
    refresh_queue_arn: str = ""
    refresh_dlq_url: str = ""
    refresh_dlq_arn: str = ""

    def handler_env(self) -> dict[str, str]:
        """Environment variables a handler process needs to talk to the stand-in."""
        topo = self.topology
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            topology.ENV_BUCKET: topo.bucket,
            topology.ENV_EVENT_BUS: topo.bus_name,
            topology.ENV_CURATED_DATABASE: topo.curated_database,
            topology.ENV_QUARANTINE_DATABASE: topo.quarantine_database,
            topology.ENV_OPS_DATABASE: topo.ops_database,
            topology.ENV_IDEMPOTENCY_TABLE: topo.idempotency_table,
            topology.ENV_MAX_RECEIVE_COUNT: str(topo.queue.max_receive_count),
            topology.ENV_REFRESH_QUEUE_URL: self.refresh_queue_url,
            topology.ENV_REFRESH_ATHENA_THRESHOLD_BYTES: str(topo.refresh.athena_threshold_bytes),
            topology.ENV_PSEUDONYM_SECRET: topo.pseudonym_secret_name,
            topology.ENV_POWERTOOLS_SERVICE_NAME: topology.PROCESS_SERVICE,
        }

    def refresh_env(self) -> dict[str, str]:
        """Environment of the refresh function: the same, with its own queue's maxReceiveCount."""
        return {
            **self.handler_env(),
            topology.ENV_MAX_RECEIVE_COUNT: str(self.topology.refresh.queue.max_receive_count),
            topology.ENV_POWERTOOLS_SERVICE_NAME: topology.REFRESH_SERVICE,
        }


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def client(service: str, endpoint_url: str, region: str = topology.LOCAL_REGION) -> Any:
    """A boto3 client for the stand-in, with its fixed local credentials.

    One per service, endpoint and region in a process: making a client costs about 20 ms even
    from a session that made one before, and provisioning makes six (each test provisions anew).
    Clients are thread-safe; the session that makes them is not, hence the lock. A stopped stand-in's
    clients stay until the process ends (a few per stand-in a test starts).
    """
    with _CLIENTS_LOCK:
        made = _CLIENTS.get((service, endpoint_url, region))
        if made is None:
            made = _CLIENTS[(service, endpoint_url, region)] = boto3.client(  # type: ignore[call-overload]
                service,
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"mode": "standard", "max_attempts": 3}, s3={"addressing_style": "path"}),
            )
        return made


def s3_filesystem(endpoint_url: str, region: str = topology.LOCAL_REGION) -> Any:
    """A pyarrow S3 filesystem on the stand-in (pyarrow ignores ``AWS_ENDPOINT_URL``)."""
    from urllib.parse import urlparse

    import pyarrow.fs as pafs

    parsed = urlparse(endpoint_url)
    return pafs.S3FileSystem(
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=parsed.netloc,
        scheme=parsed.scheme,
        region=region,
    )


def provision(
    endpoint_url: str,
    topo: Topology = topology.DEFAULT,
    region: str = topology.LOCAL_REGION,
    pseudonym_key: str | None = None,
) -> Endpoints:
    """Create (or find) every resource of the topology on the stand-in. Safe to run twice.

    ``pseudonym_key`` goes into the pseudonym secret (as the stack's generated secret on AWS); None
    keeps the secret's value, or makes a random one when there is no secret yet.
    """
    _pseudonym_secret(client("secretsmanager", endpoint_url, region), topo, pseudonym_key)
    s3 = client("s3", endpoint_url, region)
    sqs = client("sqs", endpoint_url, region)
    events = client("events", endpoint_url, region)
    glue = client("glue", endpoint_url, region)
    dynamodb = client("dynamodb", endpoint_url, region)
    q = topo.queue

    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=topo.bucket)
    s3.put_bucket_versioning(Bucket=topo.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=topo.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )

    dlq_url = sqs.create_queue(
        QueueName=topo.dlq_name, Attributes={"MessageRetentionPeriod": str(q.dlq_retention_days * 86400)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=topo.queue_name)["QueueUrl"]
    # Set (not only create) attributes so a changed topology applies to an existing stand-in too.
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "VisibilityTimeout": str(q.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count}),
        },
    )
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    refresh_dlq_url, refresh_dlq_arn, refresh_url, refresh_arn = _refresh_queues(sqs, topo)
    events.put_rule(Name=topo.raw_rule_name, EventPattern=json.dumps(topo.raw_object_events_pattern()))
    events.put_targets(Rule=topo.raw_rule_name, Targets=[{"Id": "processing-queue", "Arn": queue_arn}])

    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=topo.bus_name)
    subscriber_url = sqs.create_queue(QueueName=topo.subscriber_queue_name)["QueueUrl"]
    subscriber_arn = sqs.get_queue_attributes(QueueUrl=subscriber_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=topo.subscriber_rule_name,
        EventBusName=topo.bus_name,
        EventPattern=json.dumps(topo.lake_events_pattern()),
    )
    events.put_targets(
        Rule=topo.subscriber_rule_name,
        EventBusName=topo.bus_name,
        Targets=[{"Id": "example-subscriber", "Arn": subscriber_arn}],
    )

    for database in (topo.curated_database, topo.quarantine_database, topo.ops_database):
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput={"Name": database})
    try:
        dynamodb.create_table(
            TableName=topo.idempotency_table,
            KeySchema=[{"AttributeName": topology.IDEMPOTENCY_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": topology.IDEMPOTENCY_KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=topo.idempotency_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": topology.IDEMPOTENCY_TTL_ATTRIBUTE},
        )
    except dynamodb.exceptions.ResourceInUseException:
        pass
    return Endpoints(
        endpoint_url=endpoint_url,
        region=region,
        topology=topo,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        subscriber_queue_url=subscriber_url,
        refresh_queue_url=refresh_url,
        refresh_queue_arn=refresh_arn,
        refresh_dlq_url=refresh_dlq_url,
        refresh_dlq_arn=refresh_dlq_arn,
    )


def _pseudonym_secret(secretsmanager: Any, topo: Topology, key: str | None) -> None:
    """The secret the handler reads its pseudonym key from (``handlers.adapters.pseudonym_key``)."""
    try:
        current = secretsmanager.get_secret_value(SecretId=topo.pseudonym_secret_name)["SecretString"]
    except secretsmanager.exceptions.ResourceNotFoundException:
        secretsmanager.create_secret(
            Name=topo.pseudonym_secret_name,
            Description="The key personal data is pseudonymised with (HMAC-SHA-256) in curated and quarantine tables",
            SecretString=key or secrets.token_hex(32),
        )
        return
    if key is not None and current != key:
        secretsmanager.put_secret_value(SecretId=topo.pseudonym_secret_name, SecretString=key)


def _refresh_queues(sqs: Any, topo: Topology) -> tuple[str, str, str, str]:
    """The refresh FIFO queue (grouped by dataset, deduplicated by request) and its FIFO DLQ."""
    q = topo.refresh.queue

    def arn(url: str) -> str:
        return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    dlq_url = sqs.create_queue(
        QueueName=topo.refresh_dlq_name,
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(q.dlq_retention_days * 86400)},
    )["QueueUrl"]
    url = sqs.create_queue(QueueName=topo.refresh_queue_name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": str(q.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(dlq_url), "maxReceiveCount": q.max_receive_count}),
        },
    )
    return dlq_url, arn(dlq_url), url, arn(url)


def _gated_server(ip_address: str, port: int, wrap: Any) -> Any:
    """moto's threaded server with its WSGI app wrapped (the checkpoint gate, ``lake.standin.checkpoint``)."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class GatedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address, self._port, wrap(app), True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return GatedMotoServer(ip_address=ip_address, port=port, verbose=False)


def _invocations_died_with_the_last_run(endpoint_url: str, topo: Topology, region: str) -> None:
    """After a restore: no invocation of the last run survives it, so what they held is let go.

    Their messages are visible again at once (not after the 30-minute visibility timeout; their
    receive counts stay), their in-progress idempotency records are removed and the leases they
    held on raw keys (``handlers.adapters.source_records``) given back, so the restarted runner processes those
    files again at once instead of waiting for them to expire. Safe because processing is
    idempotent: a file's commit replaces its source key's rows, so a file processed twice has its
    rows once.
    """
    from moto.backends import get_backend

    for regions in dict.values(get_backend("sqs")):
        for backend in dict.values(regions):
            for queue in backend.queues.values():
                for message in list(queue.pending_messages):
                    message.change_visibility(0)
                    message.visible_at -= 1  # ``visible`` is "later than", not "as late as"
                queue.pending_messages.clear()
    dynamodb = client("dynamodb", endpoint_url, region)
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=topo.idempotency_table,
        FilterExpression="#status = :in_progress",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":in_progress": {"S": "INPROGRESS"}},
        ProjectionExpression=topology.IDEMPOTENCY_KEY_ATTRIBUTE,
    )
    for page in pages:
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=topo.idempotency_table, Key=item)
    leases = dynamodb.get_paginator("scan").paginate(
        TableName=topo.idempotency_table,
        FilterExpression="attribute_exists(lease_owner)",
        ProjectionExpression=topology.IDEMPOTENCY_KEY_ATTRIBUTE,
    )
    for page in leases:
        for item in page.get("Items", []):
            dynamodb.update_item(
                TableName=topo.idempotency_table, Key=item, UpdateExpression="REMOVE lease_owner, lease_until"
            )


class StandIn:
    """A moto server on 127.0.0.1 with the topology provisioned.

    With a ``state_dir`` it remembers: the saved state is restored before the server answers, and
    written as it changes (``lake.standin.checkpoint``) and when it stops (``lake.standin.state``). Without one it
    starts empty and forgets (tests).
    """

    def __init__(
        self,
        port: int = topology.LOCAL_DEFAULT_PORT,
        topo: Topology = topology.DEFAULT,
        queue: QueueSettings | None = None,
        state_dir: StateDir | None = None,
        refresh_queue: QueueSettings | None = None,
    ) -> None:
        self.port = port
        self.topology = replace(topo, queue=queue) if queue is not None else topo
        if refresh_queue is not None:
            self.topology = replace(self.topology, refresh=replace(self.topology.refresh, queue=refresh_queue))
        self.state_dir = state_dir
        #: The pseudonym key provisioned into the secret: the state directory's (kept across
        #: restarts), else one for this stand-in's life.
        self.pseudonym_key = state_dir.pseudonym_key() if state_dir is not None else secrets.token_hex(32)
        #: What was restored at start (None: started empty).
        self.restored: SavedState | None = None
        #: What was saved at stop.
        self.saved: SavedState | None = None
        #: Writes the state as it changes (with a ``state_dir``).
        self.checkpoints: Checkpointer | None = None
        self._server: Any = None
        self.endpoints: Endpoints | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_port(self) -> None:
        """Refuse a port something already listens on (another ``lake up``?), in one line."""
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise OSError(
                    f"port {self.port} on 127.0.0.1 is already in use; stop what runs there "
                    "(another `lake up`?) or choose another port with --port"
                )

    def start(self) -> Endpoints:
        from moto.server import ThreadedMotoServer

        s3_events.install()
        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.ERROR)
        for key, value in CREDENTIALS.items():
            os.environ.setdefault(key, value)
        self.check_port()
        from lake.standin.moto_gaps import (
            glue_update_table_checks_version,
            moto_modules_listed_once,
            sqs_long_poll_waits,
        )

        glue_update_table_checks_version()
        sqs_long_poll_waits()
        moto_modules_listed_once()
        if self.state_dir is None:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        else:
            self.restored = self.state_dir.restore()
            self.checkpoints = Checkpointer(self._save, self.topology.bucket, SOURCE_PREFIXES)
            self._server = _gated_server("127.0.0.1", self.port, self.checkpoints.wrap)
        self._server.start()
        self.endpoints = provision(self.endpoint_url, self.topology, pseudonym_key=self.pseudonym_key)
        if self.restored is not None and self.restored.rebuild_from is not None:
            self.restored = self._rebuild(self.restored)
        elif self.restored is not None:
            _invocations_died_with_the_last_run(self.endpoint_url, self.topology, self.endpoints.region)
        if self.checkpoints is not None:
            self.checkpoints.start()
        return self.endpoints

    def _rebuild(self, saved: SavedState) -> SavedState:
        """Upload the objects of a state another moto saved: settings and models, then raw files
        (whose events have the runner process them, as a first upload would); then keep the old
        state aside and write the first checkpoint of the new lake. A crash before that checkpoint
        leaves the old state in place, and the next start rebuilds again."""
        assert self.state_dir is not None and self.checkpoints is not None
        s3 = client("s3", self.endpoint_url)
        with self.checkpoints.paused():
            for lake_object in saved.rebuild_from or ():
                extra = {"ContentType": lake_object.content_type} if lake_object.content_type else {}
                body = self.state_dir.rebuild_body(lake_object)
                s3.put_object(Bucket=self.topology.bucket, Key=lake_object.key, Body=body, **extra)
            kept = self.state_dir.keep_aside()
            with GATE.alone():  # a client of another terminal may already be asking
                self._save()
        return replace(saved, moved_to=kept)

    def _save(self) -> SavedState:
        assert self.state_dir is not None
        return self.state_dir.save(self._holds(), bucket=self.topology.bucket)

    def stop(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None
            if self.state_dir is not None:
                self.saved = self._save()

    def _holds(self) -> dict[str, int]:
        """What the state holds, for people (``lake status``); counted from moto's backends."""
        from moto.backends import get_backend

        holds: dict[str, int] = {}
        account, topo = topology.LOCAL_ACCOUNT_ID, self.topology
        try:
            bucket = get_backend("s3")[account]["aws"].buckets[topo.bucket]
            holds["raw files"] = sum(1 for key in bucket.keys if key.startswith(topology.RAW_PREFIX))
            glue = get_backend("glue")[account][topology.LOCAL_REGION]
            holds["tables"] = len(glue.databases[topo.curated_database].tables)
            sqs = get_backend("sqs")[account][topology.LOCAL_REGION]
            holds["dead-lettered messages"] = len(sqs.queues[topo.dlq_name]._messages)
        except (KeyError, AttributeError):  # a counter moto renamed is no reason to lose the state
            pass
        return holds

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
