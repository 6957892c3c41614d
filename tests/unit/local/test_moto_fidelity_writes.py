"""The local stack's moto keeps DynamoDB's promise: a conditional write wins at most once."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from support_aws import fake_aws_env

from ingest_local.moto_fidelity import serialize_dynamodb_requests
from ingest_local.tables import create_pk_sk_table

THREADS = 8
KEYS = 40


def test_concurrent_attribute_not_exists_puts_have_one_winner_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_aws_env(monkeypatch)
    serialize_dynamodb_requests()
    serialize_dynamodb_requests()  # idempotent: wrapping twice would still be one lock
    with mock_aws():
        ddb: Any = boto3.client("dynamodb", region_name="us-east-1")
        create_pk_sk_table(ddb, "claims")
        wins: list[tuple[int, str]] = []
        lock = threading.Lock()
        start = threading.Barrier(THREADS)

        def claimer(worker: int) -> None:
            start.wait()
            for key in range(KEYS):
                try:
                    ddb.put_item(
                        TableName="claims",
                        Item={
                            "pk": {"S": f"k{key}"},
                            "sk": {"S": "claim"},
                            "by": {"N": str(worker)},
                        },
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                    continue
                with lock:
                    wins.append((key, str(worker)))

        threads = [threading.Thread(target=claimer, args=(w,)) for w in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert sorted(k for k, _ in wins) == list(range(KEYS))  # exactly one winner per key
        for key, worker in wins:
            item = ddb.get_item(
                TableName="claims", Key={"pk": {"S": f"k{key}"}, "sk": {"S": "claim"}}
            )
            assert item["Item"]["by"]["N"] == worker  # and the stored item is the winner's
