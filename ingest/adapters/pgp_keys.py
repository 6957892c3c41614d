"""PGP keys in Secrets Manager, where Transfer Family's managed workflows keep them.

A partner's key is the secret ``aws/transfer/<server-id>/<partner>``, else the server's
``aws/transfer/<server-id>/@pgp-default``, whose ``SecretString`` is JSON
``{"PGPPrivateKey": "-----BEGIN PGP PRIVATE KEY BLOCK-----…", "PGPPassphrase": "…"}``, as
the workflows' DECRYPT step reads it: a team moving from workflows keeps its secrets. One
field of ours joins them, optional: ``PGPPublicKey``, the partner's own public key (armored);
when it is there, a signed file must carry a signature by it that verifies.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct

from ingest.adapters.sdk import is_not_found, translated, unavailable
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

DEFAULT_PARTNER = "@pgp-default"


def secret_id(server_id: str, partner: str) -> str:
    """The secret Transfer Family's workflows read for ``partner`` on ``server_id``."""
    return f"aws/transfer/{server_id}/{partner}"


class PgpKey(Struct, frozen=True):
    """A private key (armored), its passphrase, and the partner's public key if configured."""

    secret: str
    private_key: str
    passphrase: str | None = None
    public_key: str | None = None

    def to_secret_string(self) -> str:
        doc = {"PGPPrivateKey": self.private_key}
        if self.passphrase:
            doc["PGPPassphrase"] = self.passphrase
        if self.public_key:
            doc["PGPPublicKey"] = self.public_key
        return json.dumps(doc)


class PgpKeys:
    """Reads partners' keys: the partner's secret, else the server's ``@pgp-default``."""

    def __init__(self, secrets: SecretsManagerClient, server_id: str | None) -> None:
        self._secrets = secrets
        self.server_id = server_id

    def candidates(self, partner: str) -> list[str]:
        """The secret ids tried for ``partner``, in order ([] without a server id)."""
        if not self.server_id:
            return []
        return [secret_id(self.server_id, partner), secret_id(self.server_id, DEFAULT_PARTNER)]

    def key_for(self, partner: str) -> PgpKey | None:
        """The partner's key (or the default); None when neither secret exists.

        Raises :class:`ConfigError` for a secret that is not the workflows' JSON, and a
        retryable error when Secrets Manager does not answer.
        """
        for name in self.candidates(partner):
            try:
                value = self._secrets.get_secret_value(SecretId=name)
            except (ClientError, BotoCoreError) as exc:
                if is_not_found(exc):
                    continue
                raise unavailable(exc, "secretsmanager", "GetSecretValue", name) from exc
            return parse_secret(name, value.get("SecretString") or "")
        return None


def parse_secret(name: str, text: str) -> PgpKey:
    """A secret's ``SecretString`` as Transfer Family's workflows store it."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"secret {name} is not JSON ({exc.msg})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("PGPPrivateKey"), str):
        raise ConfigError(f'secret {name} has no "PGPPrivateKey" string')
    passphrase = doc.get("PGPPassphrase")
    public_key = doc.get("PGPPublicKey")
    return PgpKey(
        secret=name,
        private_key=doc["PGPPrivateKey"],
        passphrase=passphrase if isinstance(passphrase, str) and passphrase else None,
        public_key=public_key if isinstance(public_key, str) and public_key else None,
    )


def store_key(secrets: SecretsManagerClient, server_id: str, partner: str, key: PgpKey) -> str:
    """Create or update ``partner``'s secret with ``key``; its id."""
    name = secret_id(server_id, partner)
    body = key.to_secret_string()
    try:
        secrets.put_secret_value(SecretId=name, SecretString=body)
    except (ClientError, BotoCoreError) as exc:
        if not is_not_found(exc):
            raise unavailable(exc, "secretsmanager", "PutSecretValue", name) from exc
        with translated("secretsmanager", "CreateSecret", name):
            secrets.create_secret(
                Name=name,
                SecretString=body,
                Description=f"PGP key of partner {partner} (Transfer Family workflow format)",
            )
    return name
