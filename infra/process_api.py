"""The asynchronous HTTP entry: IAM-signed POST -> SQS SendMessage of a process request -> 202.

API Gateway talks to SQS directly (no Lambda in between): the request body is validated against
the topology's schema, wrapped in an EventBridge-like envelope and enqueued on the processing
queue, where the handler takes it beside S3 events.
"""

from __future__ import annotations

from urllib.parse import quote

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import topology
from infra import nag
from infra.config import DeploySettings

#: POST {api}/{PROCESS_REQUESTS_PATH} with the request's ``detail`` as the JSON body.
PROCESS_REQUESTS_PATH = "process-requests"

# API Gateway only gives CLF time (dd/MMM/yyyy:HH:mm:ss +0000); EventBridge envelopes carry ISO 8601.
_ISO_TIME_VTL = """#set($t = $context.requestTime)
#set($months = {"Jan": "01", "Feb": "02", "Mar": "03", "Apr": "04", "May": "05", "Jun": "06", \
"Jul": "07", "Aug": "08", "Sep": "09", "Oct": "10", "Nov": "11", "Dec": "12"})
#set($month = $months.get($t.substring(3, 6)))
#set($time = "${t.substring(7, 11)}-${month}-${t.substring(0, 2)}T${t.substring(12, 20)}Z")
"""


def _enc(text: str) -> str:
    """URL-encode a constant at synth time; encoding piecewise equals encoding the whole body."""
    return quote(text, safe="")


def send_message_template(region: str) -> str:
    """The VTL that turns the validated body into ``Action=SendMessage&MessageBody=<envelope>``.

    The envelope is ``{"version", "id", "detail-type", "source", "account", "time", "region",
    "resources", "detail"}`` with ``detail`` the request body unchanged.
    """
    return (
        _ISO_TIME_VTL
        + "Action=SendMessage&MessageBody="
        + _enc('{"version":"0","id":"')
        + "$context.requestId"
        + _enc(
            f'","detail-type":"{topology.PROCESS_REQUEST_DETAIL_TYPE}"'
            f',"source":"{topology.PROCESS_REQUEST_SOURCE}","account":"'
        )
        + "$context.accountId"
        + _enc('","time":"')
        + "$util.urlEncode($time)"
        + _enc('","region":"')
        # A deploy-time token (e.g. us-east-1): URL-safe, so it goes in unencoded.
        + region
        + _enc('","resources":[],"detail":')
        + "$util.urlEncode($input.json('$'))"
        + _enc("}")
    )


class ProcessApi(Construct):
    """REST API with IAM auth whose only method enqueues a process request."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        queue: sqs.IQueue,
        bucket_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        access_logs = logs.LogGroup(self, "AccessLogs", removal_policy=cdk.RemovalPolicy.DESTROY)
        access_logs_l1 = access_logs.node.default_child
        assert isinstance(access_logs_l1, logs.CfnLogGroup)
        access_logs_l1.retention_in_days = settings.log_retention_days

        self.api = apigw.RestApi(
            self,
            "Api",
            description="Asynchronous entry of the lake processor: enqueue a process request",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The account-wide API Gateway logging role is shared state; this stack does not own it.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                metrics_enabled=True,
                throttling_rate_limit=20,
                throttling_burst_limit=40,
            ),
        )

        # RestApi adds an "Endpoint" output of the stage root; the stack outputs the method URL itself.
        self.api.node.try_remove_child("Endpoint")

        role = iam.Role(
            self,
            "SendMessageRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="Lets the HTTP entry send process requests to the processing queue, nothing else",
        )
        queue.grant_send_messages(role)

        model = apigw.CfnModel(
            self,
            "ProcessRequestModel",
            rest_api_id=self.api.rest_api_id,
            content_type="application/json",
            name="ProcessRequestDetail",
            schema=topology.process_request_detail_schema(bucket_name),
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )

        integration = apigw.AwsIntegration(
            service="sqs",
            path=f"{stack.account}/{queue.queue_name}",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_parameters={
                    "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'",
                    "integration.request.header.Accept": "'application/json'",
                },
                request_templates={"application/json": send_message_template(stack.region)},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="202",
                        response_templates={
                            "application/json": '{"messageId": '
                            "\"$input.path('$.SendMessageResponse.SendMessageResult.MessageId')\"}"
                        },
                    ),
                    # SQS 4xx here means the integration is misconfigured, not that the caller erred.
                    apigw.IntegrationResponse(
                        status_code="500",
                        selection_pattern=r"4\d{2}",
                        response_templates={"application/json": '{"message": "could not enqueue the request"}'},
                    ),
                    apigw.IntegrationResponse(
                        status_code="503",
                        selection_pattern=r"5\d{2}",
                        response_templates={"application/json": '{"message": "queue unavailable, retry"}'},
                    ),
                ],
            ),
        )
        resource = self.api.root.add_resource(PROCESS_REQUESTS_PATH)
        resource.add_method(
            "POST",
            integration,
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=validator,
            request_models={
                "application/json": apigw.Model.from_model_name(self, "ModelRef", model.ref),
            },
            method_responses=[
                apigw.MethodResponse(status_code="202"),
                apigw.MethodResponse(status_code="500"),
                apigw.MethodResponse(status_code="503"),
            ],
        )
        self.url = self.api.url_for_path(f"/{PROCESS_REQUESTS_PATH}")

        for rule_id, reason in (
            (
                "AwsSolutions-APIG3",
                "Every call must carry a SigV4 signature of an IAM principal with execute-api:Invoke "
                "(anonymous calls are rejected before any integration runs) and the stage is "
                "throttled; attach an AWS WAF web ACL to the stage if the account's policy asks for one.",
            ),
            (
                "AwsSolutions-COG4",
                "The API uses IAM authorization (SigV4) instead of a Cognito user pool: its callers are "
                "AWS principals (the lake CLI, pipelines), not end users.",
            ),
            (
                "AwsSolutions-APIG6",
                "Access logging is on for the stage. Execution logging needs the account-wide API "
                "Gateway CloudWatch role, which other stacks in the account own; this stack must not "
                "overwrite it.",
            ),
        ):
            nag.acknowledge(self.api, rule_id, reason)
