"""The connector functions' settings: engine names, defaults, every bad variable named."""

from __future__ import annotations

import pytest

from connectors.usecases import BUILTIN, MANAGED, ConnectorSettings
from ingest.errors import SettingsError

ENV = {"LANDING_BUCKET": "landing", "LEDGER_TABLE": "ledger"}


def test_defaults():
    settings = ConnectorSettings.from_env(ENV)
    assert (settings.bucket, settings.ledger_table) == ("landing", "ledger")
    assert settings.retrievals_uri == "s3://landing/config/retrievals.yaml"
    assert (settings.engine, settings.region, settings.endpoint_url) == (
        BUILTIN,
        "us-east-1",
        None,
    )


def test_every_variable_the_template_sets():
    env = {
        **ENV,
        "RETRIEVALS_URI": "s3://config/jobs.yaml",
        "CONNECTOR_ENGINE": "managed",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }
    settings = ConnectorSettings.from_env(env)
    assert settings.retrievals_uri == "s3://config/jobs.yaml"
    assert (settings.engine, settings.region) == (MANAGED, "eu-west-1")
    assert settings.endpoint_url == "http://127.0.0.1:5000"
    assert ConnectorSettings.from_env({**ENV, "AWS_DEFAULT_REGION": "x-1"}).region == "x-1"


@pytest.mark.parametrize(
    ("given", "engine"),
    [("builtin", BUILTIN), ("local", BUILTIN), ("", BUILTIN), ("managed", MANAGED)],
)
def test_engine_names_and_the_local_alias(given, engine):
    assert ConnectorSettings.from_env({**ENV, "CONNECTOR_ENGINE": given}).engine == engine


def test_an_unknown_engine_is_named():
    with pytest.raises(SettingsError) as info:
        ConnectorSettings.from_env({**ENV, "CONNECTOR_ENGINE": "aws"})
    err = info.value
    assert err.field == "CONNECTOR_ENGINE"
    assert "CONNECTOR_ENGINE must be one of ('builtin', 'managed')" in str(err)
    assert "'local'" in str(err) and "got 'aws'" in str(err)


def test_every_missing_variable_is_reported():
    with pytest.raises(SettingsError) as info:
        ConnectorSettings.from_env({"CONNECTOR_ENGINE": "nope"})
    assert [e.field for e in info.value.errors] == [
        "LANDING_BUCKET",
        "LEDGER_TABLE",
        "CONNECTOR_ENGINE",
    ]
    assert str(info.value).startswith("3 problems:\n  field 'LANDING_BUCKET': ")
