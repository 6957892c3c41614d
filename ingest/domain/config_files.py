"""What the feeds file and the retrievals file share: a top-level list of named entries,
validated with pydantic, with every problem reported at once (sorted by entry), each naming
the file, the entry and its field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from msgspec import Struct
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ingest.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
#: one of pydantic's errors, the file's raw entries and its name → (entry index, our error)
Problem = Callable[[ErrorDetails, Any, str], tuple[int, ConfigError]]


class EntryKind(Struct, frozen=True):
    """How one kind of file names its entries in errors."""

    #: the top-level key of the list (``feeds``, ``retrievals``)
    list_key: str
    #: what an entry is called (``feed``, ``job``): the ConfigError attribute it fills
    noun: str
    #: the message for two entries of one name, with ``{first}`` and ``{second}`` (1-based)
    duplicate: str

    def error(
        self, message: str, *, source: str, name: str | None, field: str | None = None
    ) -> ConfigError:
        """A problem of the entry called ``name`` (or ``#N`` when it has no usable name)."""
        if self.noun == "feed":
            return ConfigError(message, source=source, feed=name, field=field)
        return ConfigError(message, source=source, job=name, field=field)


def entry_name(raw: Any) -> str | None:
    """An entry's ``name``, when it is a non-empty string."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


def entry_label(entries: Any, index: int) -> str:
    """How errors call entry ``index``: its name, else ``#N``."""
    raw = entries[index] if isinstance(entries, list) and index < len(entries) else None
    return entry_name(raw) or f"#{index + 1}"


def duplicate_names(entries: Any, kind: EntryKind, source: str) -> list[tuple[int, ConfigError]]:
    """An error for every entry whose name an earlier entry already has."""
    first: dict[str, int] = {}
    found = []
    for index, raw in enumerate(entries if isinstance(entries, list) else []):
        name = entry_name(raw)
        if name is not None and name in first:
            message = kind.duplicate.format(first=first[name] + 1, second=index + 1)
            found.append((index, kind.error(message, source=source, name=name, field="name")))
        elif name:
            first[name] = index
    return found


def validate_entries(model: type[M], doc: Any, kind: EntryKind, source: str, problem: Problem) -> M:
    """``doc`` as ``model``; else a ConfigError listing every problem (sorted by entry)."""
    entries = doc.get(kind.list_key) if isinstance(doc, dict) else None
    problems: list[tuple[int, ConfigError]] = []
    schema: M | None = None
    try:
        schema = model.model_validate(doc)
    except ValidationError as exc:
        seen: set[tuple[int, str]] = set()  # two shapes of one value answer for one mistake
        for error in exc.errors():
            index, found = problem(error, entries, source)
            if (index, str(found)) not in seen:
                seen.add((index, str(found)))
                problems.append((index, found))
    problems += duplicate_names(entries, kind, source)
    if schema is None or problems:
        ordered = [found for _, found in sorted(problems, key=lambda p: p[0])]
        raise ConfigError.collect(ordered, source=source)
    return schema
