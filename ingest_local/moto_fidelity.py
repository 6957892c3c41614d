"""Small fidelity fixes to an in-process moto, applied by the local stack.

* S3 notifications: moto's event records lack ``versionId``, ``sequencer``, ``userIdentity``
  and the request fields, and they URL-encode ``/`` in keys, which S3 does not. The fanout
  relies on the version id (a chunk names the version it belongs to), so the local stack adds
  what S3 would send.
* DynamoDB requests: moto reads the item, evaluates a condition and stores the new item
  without a lock, so two threads can both pass ``attribute_not_exists(pk)`` for the same key;
  and a ``Scan`` or a transaction's deep copy iterates a table's items while another thread
  adds some (``RuntimeError: dictionary changed size during iteration``, a 500 to the
  client: moto's ``Table.items`` is a ``defaultdict``, so even a ``GetItem`` of a missing key
  adds an entry). Real DynamoDB never does either, and the exactly-once claims, the chunk
  markers and ``ingest status`` during processing rely on it: every DynamoDB request, reads
  included, runs whole (parsed, executed and its answer serialized) under one lock.
* CloudFormation mappings: in CloudFormation a ``Ref`` to a ``Number`` parameter is a string,
  so ``!FindInMap [Map, !Ref Timeout, Key]`` looks up the key ``"900"``. moto keeps such a
  parameter an ``int`` and misses the key; the lookup is made with the key as a string.
* Transfer users: moto has no ``UpdateUser``, which ``ingest partners repair`` calls; it is
  added, setting the fields the request names and keeping the others (keys, tags), as AWS's.

This only affects a moto running in this process (``ThreadedMotoServer`` or ``mock_aws``).
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote_plus

from moto.cloudformation import parsing
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler
from moto.s3 import notifications
from moto.transfer.responses import TransferResponse

_MARKER = "_ingest_enriched"


def enrich_s3_event_records() -> None:
    """Wrap moto's S3 event builder so records carry what S3 sends (idempotent)."""
    original = notifications._get_s3_event
    if getattr(original, _MARKER, False):
        return

    @functools.wraps(original)
    def build(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event: dict[str, Any] = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            if getattr(bucket, "is_versioned", False) and key.version_id:
                obj["versionId"] = key.version_id
            obj["sequencer"] = f"{time.time_ns():016X}"
            record.setdefault("userIdentity", {"principalId": "AWS:AIDAEXAMPLE"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements",
                {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes).decode(),
                },
            )
            record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "A3NL1KOZZKExample"})
        return event

    setattr(build, _MARKER, True)
    notifications._get_s3_event = build


_DYNAMODB_LOCK = threading.RLock()


def serialize_dynamodb_requests() -> None:
    """Make every moto DynamoDB request atomic, reads and writes alike, as DynamoDB's are
    (idempotent). The request handler is wrapped, so the answer is serialized under the lock
    too; the backend's writes as well, for code that calls moto's backend directly."""
    original = DynamoHandler.call_action
    if not getattr(original, _MARKER, False):

        def call_action(self: Any) -> Any:
            with _DYNAMODB_LOCK:
                return original(self)

        functools.update_wrapper(call_action, original)
        setattr(call_action, _MARKER, True)
        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        backend_call = getattr(DynamoDBBackend, name)
        if getattr(backend_call, _MARKER, False):
            continue

        def locked(self: Any, *args: Any, _original: Any = backend_call, **kwargs: Any) -> Any:
            with _DYNAMODB_LOCK:
                return _original(self, *args, **kwargs)

        functools.update_wrapper(locked, backend_call)
        setattr(locked, _MARKER, True)
        setattr(DynamoDBBackend, name, locked)


def find_in_map_with_string_keys() -> None:
    """Make moto's ``Fn::FindInMap`` look keys up as CloudFormation does (idempotent)."""
    original = parsing.clean_json
    if getattr(original, _MARKER, False):
        return

    @functools.wraps(original)
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::FindInMap" in resource_json:
            name, *path = resource_json["Fn::FindInMap"]
            found = resources_map[name]
            for part in path:
                key = clean_json(part, resources_map)
                if isinstance(key, int | float) and not isinstance(key, bool):
                    key = str(key)
                found = found[key]
            return found
        return original(resource_json, resources_map)

    setattr(clean_json, _MARKER, True)
    parsing.clean_json = clean_json  # parsing's own recursive calls find it by this name


def transfer_update_user() -> None:
    """Give moto's Transfer API ``UpdateUser`` (idempotent). As AWS's, it replaces the
    fields the request names (home directory and its type and mappings, policy, role) and
    leaves the rest of the user (its SSH keys, tags) as it was."""
    if getattr(TransferResponse, "update_user", None) is not None:
        return

    def update_user(self: Any) -> str:
        params = json.loads(self.body)
        server_id, user = self.transfer_backend.describe_user(
            server_id=params.get("ServerId"), user_name=params.get("UserName")
        )
        fields = {
            "HomeDirectory": "home_directory",
            "HomeDirectoryType": "home_directory_type",
            "Policy": "policy",
            "Role": "role",
        }
        for param, attribute in fields.items():
            if param in params:
                setattr(user, attribute, params[param])
        if "HomeDirectoryMappings" in params:
            user.home_directory_mappings = [
                {"entry": m.get("Entry"), "target": m.get("Target"), "type": m.get("Type")}
                for m in params["HomeDirectoryMappings"]
            ]
        return json.dumps({"ServerId": server_id, "UserName": user.user_name})

    TransferResponse.update_user = update_user  # type: ignore[attr-defined]
