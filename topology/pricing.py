"""AWS list prices of what the lake runs on: read by ``lake report ops`` and the cost model (``python -m bench.cost``).

Data, not a bill: on-demand list prices in US dollars, free tiers left out (they are per account).
It lives in ``topology`` because that package imports nothing of ours and ships everywhere: in the
Lambda image, in the wheel and beside the CDK app, so a report drawn anywhere prices the same way.

Source and date: AWS's public price pages for each service (:data:`SOURCES`), as read in 2025 and
not re-checked since (the build machine has no internet): check them against your region's page
before relying on a total. Only :data:`PRICES` regions are listed; any other region is priced at
us-east-1's figures, and :func:`prices_for` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

#: When the figures were read.
AS_OF = "2025"
#: Where each service's figures come from.
SOURCES = {
    "Lambda": "https://aws.amazon.com/lambda/pricing/",
    "S3": "https://aws.amazon.com/s3/pricing/",
    "Glue": "https://aws.amazon.com/glue/pricing/",
    "SQS": "https://aws.amazon.com/sqs/pricing/",
    "EventBridge": "https://aws.amazon.com/eventbridge/pricing/",
    "CloudWatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "Athena": "https://aws.amazon.com/athena/pricing/",
    "DynamoDB": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "KMS, ECR": "https://aws.amazon.com/kms/pricing/, https://aws.amazon.com/ecr/pricing/",
    "Fargate, ALB, API Gateway": "https://aws.amazon.com/fargate/pricing/, "
    "https://aws.amazon.com/elasticloadbalancing/pricing/, https://aws.amazon.com/api-gateway/pricing/",
}
#: The Lambda architectures the stack deploys (``-c architecture=``), the first its default.
ARCHITECTURES = ("arm64", "x86_64")
DEFAULT_ARCHITECTURE = ARCHITECTURES[0]
DEFAULT_REGION = "us-east-1"


class UnknownArchitectureError(ValueError):
    """An architecture Lambda does not price."""


@dataclass(frozen=True)
class Prices:
    """One region's list prices, US$."""

    region: str
    # Lambda
    lambda_gb_second_arm64: float = 0.0000133334
    lambda_gb_second_x86_64: float = 0.0000166667
    lambda_request: float = 0.20 / 1e6
    #: Per GB-second of /tmp above the free 512 MB.
    lambda_ephemeral_gb_second: float = 0.0000000309
    # S3 Standard
    s3_put_request: float = 0.005 / 1000  # PUT, COPY, POST, LIST
    s3_get_request: float = 0.0004 / 1000  # GET, HEAD and the rest
    s3_storage_gb_month: float = 0.023
    # SQS, per 64 KB request
    sqs_request: float = 0.40 / 1e6
    sqs_fifo_request: float = 0.50 / 1e6
    # EventBridge: custom and AWS-service events to a bus (S3's events to the default bus are free)
    eventbridge_event: float = 1.00 / 1e6
    eventbridge_archive_gb: float = 0.10
    eventbridge_archive_processed_gb: float = 0.10
    # Glue Data Catalog requests; table optimizers and jobs per DPU-hour
    glue_request: float = 1.00 / 1e6
    glue_dpu_hour: float = 0.44
    # Athena, per TB scanned (10 MB minimum per query)
    athena_tb_scanned: float = 5.00
    # DynamoDB on demand
    dynamodb_write_unit: float = 0.625 / 1e6
    dynamodb_read_unit: float = 0.125 / 1e6
    dynamodb_pitr_gb_month: float = 0.20
    # CloudWatch
    cloudwatch_alarm_month: float = 0.10  # standard resolution, one metric
    cloudwatch_logs_ingest_gb: float = 0.50
    cloudwatch_logs_storage_gb_month: float = 0.03
    # KMS and ECR
    kms_key_month: float = 1.00
    ecr_gb_month: float = 0.10
    # The "before" design: Fargate (x86_64, Linux), an Application Load Balancer, a REST API
    fargate_vcpu_hour: float = 0.04048
    fargate_gb_hour: float = 0.004445
    alb_hour: float = 0.0225
    alb_lcu_hour: float = 0.008
    api_gateway_rest_request: float = 3.50 / 1e6

    def lambda_gb_second(self, architecture: str) -> float:
        """Lambda's price per GB-second of ``architecture`` (``arm64`` or ``x86_64``)."""
        if architecture == "arm64":
            return self.lambda_gb_second_arm64
        if architecture == "x86_64":
            return self.lambda_gb_second_x86_64
        raise UnknownArchitectureError(
            f"architecture {architecture!r} is not a Lambda architecture: use one of {', '.join(ARCHITECTURES)}"
        )


#: Regions whose figures were read from the price pages.
PRICES: dict[str, Prices] = {DEFAULT_REGION: Prices(DEFAULT_REGION)}


@dataclass(frozen=True)
class Priced:
    """The prices used for a region, and a sentence saying which and from when."""

    prices: Prices
    source: str


def prices_for(region: str | None) -> Priced:
    """The prices of ``region``; a region not in :data:`PRICES` gets us-east-1's, and the source says so."""
    if region in PRICES:
        return Priced(PRICES[region], f"AWS list prices of {region} ({AS_OF}, free tiers left out)")
    asked = f"{region} is not in topology/pricing.py" if region else "no region is known"
    return Priced(
        PRICES[DEFAULT_REGION],
        f"AWS list prices of {DEFAULT_REGION} ({AS_OF}, free tiers left out; {asked}: check that region's price pages)",
    )
