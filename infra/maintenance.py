"""The role Glue's Iceberg table optimizers run as (compaction, snapshot retention, orphan files).

The handler switches the three optimizers on for every table it creates and passes this role;
the permissions follow AWS's "Table optimization prerequisites" (Glue developer guide), scoped to
the lake's table locations and databases instead of the whole bucket and catalog.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

import topology
from infra.storage import LakeStorage

#: Where each optimizer writes its run logs (fixed by Glue).
OPTIMIZER_LOG_GROUPS = (
    "/aws-glue/iceberg-compaction/logs",
    "/aws-glue/iceberg-retention/logs",
    "/aws-glue/iceberg-orphan-file-deletion/logs",
)
#: Iceberg data and metadata of the lake's tables live under these prefixes (see ``topology``).
TABLE_PREFIXES = (topology.CURATED_PREFIX, topology.QUARANTINE_PREFIX, topology.OPS_PREFIX)
#: Reading and updating table metadata; optimizers never create or drop tables.
GLUE_ACTIONS = ("glue:GetTable", "glue:UpdateTable")


class TableMaintenance(Construct):
    """The optimizer role, trusted by Glue only."""

    def __init__(self, scope: Construct, construct_id: str, *, storage: LakeStorage) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        bucket = storage.bucket
        objects = [bucket.arn_for_objects(f"{prefix}*") for prefix in TABLE_PREFIXES]

        self.role = iam.Role(
            self,
            "OptimizerRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue table optimizers (compaction, snapshot retention, orphan-file deletion) "
            "on the lake's Iceberg tables",
        )
        statements = [
            # Compaction rewrites data files and commits new metadata; retention and orphan-file
            # deletion remove files no snapshot needs any more.
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=objects,
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in TABLE_PREFIXES]}},
            ),
            iam.PolicyStatement(
                actions=list(GLUE_ACTIONS),
                # The processing ledger gets one small append per invocation: compaction keeps it few files.
                resources=[storage.catalog_arn, *storage.database_arns(), *storage.ledger_arns()],
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{group}:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for group in OPTIMIZER_LOG_GROUPS
                ],
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        if storage.key is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[storage.key.key_arn])
            )
