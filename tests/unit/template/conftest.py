"""The template fixtures: as written, as deployed with its defaults, and with every option."""

from __future__ import annotations

from typing import Any

import pytest
from support_template import EVERYTHING, KEY, TEMPLATE, resolve_conditions, transform

from ingest_local.deploy import load_template


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def transformed(raw: dict[str, Any]) -> dict[str, Any]:
    """The template as deployed with its defaults."""
    return resolve_conditions(transform(raw, {}), {})


@pytest.fixture(scope="module")
def with_key(raw: dict[str, Any]) -> dict[str, Any]:
    """Deployed with ``KmsKeyArn`` and every optional resource."""
    params = {**EVERYTHING, "KmsKeyArn": KEY}
    return resolve_conditions(transform(raw, params), params)


@pytest.fixture(scope="module")
def without_key(raw: dict[str, Any]) -> dict[str, Any]:
    """Deployed without ``KmsKeyArn``, with every optional resource."""
    return resolve_conditions(transform(raw, EVERYTHING), EVERYTHING)
