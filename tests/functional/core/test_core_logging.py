"""The core's log lines reach the function's log as Powertools JSON, with their extra fields.

The core logs with ``logging.getLogger(__name__)``; in Lambda only what the function's
Powertools logger handles is structured. The handlers run here in a fresh interpreter (so no
test framework's log capture stands in the way), against in-process moto, and every line the
process printed is parsed as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import boto3
from moto import mock_aws
from ingest_local.tables import create_pk_sk_table
from ingest_local.lambda_service import LambdaContext, s3_object_created_event
from ingest.adapters.feeds_publisher import publish_feeds

FEEDS = '''
feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    key: {pk: "ORDER#{order_id}"}
    fields:
      order_id: {type: string, required: true}
'''
with mock_aws():
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="logs-landing")
    publish_feeds(s3, "s3://logs-landing/config/feeds.yaml", FEEDS)
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    ddb = boto3.client("dynamodb")
    create_pk_sk_table(ddb, "ledger")
    create_pk_sk_table(ddb, "records")
    import os
    os.environ["INGEST_QUEUE_URL"] = url
    from lambdas import fanout, processor

    body = b"order_id\n1\n2\n"
    put = s3.put_object(Bucket="logs-landing", Key="inbound/acme/orders/a.csv", Body=body)
    event = s3_object_created_event(
        "logs-landing", "inbound/acme/orders/a.csv", size=len(body), etag=put["ETag"]
    )
    fanout.handler(event, LambdaContext(function_name="FanoutFunction"))
    msg = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    record = {
        "messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"],
        "body": msg["Body"], "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest", "awsRegion": "us-east-1",
    }
    processor.handler({"Records": [record]}, LambdaContext(function_name="ProcessorFunction"))
"""


def test_core_log_lines_are_structured_json_at_the_configured_level(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "sftp-ingest",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": "tests",
        "LANDING_BUCKET": "logs-landing",
        "LEDGER_TABLE": "ledger",
        "RECORDS_TABLE": "records",
        "FEEDS_URI": "s3://logs-landing/config/feeds.yaml",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    logs = [line for line in lines if "message" in line and "level" in line]
    queued = [line for line in logs if line["message"] == "queued file"]
    assert len(queued) == 1, logs
    assert queued[0]["level"] == "INFO"
    assert queued[0]["name"] == "ingest.usecases.fanout"
    assert (queued[0]["key"], queued[0]["feed"], queued[0]["chunks"]) == (
        "inbound/acme/orders/a.csv",
        "orders",
        1,
    )
    assert queued[0]["function_name"] == "FanoutFunction"  # the Lambda context is there too
    done = [line for line in logs if line["message"] == "chunk done"]
    assert len(done) == 1, logs
    assert (done[0]["rows_ok"], done[0]["rows_rejected"], done[0]["name"]) == (
        2,
        0,
        "ingest.usecases.processor",
    )
    # every core line went through Powertools: nothing unstructured on either stream
    assert not [line for line in proc.stdout.splitlines() if line and not line.startswith("{")]
    assert "queued file" not in proc.stderr
