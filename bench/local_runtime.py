"""The local Lambda service's SQS event source: messages/s beside the raw SQS limit.

Three phases against one moto server (in its own process), each draining the same number of
messages from a fresh queue:

* raw      — ``receive_message`` (10, all attributes) + ``delete_message_batch``: the substrate
             limit, what any consumer of this moto can do;
* inproc   — ``SqsEventSource`` invoking a no-op handler in this process;
* sandbox  — ``SqsEventSource`` invoking the same handler in a function sandbox subprocess
             (``FunctionWorker``), as ``ingest up`` does.

Target: sandbox >= 0.8 x raw (the emulation must not be the bottleneck of local runs).

    .venv/bin/python bench/local_runtime.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def noop(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The benchmarked handler: accepts every record."""
    return {"batchItemFailures": []}


def _fill(sqs: Any, url: str, count: int) -> None:
    body = '{"bucket": "b", "key": "inbound/p/orders/x.csv", "chunk": 0}'
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": body} for i in range(min(10, count - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def _queue(sqs: Any, count: int) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    _fill(sqs, url, count)
    return url, arn


def raw_drain(sqs: Any, url: str) -> int:
    """Receive and delete until the queue is empty; the number of messages handled."""
    done = 0
    while True:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return done
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )
        done += len(got)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_CA_BUNDLE", None)
    sys.path.insert(0, str(HERE))
    # imported here, not at the top: the sandbox imports this module for ``noop`` alone,
    # and moto_server is found through HERE on sys.path
    from moto_server import moto_server

    from ingest.adapters.aws import AwsTarget

    n = args.messages
    with tempfile.TemporaryDirectory() as tmp, moto_server(Path(tmp) / "moto.log") as moto:
        sqs = AwsTarget("us-east-1", moto.endpoint_url).client("sqs")
        results = {
            "raw": raw_rate(sqs, n),
            "inproc": inproc_rate(sqs, n),
            "sandbox": sandbox_rate(sqs, n, moto.endpoint_url),
        }
    report(n, results)
    return 0


def raw_rate(sqs: Any, n: int) -> float:
    """Messages/s of :func:`raw_drain` on a fresh queue of ``n``: the substrate limit."""
    url, _ = _queue(sqs, n)
    t0 = time.perf_counter()
    handled = raw_drain(sqs, url)
    return handled / (time.perf_counter() - t0)


def inproc_rate(sqs: Any, n: int) -> float:
    """Messages/s of ``SqsEventSource`` invoking :func:`noop` in this process."""
    from ingest_local.lambda_service import SqsEventSource, in_process_invoker, load_handler

    url, arn = _queue(sqs, n)
    source = SqsEventSource(
        sqs, url, arn, in_process_invoker(load_handler("local_runtime.noop"), "Bench")
    )
    t0 = time.perf_counter()
    totals = source.drain(timeout=600, idle_polls=1, poll_interval=0)
    return totals.succeeded / (time.perf_counter() - t0)


def sandbox_rate(sqs: Any, n: int, endpoint_url: str) -> float:
    """Messages/s of ``SqsEventSource`` invoking :func:`noop` in a warm function sandbox."""
    from ingest_local.lambda_service import SqsEventSource
    from ingest_local.sandbox import FunctionSpec, sandbox_environment
    from ingest_local.worker import FunctionWorker

    spec = FunctionSpec(
        "Bench",
        "bench",
        "arn:aws:lambda:us-east-1:123456789012:function:bench",
        "local_runtime.noop",
        {},
        60,
        128,
    )
    worker = FunctionWorker(
        function_name="bench",
        handler=spec.handler,
        environment=sandbox_environment(
            spec, endpoint_url=endpoint_url, region="us-east-1", code_root=HERE
        ),
        timeout=60,
    )
    worker.warm()
    worker.invoke({"Records": []}, "warm-up")  # the cold start is not what is measured
    url, arn = _queue(sqs, n)
    source = SqsEventSource(sqs, url, arn, lambda event: worker.invoke(event, "bench"))
    t0 = time.perf_counter()
    totals = source.drain(timeout=600, idle_polls=1, poll_interval=0)
    rate = totals.succeeded / (time.perf_counter() - t0)
    worker.close()
    return rate


def report(n: int, results: dict[str, float]) -> None:
    print(f"messages per phase: {n}")
    for name in ("raw", "inproc", "sandbox"):
        print(f"{name:8s} {results[name]:8.0f} msg/s   {results[name] / results['raw']:.2f} x raw")
    ok = results["sandbox"] >= 0.8 * results["raw"]
    print(f"target sandbox >= 0.8 x raw: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
