"""The moto-backed deployment that ``bench/processor.py`` drives, and its measured runs.

One moto server holds a versioned landing bucket, the ingest queue with its DLQ (redrive
after 5 receives), the ledger table, and a records table that is emptied before each run.
The fanout handler runs in the benchmark's process; the processor and the peers each run in
worker processes (``processor_worker.py``) held at a READY line until the timed start.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto_server import MotoProcess
from processor_data import FEEDS_YAML

from ingest.adapters.aws import AwsTarget
from ingest.adapters.feeds_publisher import publish_feeds
from ingest.adapters.ledger import Ledger
from ingest_local.lambda_service import LambdaContext, load_handler, s3_object_created_event
from ingest_local.tables import create_pk_sk_table

WORKER = Path(__file__).resolve().parent / "processor_worker.py"
REGION = "us-east-1"
BUCKET = "bench-landing-123456789012"
#: long enough that no chunk becomes visible again while a worker is still on it
#: (moto writes ~1,000 items/s, so a 64 MiB chunk of narrow rows takes ~10 minutes)
VISIBILITY_TIMEOUT = 43200


@dataclass
class Bench:
    """The moto-backed deployment the benchmark drives."""

    aws: AwsTarget
    env: dict[str, str]
    queue_url: str
    queue_arn: str
    data: Path
    feeds_path: Path
    moto: MotoProcess
    log: Any
    profile_dir: Path | None = None
    workers_started: int = 0

    @property
    def ddb(self) -> Any:
        return self.aws.client("dynamodb")

    def fresh_records_table(self) -> None:
        """An empty records table, so each phase starts from the same state."""
        ddb = self.ddb
        if "records" in ddb.list_tables()["TableNames"]:
            ddb.delete_table(TableName="records")
        create_pk_sk_table(ddb, "records")

    def item_count(self) -> int:
        """Items in the records table (moto counts them live)."""
        return int(self.ddb.describe_table(TableName="records")["Table"]["ItemCount"])

    def upload(self, path: Path, key: str) -> dict[str, Any]:
        """Land a local file (multipart, by boto3's transfer manager); returns its HEAD."""
        s3 = self.aws.client("s3")
        s3.upload_file(str(path), BUCKET, key)
        return s3.head_object(Bucket=BUCKET, Key=key)  # type: ignore[no-any-return]

    def fanout(self, key: str, head: dict[str, Any]) -> dict[str, Any]:
        """Deliver the object's S3 event to the real fanout handler, as Lambda would."""
        event = s3_object_created_event(
            BUCKET,
            key,
            size=head["ContentLength"],
            etag=head["ETag"],
            version_id=head.get("VersionId"),
            region=REGION,
        )
        # Powertools logs and EMF metrics go to the bench log, not between our figures.
        with contextlib.redirect_stdout(self.log):
            handler = self.fanout_handler()
            context = LambdaContext(function_name="FanoutFunction", timeout_seconds=900)
            result = handler(event, context)
        (file,) = result["files"]
        if file["outcome"] != "QUEUED":
            raise SystemExit(f"fanout did not queue {key}: {file}")
        return file  # type: ignore[no-any-return]

    def fanout_handler(self) -> Any:
        """The fanout handler, imported (as the workers import theirs before the timed start;
        a Lambda instance imports once for many files)."""
        return load_handler("lambdas.fanout.handler")

    def worker(self, mode: str, *extra: str) -> Worker:
        """Start a worker process of ``mode``; it waits at READY until ``go()``."""
        self.workers_started += 1
        if self.profile_dir:
            profile = self.profile_dir / f"{self.workers_started:02d}-{mode}.pstats"
            extra = (*extra, "--profile", str(profile))
        return Worker(self, mode, list(extra))


class Worker:
    """A worker process (``processor_worker.py``), started and held at its READY line."""

    def __init__(self, bench: Bench, mode: str, extra: list[str]) -> None:
        self.log = bench.data / f"worker-{mode}.log"
        cmd = [
            sys.executable,
            str(WORKER),
            mode,
            "--endpoint",
            bench.aws.endpoint_url or "",
            "--region",
            REGION,
            "--log",
            str(self.log),
            *extra,
        ]
        self.proc = subprocess.Popen(
            cmd, env=bench.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.ready = self._expect("READY")

    def _expect(self, tag: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(tag + " "):
            self.proc.kill()
            raise SystemExit(f"worker failed before {tag} (see {self.log}): {line!r}")
        return json.loads(line[len(tag) + 1 :])  # type: ignore[no-any-return]

    def go(self) -> None:
        """Start the worker's measured section."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("GO\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        """Wait for the worker's figures (it exits after printing them)."""
        out = self._expect("RESULT")
        self.proc.wait()
        return out


def deploy(moto: MotoProcess, data: Path, chunk_mib: int, log: Any) -> Bench:
    """Create the bucket, queues and tables; return the functions' environment."""
    endpoint_url = moto.endpoint_url
    aws = AwsTarget(region=REGION, endpoint_url=endpoint_url)
    s3, sqs = aws.client("s3"), aws.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    publish_feeds(s3, f"s3://{BUCKET}/config/feeds.yaml", FEEDS_YAML)
    feeds_path = data / "feeds.yaml"
    feeds_path.write_text(FEEDS_YAML, encoding="utf-8")
    dlq_url = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 5}
    queue_url = sqs.create_queue(
        QueueName="ingest",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    create_pk_sk_table(aws.client("dynamodb"), "ledger")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "LANDING_BUCKET": BUCKET,
        "LEDGER_TABLE": "ledger",
        "RECORDS_TABLE": "records",
        "INGEST_QUEUE_URL": queue_url,
        "FEEDS_URI": f"s3://{BUCKET}/config/feeds.yaml",
        "MAX_RECEIVE_COUNT": "5",
        "CHUNK_SIZE_MIB": str(chunk_mib),
    }
    os.environ.update(env)  # the fanout handler runs in this process
    return Bench(aws, env, queue_url, queue_arn, data, feeds_path, moto, log)


def fake_credentials() -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "sftp-ingest-bench",
        "POWERTOOLS_SERVICE_NAME": "bench",
    }.items():
        os.environ[name] = value
    # moto is plain HTTP on loopback; a CA bundle meant for a proxy only gets in the way.
    os.environ.pop("AWS_CA_BUNDLE", None)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rates(rows: int, seconds: float, client_cpu: float, moto_cpu: float) -> dict[str, float]:
    """Wall-clock rate, and the rate per CPU second spent by our side plus moto's.

    The machines are shared: wall time grows with other people's load, CPU time much less.
    """
    return {
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "client_cpu_s": client_cpu,
        "moto_cpu_s": moto_cpu,
        "rows_per_cpu_s": rows / (client_cpu + moto_cpu),
    }


def check(condition: bool, what: str) -> None:
    """A benchmark whose output is wrong measures nothing: stop loudly."""
    if not condition:
        raise SystemExit(f"CHECK FAILED: {what}")


def run_processor(bench: Bench, path: Path, key: str, rows: int, workers: int) -> dict[str, Any]:
    """Upload, then time fanout + every chunk through ``workers`` processor processes."""
    bench.fresh_records_table()
    head = bench.upload(path, key)
    batch_size = "10" if workers == 1 else "1"  # one message per poll spreads chunks
    pool = [
        bench.worker(
            "drain",
            "--queue-url",
            bench.queue_url,
            "--queue-arn",
            bench.queue_arn,
            "--batch-size",
            batch_size,
        )
        for _ in range(workers)
    ]
    with contextlib.redirect_stdout(bench.log):
        bench.fanout_handler()
    moto_cpu, own_cpu, start = bench.moto.cpu_seconds(), _own_cpu(), time.time()
    file = bench.fanout(key, head)
    fanout_cpu = _own_cpu() - own_cpu
    for w in pool:
        w.go()
    results = [w.result() for w in pool]
    end = max(r["end"] for r in results)
    moto_cpu = bench.moto.cpu_seconds() - moto_cpu
    for r in results:
        check(r["failed"] == 0, f"processor worker failed chunks: {r['errors']}")
    entry = Ledger(bench.ddb, "ledger").get_file(key)
    check(entry is not None, f"ledger has {key}")
    assert entry is not None
    check(entry.status == "PROCESSED", f"{key} is {entry.status}: {entry.reason}")
    check(entry.rows_ok == rows and entry.rows_rejected == 0, f"ledger rows {entry}")
    check(entry.chunks_done == file["chunks"], f"ledger chunks {entry}")
    check(bench.item_count() == rows, f"records table holds {bench.item_count()} != {rows}")
    return {
        "rows": rows,
        "bytes": head["ContentLength"],
        "chunks": file["chunks"],
        "workers": workers,
        **rates(rows, end - start, fanout_cpu + sum(r["cpu"] for r in results), moto_cpu),
        "fanout_cpu_s": fanout_cpu,
        "rss_mib": [r["rss_kib"] / 1024 for r in results],
        "rss_ready_mib": [w.ready["rss_kib"] / 1024 for w in pool],
    }


def run_writers(
    bench: Bench, mode: str, path: Path, key: str, *, rows: int, workers: int
) -> dict[str, Any]:
    """Time ``workers`` processes writing the first ``rows`` pre-built items of ``path``."""
    bench.fresh_records_table()
    pool = [
        bench.worker(
            mode,
            "--file",
            str(path),
            "--feeds",
            str(bench.feeds_path),
            "--key",
            key,
            "--source-uri",
            f"s3://{BUCKET}/{key}",
            "--table",
            "records",
            "--part",
            str(part),
            "--parts",
            str(workers),
            "--limit",
            str(rows),
        )
        for part in range(workers)
    ]
    moto_cpu = bench.moto.cpu_seconds()
    for w in pool:
        w.go()
    results = [w.result() for w in pool]
    moto_cpu = bench.moto.cpu_seconds() - moto_cpu
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    written = sum(r["items"] for r in results)
    check(written == rows, f"{mode} writers wrote {written} of {rows} items")
    check(bench.item_count() == rows, f"records table holds {bench.item_count()} != {rows}")
    client_cpu = sum(r["cpu"] for r in results)
    return {"rows": rows, "workers": workers, **rates(rows, seconds, client_cpu, moto_cpu)}
