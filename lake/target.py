"""Where the ``lake`` command points: the local stand-in or a deployed stack, with the same names.

* ``--endpoint-url URL`` (or ``LAKE_ENDPOINT_URL``): the stand-in (``lake up``). Names come from
  ``topology``, exactly as ``lake up`` provisioned them; credentials are the stand-in's fixed ones.
* otherwise: AWS with the default profile and region (``--profile``/``--region`` or the usual AWS
  variables); names come from the outputs of the deployed CloudFormation stack (``--stack``).

Every AWS error a user can cause or fix is turned into a one-line :class:`CliError` by
:func:`explain`, so commands never print a traceback unless ``--debug``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import topology

#: Environment variable that points the ``lake`` command at the stand-in.
ENV_ENDPOINT_URL = topology.ENV_ENDPOINT_URL
#: The CloudFormation stack ``cdk deploy`` creates (``infra/app.py``).
DEFAULT_STACK = "LakeProcessor"


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Target:
    """The resolved lake: clients and resource names, local or on AWS."""

    endpoint_url: str | None
    region: str
    bucket: str
    bus_name: str
    curated_database: str
    quarantine_database: str
    idempotency_table: str
    workgroup: str | None
    stack: str | None = None
    #: The processing ledger's database (a stack deployed before it existed has no output for it).
    ops_database: str = topology.DEFAULT.ops_database
    profile: str | None = None
    #: The functions' Lambda architecture, from the stack's ``FunctionArchitecture`` output (None on
    #: the stand-in, and for a stack deployed before that output existed).
    architecture: str | None = None
    _queue_urls: dict[str, str] = field(default_factory=dict, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def local(self) -> bool:
        return self.endpoint_url is not None

    @property
    def where(self) -> str:
        """How to name the target in messages."""
        return f"the stand-in at {self.endpoint_url}" if self.local else f"stack {self.stack} in {self.region}"

    def client(self, service: str) -> Any:
        """A cached boto3 client for the target."""
        if service not in self._clients:
            if self.endpoint_url is not None:
                from lake.standin.server import client

                self._clients[service] = client(service, self.endpoint_url, self.region)
            else:
                self._clients[service] = _session(self.profile, self.region).client(service)
        return self._clients[service]

    def queue_url(self, which: str) -> str:
        """``processing``, ``dlq`` or ``subscriber``: the queue's URL."""
        if which not in self._queue_urls:
            names = {
                "processing": topology.DEFAULT.queue_name,
                "dlq": topology.DEFAULT.dlq_name,
                "subscriber": topology.DEFAULT.subscriber_queue_name,
            }
            self._queue_urls[which] = self.client("sqs").get_queue_url(QueueName=names[which])["QueueUrl"]
        return self._queue_urls[which]

    def queue_arn(self, which: str) -> str:
        sqs = self.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=self.queue_url(which), AttributeNames=["QueueArn"])
        arn: str = attributes["Attributes"]["QueueArn"]
        return arn

    def s3_filesystem(self) -> Any:
        """A pyarrow S3 filesystem on the target: the stand-in, or S3 with the profile's credentials
        and whatever endpoint boto3 resolved (``AWS_ENDPOINT_URL``, a profile's ``endpoint_url``)."""
        from urllib.parse import urlparse

        import pyarrow.fs as pafs

        from lake.standin.server import s3_filesystem

        if self.endpoint_url is not None:
            return s3_filesystem(self.endpoint_url, self.region)
        credentials = _session(self.profile, self.region).get_credentials()
        if credentials is None:
            raise CliError(NO_CREDENTIALS)
        frozen = credentials.get_frozen_credentials()
        endpoint = urlparse(self.client("s3").meta.endpoint_url)
        custom = not endpoint.netloc.endswith(".amazonaws.com")
        return pafs.S3FileSystem(
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            session_token=frozen.token,
            region=self.region,
            endpoint_override=endpoint.netloc if custom else None,
            scheme=endpoint.scheme if custom else "https",
        )


NO_CREDENTIALS = (
    "no AWS credentials found; run `aws configure` (or set AWS_PROFILE), or use the local stand-in with "
    f"--endpoint-url http://127.0.0.1:{topology.LOCAL_DEFAULT_PORT} (or {ENV_ENDPOINT_URL})"
)


@functools.cache
def _session(profile: str | None, region: str | None) -> Any:
    import boto3

    return boto3.session.Session(profile_name=profile, region_name=region)


