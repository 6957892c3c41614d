"""PGP files in S3: decrypted with pysequoia through ``/tmp``, the plaintext written next to
the encrypted file in one multipart upload, or nothing.

:class:`PgpDecryptor` is the ``EnvelopeStep`` of ``.pgp`` / ``.gpg`` / ``.asc``. pysequoia
takes a message either as whole ``bytes`` or as a file path (``decrypt_file``); it reads no
Python stream. So the step spools: the encrypted version is streamed to ``/tmp`` (ranged GETs
pinned to the version), decrypted to a second file there, and the plaintext file is uploaded
in :data:`PART_SIZE` parts, at most :data:`PARTS_IN_FLIGHT` at a time. Sequoia is told not
to mmap the message (:data:`SEQUOIA_NO_MMAP`: a mapped message became resident as it was read,
so RSS grew with it); what is left is about 200 MiB of Sequoia's own buffers whatever the
message's size (pysequoia 0.1.35 sets no ``buffer_size``; docs/benchmarks.md): bounded, but
not the 128 MiB issue 12 asks for. :data:`MAX_ENCRYPTED_BYTES` bounds ``/tmp``, which holds the
message and its plaintext at once: a larger encrypted file is refused before it is read, and
one whose plaintext does not fit what is left of ``/tmp`` is refused when the disk fills.
Both files are deleted whatever happens. The plaintext is made visible only after Sequoia has
checked the whole message (its integrity tag and, when the partner's public key is configured,
its signature): a wrong key, a corrupt or truncated message or a bad signature leaves nothing
written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.multipart import S3_MIN_PART_SIZE, MultipartUpload
from ingest.adapters.pgp_keys import PgpKey, PgpKeys
from ingest.adapters.s3_range_file import S3RangeFile
from ingest.adapters.sdk import unavailable
from ingest.domain.envelopes import EnvelopeSource
from ingest.domain.feed_types import Feed
from ingest.domain.pgp import plaintext_key, recipient_key_ids
from ingest.errors import ConfigError, DecryptionRefusedError
from ingest.shared.aio import Bridge

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
PARTS_IN_FLIGHT = 4
#: The largest encrypted file decrypted: it and its plaintext are in /tmp together, and
#: Lambda's /tmp is 512 MB by default.
MAX_ENCRYPTED_BYTES = 200 * MIB
#: How much of a message is read for the key ids it is encrypted to (its PKESK packets).
HEAD_BYTES = 64 * 1024
#: Set, Sequoia reads files with read() rather than mapping them (sequoia's buffered-reader).
SEQUOIA_NO_MMAP = "SEQUOIA_DONT_MMAP"


class PgpDecryptor:
    """The PGP envelope step: decrypt a file next to itself, without its suffix."""

    def __init__(
        self,
        s3: S3Client,
        keys: PgpKeys,
        *,
        max_bytes: int = MAX_ENCRYPTED_BYTES,
        tmp_dir: str | None = None,
    ) -> None:
        self._s3 = s3
        self._keys = keys
        self.max_bytes = max_bytes
        self._tmp_dir = tmp_dir

    def open(self, source: EnvelopeSource, feed: Feed | None) -> list[str]:
        """Decrypt ``source`` to its key without the suffix; [that key].

        Raises :class:`DecryptionRefusedError` (nothing written) when the file cannot be
        decrypted; S3 and Secrets Manager failures are retryable and leave nothing either.
        """
        target = plaintext_key(source.key)
        if source.size > self.max_bytes:
            raise self._refused(
                source,
                f"{source.size} bytes is more than the {self.max_bytes} bytes decrypted at once "
                "(the message and its plaintext are spooled through /tmp)",
                rule="too_large",
            )
        partner = source.key.split("/")[1]
        with tempfile.TemporaryDirectory(prefix="pgp-", dir=self._tmp_dir) as tmp:
            message, plain = Path(tmp) / "message", Path(tmp) / "plaintext"
            self._download(source, message)
            with message.open("rb") as f:
                recipients = recipient_key_ids(f.read(HEAD_BYTES))
            key = self._key(source, partner, recipients)
            self._decrypt(source, key, message, plain, recipients)
            message.unlink()
            size = plain.stat().st_size
            try:
                asyncio.run(_upload(self._s3, source.bucket, target, plain))
            except (ClientError, BotoCoreError) as exc:
                where = f"s3://{source.bucket}/{target}"
                raise unavailable(exc, "s3", "multipart upload", where) from exc
        log.info(
            "decrypted file",
            extra={"key": source.key, "plaintext": target, "bytes": size, "secret": key.secret},
        )
        return [target]

    def _key(self, source: EnvelopeSource, partner: str, recipients: list[str]) -> PgpKey:
        tried = self._keys.candidates(partner)
        to = f"; the message is encrypted to key id(s) {_ids(recipients)}"
        if not tried:
            raise self._refused(
                source,
                f"no Transfer server id is configured (TRANSFER_SERVER_ID){to}",
                rule="no_key",
            )
        try:
            key = self._keys.key_for(partner)
        except ConfigError as exc:
            raise self._refused(source, f"{exc}{to}", rule="bad_secret") from exc
        if key is None:
            raise self._refused(
                source,
                f"no PGP key: neither secret {' nor '.join(tried)} exists{to}",
                rule="no_key",
            )
        return key

    def _download(self, source: EnvelopeSource, path: Path) -> None:
        raw = S3RangeFile(self._s3, source)
        try:
            with path.open("wb") as out:
                while block := raw.read(PART_SIZE):
                    out.write(block)
        finally:
            raw.close()

    def _decrypt(
        self,
        source: EnvelopeSource,
        key: PgpKey,
        message: Path,
        plain: Path,
        recipients: list[str],
    ) -> None:
        # Imported here: only the functions that open a PGP file load Sequoia (9 MB native).
        try:
            import pysequoia  # noqa: PLC0415
        except ImportError as exc:  # a package built without it (lambdas/requirements-core.txt)
            raise self._refused(
                source, "pysequoia is not installed in this function's package", rule="no_library"
            ) from exc

        to = _ids(recipients)
        try:
            tsk = pysequoia.Tsk.from_bytes(key.private_key.encode())
            decryptor = tsk.decryptor(key.passphrase)
        except Exception as exc:  # pysequoia raises plain exceptions with Sequoia's message
            raise self._refused(
                source,
                f"the key in secret {key.secret} cannot be used ({_first_line(exc)}); "
                f"the message is encrypted to key id(s) {to}",
                rule="bad_key",
            ) from exc
        store: Any = None
        if key.public_key is not None:
            try:
                partner_cert = pysequoia.Cert.from_bytes(key.public_key.encode())
            except Exception as exc:
                raise self._refused(
                    source,
                    f"the PGPPublicKey in secret {key.secret} cannot be read ({_first_line(exc)})",
                    rule="bad_key",
                ) from exc
            store = lambda _ids: [partner_cert]  # noqa: E731  (pysequoia's callback shape)
        # Sequoia's file reader (buffered-reader's File::with_cookie) mmaps any input of 64 KiB
        # or more, and a mapped message becomes resident as it is read: RSS grew with the
        # message. This variable, read at each open, makes it read() instead (docs/benchmarks.md,
        # "PGP decryption"): peak RSS no longer depends on the message's size.
        os.environ[SEQUOIA_NO_MMAP] = "1"
        try:
            pysequoia.decrypt_file(str(message), str(plain), decryptor, store=store)
        except OSError as exc:  # /tmp is full: the plaintext is larger than what is left
            raise self._refused(
                source, f"the plaintext does not fit in /tmp ({exc})", rule="too_large"
            ) from exc
        except Exception as exc:
            reason = _first_line(exc)
            rule = "signature" if "ignature" in reason else "decrypt"
            what = (
                f"the signature does not verify against the PGPPublicKey in secret {key.secret}"
                if rule == "signature"
                else f"cannot be decrypted with the key in secret {key.secret} "
                f"(fingerprint {tsk.extract_certificate().fingerprint.upper()})"
            )
            raise self._refused(
                source, f"{what}: {reason}; the message is encrypted to key id(s) {to}", rule=rule
            ) from exc

    @staticmethod
    def _refused(source: EnvelopeSource, message: str, *, rule: str) -> DecryptionRefusedError:
        return DecryptionRefusedError(message, key=source.key, rule=rule)


def _ids(recipients: list[str]) -> str:
    return ", ".join(recipients) if recipients else "(none it declares)"


def _first_line(exc: BaseException) -> str:
    """Sequoia's message without the Rust backtrace pysequoia appends."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


async def _upload(s3: S3Client, bucket: str, key: str, path: Path) -> None:
    """``path`` to ``s3://bucket/key``: one PutObject when small, else parts; all or nothing."""
    bridge = Bridge(PARTS_IN_FLIGHT + 1, name="pgp")
    upload = MultipartUpload(s3, bucket, key, bridge=bridge)
    try:
        size = os.path.getsize(path)
        with path.open("rb") as f:
            if size < S3_MIN_PART_SIZE:
                await upload.put_object(f.read())
                return
            await upload.start()
            slots = asyncio.Semaphore(PARTS_IN_FLIGHT)
            tasks: list[asyncio.Task[None]] = []
            number = 0
            try:
                while block := await bridge.run(f.read, PART_SIZE):
                    number += 1
                    await slots.acquire()
                    tasks.append(asyncio.create_task(_part(upload, number, block, slots)))
                await asyncio.gather(*tasks)
                await upload.complete()
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await upload.abort()
                raise
    finally:
        bridge.close(wait=False)


async def _part(
    upload: MultipartUpload, number: int, block: bytes, slots: asyncio.Semaphore
) -> None:
    try:
        await upload.upload_part(number, block)
    finally:
        slots.release()
