"""End to end: ``ingest up`` → endpoints.json → OpenSSH ``sftp`` upload → ``ingest status``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import asyncssh
import pytest
from stack_kit import REPO, RunningStack, cli_env

from ingest_local.lambda_service import s3_object_created_event


def orders_csv(path: Path, rows: int, *, bad: int = 0) -> Path:
    """An orders file with ``rows`` good rows and ``bad`` rows whose amount is not a number."""
    lines = ["order_id,amount,quantity,placed_at,gift"]
    lines += [f"E2E-{path.stem}-{i},{i}.25,{i % 7},2026-11-01T10:00:00Z,false" for i in range(rows)]
    lines += [f"E2E-{path.stem}-bad-{i},not-a-number,1,,false" for i in range(bad)]
    path.write_text("\n".join(lines) + "\n")
    return path


def records_of(stack: RunningStack, key: str) -> list[dict[str, object]]:
    """Every record item whose ``_source`` is the landed file (a scan: small tables only)."""
    source = f"s3://{stack.resources['bucket']}/{key}"
    items: list[dict[str, object]] = []
    paginator = stack.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(
        TableName=stack.resources["table"],
        FilterExpression="#s = :s",
        ExpressionAttributeNames={"#s": "_source"},
        ExpressionAttributeValues={":s": {"S": source}},
    ):
        items.extend(page["Items"])
    return items


def test_endpoints_json_follows_the_contract(local_stack: RunningStack) -> None:
    ep = local_stack.endpoints
    assert ep["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert ep["region"] == "us-east-1"
    assert ep["sftp"]["host"] == "127.0.0.1"
    assert ep["sftp"]["port"] > 0
    fingerprints = ep["sftp"]["host_key_fingerprints"]
    assert len(fingerprints) == 2
    assert all(fp.startswith("SHA256:") for fp in fingerprints)
    for name in ("bucket", "queue_url", "dlq_url", "table", "ledger_table", "server_id"):
        assert ep["resources"][name], name
    # the fingerprints are those of the keys a client sees in known_hosts
    keys = asyncssh.read_known_hosts(str(local_stack.known_hosts))
    host_keys = keys.match("127.0.0.1", "127.0.0.1", local_stack.sftp_port)[0]
    assert {str(k.get_fingerprint("sha256")) for k in host_keys} == set(fingerprints)
    # the resources are real: the queue has the template's redrive policy
    attrs = local_stack.client("sqs").get_queue_attributes(
        QueueUrl=ep["resources"]["queue_url"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 5


def test_openssh_upload_is_processed_with_exact_rows(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    good = orders_csv(tmp_path / "e2e-exact.csv", 250)
    mixed = orders_csv(tmp_path / "e2e-mixed.csv", 40, bad=3)
    local_stack.sftp_batch(
        ["-mkdir orders", f"put {good} orders/e2e-exact.csv", f"put {mixed} orders/e2e-mixed.csv"]
    )
    exact = local_stack.wait_for_file("inbound/demo/orders/e2e-exact.csv")
    assert exact["status"] == "PROCESSED"
    assert (exact["rows_ok"], exact["rows_rejected"]) == (250, 0)
    assert exact["chunks"] == exact["chunks_done"] >= 1
    assert exact["feed"] == "orders"
    assert exact["size"] == good.stat().st_size
    items = records_of(local_stack, "inbound/demo/orders/e2e-exact.csv")
    assert len(items) == 250
    assert sorted(int(i["_line"]["N"]) for i in items) == list(range(2, 252))  # type: ignore[index]
    first = next(i for i in items if i["_line"] == {"N": "2"})
    assert first["pk"] == {"S": "ORDER#E2E-e2e-exact-0"}
    assert Decimal(first["amount"]["N"]) == Decimal("0.25")  # type: ignore[index]

    mixed_status = local_stack.wait_for_file("inbound/demo/orders/e2e-mixed.csv")
    assert mixed_status["status"] == "PROCESSED_WITH_REJECTS"
    assert (mixed_status["rows_ok"], mixed_status["rows_rejected"]) == (40, 3)


def test_unknown_key_is_refused_before_anything_lands(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    key = tmp_path / "stranger"
    key.write_bytes(stranger.export_private_key())
    key.chmod(0o600)
    proc = local_stack.sftp_batch(["put /etc/hostname x.csv"], key=key, check=False)
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr


def test_partners_cli_adds_lists_and_removes(local_stack: RunningStack, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    private, public = tmp_path / "acme", tmp_path / "acme.pub"
    private.write_bytes(key.export_private_key())
    private.chmod(0o600)
    key.write_public_key(str(public))
    local_stack.ingest("partners", "add", "acme-e2e", "--ssh-key", str(public))
    listed = json.loads(local_stack.ingest("partners", "list", "--json").stdout)
    assert {p["name"] for p in listed} >= {"demo", "acme-e2e"}
    acme = next(p for p in listed if p["name"] == "acme-e2e")
    assert acme["home"] == f"/{local_stack.resources['bucket']}/inbound/acme-e2e"

    data = orders_csv(tmp_path / "acme-orders.csv", 5)
    local_stack.sftp_batch(
        ["-mkdir orders", f"put {data} orders/a.csv"], user="acme-e2e", key=private
    )
    status = local_stack.wait_for_file("inbound/acme-e2e/orders/a.csv")
    assert (status["status"], status["rows_ok"]) == ("PROCESSED", 5)

    local_stack.ingest("partners", "remove", "acme-e2e")
    refused = local_stack.sftp_batch(["ls"], user="acme-e2e", key=private, check=False)
    assert refused.returncode != 0
    dup = local_stack.ingest("partners", "add", "demo", "--ssh-key", str(public), check=False)
    assert dup.returncode == 2
    assert "already exists" in dup.stderr


def test_ingest_invoke_runs_the_deployed_handler(local_stack: RunningStack, tmp_path: Path) -> None:
    s3 = local_stack.client("s3")
    bucket = local_stack.resources["bucket"]
    body = orders_csv(tmp_path / "invoked.csv", 3).read_bytes()
    # outside inbound/, so no notification races the invocation: the handler's answer is
    # the only thing that records this file
    put = s3.put_object(Bucket=bucket, Key="manual/unowned.csv", Body=body)
    event = s3_object_created_event(
        bucket, "manual/unowned.csv", size=len(body), etag=put["ETag"], version_id=put["VersionId"]
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    out = local_stack.ingest("invoke", "FanoutFunction", "-e", str(event_file))
    response = json.loads(out.stdout)
    (result,) = response["files"]
    assert result["key"] == "manual/unowned.csv"
    ledger = {f["key"]: f for f in local_stack.status()}
    assert ledger["manual/unowned.csv"]["status"] == "UNMATCHED"

    bad = local_stack.ingest("invoke", "NoSuchFunction", "-e", str(event_file), check=False)
    assert bad.returncode == 2
    assert "FanoutFunction" in bad.stderr  # the error lists the functions that exist


def test_sample_event_fixture_works_with_ingest_invoke(local_stack: RunningStack) -> None:
    # fixtures/events/s3-put.json names a demo file; upload it first so the event is true.
    sample = REPO / "fixtures" / "files" / "orders" / "orders-2026-11-01.csv"
    local_stack.client("s3").put_object(
        Bucket=local_stack.resources["bucket"],
        Key="inbound/demo/orders/orders-2026-11-01.csv",
        Body=sample.read_bytes(),
    )
    out = local_stack.ingest(
        "invoke", "FanoutFunction", "-e", str(REPO / "fixtures" / "events" / "s3-put.json")
    )
    assert json.loads(out.stdout)["files"][0]["key"] == "inbound/demo/orders/orders-2026-11-01.csv"
    status = local_stack.wait_for_file("inbound/demo/orders/orders-2026-11-01.csv")
    assert (status["status"], status["rows_ok"]) == ("PROCESSED", 4)


def test_local_stack_commands_need_no_aws_account(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    no_aws = {k: v for k, v in cli_env().items() if not k.startswith("AWS_")}
    listed = local_stack.ingest("partners", "list", "--json", env=no_aws)
    assert "demo" in {p["name"] for p in json.loads(listed.stdout)}
    event = tmp_path / "event.json"
    bucket = local_stack.resources["bucket"]
    event.write_text(json.dumps(s3_object_created_event(bucket, "no-aws/x.bin", size=1, etag="e")))
    out = local_stack.ingest("invoke", "FanoutFunction", "-e", str(event), env=no_aws)
    assert json.loads(out.stdout)["files"][0]["key"] == "no-aws/x.bin"
    status = local_stack.ingest("status", "--json", env=no_aws)
    assert "no-aws/x.bin" in {f["key"] for f in json.loads(status.stdout)}


@pytest.mark.slow
def test_restart_keeps_host_keys_and_partners_and_stops_cleanly(
    start_local_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = start_local_stack(state, "--demo-partner")
    fingerprints = first.endpoints["sftp"]["host_key_fingerprints"]
    assert first.stop() == 0
    assert not (state / "endpoints.json").exists()  # a stopped stack is not advertised

    second = start_local_stack(state)  # no --demo-partner: restored from partners.json
    assert second.endpoints["sftp"]["host_key_fingerprints"] == fingerprints
    data = orders_csv(tmp_path / "after-restart.csv", 7)
    second.sftp_batch(["-mkdir orders", f"put {data} orders/after-restart.csv"])
    status = second.wait_for_file("inbound/demo/orders/after-restart.csv")
    assert (status["status"], status["rows_ok"]) == ("PROCESSED", 7)
    # moto's data is in memory: the first run's files are gone
    assert [f["key"] for f in second.status()] == ["inbound/demo/orders/after-restart.csv"]
    assert second.stop(sig=signal.SIGINT) == 0  # Ctrl-C
    log = (state / "ingest-up.log").read_text()
    assert "Traceback" not in log, log


@pytest.mark.slow
def test_ingest_demo_prints_every_outcome_and_exits_0(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", "demo", "--state-dir", str(tmp_path / "demo")],
        cwd=REPO,
        check=False,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[2:]}
    expected = {
        "inbound/demo/README-partner.txt": "UNMATCHED",
        "inbound/demo/orders/orders-2026-11-01.csv": "PROCESSED",
        "inbound/demo/orders/orders-2026-11-02-with-rejects.csv": "PROCESSED_WITH_REJECTS",
        "inbound/demo/orders/orders-2026-11-04-truncated.csv.gz": "FAILED",
    }
    assert {k: rows.get(k) for k in expected} == expected
    assert len(rows) == sum(1 for p in (REPO / "fixtures" / "files").rglob("*") if p.is_file())


def test_a_second_stack_on_the_same_state_dir_is_refused(local_stack: RunningStack) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", "up", "--state-dir", str(local_stack.state_dir)],
        cwd=REPO,
        check=False,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "already running" in proc.stderr
    # the running stack keeps its endpoints.json and keeps serving
    assert (local_stack.state_dir / "endpoints.json").exists()
    assert local_stack.ingest("partners", "list").returncode == 0


def test_a_bad_feeds_file_stops_ingest_up_before_it_starts(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - name: orders\n    format: csv\n")  # no match, no fields
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", "up", "--state-dir", str(tmp_path / "s"),
         "--feeds", str(feeds)],
        cwd=REPO,
        check=False,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert str(feeds) in proc.stderr
    assert "orders" in proc.stderr
    assert not (tmp_path / "s" / "endpoints.json").exists()


def test_a_corrected_file_replaces_the_first_and_status_shows_what_it_replaced(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    key = "inbound/demo/orders/e2e-replaced.csv"
    s3 = local_stack.client("s3")

    def etag() -> str:
        return str(s3.head_object(Bucket=local_stack.resources["bucket"], Key=key)["ETag"])

    (tmp_path / "first").mkdir()
    (tmp_path / "corrected").mkdir()
    first = orders_csv(tmp_path / "first" / "e2e-replaced.csv", 30)
    local_stack.sftp_batch(["-mkdir orders", f"put {first} orders/e2e-replaced.csv"])
    first_etag = etag().strip('"')
    assert local_stack.wait_for_file(key, etag=first_etag)["rows_ok"] == 30

    corrected = orders_csv(tmp_path / "corrected" / "e2e-replaced.csv", 20)
    corrected.write_text(corrected.read_text().replace(".25,", ".50,"))
    local_stack.sftp_batch([f"put {corrected} orders/e2e-replaced.csv"])
    second_etag = etag().strip('"')
    status = local_stack.wait_for_file(key, etag=second_etag)
    assert (status["status"], status["rows_ok"], status["etag"]) == ("PROCESSED", 20, second_etag)
    (replaced,) = status["superseded"]
    assert replaced["version"] == first_etag and replaced["superseded_by"] == second_etag
    assert (replaced["status"], replaced["rows_ok"]) == ("PROCESSED", 30)

    table = local_stack.ingest("status", "--prefix", key).stdout
    assert "replaced by a newer version" in table
    assert first_etag in table
    amounts = {
        i["pk"]["S"]: Decimal(i["amount"]["N"])  # type: ignore[index]
        for i in records_of(local_stack, key)
    }
    # the corrected rows everywhere; the rows only the first version had are left as they
    # were (docs/architecture.md says why, and what to do about them)
    assert {n: amounts[f"ORDER#E2E-e2e-replaced-{n}"] for n in range(30)} == {
        n: Decimal(f"{n}.50") if n < 20 else Decimal(f"{n}.25") for n in range(30)
    }


def test_status_filters_and_table_agree_and_rejects_show_each_row(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    key = "inbound/demo/orders/e2e-filtered.csv"
    mixed = orders_csv(tmp_path / "e2e-filtered.csv", 10, bad=2)
    local_stack.sftp_batch(["-mkdir orders", f"put {mixed} orders/e2e-filtered.csv"])
    assert local_stack.wait_for_file(key)["status"] == "PROCESSED_WITH_REJECTS"

    every = local_stack.status()
    times = [f["received_at"] or f["updated_at"] for f in every]
    assert times == sorted(times, reverse=True)  # newest first
    table = local_stack.ingest("status").stdout.splitlines()
    for f in every:  # each file's row in the table shows its partner, status and counts
        row = next(line.split() for line in table if f["key"] in line.split())
        shown = [f["partner"], f["feed"], f["key"], f["status"], f["rows_ok"], f["rows_rejected"]]
        expected = [str(cell) for cell in shown if cell is not None]  # blank cells: no word
        assert row[: len(expected)] == expected
        assert row[len(expected)] == f"{f['chunks_done']}/{f['chunks']}"

    mine = json.loads(
        local_stack.ingest(
            "status",
            "--json",
            "--partner",
            "demo",
            "--feed",
            "orders",
            "--since",
            "1h",
            "--status",
            "PROCESSED_WITH_REJECTS",
            "--status",
            "FAILED",
        ).stdout
    )
    assert key in {f["key"] for f in mine}
    assert {(f["partner"], f["feed"]) for f in mine} == {("demo", "orders")}
    assert {f["status"] for f in mine} <= {"PROCESSED_WITH_REJECTS", "FAILED"}
    assert json.loads(local_stack.ingest("status", "--json", "--partner", "nobody").stdout) == []
    refused = local_stack.ingest("status", "--since", "yesterday", check=False)
    assert refused.returncode == 2 and "not a duration" in refused.stderr

    rejects = json.loads(local_stack.ingest("rejects", key, "--json").stdout)
    assert [(r["line"], r["raw"].split(",")[1]) for r in rejects["rejects"]] == [
        (12, "not-a-number"),
        (13, "not-a-number"),
    ]
    assert all("amount" in r["reason"] for r in rejects["rejects"])
    assert rejects["truncated"] is False and len(rejects["files"]) == 1
    one = json.loads(local_stack.ingest("rejects", key, "--json", "--limit", "1").stdout)
    assert len(one["rejects"]) == 1 and one["truncated"] is True
    shown = local_stack.ingest("rejects", key).stdout
    assert "E2E-e2e-filtered-bad-0" in shown and "LINE" in shown

    story = json.loads(local_stack.ingest("status", key, "--json").stdout)
    assert (story["key"], story["status"], story["partner"]) == (
        key,
        "PROCESSED_WITH_REJECTS",
        "demo",
    )
    assert story["chunk_states"] == [{"index": 0, "state": "done"}]
    assert story["reject_files"] == rejects["files"]
    assert [(r["line"], "amount" in r["reason"]) for r in story["first_rejects"]] == [
        (12, True),
        (13, True),
    ]
    assert (story["rejects_truncated"], story["dead_letters"], story["superseded"]) == (
        False,
        [],
        [],
    )
    told = local_stack.ingest("status", key).stdout
    assert "chunks:" in told and "done" in told and "no messages" in told
    unknown = local_stack.ingest("status", "inbound/demo/nothing.csv", check=False)
    assert unknown.returncode == 2 and "no entry" in unknown.stderr
    assert json.loads(local_stack.ingest("dlq", "list", "--json").stdout) == []
    assert "empty" in local_stack.ingest("dlq", "list").stdout