def resolve(
    endpoint_url: str | None = None,
    region: str | None = None,
    stack: str | None = None,
    profile: str | None = None,
) -> Target:
    """The target named by the options, else ``LAKE_ENDPOINT_URL``, else the deployed stack."""
    endpoint_url = endpoint_url or os.environ.get(ENV_ENDPOINT_URL) or None
    topo = topology.DEFAULT
    if endpoint_url is not None:
        return Target(
            endpoint_url=endpoint_url.rstrip("/"),
            region=region or topology.LOCAL_REGION,
            bucket=topo.bucket,
            bus_name=topo.bus_name,
            curated_database=topo.curated_database,
            quarantine_database=topo.quarantine_database,
            idempotency_table=topo.idempotency_table,
            workgroup=None,
            ops_database=topo.ops_database,
        )
    return _from_stack(stack or DEFAULT_STACK, region, profile)


def _from_stack(stack: str, region: str | None, profile: str | None) -> Target:
    import botocore.exceptions

    try:
        session = _session(profile, region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise CliError(f"{exc}; check --profile / AWS_PROFILE (`aws configure list-profiles`)") from exc
    if session.region_name is None:
        raise CliError("no AWS region set; pass --region, set AWS_DEFAULT_REGION, or run `aws configure`")
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            raise CliError(
                f"stack {stack} is not deployed in {session.region_name}; deploy it (docs/deploy.md), pass "
                f"--stack/--region for another deployment, or --endpoint-url for the local stand-in"
            ) from exc
        raise explain(exc) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise explain(exc) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    try:
        target = Target(
            endpoint_url=None,
            region=session.region_name,
            bucket=outputs["BucketName"],
            bus_name=outputs["EventBusName"],
            curated_database=outputs["CuratedDatabase"],
            quarantine_database=outputs["QuarantineDatabase"],
            idempotency_table=outputs["IdempotencyTable"],
            workgroup=outputs["AthenaWorkGroup"],
            stack=stack,
            ops_database=outputs.get("OpsDatabase", topology.DEFAULT.ops_database),
            profile=profile,
            architecture=outputs.get("FunctionArchitecture"),
        )
    except KeyError as exc:
        raise CliError(
            f"stack {stack} has no output {exc.args[0]}; is it the lake processor's stack? "
            "redeploy it with `cdk deploy`"
        ) from exc
    target._queue_urls.update(
        processing=outputs["ProcessingQueueUrl"],
        dlq=outputs["DeadLetterQueueUrl"],
        subscriber=outputs["SubscriberQueueUrl"],
    )
    return target


def explain(exc: BaseException, target: Target | None = None) -> CliError:
    """A one-line, actionable message for an error from boto3 or the stand-in."""
    import botocore.exceptions

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return CliError(NO_CREDENTIALS)
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return CliError("no AWS region set; pass --region, set AWS_DEFAULT_REGION, or run `aws configure`")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionClosedError):
        if target is not None and target.local:
            return CliError(
                f"nothing answers at {target.endpoint_url}; start the stand-in with `lake up` in another "
                f"terminal, or fix --endpoint-url / {ENV_ENDPOINT_URL}"
            )
        return CliError(f"cannot reach AWS ({exc}); check your network, proxy and region")
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", str(exc))
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            return CliError(f"AWS rejected the credentials ({code}); refresh them (`aws sso login`, `aws configure`)")
        if code in ("AccessDenied", "AccessDeniedException"):
            return CliError(f"access denied: {message}; your AWS identity needs that permission on {_where(target)}")
        if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return CliError(
                f"a queue of the lake is missing on {_where(target)} ({message}); "
                "is this endpoint a `lake up` stand-in, or is the stack fully deployed?"
            )
        if code == "NoSuchBucket":
            return CliError(f"the lake bucket does not exist on {_where(target)}; start `lake up` or deploy the stack")
        operation = getattr(exc, "operation_name", "")
        return CliError(f"{operation} failed on {_where(target)}: {code}: {message}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return CliError(f"{exc}")
    if isinstance(exc, OSError) and "AWS Error" in str(exc):  # pyarrow's S3 filesystem
        return CliError(
            f"reading S3 failed on {_where(target)}: {' '.join(str(exc).split())}; check the network, the "
            "endpoint and your credentials"
        )
    return CliError(str(exc) or repr(exc))


def _where(target: Target | None) -> str:
    return target.where if target is not None else "the target"
