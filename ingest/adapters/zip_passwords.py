"""The passwords of encrypted zip archives, in Secrets Manager.

A feed's ``zip: {password_secret: NAME}`` names a secret under
:data:`~ingest.domain.archives.PASSWORD_SECRETS_PREFIX` (``{partner}`` replaced by the
archive's partner); its ``SecretString`` is the password, or with ``password_key: KEY`` a JSON
object whose ``KEY`` holds it. The password is never in the feeds file, and fanout may read
only the secrets under that prefix (template.yaml, ``ReadZipPasswords``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.sdk import is_not_found, unavailable
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


class ZipPasswords:
    """Reads archive passwords from Secrets Manager (one read per archive that needs one)."""

    def __init__(self, secrets: SecretsManagerClient) -> None:
        self._secrets = secrets

    def password(self, secret: str, key: str | None = None) -> bytes | None:
        """The password in ``secret`` (its string, or its JSON ``key``), UTF-8 encoded as zip
        tools encode it; None when the secret does not exist.

        Raises :class:`ConfigError` for a secret that holds no usable password, and a
        retryable error when Secrets Manager does not answer.
        """
        try:
            value = self._secrets.get_secret_value(SecretId=secret)
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(exc):
                return None
            raise unavailable(exc, "secretsmanager", "GetSecretValue", secret) from exc
        return parse_password(secret, value.get("SecretString"), key)


def parse_password(secret: str, text: str | None, key: str | None) -> bytes:
    """The password in a secret's ``SecretString`` (the string, or its JSON ``key``)."""
    if text is None:
        raise ConfigError(f"secret {secret} has no SecretString (a binary secret)")
    if key is None:
        password = text
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"secret {secret} is not JSON ({exc.msg}), so has no {key!r}"
            ) from exc
        value = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(value, str):
            raise ConfigError(f"secret {secret} has no {key!r} string")
        password = value
    if not password:
        raise ConfigError(f"secret {secret} holds an empty password")
    return password.encode("utf-8")
