"""The one PutEvents path on moto: ten entries a call, every event delivered (a rule to SQS),
refused entries raise for the outcomes function (its batch retries) and are only logged by
the Transfer-shaped publisher (its events are a trace)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from support_aws import fake_aws_env

from ingest.adapters.event_bus import EventBus
from ingest.adapters.publisher import Event, Publisher
from ingest.domain.notifications import SOURCE, BusEvent
from ingest.errors import EventsRefusedError, RetryableError

REGION = "us-east-1"


class Counting:
    """The real moto client, counting entries per call; ``refuse`` fails one entry of a call."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls, self.refuse = client, [], False

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        resp: dict[str, Any] = self.client.put_events(Entries=Entries)
        if self.refuse:
            resp["FailedEntryCount"] = 1
            resp["Entries"][0] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
        return resp


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Counting, Any, str]]:
    fake_aws_env(monkeypatch, REGION)
    with mock_aws():
        sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", REGION)
        url = sqs.create_queue(QueueName="bus")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="all", EventPattern=json.dumps({"source": [SOURCE, "aws.transfer"]}))
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])
        yield Counting(events), sqs, url


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        got += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    return got


def test_ten_entries_a_call_and_every_event_delivered(aws: tuple[Counting, Any, str]) -> None:
    client, sqs, url = aws
    EventBus(client).publish(
        BusEvent("sftp-ingest Test", {"n": n}, (f"arn:x:{n}",)) for n in range(23)
    )
    assert client.calls == [10, 10, 3]
    got = _received(sqs, url)
    assert sorted(e["detail"]["n"] for e in got) == list(range(23))
    assert {(e["source"], e["detail-type"]) for e in got} == {("sftp-ingest", "sftp-ingest Test")}
    assert got[0]["resources"] == [f"arn:x:{got[0]['detail']['n']}"]


def test_refused_entries_raise_for_the_bus_and_are_logged_by_the_publisher(
    aws: tuple[Counting, Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, _, _ = aws
    client.refuse = True
    with pytest.raises(EventsRefusedError) as refused:
        EventBus(client).publish([BusEvent("sftp-ingest Test", {"n": 1})])
    assert isinstance(refused.value, RetryableError)
    assert "ThrottlingException: slow down" in str(refused.value)

    publisher = Publisher(boto3.client("logs", REGION), client, source="aws.transfer")  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="ingest.adapters.publisher"):
        publisher.put_events([Event("SFTP Server File Upload Completed", {"a": 1}, "arn:y")])
    assert "ThrottlingException" in caplog.text
