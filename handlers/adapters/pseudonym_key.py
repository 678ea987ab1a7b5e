"""The key personal data is pseudonymised with: a Secrets Manager secret, read once per process.

On AWS the stack generates the secret and grants the processing function alone read access; on the
stand-in ``lake up`` keeps a random key in its state directory and puts it in moto's Secrets Manager,
so the handler reads it the same way in both places.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from handlers.errors import PseudonymKeyError

#: Shorter keys are refused: HMAC-SHA-256 wants at least its output size (32 bytes) of key.
MIN_KEY_BYTES = 32


def read_pseudonym_key(secretsmanager: Any, secret_id: str) -> bytes:
    """The key: the secret's string as UTF-8 (or its binary value). Raises ``PseudonymKeyError``
    (retried, then dead-lettered) when it cannot be read: no file is written without it."""
    what = f"the pseudonym key (Secrets Manager secret {secret_id})"
    try:
        value = secretsmanager.get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
        raise PseudonymKeyError(
            f"cannot read {what}: {code or exc}. Personal data is never written in clear, so no file is "
            "processed until it can be read: check that the secret exists and that the function's role may "
            "read it (the stack creates and grants both; locally `lake up` provisions it), then "
            "`lake dlq redrive`"
        ) from exc
    text = value.get("SecretString")
    key = text.encode() if isinstance(text, str) else bytes(value.get("SecretBinary") or b"")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{what} holds {len(key)} bytes; it needs at least {MIN_KEY_BYTES}. Put a random value of 32 "
            "bytes or more in it (a new key breaks joins with rows pseudonymised before: reprocess raw/)"
        )
    return key
