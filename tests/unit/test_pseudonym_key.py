"""Where the pseudonym key comes from: the stand-in's state directory, and the secret's value."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.adapters.pseudonym_key import read_pseudonym_key
from handlers.errors import PseudonymKeyError
from lake.standin.state import PSEUDONYM_KEY_FILE, StateDir, StateError


def test_the_state_directory_makes_its_key_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "lake")
    key = state.pseudonym_key()
    path = tmp_path / "lake" / PSEUDONYM_KEY_FILE
    assert len(key) == 64 and int(key, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A restart (a new StateDir on the same folder) and --fresh keep it: pseudonyms stay the same.
    assert StateDir(tmp_path / "lake").pseudonym_key() == key
    state.state_file.write_text("x")
    state.discard()
    assert StateDir(tmp_path / "lake").pseudonym_key() == key
    # Another directory, another key.
    assert StateDir(tmp_path / "other").pseudonym_key() != key


def test_a_damaged_key_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / PSEUDONYM_KEY_FILE).write_text("short")
    with pytest.raises(StateError, match="delete it to get a new one"):
        StateDir(tmp_path).pseudonym_key()


class FakeSecrets:
    """Secrets Manager's GetSecretValue over a dict (a missing id answers as AWS does)."""

    def __init__(self, values: dict[str, dict[str, Any]]) -> None:
        self.values = values

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        if SecretId not in self.values:
            error = {"Error": {"Code": "ResourceNotFoundException", "Message": "not found"}}
            raise ClientError(error, "GetSecretValue")  # type: ignore[arg-type]
        return self.values[SecretId]


def test_the_key_is_the_secrets_string_as_utf8() -> None:
    secrets = FakeSecrets({"arn:key": {"SecretString": "a" * 64}})
    assert read_pseudonym_key(secrets, "arn:key") == b"a" * 64


def test_a_missing_or_short_secret_says_what_to_do() -> None:
    with pytest.raises(PseudonymKeyError, match=r"ResourceNotFoundException.*never written in clear"):
        read_pseudonym_key(FakeSecrets({}), "arn:key")
    with pytest.raises(PseudonymKeyError, match="holds 5 bytes; it needs at least 32"):
        read_pseudonym_key(FakeSecrets({"arn:key": {"SecretString": "short"}}), "arn:key")
