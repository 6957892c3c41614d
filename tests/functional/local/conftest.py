"""Fixtures for the local-stack tests: fake credentials, moto in-process and as a server."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_server(aws_env: None) -> Iterator[str]:
    """A ThreadedMotoServer on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        # moto's backends are process-wide: reset them so the next test starts empty.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        server.stop()


@pytest.fixture(params=["mock_aws", "server"])
def sqs_client(request: pytest.FixtureRequest, aws_env: None) -> Iterator[object]:
    """An SQS client against moto, in-process (mock_aws) and over HTTP (server mode)."""
    if request.param == "mock_aws":
        with mock_aws():
            yield boto3.client("sqs", region_name="us-east-1")
    else:
        url = request.getfixturevalue("moto_server")
        yield boto3.client("sqs", region_name="us-east-1", endpoint_url=url)
