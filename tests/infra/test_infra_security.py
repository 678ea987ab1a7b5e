"""Security checks on the synthesized app: cdk-nag AwsSolutions and cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint_all

from infra.nag import MIN_REASON_LENGTH
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

#: Every rule the stack acknowledges. Adding one must be a reviewed change to this list too.
EXPECTED_ACKNOWLEDGED_RULES = {
    "AwsSolutions-S1",  # the access-log bucket itself
    "AwsSolutions-SQS3",  # the example subscriber queue
    "AwsSolutions-APIG3",  # no WAF on an IAM-only API
    "AwsSolutions-APIG6",  # execution logging needs the account-wide role
    "AwsSolutions-COG4",  # IAM auth, not Cognito
    "AwsSolutions-IAM5",  # prefix-, database- and log-group-scoped resource wildcards
    "AwsSolutions-SMG4",  # the pseudonym key does not rotate on a schedule (it would break joins)
}


def validation_violations(outdir: Path) -> list[str]:
    """Rules with findings; construct annotations (synth warnings such as no alarm subscriber) aside."""
    report = outdir / "validation-report.json"
    if not report.exists():
        return []
    plugins = json.loads(report.read_text())["pluginReports"]
    return [v["ruleName"] for p in plugins for v in p["violations"] if not v["ruleName"].startswith("Annotation::")]


@pytest.mark.parametrize("fixture", ["synth", "synth_kms"])
def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(fixture: str, request: pytest.FixtureRequest) -> None:
    # Synthesis raises on any unacknowledged finding; the report must agree.
    synth: Synth = request.getfixturevalue(fixture)
    assert validation_violations(synth.outdir) == []


def test_cdk_nag_is_active_and_fails_synth_on_a_bad_resource(tmp_path: Path) -> None:
    # GIVEN the same checks on an app with an unlogged, unencrypted-in-transit bucket
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Careless")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # WHEN synthesizing THEN it fails, naming the rules
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= set(validation_violations(tmp_path))


def acknowledgments(synth: Synth) -> list[dict[str, str]]:
    found = []
    for resource in synth.template_json["Resources"].values():
        found += resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return found


def test_every_acknowledgment_is_expected_and_gives_a_reason(synth: Synth, synth_kms: Synth) -> None:
    for s in (synth, synth_kms):
        acks = acknowledgments(s)
        assert {a["id"].split("[")[0] for a in acks} == EXPECTED_ACKNOWLEDGED_RULES
        for ack in acks:
            assert len(ack["reason"]) >= MIN_REASON_LENGTH, ack


def test_iam5_is_acknowledged_per_finding_never_wholesale(synth: Synth) -> None:
    iam5 = [a["id"] for a in acknowledgments(synth) if a["id"].startswith("AwsSolutions-IAM5")]
    assert iam5 and all(i.startswith("AwsSolutions-IAM5[") for i in iam5)
    assert not any("Action::s3:*]" in i or "Action::*" in i or "Resource::*]" in i for i in iam5)


@pytest.mark.parametrize("fixture", ["synth", "synth_kms"])
def test_cfn_lint_reports_no_errors(fixture: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    matches = lint_all(json.dumps(synth.template_json))
    errors = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id[0] == "E"]
    assert errors == []
