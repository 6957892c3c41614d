"""Exponential backoff with full jitter, for retries that botocore's own retry mode does not
cover (BatchWriteItem's UnprocessedItems, SQS batch entries that failed)."""

from __future__ import annotations

import random

from msgspec import Struct


class Backoff(Struct, frozen=True):
    """``attempts`` tries in all; before retry ``n`` (1-based) wait up to ``base * 2**n``."""

    attempts: int = 8
    base: float = 0.05
    cap: float = 5.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (full jitter, as AWS recommends)."""
        return random.uniform(0, min(self.cap, self.base * 2**retry))
