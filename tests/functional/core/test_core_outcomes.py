"""OutcomesFunction on moto: the ledger table's real stream records (moto's, as GetRecords gives
them) in, receipts in the landing bucket and EventBridge events (through a rule to SQS) out.

The local stack polls the same stream itself (tests/e2e/test_outcomes_e2e.py); here the records
are taken from moto's stream and handed to the handler as Lambda would, so that a test can
deliver them again, or fail the bus."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import dynamodb_backends
from msgspec.structs import replace
from support_emf import (
    assert_emitted_as_documented,
    assert_json_logs_with_context,
    emf_points,
    totals,
    use_function_settings,
)

from ingest.domain.receipts import history_key, receipt_key
from ingest.errors import StorageUnavailableError
from ingest_local.lambda_service import ACCOUNT_ID, LambdaContext
from ingest_local.streams import lambda_record

Pipeline = Any
REGION = "us-east-1"
KEY = "inbound/acme/orders/o.csv"

LINES_FEED = """
  - name: lines
    match: "inbound/{partner}/lines/*.csv"
    format: csv
    receipt: {format: csv, include_raw: true}
    key: {pk: "LINE#{id}", sk: "PARTNER#{partner}"}
    fields:
      id: {type: string, required: true}
      qty: {type: int, required: true}
