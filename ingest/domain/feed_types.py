"""The validated feeds: what a feed owns and how its files become records.

These are the types the rest of the code works with. They come out of a feeds file through
:mod:`ingest.domain.feeds` (``load_feeds`` / ``parse_feeds``), which also re-exports them:
import them from there.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from msgspec import Struct, field

from ingest.domain.archives import ZipLimits
from ingest.errors import ConfigError

#: Attributes every record carries; feed fields may not use these names.
RESERVED_ATTRIBUTES = frozenset({"pk", "sk", "_feed", "_source", "_line"})

#: Encodings a feed may declare (codec names as Python knows them).
SUPPORTED_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "latin-1", "cp1252"})

#: A record (a line, or with csv.quoted_newlines the lines of one record) longer than this is
#: a reject; the feed's ``max_record_size`` may raise it up to MAX_RECORD_SIZE_LIMIT.
DEFAULT_MAX_RECORD_SIZE = 1024 * 1024
MAX_RECORD_SIZE_LIMIT = 64 * 1024 * 1024
#: A compressed file that inflates past either bound is FAILED at once (a decompression bomb).
DEFAULT_MAX_DECOMPRESSED_SIZE = 4 * 1024**3
DEFAULT_MAX_COMPRESSION_RATIO = 200
#: ``wait_for``: how long a file waits for its sidecar or marker before it is FAILED
DEFAULT_WAIT_TIMEOUT = 24 * 3600
#: ``duplicates``: how far back a file's content digest is compared
DEFAULT_DUPLICATE_WINDOW = 30 * 24 * 3600

_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
#: patterns compiled on first use (re caches them), not at a cold start
_SIZE_RE = r"(?i)^\s*(\d+)\s*([kmg]ib|b)?\s*$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = r"^\s*(\d+)\s*([smhdw])\s*$"
_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    FIXED_WIDTH = "fixed_width"
    XLSX = "xlsx"


class WaitFor(StrEnum):
    """``wait_for``: what a file waits for before it is processed (docs/feeds.md)."""

    NONE = "none"
    #: ``<key>.sha256`` or ``<key>.md5``, whose digest must match the file's
    CHECKSUM = "checksum"
    #: ``<key>.done`` or ``<key without extension>.done``
    DONE = "done"


class Duplicates(StrEnum):
    """``duplicates``: what becomes of a file whose content was processed before."""

    ALLOW = "allow"
    SKIP = "skip"
    FAIL = "fail"


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"


class FieldSpec(Struct, frozen=True):
    """One typed field of a record. ``source`` is the CSV column or JSON key it comes from."""

    name: str
    type: FieldType
    required: bool = False
    source: str = ""
    date_format: str | None = None
    #: fixed-width: the field's 1-based first column and its width, in characters
    start: int = 0
    width: int = 0
    #: implied decimals: ``scale=2`` reads ``000012345`` as ``123.45``
    scale: int = 0


class CsvOptions(Struct, frozen=True):
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    columns: tuple[str, ...] = ()
    encoding: str = "utf-8"
    #: When true a quoted field may contain newlines, so the file cannot be split into
    #: byte ranges and is always processed as one chunk.
    quoted_newlines: bool = False


class Columns(Struct, frozen=True):
    """A 1-based first column and a width, in characters (a fixed-width slice)."""

    start: int
    width: int

    def cut(self, text: str) -> str:
        return text[self.start - 1 : self.start - 1 + self.width]


class FixedWidthOptions(Struct, frozen=True):
    encoding: str = "utf-8"
    #: lines at the start of the file (only in its first chunk) that are not records
    header_lines: int = 0
    #: lines at the end of the file (only in its last chunk) that are not records
    trailer_lines: int = 0
    #: only lines whose ``record_type`` columns hold ``record_value`` are records
    record_type: Columns | None = None
    record_value: str = ""
    #: where the last trailer line declares the file's record count
    trailer_count: Columns | None = None


class XlsxOptions(Struct, frozen=True):
    #: a sheet's name, or its 0-based index; None: the first sheet
    sheet: str | int | None = None
    header: bool = True
    #: the 1-based row holding the column names; the records are the rows after it
    header_row: int = 1


class ReceiptOptions(Struct, frozen=True):
    """``receipt:``: how a file's receipt is written (docs/feeds.md, "Receipts")."""

    #: ``json`` or ``csv`` (ingest.domain.receipts.FORMATS)
    format: str = "json"
    #: each rejected row's raw text in the receipt, beside its line and reason
    include_raw: bool = False


#: ``expected``: how long after a deadline its files may still come before they are missing
DEFAULT_EXPECTED_GRACE = 30 * 60


