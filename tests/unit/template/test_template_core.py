"""template.yaml: cfn-lint, queues, storage, the processor's sizing, least privilege, outputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from support_template import (
    DATA_SERVICES,
    NO_OUTPUT_TYPES,
    ROOT,
    TEMPLATE,
    _param_default,
    _referenced,
    _resources,
    _statements,
    resolve_conditions,
)


def test_cfn_lint_passes() -> None:
    exe = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    proc = subprocess.run([exe, str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_queue_visibility_is_six_processor_timeouts_for_every_allowed_timeout(
    raw: dict[str, Any],
) -> None:
    processor = raw["Resources"]["ProcessorFunction"]["Properties"]
    assert processor["Timeout"] == {"Ref": "ProcessorTimeoutSeconds"}
    queue = raw["Resources"]["IngestQueue"]["Properties"]
    # derived from the parameter, not a constant
    assert queue["VisibilityTimeout"] == {
        "Fn::FindInMap": ["QueueVisibility", {"Ref": "ProcessorTimeoutSeconds"}, "Seconds"]
    }
    allowed = raw["Parameters"]["ProcessorTimeoutSeconds"]["AllowedValues"]
    mapping = raw["Mappings"]["QueueVisibility"]
    assert sorted(mapping, key=int) == [str(t) for t in sorted(allowed)]
    for timeout in allowed:
        assert mapping[str(timeout)]["Seconds"] == 6 * timeout


def test_redrive_to_the_dlq_after_five_receives(raw: dict[str, Any]) -> None:
    redrive = raw["Resources"]["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert int(_param_default(raw, redrive["maxReceiveCount"])) == 5
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDLQ", "Arn"]}


def test_storage_is_encrypted_versioned_and_private(raw: dict[str, Any]) -> None:
    raw = resolve_conditions(raw, {})  # as deployed with the defaults
    bucket = raw["Resources"]["LandingBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = raw["Resources"]["LandingBucketPolicy"]["Properties"]["PolicyDocument"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        for s in policy["Statement"]
    )
    for name, queue in _resources(raw, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get(
            "KmsMasterKeyId"
        ), name
    for name in ("RecordsTable", "LedgerTable"):
        table = raw["Resources"][name]["Properties"]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["SSESpecification"]["SSEEnabled"] is True


def test_functions_are_traced_python311_and_built_by_the_makefile(raw: dict[str, Any]) -> None:
    glob = raw["Globals"]["Function"]
    assert glob["Tracing"] == "Active"
    assert glob["Runtime"] == "python3.13"
    assert "POWERTOOLS_METRICS_NAMESPACE" in glob["Environment"]["Variables"]
    makefile = (ROOT / "Makefile").read_text()
    for name, fn in _resources(raw, "AWS::Serverless::Function").items():
        assert fn.get("Metadata", {}).get("BuildMethod") == "makefile", name
        assert re.search(rf"^build-[\w -]*\bbuild-{name}\b|^build-{name}\b", makefile, re.M), name
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        assert "POWERTOOLS_SERVICE_NAME" in env, name


def test_processor_reports_batch_item_failures_with_bounded_concurrency(
    transformed: dict[str, Any],
) -> None:
    mappings = [
        m["Properties"]
        for m in _resources(transformed, "AWS::Lambda::EventSourceMapping").values()
        # the processor's alias (AutoPublishAlias: live), which CodeDeploy shifts
        if m["Properties"]["FunctionName"] == {"Ref": "ProcessorFunctionAliaslive"}
    ]
    assert len(mappings) == 1
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["ScalingConfig"]["MaximumConcurrency"]
    # one chunk an invocation: ten chunks of a large file in one invocation would run one
    # after another, and would not fit in its timeout
    assert mappings[0]["BatchSize"] == 1


def test_ledger_items_with_an_expiry_expire(raw: dict[str, Any]) -> None:
    """Chunk leases (ingest/adapters/leases.py) and transfer status records
    (connectors/status.py) carry ``expires_at``; the ledger's TTL deletes them."""
    ttl = raw["Resources"]["LedgerTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_the_processor_has_one_whole_vcpu_and_chunks_sized_for_it(raw: dict[str, Any]) -> None:
    from ingest.domain.chunks import DEFAULT_CHUNK_SIZE

    processor = raw["Resources"]["ProcessorFunction"]["Properties"]
    assert processor["MemorySize"] >= 1769  # Lambda's size for one full vCPU
    # the stack's default chunk size is the code's
    assert raw["Parameters"]["ChunkSizeMiB"]["Default"] * 1024 * 1024 == DEFAULT_CHUNK_SIZE


def test_no_wildcard_resource_on_data_actions(transformed: dict[str, Any]) -> None:
    checked = 0
    for role, statement in _statements(transformed):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        data = [a for a in actions if a.split(":")[0] in DATA_SERVICES]
        if not data:
            continue
        checked += 1
        resources = statement.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources, f"{role} grants {data} on every resource"
        assert all(not (isinstance(r, str) and r.endswith(":*")) for r in resources), role
    assert checked >= 4  # the policies were really found and inspected


def test_no_broad_managed_policies(transformed: dict[str, Any]) -> None:
    for name, role in _resources(transformed, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = str(arn)
            assert "FullAccess" not in text and "AdministratorAccess" not in text, (name, text)


def test_every_resource_has_an_output(raw: dict[str, Any]) -> None:
    outputs = _referenced(raw["Outputs"])
    missing = [
        name
        for name, resource in raw["Resources"].items()
        if resource["Type"] not in NO_OUTPUT_TYPES and name not in outputs
    ]
    assert not missing, f"resources without an Output: {missing}"


def test_samconfig_has_default_and_prod() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["deploy"]["parameters"]["capabilities"]
    assert config["prod"]["deploy"]["parameters"]["capabilities"]
    assert (
        config["prod"]["global"]["parameters"]["stack_name"]
        != config["default"]["global"]["parameters"]["stack_name"]
    )


def test_sqs_consumers_get_queue_scoped_permissions_not_the_managed_role(
    transformed: dict[str, Any],
) -> None:
    """SAM's SQS event attaches AWSLambdaSQSQueueExecutionRole (receive/delete on every
    queue); the processor's mapping is a plain resource with its own scoped statement."""
    for name, role in _resources(transformed, "AWS::IAM::Role").items():
        arns = [str(a) for a in role["Properties"].get("ManagedPolicyArns", [])]
        assert not any("SQSQueueExecutionRole" in a for a in arns), (name, arns)
    mappings = _resources(transformed, "AWS::Lambda::EventSourceMapping")
    chunks = mappings["ProcessorChunksMapping"]["Properties"]
    assert chunks["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert chunks["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    consume = [
        s
        for role, s in _statements(transformed)
        if role.startswith("ProcessorFunction") and s.get("Sid") == "ConsumeChunks"
    ]
    assert len(consume) == 1
    assert sorted(consume[0]["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert consume[0]["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}


def test_every_function_that_ingests_may_clear_the_rejects_of_a_replaced_version(
    transformed: dict[str, Any],
) -> None:
    """fanout's ingest deletes the reject files of the version a new one replaces; the
    upload-events function runs that ingest for every upload Transfer confirms."""
    for function in ("FanoutFunction", "UploadEventsFunction"):
        role = f"{function}Role"
        granted = [
            s
            for name, s in _statements(transformed)
            if name == role and "s3:DeleteObject" in _actions(s)
        ]
        resources = [json.dumps(s["Resource"]) for s in granted]
        assert any("/rejects/*" in r for r in resources), (function, resources)
        # and nothing wider: partners' files are never deleted by the pipeline
        assert all("/rejects/*" in r for r in resources), (function, resources)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)
