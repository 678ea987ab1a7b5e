"""`aws s3 rm --recursive` (a client we did not write, using DeleteObjects) on the stand-in emits
one S3 "Object Deleted" event per removed raw object, routed by the raw rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lake.standin.server import CREDENTIALS
from tests.conftest import Lake
from tests.e2e.cli import LAKE, cli_env
from tests.functional.test_standin_s3_events import assert_shaped_like_aws, routed

pytestmark = pytest.mark.e2e

AWS = str(Path(LAKE).parent / "aws")


def test_aws_s3_rm_recursive_emits_an_object_deleted_event_per_object(lake: Lake) -> None:
    # GIVEN a dataset folder of three files under raw/, and one file elsewhere
    keys = [f"raw/crm/2026/contacts-{i}.jsonl" for i in range(3)]
    for key in [*keys, "reports/crm/summary.html"]:
        lake.put(key, b'{"id": 1}\n')
    created = routed(lake, 3)
    # WHEN a user removes the dataset folder with the AWS CLI
    endpoint = lake.endpoints.endpoint_url
    terminal = cli_env(**CREDENTIALS, AWS_DEFAULT_REGION=lake.endpoints.region)
    removed = subprocess.run(
        [AWS, "--endpoint-url", endpoint, "s3", "rm", "--recursive", f"s3://{lake.bucket}/raw/crm/"],
        env=terminal,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    # THEN the raw rule's queue gets one Object Deleted event per file, each after its creation
    deleted = routed(lake, 3)
    for event in deleted:
        assert_shaped_like_aws(event, "Delete Marker Created")
    assert sorted(e["detail"]["object"]["key"] for e in deleted) == keys
    assert min(e["detail"]["object"]["sequencer"] for e in deleted) > max(
        e["detail"]["object"]["sequencer"] for e in created
    )
    # AND nothing more (the file outside raw/ is not routed)
    assert lake.receive(lake.endpoints.queue_url, wait=1) == []
