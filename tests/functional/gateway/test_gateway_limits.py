"""Per-session and gateway-wide resource limits: open handles, SFTP channels, buffer memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from gateway_kit import (
    AwsWorld,
    GatewayThread,
    PartnerKeys,
    asyncssh_connect,
    log_entries,
    paramiko_sftp,
)

from ingest.shared.polling import poll_until_async
from ingest_local.gateway import Limits

MIB = 1024 * 1024
PART = 8 * MIB


def keys(world: AwsWorld, prefix: str) -> list[str]:
    listed = world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_open_handles_past_the_cap_are_refused_and_idle_ones_hold_no_memory(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
) -> None:
    gw = start_gw(Limits(max_handles_per_session=5))
    budget = gw.gateway.services.buffers
    client = paramiko_sftp(gw, make_partner("acme"))
    try:
        handles = [client.open(f"f{i}.csv", "wb") for i in range(5)]
        assert budget.charged == 0, "an open handle that wrote nothing holds no buffer"
        with pytest.raises(OSError, match="too many open files"):
            client.open("f5.csv", "wb")
        with pytest.raises(OSError, match="too many open files"):
            client.open("f0.csv", "rb")  # reads count too
        for i, fh in enumerate(handles):
            fh.write(f"row {i}\n".encode())
            fh.flush()
        assert budget.charged == 5 * PART  # one part buffer per handle that wrote
        for fh in handles:
            fh.close()
        assert budget.in_use == 0
        with client.open("again.csv", "wb") as fh:  # closing freed the handle slots
            fh.write(b"x\n")
    finally:
        client.close()
    assert keys(world, "inbound/acme/") == [
        "inbound/acme/again.csv",
        *(f"inbound/acme/f{i}.csv" for i in range(5)),
    ]
    gw.flush()
    errors = [e for e in log_entries(world) if e["activity-type"] == "ERROR"]
    assert [e["path"] for e in errors] == [
        f"/{world.bucket}/inbound/acme/{n}" for n in ["f5.csv", "f0.csv"]
    ]


def test_a_write_beyond_the_memory_budget_waits_for_memory(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(buffer_budget_bytes=2 * PART, buffer_wait_seconds=120))
    budget = gw.gateway.services.buffers
    partner = make_partner("acme")

    async def scenario() -> None:
        async with (
            asyncssh_connect(gw, partner, tmp_path) as conn,
            conn.start_sftp_client() as first,
            conn.start_sftp_client() as second,
        ):
            a = await first.open("a.csv", "wb")
            b = await first.open("b.csv", "wb")
            await a.write(b"a\n")
            await b.write(b"b\n")  # the budget (two part buffers) is spent
            c = await second.open("c.csv", "wb")
            blocked = asyncio.ensure_future(c.write(b"c\n"))

            def parked() -> bool:
                if budget.waiting:
                    return True
                assert not blocked.done()
                return False

            await poll_until_async(
                parked, timeout=30, interval=0.02, what="the write to wait on the budget"
            )
            await a.close()  # gives its buffer back: the waiting write goes on
            await blocked
            await b.close()
            await c.close()

    asyncio.run(scenario())
    assert keys(world, "inbound/acme/") == [f"inbound/acme/{n}.csv" for n in "abc"]
    assert budget.in_use == 0
    assert budget.peak <= 2 * PART


def test_a_write_that_gets_no_memory_in_time_is_refused_and_lands_nothing(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(buffer_budget_bytes=PART, buffer_wait_seconds=0.1))
    partner = make_partner("acme")

    async def scenario() -> tuple[str, str]:
        async with (
            asyncssh_connect(gw, partner, tmp_path) as conn,
            conn.start_sftp_client() as sftp,
        ):
            held = await sftp.open("held.csv", "wb")
            await held.write(b"holds the only part buffer\n")
            starved = await sftp.open("starved.csv", "wb")
            with pytest.raises(asyncssh.SFTPFailure) as refused:
                await starved.write(b"x\n")
            with pytest.raises(asyncssh.SFTPFailure) as on_close:
                await starved.close()
            await held.close()
            return str(refused.value), str(on_close.value)

    refused, on_close = asyncio.run(scenario())
    assert "transfer memory" in refused
    assert "try again later" in refused
    assert "an earlier write was refused" in on_close
    assert keys(world, "inbound/acme/") == ["inbound/acme/held.csv"]
    assert gw.gateway.services.buffers.in_use == 0


def test_sftp_channels_past_the_cap_are_refused(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(max_channels_per_connection=2))
    partner = make_partner("acme")

    async def scenario() -> str:
        async with asyncssh_connect(gw, partner, tmp_path) as conn:
            one = await conn.start_sftp_client()
            two = await conn.start_sftp_client()
            with pytest.raises(asyncssh.ChannelOpenError) as refused:
                await conn.start_sftp_client()
            assert await two.listdir("/") == [".", "..", "receipts"]
            one.exit()
            await one.wait_closed()

            async def reopened() -> asyncssh.SFTPClient | None:
                try:
                    return await conn.start_sftp_client()
                except asyncssh.ChannelOpenError:
                    return None

            # the freed slot is usable once the server has seen the close
            three = await poll_until_async(
                reopened, timeout=30, interval=0.05, what="the freed SFTP channel slot"
            )
            assert await three.listdir("/") == [".", "..", "receipts"]
            return refused.value.reason

    reason = asyncio.run(scenario())
    assert reason == "too many SFTP sessions on this connection: the limit is 2"
    gw.flush()
    assert any(e.get("message") == reason for e in log_entries(world))


def test_memory_stays_bounded_with_many_writing_sessions(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    """Six channels upload at once with room for three part buffers: the gateway never
    charges more than its budget (the other writes wait their turn), and every file lands."""
    budget_bytes = 3 * PART
    gw = start_gw(Limits(buffer_budget_bytes=budget_bytes))
    partner = make_partner("acme")
    body = bytes(range(256)) * 4096  # 1 MiB

    async def channel(conn: asyncssh.SSHClientConnection, n: int) -> None:
        async with conn.start_sftp_client() as sftp:
            for i in range(3):
                fh = await sftp.open(f"c{n}-{i}.bin", "wb")
                await fh.write(body)
                await fh.close()

    async def scenario() -> None:
        async with asyncssh_connect(gw, partner, tmp_path) as conn:
            await asyncio.gather(*(channel(conn, n) for n in range(6)))

    asyncio.run(scenario())
    budget = gw.gateway.services.buffers
    assert budget.peak <= budget_bytes
    assert budget.in_use == 0
    assert len(keys(world, "inbound/acme/")) == 18
    got = world.client("s3").get_object(Bucket=world.bucket, Key="inbound/acme/c5-2.bin")
    assert got["Body"].read() == body
