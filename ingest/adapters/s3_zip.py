"""Zip archives in S3: read with the stdlib ``zipfile`` through ranged GETs, members streamed
into S3 multipart uploads, all of them or none.

* :class:`~ingest.adapters.s3_range_file.S3RangeFile` is a seekable raw file over one object
  version (ranged ``GetObject`` with read-ahead): ``zipfile`` needs random access for the
  central directory at the end of the archive and each member's local header.
* :class:`ZipExpander` (the ``EnvelopeStep`` of ``.zip``) checks the whole central directory
  (:func:`ingest.domain.archives.plan_members`) before anything is written, then streams
  member by member: each member goes to its own multipart upload, in parts of
  :data:`PART_SIZE`, at most :data:`PARTS_IN_FLIGHT` at a time, while its real bytes are
  counted (:class:`~ingest.domain.archives.MemberMeter`). The uploads are completed only once
  every member has streamed within the limits; on any failure every upload begun is aborted,
  so no member appears (and none fires an S3 event). Local disk is never used; the buffers are
  three read windows, the inflater's input and output and ``PARTS_IN_FLIGHT + 1`` parts: about
  80 MiB.

Encrypted members are expanded when the feed names the password's secret
(``zip: {password_secret}``, read through :class:`~ingest.adapters.zip_passwords.ZipPasswords`
once per archive, only when a member is encrypted): the stdlib decrypts traditional PKWARE
encryption (ZipCrypto) while it streams, member by member as before. A wrong password refuses
the archive (nothing written); WinZip AES and PKWARE strong encryption are refused by the plan.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zipfile
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.multipart import MultipartUpload
from ingest.adapters.s3_range_file import S3RangeFile
from ingest.adapters.sdk import unavailable
from ingest.adapters.zip_passwords import ZipPasswords
from ingest.domain.archives import (
    ENCRYPTED_FLAG,
    STRONG_ENCRYPTION_FLAG,
    ArchiveMember,
    MemberMeter,
    PlannedMember,
    ZipLimits,
    plan_members,
)
from ingest.domain.envelopes import EnvelopeSource
from ingest.domain.feed_types import Feed
from ingest.errors import ArchiveRefusedError, ConfigError
from ingest.shared.aio import Bridge

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
PARTS_IN_FLIGHT = 4
#: completions (and aborts) sent at once when an archive's members are made visible
COMPLETIONS_IN_FLIGHT = 16


def _members(archive: zipfile.ZipFile) -> list[ArchiveMember]:
    return [
        ArchiveMember(
            name=info.filename,
            size=info.file_size,
            compressed_size=info.compress_size,
            method=info.compress_type,
            encrypted=bool(info.flag_bits & ENCRYPTED_FLAG),
            strong_encryption=bool(info.flag_bits & STRONG_ENCRYPTION_FLAG),
        )
        for info in archive.infolist()
    ]


class ZipExpander:
    """The ``.zip`` envelope step: expand an archive next to itself, every member or none."""

    def __init__(
        self,
        s3: S3Client,
        *,
        passwords: ZipPasswords | None = None,
        default_limits: ZipLimits | None = None,
    ) -> None:
        self._s3 = s3
        self._passwords = passwords
        self._default_limits = default_limits or ZipLimits()

    def limits(self, feed: Feed | None) -> ZipLimits:
        """The limits of an archive whose directory ``feed`` owns (the defaults without one)."""
        return feed.zip if feed is not None else self._default_limits

    def open(self, source: EnvelopeSource, feed: Feed | None) -> list[str]:
        """Write every member of the archive at ``source`` next to it; their keys, in order.

        Raises :class:`ArchiveRefusedError` (nothing written) for an archive that breaks a
        rule; S3 errors are translated (retryable) and leave nothing written either.
        """
        limits = self.limits(feed)
        raw = S3RangeFile(self._s3, source)
        # the raw file holds the read-ahead; the buffer serves zipfile's small header reads
        with io.BufferedReader(raw, buffer_size=64 * 1024) as stream:
            try:
                archive = zipfile.ZipFile(stream)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
                raise ArchiveRefusedError(
                    f"not a readable zip archive ({exc})", key=source.key, rule="corrupt"
                ) from exc
            with archive:
                planned = plan_members(source.key, _members(archive), limits)
                infos = [i for i in archive.infolist() if not i.filename.endswith("/")]
                password = (
                    self._password(source, limits)
                    if any(p.member.encrypted for p in planned)
                    else None
                )
                expansion = _Expansion(
                    self._s3, archive, source, MemberMeter(source.key, limits), password
                )
                try:
                    asyncio.run(expansion.run(list(zip(planned, infos, strict=True))))
                except (ClientError, BotoCoreError) as exc:  # from the uploads (nothing shown)
                    where = f"s3://{source.bucket}/{source.key}"
                    raise unavailable(exc, "s3", "multipart upload", where) from exc
        log.info(
            "expanded archive",
            extra={"key": source.key, "members": len(planned), "bytes": expansion.meter.total},
        )
        return [p.key for p in planned]

    def _password(self, source: EnvelopeSource, limits: ZipLimits) -> _Password:
        """The password of an archive with encrypted members (plan_members saw it configured);
        refused when it cannot be had."""
        secret = limits.password_secret_for(source.key.split("/")[1]) or ""

        def refuse(why: str) -> ArchiveRefusedError:
            return ArchiveRefusedError(
                f"its members are encrypted and {why}", key=source.key, rule="password"
            )

        if self._passwords is None:
            raise refuse("this function reads no zip passwords (no Secrets Manager client)")
        try:
            password = self._passwords.password(secret, limits.password_key)
        except ConfigError as exc:
            raise refuse(f"the password cannot be read: {exc}") from exc
        if password is None:
            raise refuse(f"the password's secret {secret} does not exist")
        return _Password(secret, password)


class _Password(NamedTuple):
    """An archive's password and the secret it came from (named in refusals)."""

    secret: str
    value: bytes


