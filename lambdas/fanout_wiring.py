"""The fanout's cold start (FanoutFunction, UploadEventsFunction, WaitSweepFunction): its
settings, clients and ports, the admission gates (checksum sidecars, duplicates) and the
envelope steps, which are built when the first envelope of their kind arrives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ingest.adapters.ledger_digests import DigestIndex
from ingest.adapters.ledger_envelopes import EnvelopeLedger
from ingest.adapters.ledger_sidecars import SidecarNotes
from ingest.adapters.multipart import STREAMING_S3_CONFIG
from ingest.adapters.pgp_keys import PgpKeys
from ingest.adapters.s3_digest import S3Digests
from ingest.adapters.sqs import SqsQueue
from ingest.domain.envelopes import EnvelopeKind
from ingest.settings import FanoutSettings
from ingest.usecases.duplicates import DuplicatePorts, check_duplicate
from ingest.usecases.envelopes import EnvelopePorts, open_envelope
from ingest.usecases.fanout import FanoutPorts, held_by_role
from ingest.usecases.sidecars import SidecarPorts
from lambdas.runtime import Wired, aws_target, store_feeds_ledger

if TYPE_CHECKING:
    from ingest.domain.envelopes import EnvelopeSource
    from ingest.domain.feed_types import Feed
    from ingest.usecases.ports import EnvelopeStep


class BuiltOnFirstUse:
    """An envelope step built when the first envelope of its kind arrives.

    The steps stream through asyncio (multipart uploads, a zip's members, the PGP plaintext),
    so building them at cold start would load asyncio and both steps' modules for every
    function, though most files are no envelope (docs/benchmarks.md, "Packages and cold
    imports"). Built once, then reused by every later invocation of the same instance.
    """

    def __init__(self, build: Callable[[], EnvelopeStep]) -> None:
        self._build = build
        self._step: EnvelopeStep | None = None

    def open(self, source: EnvelopeSource, feed: Feed | None) -> list[str]:
        if self._step is None:
            self._step = self._build()
        return self._step.open(source, feed)


def _zip_expander(s3: Any, secrets: Any) -> EnvelopeStep:
    from ingest.adapters.s3_zip import ZipExpander  # noqa: PLC0415  (BuiltOnFirstUse)
    from ingest.adapters.zip_passwords import ZipPasswords  # noqa: PLC0415

    return ZipExpander(s3, passwords=ZipPasswords(secrets))


def _pgp_decryptor(s3: Any, keys: PgpKeys) -> EnvelopeStep:
    from ingest.adapters.s3_pgp import PgpDecryptor  # noqa: PLC0415  (BuiltOnFirstUse)

    return PgpDecryptor(s3, keys)


def build_fanout(env: Mapping[str, str]) -> Wired[FanoutSettings, FanoutPorts]:
    """FanoutFunction's and UploadEventsFunction's settings and ports."""
    settings = FanoutSettings.from_env(env)
    store, feeds, ledger = store_feeds_ledger(settings.common)
    aws = aws_target(settings.common)
    holds = held_by_role(settings.transfer_role_id)
    streaming_s3 = aws.client("s3", config=STREAMING_S3_CONFIG)
    digests = S3Digests(streaming_s3, store)
    secrets = aws.client("secretsmanager")
    pgp_keys = PgpKeys(secrets, settings.transfer_server_id)
    envelopes = EnvelopePorts(
        feeds=feeds,
        store=store,
        ledger=ledger,
        records=EnvelopeLedger(ledger),
        steps={
            EnvelopeKind.ZIP: BuiltOnFirstUse(lambda: _zip_expander(streaming_s3, secrets)),
            EnvelopeKind.PGP: BuiltOnFirstUse(lambda: _pgp_decryptor(streaming_s3, pgp_keys)),
        },
        holds_upload=holds,
    )
    ports = FanoutPorts(
        feeds=feeds,
        store=store,
        queue=SqsQueue(aws.client("sqs"), settings.queue_url),
        ledger=ledger,
        default_chunk_size=settings.chunk_size,
        holds_upload=holds,
        envelopes=functools.partial(open_envelope, ports=envelopes),
        # admission gates: checksum sidecars and done markers (wait_for), then content
        # duplicates (duplicates)
        sidecars=SidecarPorts(SidecarNotes(ledger), digests),
        content_gate=functools.partial(
            check_duplicate, ports=DuplicatePorts(DigestIndex(ledger), digests, ledger)
        ),
    )
    return Wired(settings, ports)
