"""Run the gateway alone in its own process (used by the memory test and bench/gateway.py).

``python -m ingest_local.gateway --endpoint-url URL --bucket B --server-id S --state-dir DIR``
prints one JSON line ``{"port": N, "host_key_fingerprints": [...],
"pid": P}`` once it listens, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from ingest.adapters.aws import DEFAULT_REGION, AwsTarget
from ingest_local.gateway import GatewayConfig, Limits, start_gateway


async def _serve(args: argparse.Namespace) -> None:
    gateway = await start_gateway(
        GatewayConfig(
            aws=AwsTarget(region=args.region, endpoint_url=args.endpoint_url),
            bucket=args.bucket,
            server_id=args.server_id,
            state_dir=args.state_dir,
            host=args.host,
            port=args.port,
            limits=Limits(parts_in_flight=args.parts_in_flight),
        )
    )
    print(
        json.dumps(
            {
                "port": gateway.port,
                "host_key_fingerprints": gateway.host_key_fingerprints,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.close()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until signalled."""
    parser = argparse.ArgumentParser(prog="python -m ingest_local.gateway")
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--server-id", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--parts-in-flight",
        type=int,
        default=Limits.parts_in_flight,
        help="S3 UploadPart calls in flight per upload (memory: about (N + 2) x 8 MiB)",
    )
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
