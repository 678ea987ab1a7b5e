"""`lake query` on AWS without awswrangler (not a runtime dependency) says how to install it."""

from __future__ import annotations

import sys

import pytest

from lake.engine import run_query
from lake.target import CliError, Target


def test_lake_query_on_aws_without_awswrangler_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an environment without awswrangler (an install from the wheel, or the Lambda image's set)
    monkeypatch.setitem(sys.modules, "awswrangler", None)  # None makes `import awswrangler` fail
    aws = Target(
        endpoint_url=None,
        region="eu-west-1",
        bucket="lake-123",
        bus_name="lake-events",
        curated_database="lake_curated",
        quarantine_database="lake_quarantine",
        idempotency_table="lake-idempotency",
        workgroup="lake",
        stack="LakeProcessor",
    )
    # WHEN a query goes to Athena
    with pytest.raises(CliError) as raised:
        run_query(aws, "SELECT 1")
    # THEN one line says what is missing and the two ways to install it
    message = str(raised.value)
    assert "awswrangler, which is not installed" in message
    assert "`uv sync`" in message and "`pip install awswrangler`" in message
