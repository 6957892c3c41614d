"""One call of the records client ends well within the margin a chunk's lease keeps for it.

A chunk sends a request only while its lease has ``fencing.SEND_MARGIN`` seconds to run
(ingest/usecases/fencing.py), so that a newer version of the file never writes while an older
version's request can still land. That holds only while the records client's timeouts,
attempts and botocore's backoff between them add up to less than the margin.
"""

from __future__ import annotations

from botocore.retries.standard import ExponentialBackoff

from ingest.adapters.record_sink import RECORDS_CLIENT_CONFIG
from ingest.usecases import fencing


def worst_call_seconds() -> float:
    """Every attempt timing out on connect and on read, and the longest backoff between them
    (throttling's scale, with the most an ``x-amz-retry-after`` header can add)."""
    config = RECORDS_CLIENT_CONFIG
    attempts = config.retries["total_max_attempts"]
    scale = ExponentialBackoff._DEFAULT_BACKOFF_CONFIG["throttling_base_scale"]
    backoffs = sum(
        min(scale * ExponentialBackoff._BASE**i, ExponentialBackoff._MAX_BACKOFF)
        + ExponentialBackoff._RETRY_AFTER_MAX_ADDITIONAL
        for i in range(attempts - 1)
    )
    return float(attempts * (config.connect_timeout + config.read_timeout) + backoffs)


def test_one_records_call_ends_within_the_lease_margin():
    assert RECORDS_CLIENT_CONFIG.retries["mode"] == "standard"
    assert worst_call_seconds() < fencing.SEND_MARGIN * 0.9
    assert fencing.SEND_MARGIN < fencing.LEASE_TTL / 2  # room to renew before it matters
