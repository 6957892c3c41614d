"""StreamingUpload's bookkeeping of out-of-order writes, with a stand-in S3 client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ingest.shared.aio import Bridge
from ingest_local.gateway.streaming import StreamingUpload, UploadError

MIB = 1024 * 1024


class RecordingS3:
    """Just enough of an S3 client for a file smaller than one part (one PutObject)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = bytes(Body)
        return {"ETag": '"etag"'}


def run(scenario: Any) -> Any:
    async def main() -> Any:
        bridge = Bridge()
        try:
            return await scenario(bridge)
        finally:
            bridge.close()

    return asyncio.run(main())


def test_rewriting_a_parked_offset_replaces_it_instead_of_counting_twice() -> None:
    s3 = RecordingS3()

    async def scenario(bridge: Bridge) -> int:
        upload = StreamingUpload(s3, "b", "k", bridge=bridge)  # type: ignore[arg-type]
        for n in range(9):  # the same parked 1 MiB block, nine times (a client retrying)
            await upload.write(MIB, bytes([n]) * MIB)
        assert upload.bytes_received == MIB
        await upload.write(0, b"a" * MIB)  # the gap fills: the parked block follows it
        result = await upload.complete()
        return result.size

    assert run(scenario) == 2 * MIB
    assert s3.objects["k"] == b"a" * MIB + bytes([8]) * MIB


def test_parked_writes_beyond_the_window_are_still_refused() -> None:
    async def scenario(bridge: Bridge) -> str:
        upload = StreamingUpload(RecordingS3(), "b", "k", bridge=bridge)  # type: ignore[arg-type]
        for n in range(8):  # eight 1 MiB blocks at different offsets fill the 8 MiB window
            await upload.write(MIB + n, b"x" * MIB)
        with pytest.raises(UploadError) as info:
            await upload.write(MIB + 8, b"x" * MIB)
        return str(info.value)

    assert "non-sequential write" in run(scenario)