"""


def orders(good: int, bad: int) -> bytes:
    rows = [f"o{i},{i}.5" for i in range(good)] + [f"b{i},oops" for i in range(bad)]
    return ("order_id,amount\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    """The pipeline's feeds, and one whose receipts are CSV with the rows' raw text."""
    return feeds_yaml + LINES_FEED


@pytest.fixture
def told(pipeline: Pipeline) -> Iterator[Any]:
    """The pipeline with the ledger's stream on and the default bus routed to a queue; yields
    a helper that hands the stream's new records to the outcomes handler (``again=True``:
    the last batch once more, as a redelivery)."""
    from lambdas import outcomes

    pipeline.ddb.update_table(
        TableName="ledger",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    events_url = pipeline.sqs.create_queue(QueueName="outcome-events")["QueueUrl"]
    arn = pipeline.sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    bus = boto3.client("events", region_name=REGION)
    bus.put_rule(Name="all-outcomes", EventPattern=json.dumps({"source": ["sftp-ingest"]}))
    bus.put_targets(Rule="all-outcomes", Targets=[{"Id": "q", "Arn": arn}])
    outcomes.wiring.reset()
    table = dynamodb_backends[ACCOUNT_ID][REGION].get_table("ledger")
    stream_arn = table.describe()["TableDescription"]["LatestStreamArn"]
    state = {"seen": 0, "last": []}

    class Helper:
        def __call__(self, *, again: bool = False) -> dict[str, Any]:
            if not again:
                items = table.stream_shard.items[state["seen"] :]
                state["seen"] += len(items)
                state["last"] = [lambda_record(i.to_json(), stream_arn, REGION) for i in items]
            event = {"Records": state["last"]}
            return dict(outcomes.handler(event, LambdaContext(function_name="OutcomesFunction")))

        def events(self) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            while batch := pipeline.sqs.receive_message(
                QueueUrl=events_url, MaxNumberOfMessages=10
            ).get("Messages", []):
                for m in batch:
                    got.append(json.loads(m["Body"]))
                    pipeline.sqs.delete_message(
                        QueueUrl=events_url, ReceiptHandle=m["ReceiptHandle"]
                    )
            return got

    yield Helper()
    outcomes.wiring.reset()


def _get(p: Pipeline, key: str) -> bytes:
    return bytes(p.s3.get_object(Bucket=p.bucket, Key=key)["Body"].read())


def test_a_file_with_rejects_gets_a_receipt_and_one_event(pipeline: Pipeline, told: Any) -> None:
    pipeline.land(KEY, orders(good=4, bad=2))
    pipeline.drain()
    assert told() == {"batchItemFailures": []}

    entry = pipeline.file(KEY)
    plain = receipt_key(KEY)
    assert plain == "receipts/acme/orders/o.csv.json"
    receipt = json.loads(_get(pipeline, plain))
    assert receipt["file"] == "/orders/o.csv" and receipt["key"] == KEY
    assert receipt["status"] == "PROCESSED_WITH_REJECTS"
    assert (receipt["rows_ok"], receipt["rows_rejected"]) == (4, 2)
    assert receipt["etag"] == entry.etag and receipt["received_at"].endswith("Z")
    assert receipt["finished_at"] >= receipt["received_at"]
    assert receipt["rejects"] == [
        {"line": 6, "reason": "field 'amount': not a decimal: 'oops'"},
        {"line": 7, "reason": "field 'amount': not a decimal: 'oops'"},
    ]
    assert receipt["rejects_truncated"] is False and "reason" not in receipt
    # the version's own copy, in the history
    assert _get(pipeline, str(history_key(KEY, entry.etag or ""))) == _get(pipeline, plain)

    (event,) = told.events()
    assert event["source"] == "sftp-ingest"
    assert event["detail-type"] == "sftp-ingest File Processed With Rejects"
    assert event["resources"] == [f"arn:aws:s3:::{pipeline.bucket}/{KEY}"]
    detail = event["detail"]
    assert {k: detail[k] for k in ("key", "partner", "feed", "status", "etag")} == {
        "key": KEY,
        "partner": "acme",
        "feed": "orders",
        "status": "PROCESSED_WITH_REJECTS",
        "etag": entry.etag,
    }
    assert (detail["rows-ok"], detail["rows-rejected"]) == (4, 2)
    assert detail["rejects-ratio"] == pytest.approx(2 / 6, abs=1e-6)
    assert detail["receipt-key"] == plain and detail["ingestion-id"] == entry.ingestion
    assert len(detail["event-id"]) == 32


def test_a_redelivered_batch_writes_the_same_receipt_and_event_id(
    pipeline: Pipeline, told: Any
) -> None:
    pipeline.land(KEY, orders(good=3, bad=1))
    pipeline.drain()
    told()
    first = _get(pipeline, str(receipt_key(KEY)))
    (event,) = told.events()
    assert told(again=True) == {"batchItemFailures": []}
    assert _get(pipeline, str(receipt_key(KEY))) == first
    (again,) = told.events()
    assert again["detail"] == event["detail"]  # same event-id: the consumer drops the copy


def test_a_new_version_takes_the_plain_name_and_the_old_stays_in_history(
    pipeline: Pipeline, told: Any
) -> None:
    pipeline.land(KEY, orders(good=2, bad=3))
    pipeline.drain()
    told()
    old = pipeline.file(KEY)
    pipeline.land(KEY, orders(good=5, bad=0))
    pipeline.drain()
    told()
    new = pipeline.file(KEY)
    assert new.etag != old.etag

    plain = json.loads(_get(pipeline, str(receipt_key(KEY))))
    assert (plain["status"], plain["etag"], plain["rows_ok"]) == ("PROCESSED", new.etag, 5)
    assert plain["rejects"] == []
    older = json.loads(_get(pipeline, str(history_key(KEY, old.etag or ""))))
    assert (older["status"], older["rows_rejected"], len(older["rejects"])) == (
        "PROCESSED_WITH_REJECTS",
        3,
        3,
    )
    listed = pipeline.s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="receipts/acme/.history/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
        [f"receipts/acme/.history/orders/o.csv.{e}.json" for e in (old.etag, new.etag)]
    )
    assert [e["detail"]["status"] for e in told.events()] == [
        "PROCESSED_WITH_REJECTS",
        "PROCESSED",
    ]


def test_csv_receipts_with_raw_rows_and_the_first_100_rejects(
    pipeline: Pipeline, told: Any
) -> None:
    key = "inbound/acme/lines/l.csv"
    rows = [f"ok{i},{i}" for i in range(3)] + [f"bad{i},x{i}" for i in range(120)]
    pipeline.land(key, ("id,qty\n" + "\n".join(rows) + "\n").encode())
    pipeline.drain()
    told()
    assert receipt_key(key, "csv") == "receipts/acme/lines/l.csv.csv"
    obj = pipeline.s3.get_object(Bucket=pipeline.bucket, Key="receipts/acme/lines/l.csv.csv")
    assert obj["ContentType"] == "text/csv"
    table = list(csv.DictReader(io.StringIO(obj["Body"].read().decode())))
    assert len(table) == 100  # one row per listed reject
    assert {r["status"] for r in table} == {"PROCESSED_WITH_REJECTS"}
    assert {(r["rows_ok"], r["rows_rejected"], r["rejects_truncated"]) for r in table} == {
        ("3", "120", "true")
    }
    assert (table[0]["line"], table[0]["raw"]) == ("5", "bad0,x0")
    assert table[0]["reject_reason"].startswith("field 'qty'")
    assert table[-1]["line"] == "104"


def test_failed_unmatched_and_non_final_changes(pipeline: Pipeline, told: Any) -> None:
    pipeline.land("inbound/acme/nobody/x.bin", b"?")  # UNMATCHED
    pipeline.land("outside/acme/orders/o.csv", b"?")  # no partner: an event, no receipt
    pipeline.land("inbound/acme/orders/gz.csv.gz", b"not gzip")  # FAILED
    pipeline.drain()
    assert told() == {"batchItemFailures": []}
    unmatched = json.loads(_get(pipeline, "receipts/acme/nobody/x.bin.json"))
    assert unmatched["status"] == "UNMATCHED" and unmatched["rejects"] == []
    failed = json.loads(_get(pipeline, "receipts/acme/orders/gz.csv.gz.json"))
    assert failed["status"] == "FAILED" and failed["reason"]
    statuses = {e["detail"]["key"]: e for e in told.events()}
    assert statuses["outside/acme/orders/o.csv"]["detail"]["receipt-key"] is None
    assert statuses["inbound/acme/orders/gz.csv.gz"]["detail-type"] == "sftp-ingest File Failed"
    assert statuses["inbound/acme/orders/gz.csv.gz"]["detail"]["reason"] == failed["reason"]
    assert len(statuses) == 3  # RECEIVED, QUEUED, PROCESSING: none told
    listed = pipeline.s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="receipts/")
    assert not any(o["Key"].startswith("receipts/outside") for o in listed["Contents"])


def test_a_bus_that_refuses_fails_the_record_and_the_retry_tells_it(
    pipeline: Pipeline, told: Any
) -> None:
    from lambdas import outcomes

    class Refusing:
        def publish(self, events: Any) -> None:
            raise StorageUnavailableError("events", "PutEvents", "1 of 1 entries refused")

    pipeline.land(KEY, orders(good=1, bad=0))
    pipeline.drain()
    wired = outcomes.wiring()
    outcomes.wiring.use(replace(wired, ports=replace(wired.ports, bus=Refusing())))
    response = told()
    (failure,) = response["batchItemFailures"]  # the mapping retries from this record
    assert told.events() == []
    outcomes.wiring.use(wired)
    assert told(again=True) == {"batchItemFailures": []}
    (event,) = told.events()
    assert event["detail"]["status"] == "PROCESSED" and failure["itemIdentifier"]


def test_metrics_count_receipts_events_and_failures_as_documented(
    pipeline: Pipeline, told: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from lambdas import outcomes

    service = use_function_settings(monkeypatch, outcomes, "lambdas.outcomes.handler")

    def counted(*, again: bool = False) -> dict[str, float]:
        capsys.readouterr()
        told(again=again)
        out = capsys.readouterr().out
        assert_json_logs_with_context(out, "OutcomesFunction")
        points = emf_points(out)
        assert_emitted_as_documented(points, service)
        return totals(points, service=service)

    pipeline.land(KEY, orders(good=2, bad=1))
    pipeline.drain()
    assert counted() == {"ReceiptsWritten": 2, "EventsPublished": 1, "OutcomesFailed": 0}

    class Refusing:
        def publish(self, events: Any) -> None:
            raise StorageUnavailableError("events", "PutEvents", "throttled")

    wired = outcomes.wiring()
    outcomes.wiring.use(replace(wired, ports=replace(wired.ports, bus=Refusing())))
    assert counted(again=True) == {"ReceiptsWritten": 0, "EventsPublished": 0, "OutcomesFailed": 1}
    outcomes.wiring.use(wired)
