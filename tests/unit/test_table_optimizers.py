"""On AWS every Iceberg table the function creates gets Glue's table optimizers switched on.

moto has no table optimizers, so botocore's Stubber plays Glue here (the one place this API is called).
"""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from handlers.adapters.store import LakeStore

ROLE = "arn:aws:iam::111122223333:role/lake-table-optimizer"


def store_with(glue: object, role: str | None) -> LakeStore:
    s3 = boto3.client("s3", region_name="us-east-1")
    return LakeStore(s3, glue, "bucket", "lake_curated", "lake_quarantine", catalog=None, optimizer_role_arn=role)  # type: ignore[arg-type]


def test_a_new_table_gets_compaction_retention_and_orphan_file_deletion() -> None:
    glue = boto3.client("glue", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(glue) as stub:
        for kind in ("compaction", "retention", "orphan_file_deletion"):
            stub.add_response(
                "create_table_optimizer",
                {},
                {
                    "CatalogId": "111122223333",
                    "DatabaseName": "lake_curated",
                    "TableName": "orders_sources",
                    "Type": kind,
                    "TableOptimizerConfiguration": {"roleArn": ROLE, "enabled": True},
                },
            )
        store_with(glue, ROLE)._optimize("lake_curated", "orders_sources")
        stub.assert_no_pending_responses()


def test_an_optimizer_that_exists_already_is_fine_and_none_are_asked_for_without_a_role() -> None:
    glue = boto3.client("glue", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(glue) as stub:
        for _ in range(3):
            stub.add_client_error("create_table_optimizer", "AlreadyExistsException")
        store_with(glue, ROLE)._optimize("lake_curated", "t")
        stub.assert_no_pending_responses()
    with Stubber(glue) as stub:  # no role (the stand-in): no call at all
        store_with(glue, None)._optimize("lake_curated", "t")
