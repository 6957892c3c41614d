"""Receipts and notifications on the whole local stack: a partner uploads over OpenSSH ``sftp``,
the ledger's stream runs OutcomesFunction (played by the local Lambda service), and the partner
downloads each file's receipt from its read-only ``/receipts`` with ``sftp``; its content is
what ``ingest status KEY --json`` says. The events go through EventBridge rules (on the stack's
default bus, with SQS targets made here) to queues: every final status, and only the file
whose rejects are above 5% through the numeric rule of docs/operations.md."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stack_kit import RunningStack
from support_aws import wait_for
from test_gateway_e2e import partner

NAME = "rcpt-e2e"
FILES = {
    "orders/good.csv": b"order_id,amount\nrg1,1.5\nrg2,2.5\nrg3,3.5\n",
    "orders/bad.csv": b"order_id,amount\nrb1,1.5\nrb2,oops\nrb3,3.5\n",
    "nobody/x.txt": b"no feed owns this\n",
}
STATUSES = {
    "orders/good.csv": "PROCESSED",
    "orders/bad.csv": "PROCESSED_WITH_REJECTS",
    "nobody/x.txt": "UNMATCHED",
}


def _queue_rule(stack: RunningStack, name: str, pattern: dict[str, Any]) -> str:
    sqs, events = stack.client("sqs"), stack.client("events")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def _drain(stack: RunningStack, url: str, want: int) -> list[dict[str, Any]]:
    sqs, got = stack.client("sqs"), []

    def enough() -> bool:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(got) >= want

    wait_for(enough, timeout=60, what=f"{want} events on {url}")
    return got


def test_partner_downloads_receipts_matching_status_and_events_reach_rules(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    stack = local_stack
    everything = _queue_rule(
        stack, "outcomes-e2e-all", {"source": ["sftp-ingest"], "detail": {"partner": [NAME]}}
    )
    tickets = _queue_rule(
        stack,
        "outcomes-e2e-rejects",
        {
            "source": ["sftp-ingest"],
            "detail-type": ["sftp-ingest File Processed With Rejects"],
            "detail": {"partner": [NAME], "rejects-ratio": [{"numeric": [">", 0.05]}]},
        },
    )
    key = partner(stack, NAME, tmp_path)
    commands = ["-mkdir orders", "-mkdir nobody"]
    for path, data in FILES.items():
        local = tmp_path / path.replace("/", "_")
        local.write_bytes(data)
        commands.append(f"put {local} {path}")
    stack.sftp_batch(commands, user=NAME, key=key)

    s3, bucket = stack.client("s3"), stack.resources["bucket"]

    def receipts_there() -> bool:  # a receipt is written once its file is final
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"receipts/{NAME}/")
        have = {o["Key"] for o in listed.get("Contents", [])}
        return all(f"receipts/{NAME}/{p}.json" in have for p in FILES)

    wait_for(receipts_there, timeout=90, what="a receipt of each file")

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    gets = [f"get /receipts/{p}.json {downloads / p.replace('/', '_')}.json" for p in FILES]
    stack.sftp_batch(["ls -l /receipts/orders", *gets], user=NAME, key=key)

    with ThreadPoolExecutor(len(FILES)) as pool:  # each CLI run is a few seconds
        stories = dict(
            zip(
                FILES,
                pool.map(lambda p: stack.ingest("status", f"inbound/{NAME}/{p}", "--json"), FILES),
                strict=True,
            )
        )
    for path, status in STATUSES.items():
        receipt = json.loads((downloads / f"{path.replace('/', '_')}.json").read_text())
        story = json.loads(stories[path].stdout)
        assert receipt["status"] == story["status"] == status
        assert receipt["file"] == f"/{path}" and receipt["key"] == story["key"]
        for field in ("rows_ok", "rows_rejected", "etag", "received_at", "feed", "size"):
            assert receipt[field] == story[field], (path, field)
        assert receipt["finished_at"] == story["updated_at"]
        assert receipt.get("reason") == story["reason"]
        assert receipt["rejects"] == story["first_rejects"]
        assert receipt["rejects_truncated"] == story["rejects_truncated"]
    bad = json.loads((downloads / "orders_bad.csv.json").read_text())
    assert bad["rejects"] == [{"line": 3, "reason": "field 'amount': not a decimal: 'oops'"}]

    told = {e["detail"]["key"]: e for e in _drain(stack, everything, len(FILES))}
    assert set(told) == {f"inbound/{NAME}/{p}" for p in FILES}
    for path, status in STATUSES.items():
        event = told[f"inbound/{NAME}/{path}"]
        assert event["source"] == "sftp-ingest" and event["detail"]["status"] == status
        assert event["resources"] == [f"arn:aws:s3:::{bucket}/inbound/{NAME}/{path}"]
        assert event["detail"]["receipt-key"] == f"receipts/{NAME}/{path}.json"
        assert event["detail"]["bucket"] == bucket and len(event["detail"]["event-id"]) == 32
    assert told[f"inbound/{NAME}/orders/bad.csv"]["detail-type"] == (
        "sftp-ingest File Processed With Rejects"
    )
    (ticket,) = _drain(stack, tickets, 1)
    assert ticket["detail"]["key"] == f"inbound/{NAME}/orders/bad.csv"
    assert ticket["detail"]["rejects-ratio"] > 0.05
