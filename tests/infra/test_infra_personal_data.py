"""The pseudonym key of personal data in the synthesized stack: generated, retained, read by the
processing function alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _secret(synth: Synth) -> tuple[str, dict[str, Any]]:
    return synth.one("AWS::SecretsManager::Secret")


def _roles_reading(synth: Synth, secret_id: str) -> list[Any]:
    """Every role granted a Secrets Manager action, and on what."""
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("secretsmanager:") for a in actions):
                assert statement["Resource"] == {"Ref": secret_id}, statement
                found += policy["Properties"]["Roles"]
    return found


@pytest.mark.parametrize("fixture", ["synth", "synth_kms"])
def test_the_key_is_generated_by_the_stack_and_retained(fixture: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(fixture)
    _, secret = _secret(synth)
    # A long random value nobody typed; kept when the stack goes, like the bucket whose rows it keys.
    assert secret["Properties"]["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "IncludeSpace": False,
        "PasswordLength": 64,
    }
    assert "SecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "Retain" and secret["UpdateReplacePolicy"] == "Retain"
    # Never an output: the key is only read by the function.
    assert not any("Pseudonym" in str(o) for o in synth.template_json.get("Outputs", {}).values())


def test_only_the_processing_function_may_read_the_key(synth: Synth) -> None:
    secret_id, _ = _secret(synth)
    processor_role = {"Ref": synth.logical_id(synth.stack.processing.role)}
    assert _roles_reading(synth, secret_id) == [processor_role]
    _, refresher = synth.refresher()
    assert "LAKE_PSEUDONYM_SECRET" not in refresher["Properties"]["Environment"]["Variables"]


def test_with_the_lake_kms_key_the_secret_is_encrypted_with_it(synth_kms: Synth) -> None:
    _, secret = _secret(synth_kms)
    key_id = synth_kms.logical_id(synth_kms.stack.storage.key)
    assert secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
