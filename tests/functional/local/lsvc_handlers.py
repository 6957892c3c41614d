"""Tiny Lambda handlers for the local-stack tests (loaded by Handler string, like real ones)."""

from __future__ import annotations

import json
import os
from typing import Any

#: every event the handlers saw in this process, for assertions.
SEEN: list[dict[str, Any]] = []


def ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Succeeds for every record."""
    SEEN.append(event)
    return {"batchItemFailures": []}


def fail_poison(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports every record whose body contains "poison" as failed."""
    SEEN.append(event)
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if "poison" in r["body"]
        ]
    }


def bad_identifier(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns a batch item failure that names no message of the batch."""
    SEEN.append(event)
    return {"batchItemFailures": [{"itemIdentifier": "not-a-message-id"}]}


def boom(event: dict[str, Any], context: Any) -> None:
    """Raises, failing the whole batch."""
    SEEN.append(event)
    raise RuntimeError("handler exploded")


def echo_env(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns the environment variables named in the event, and the context's name."""
    names = event.get("names", [])
    return {
        "env": {n: os.environ.get(n) for n in names},
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "event": json.loads(json.dumps(event)),
    }


NOT_CALLABLE = 42


def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes what it saw to s3://$SEEN_BUCKET/seen/<function>/<request id>.json.

    It runs in a sandbox process, so the bucket is how tests observe it. SQS records whose
    body contains "poison" are reported as failed; an event mentioning "explode" raises.
    """
    import time

    import boto3

    if any("slow" in r.get("body", "") for r in event.get("Records", [])):
        time.sleep(1.5)
    body = json.dumps(
        {
            "event": event,
            "env": {k: os.environ.get(k) for k in ("MARKER", "AWS_ENDPOINT_URL", "AWS_REGION")},
            "function_name": context.function_name,
            "pid": os.getpid(),
        }
    )
    boto3.client("s3").put_object(
        Bucket=os.environ["SEEN_BUCKET"],
        Key=f"seen/{os.environ['MARKER']}/{context.aws_request_id}.json",
        Body=body.encode(),
    )
    if "explode" in json.dumps(event):
        raise RuntimeError("asked to explode")
    records = event.get("Records", [])
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]}
            for r in records
            if r.get("eventSource") == "aws:sqs" and "poison" in r["body"]
        ]
    }


def sleepy(event: dict[str, Any], context: Any) -> None:
    """Sleeps past any short timeout."""
    import time

    time.sleep(float(event.get("seconds", 30)))


def crash(event: dict[str, Any], context: Any) -> None:
    """Kills its own process, as an out-of-memory kill would."""
    os._exit(3)