class _Expansion:
    """One archive being expanded: its members' uploads and the parts in flight."""

    def __init__(
        self,
        s3: S3Client,
        archive: zipfile.ZipFile,
        source: EnvelopeSource,
        meter: MemberMeter,
        password: _Password | None,
    ) -> None:
        self._s3 = s3
        self._archive = archive
        self._source = source
        self.meter = meter
        self._password = password
        self._bridge = Bridge(PARTS_IN_FLIGHT + 1, name="zip")
        self._uploads: list[MultipartUpload] = []
        self._parts: set[asyncio.Task[None]] = set()

    async def run(self, members: list[tuple[PlannedMember, zipfile.ZipInfo]]) -> None:
        """Stream every member, then complete every upload; on any failure abort them all."""
        slots = asyncio.Semaphore(PARTS_IN_FLIGHT)
        try:
            for planned, info in members:
                upload = MultipartUpload(
                    self._s3, self._source.bucket, planned.key, bridge=self._bridge
                )
                self._uploads.append(upload)
                await self._stream(planned, info, upload, slots)
            while self._parts:
                await self._parts.pop()
            await _all(self._uploads, _finish)
        except BaseException:
            for task in self._parts:
                task.cancel()
            await asyncio.gather(*self._parts, return_exceptions=True)
            await _all(self._uploads, _abort)
            raise
        finally:
            self._bridge.close(wait=False)

    async def _stream(
        self,
        planned: PlannedMember,
        info: zipfile.ZipInfo,
        upload: MultipartUpload,
        slots: asyncio.Semaphore,
    ) -> None:
        """One member into its upload (left open: completed with the others)."""
        member, written, number = planned.member, 0, 0
        run = self._bridge.run
        password = self._password if member.encrypted else None
        try:
            try:
                stream = await run(self._archive.open, info, pwd=password and password.value)
            except RuntimeError as exc:  # zipfile's "Bad password for file ..."
                raise ArchiveRefusedError(
                    f"member {member.name!r} does not open with the password in secret "
                    f"{password.secret if password else '(none)'} ({exc})",
                    key=self._source.key,
                    rule="password",
                ) from exc
            with stream:
                while block := await run(stream.read, PART_SIZE):
                    self.meter.add(member, written, len(block))
                    written += len(block)
                    if not upload.started:
                        await upload.start()
                    number += 1
                    await slots.acquire()
                    _raise_failed(self._parts)
                    self._parts.add(asyncio.create_task(_part(upload, number, block, slots)))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            # ZipCrypto checks one byte of the password: 1 wrong password in 256 gets here
            hint = f", or the password in secret {password.secret} is wrong" if password else ""
            raise ArchiveRefusedError(
                f"member {member.name!r} cannot be read ({exc}{hint})",
                key=self._source.key,
                rule="corrupt",
            ) from exc
        self.meter.finish(member, written)


async def _part(
    upload: MultipartUpload, number: int, block: bytes, slots: asyncio.Semaphore
) -> None:
    try:
        await upload.upload_part(number, block)
    finally:
        slots.release()


def _raise_failed(tasks: set[asyncio.Task[None]]) -> None:
    """Surface a part that failed already, and forget the parts that are done."""
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        task.result()


async def _finish(upload: MultipartUpload) -> None:
    if upload.started:
        await upload.complete()
    else:
        await upload.put_object(b"")  # an empty member: S3 completes no upload without parts


async def _abort(upload: MultipartUpload) -> None:
    try:
        await upload.abort()
    except Exception:  # the others still get aborted; S3's lifecycle rule ends this one
        log.warning("could not abort a member's upload", extra={"key": upload.key}, exc_info=True)


async def _all(uploads: list[MultipartUpload], step: Any) -> None:
    gate = asyncio.Semaphore(COMPLETIONS_IN_FLIGHT)

    async def one(upload: MultipartUpload) -> None:
        async with gate:
            await step(upload)

    await asyncio.gather(*(one(u) for u in uploads))
