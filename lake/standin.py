"""The local stand-in for AWS: a moto server provisioned from the topology like the CDK stack.

Same bucket notification, rule and pattern, queues with redrive, lake bus with an example
subscriber, Glue databases and idempotency table, all on 127.0.0.1. What moto lacks is filled in:
S3 "Object Deleted" events and AWS-shaped "Object Created" events (``lake.s3_events``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass, replace
from typing import Any

import boto3
from botocore.config import Config

import topology
from lake import s3_events
from lake.state import SavedState, StateDir
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
        }

    def refresh_env(self) -> dict[str, str]:
        """Environment of the refresh function: the same, with its own queue's maxReceiveCount."""
        return {
            **self.handler_env(),
            topology.ENV_MAX_RECEIVE_COUNT: str(self.topology.refresh.queue.max_receive_count),
        }


def client(service: str, endpoint_url: str, region: str = topology.LOCAL_REGION) -> Any:
    """A boto3 client for the stand-in, with its fixed local credentials."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"mode": "standard", "max_attempts": 3}, s3={"addressing_style": "path"}),
    )


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
    """The secret the handler reads its pseudonym key from (``handlers.pseudonym_key``)."""
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


class StandIn:
    """A moto server on 127.0.0.1 with the topology provisioned.

    With a ``state_dir`` it remembers: the saved state is restored before the server answers, and
    saved again when it stops (``lake.state``). Without one it starts empty and forgets (tests).
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
        from lake.moto_gaps import glue_update_table_checks_version, sqs_long_poll_waits

        glue_update_table_checks_version()
        sqs_long_poll_waits()
        if self.state_dir is not None:
            self.restored = self.state_dir.restore()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.endpoints = provision(self.endpoint_url, self.topology, pseudonym_key=self.pseudonym_key)
        return self.endpoints

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            if self.state_dir is not None:
                self.saved = self.state_dir.save(self._holds())

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
