"""The zip passwords' secrets (docs/feeds.md, "Zip archives"): only the two functions that
expand archives may read them, and only those under the prefix a feed may name."""

from __future__ import annotations

import json
from typing import Any

from support_template import _statements

from ingest.domain.archives import PASSWORD_SECRETS_PREFIX

EXPANDING_ROLES = {"FanoutFunctionRole", "UploadEventsFunctionRole"}


def _secret_reads(tpl: dict[str, Any]) -> dict[str, list[str]]:
    """Role → the resources its ``secretsmanager:GetSecretValue`` statements name (as JSON)."""
    reads: dict[str, list[str]] = {}
    for role, statement in _statements(tpl):
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if "secretsmanager:GetSecretValue" in actions and statement["Effect"] == "Allow":
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            reads.setdefault(role, []).extend(json.dumps(r) for r in resources)
    return reads


def test_only_the_expanding_functions_read_zip_passwords_and_only_under_the_prefix(transformed):
    reads = _secret_reads(transformed)
    prefix = f"secret:{PASSWORD_SECRETS_PREFIX}*"
    readers = {role for role, resources in reads.items() if any(prefix in r for r in resources)}
    assert readers == EXPANDING_ROLES
    for role in EXPANDING_ROLES:
        zip_reads = [r for r in reads[role] if "sftp-ingest/zip" in r]
        assert len(zip_reads) == 1 and prefix in zip_reads[0], zip_reads
        # nothing broader: no wildcard over every secret of the account
        assert not any(r.rstrip('"').endswith(":secret:*") for r in reads[role]), reads[role]
