"""Expected files on the whole local stack (``ingest up --feeds fixtures/feeds-expected.yaml``):
ExpectedFilesFunction as deployed from template.yaml (its handler, environment and the compiled
feeds it reads), invoked with scheduled events whose ``time`` drives the check; its MISSING
events go through an EventBridge rule on the stack's default bus to SQS; ``ingest status`` and
``ingest expected`` show the entries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack_kit import REPO, RunningStack
from support_aws import wait_for

DEADLINE = "2026-12-07T08:00:00Z"  # Monday 09:00 in Berlin


def _scheduled(stack: RunningStack, at: str) -> dict[str, Any]:
    event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": at, "detail": {}}
    path = stack.state_dir / f"scheduled-{at.replace(':', '')}.json"
    path.write_text(json.dumps(event))
    out: dict[str, Any] = json.loads(
        stack.ingest("invoke", "ExpectedFilesFunction", "-e", str(path)).stdout
    )
    return out


def test_missing_deadlines_reach_a_rule_and_show_in_status_and_expected(
    start_local_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    stack = start_local_stack(
        tmp_path / "state", "--feeds", str(REPO / "fixtures" / "feeds-expected.yaml")
    )
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="expected-e2e")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["sftp-ingest"], "detail-type": ["sftp-ingest Expected File Missing"]}
    events.put_rule(Name="expected-e2e", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="expected-e2e", Targets=[{"Id": "queue", "Arn": arn}])

    _scheduled(stack, "2026-12-07T06:00:00Z")  # the schedules' first sight
    report = _scheduled(stack, "2026-12-07T08:35:00Z")
    keys = {f"expected/orders/{p}/{DEADLINE}" for p in ("acme", "globex")}
    assert set(report["missing"]) == keys

    got: list[dict[str, Any]] = []

    def both() -> bool:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return {e["detail"]["key"] for e in got} >= keys

    wait_for(both, timeout=60, what="the MISSING events on the rule's queue")
    for event in (e for e in got if e["detail"]["key"] in keys):
        assert event["source"] == "sftp-ingest" and event["resources"] == []
        detail = event["detail"]
        assert (detail["feed"], detail["deadline"]) == ("orders", DEADLINE)
        assert (detail["expected"], detail["received"]) == (1, 0)
        assert detail["partner"] in ("acme", "globex") and len(detail["event-id"]) == 32

    listed = json.loads(stack.ingest("status", "--status", "MISSING", "--json").stdout)
    mine = {f["key"]: f for f in listed if f["key"] in keys}
    assert set(mine) == keys
    assert {f["partner"] for f in mine.values()} == {"acme", "globex"}
    assert all(f["expectation"]["deadline"] == DEADLINE for f in mine.values())
    shown = json.loads(stack.ingest("expected", "--json", "--since", "2026-12-01").stdout)
    assert {r["key"] for r in shown["recent"]} >= keys
    assert {u["feed"] for u in shown["upcoming"]} == {"orders", "stock"}