class Expectation(Struct, frozen=True):
    """``expected:``: when a feed's files are due (docs/feeds.md, "Expected files").

    By each deadline of ``schedule`` (an EventBridge ``cron(...)`` evaluated in ``tz``) plus
    ``grace_seconds``, each partner must have delivered at least ``count`` files of the feed
    since the previous deadline (plus grace). ``partners`` None is ``"*"``: every partner
    that has delivered a file of the feed. Plain values, so the feed's compiled form holds it.
    """

    schedule: str
    partners: tuple[str, ...] | None = None
    tz: str = "UTC"
    count: int = 1
    grace_seconds: int = DEFAULT_EXPECTED_GRACE

    @property
    def ident(self) -> str:
        """What names the expectation's progress in the ledger: its schedule and zone (a
        changed count, grace or partner list keeps the progress; a new schedule starts anew)."""
        return f"{self.tz} {self.schedule}"


class KeyTemplate(Struct, frozen=True):
    """``pk``/``sk`` templates over field names and captured key parts (``{partner}``)."""

    pk: str
    sk: str

    def placeholders(self) -> set[str]:
        names: set[str] = set()
        for template in (self.pk, self.sk):
            names.update(n for _, n, _, _ in string.Formatter().parse(template) if n)
        return names


class Feed(Struct, frozen=True):
    name: str
    match: str
    pattern: re.Pattern[str]
    format: Format
    key: KeyTemplate
    fields: tuple[FieldSpec, ...]
    csv: CsvOptions = field(default_factory=CsvOptions)
    encoding: str = "utf-8"
    fixed_width: FixedWidthOptions = field(default_factory=FixedWidthOptions)
    xlsx: XlsxOptions = field(default_factory=XlsxOptions)
    #: limits of the zip archives the feed owns (ingest.domain.envelopes.envelope_feed)
    zip: ZipLimits = field(default_factory=ZipLimits)
    receipt: ReceiptOptions = field(default_factory=ReceiptOptions)
    chunk_size: int | None = None
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE
    max_compression_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO
    #: admission gates (ingest.usecases.sidecars, ingest.usecases.duplicates); seconds
    wait_for: WaitFor = WaitFor.NONE
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT
    duplicates: Duplicates = Duplicates.ALLOW
    duplicate_window: int = DEFAULT_DUPLICATE_WINDOW
    #: when the feed's files are due (ingest.usecases.expected)
    expected: tuple[Expectation, ...] = ()

    @property
    def splittable(self) -> bool:
        """Whether an uncompressed file of this feed may be split into byte ranges."""
        if self.format is Format.XLSX:
            return False  # a zip container: its parts cannot be read from a byte range
        return not (self.format is Format.CSV and self.csv.quoted_newlines)

    @property
    def text_encoding(self) -> str:
        if self.format is Format.FIXED_WIDTH:
            return self.fixed_width.encoding
        return self.csv.encoding if self.format is Format.CSV else self.encoding


class FeedMatch(Struct, frozen=True):
    """A key resolved to its feed, with the parts its pattern captured."""

    feed: Feed
    captures: Mapping[str, str]
    compressed: bool


class FeedSet(Struct, frozen=True):
    feeds: tuple[Feed, ...]
    source: str = "<feeds>"

    def resolve(self, key: str) -> FeedMatch | None:
        """The first feed whose pattern matches ``key`` (``.gz`` stripped for matching)."""
        compressed = key.endswith(".gz")
        candidates = (key, key[:-3]) if compressed else (key,)
        for feed in self.feeds:
            for candidate in candidates:
                m = feed.pattern.fullmatch(candidate)
                if m:
                    return FeedMatch(
                        feed=feed,
                        captures=m.groupdict(),
                        compressed=compressed,
                    )
        return None

    def get(self, name: str) -> Feed:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise ConfigError(f"no feed named {name!r}", source=self.source)


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a key glob: ``{name}`` captures one path segment, ``*`` and ``?`` stay within a
    segment, ``**`` crosses segments."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "{":
            end = glob.find("}", i)
            if end == -1:
                raise ValueError(f"unclosed '{{' in {glob!r}")
            name = glob[i + 1 : end]
            if not re.match(_NAME_RE, name):
                raise ValueError(f"capture name {name!r} in {glob!r} is not an identifier")
            out.append(f"(?P<{name}>[^/]+)")
            i = end + 1
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def parse_size(value: Any) -> int:
    """``1048576``, ``"64MiB"``, ``"512 KiB"`` → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        size = value
    else:
        m = re.match(_SIZE_RE, str(value))
        if not m:
            raise ValueError(f"not a size: {value!r} (use bytes or e.g. '64MiB')")
        size = int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()]
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


def parse_duration(value: Any) -> int:
    """``86400``, ``"24h"``, ``"30d"``, ``"90m"``, ``"45s"``, ``"1w"`` → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        m = re.match(_DURATION_RE, str(value))
        if not m:
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. '24h', '30d')")
        seconds = int(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds < 1:
        raise ValueError("must be at least 1 second")
    return seconds
