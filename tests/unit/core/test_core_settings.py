"""Function settings: read once from the environment, every bad variable named at once."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE
from ingest.errors import ConfigError, SettingsError
from ingest.settings import (
    MIB,
    REGION,
    FanoutSettings,
    ProcessorSettings,
    read_env,
    variable,
)

COMMON = {
    "LANDING_BUCKET": "landing",
    "LEDGER_TABLE": "ledger",
    "FEEDS_URI": "s3://landing/config/feeds.yaml",
}
FANOUT = {**COMMON, "INGEST_QUEUE_URL": "https://sqs/q"}
PROCESSOR = {**COMMON, "RECORDS_TABLE": "records"}


def test_fanout_settings_from_the_template_environment():
    env = {
        **FANOUT,
        "CHUNK_SIZE_MIB": "16",
        "TRANSFER_ROLE_ID": "AROAEXAMPLE",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "us-east-2",
        "PATH": "/usr/bin",  # the rest of the environment is ignored
    }
    settings = FanoutSettings.from_env(env)
    assert (settings.common.bucket, settings.common.ledger_table) == ("landing", "ledger")
    assert settings.common.feeds_uri == "s3://landing/config/feeds.yaml"
    assert settings.common.region == "eu-west-1"  # AWS_REGION first
    assert settings.common.endpoint_url is None
    assert settings.queue_url == "https://sqs/q"
    assert settings.chunk_size == 16 * MIB
    assert settings.transfer_role_id == "AROAEXAMPLE"


def test_defaults_and_empty_variables_count_as_unset():
    env = {**FANOUT, "CHUNK_SIZE_MIB": " ", "TRANSFER_ROLE_ID": "", "AWS_DEFAULT_REGION": "x-1"}
    settings = FanoutSettings.from_env(env)
    assert settings.chunk_size == DEFAULT_CHUNK_SIZE
    assert settings.transfer_role_id is None
    assert settings.common.region == "x-1"
    assert FanoutSettings.from_env(FANOUT).common.region is None
    processor = ProcessorSettings.from_env(PROCESSOR)
    assert (processor.max_receive_count, processor.write_threads) == (5, 4)
    assert (processor.retry_backoff_seconds, processor.queue_url) == (0, None)


def test_chunk_size_bytes_wins_over_mib():
    env = {**FANOUT, "CHUNK_SIZE_MIB": "16", "CHUNK_SIZE_BYTES": "4096"}
    assert FanoutSettings.from_env(env).chunk_size == 4096


def test_processor_settings():
    env = {
        **PROCESSOR,
        "MAX_RECEIVE_COUNT": "3",
        "WRITE_THREADS": " 8 ",
        "RETRY_BACKOFF_SECONDS": "30",
        "INGEST_QUEUE_URL": "https://sqs/q",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }
    settings = ProcessorSettings.from_env(env)
    assert settings.records_table == "records"
    assert (settings.max_receive_count, settings.write_threads) == (3, 8)
    assert (settings.retry_backoff_seconds, settings.queue_url) == (30, "https://sqs/q")
    assert settings.common.endpoint_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("model", "env", "variable", "message"),
    [
        (FanoutSettings, {**FANOUT, "LANDING_BUCKET": " "}, "LANDING_BUCKET", "is required"),
        (FanoutSettings, {**FANOUT, "CHUNK_SIZE_MIB": "abc"}, "CHUNK_SIZE_MIB", "whole number"),
        (FanoutSettings, {**FANOUT, "CHUNK_SIZE_MIB": "0"}, "CHUNK_SIZE_MIB", "at least 1"),
        (FanoutSettings, {**FANOUT, "CHUNK_SIZE_BYTES": "-5"}, "CHUNK_SIZE_BYTES", "at least 1"),
        (ProcessorSettings, COMMON, "RECORDS_TABLE", "is required"),
        (ProcessorSettings, {**PROCESSOR, "WRITE_THREADS": "0"}, "WRITE_THREADS", "at least 1"),
        (
            ProcessorSettings,
            {**PROCESSOR, "MAX_RECEIVE_COUNT": "five"},
            "MAX_RECEIVE_COUNT",
            "whole number",
        ),
        (
            ProcessorSettings,
            {**PROCESSOR, "RETRY_BACKOFF_SECONDS": "1.5"},
            "RETRY_BACKOFF_SECONDS",
            "whole number",
        ),
        (
            ProcessorSettings,
            {**PROCESSOR, "RETRY_BACKOFF_SECONDS": "-1"},
            "RETRY_BACKOFF_SECONDS",
            "at least 0",
        ),
    ],
)
def test_a_bad_variable_is_named(model, env, variable, message):
    with pytest.raises(SettingsError) as info:
        model.from_env(env)
    err = info.value
    assert isinstance(err, ConfigError)  # a permanent configuration error
    assert err.field == variable
    assert err.errors == [err]
    assert str(err).startswith(f"field {variable!r}: ")
    assert variable in err.message and message in err.message


def test_every_bad_variable_is_reported_at_once():
    env = {"FEEDS_URI": "s3://f", "WRITE_THREADS": "0", "MAX_RECEIVE_COUNT": "x"}
    with pytest.raises(SettingsError) as info:
        ProcessorSettings.from_env(env)
    err = info.value
    assert [e.field for e in err.errors] == [
        "LANDING_BUCKET",
        "LEDGER_TABLE",
        "RECORDS_TABLE",
        "MAX_RECEIVE_COUNT",
        "WRITE_THREADS",
    ]
    assert all(isinstance(e, SettingsError) for e in err.errors)
    lines = str(err).splitlines()
    assert lines[0] == "5 problems:"
    assert lines[1] == "  field 'LANDING_BUCKET': environment variable LANDING_BUCKET is required"
    assert (
        lines[4] == "  field 'MAX_RECEIVE_COUNT': MAX_RECEIVE_COUNT must be a whole number, got 'x'"
    )
    assert lines[5] == "  field 'WRITE_THREADS': WRITE_THREADS must be at least 1, got '0'"


def test_settings_are_frozen():
    settings = FanoutSettings.from_env(FANOUT)
    with pytest.raises(AttributeError):
        settings.queue_url = "other"  # type: ignore[misc]


class _Unsourced(msgspec.Struct, frozen=True):
    bucket: str


class _Inner(msgspec.Struct, frozen=True):
    bucket: Annotated[str, variable("LANDING_BUCKET")]


class _Outer(msgspec.Struct, frozen=True):
    inner: _Inner
    region: Annotated[str | None, variable(*REGION)] = None


def test_a_settings_field_without_its_variable_is_a_programming_error():
    with pytest.raises(TypeError, match=r"_Unsourced.bucket names no variable"):
        read_env(_Unsourced, {"LANDING_BUCKET": "b"})


def test_a_group_field_is_read_from_the_same_environment():
    settings = read_env(_Outer, {"LANDING_BUCKET": "b", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert settings == _Outer(_Inner("b"), "eu-west-1")
