"""The TOML config file: settings in tables, ``[[index]]`` and ``[[mirror]]`` entries.

A mistake in the file stops the start with a message that names the file, the
line and the key, because the person reading it has the file open in an editor
and nothing else. ``tomllib`` reports the line of a syntax error but keeps no
positions for the values it returns, so :class:`_Lines` finds the line of each
table and key with a plain scan of the text.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ministry.core.index_rules import check_index_name
from ministry.core.index_settings import SETTINGS, index_settings
from ministry.errors import InvalidRequest
from ministry.settings import OPTIONS, TABLES, Option, SettingsError

__all__ = ["ConfigFile", "DeclaredIndex", "FileValue", "read_config"]

_ARRAYS = ("index", "mirror")
_ARRAY_HEADER = re.compile(r"\s*\[\[\s*([^\[\]]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]")
_KEY = re.compile(
    r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
#: The line of each table and key, by its place: ``("server", "port")``, ``("mirror", 0)``.
_LineMap = Mapping[tuple[str | int, ...], int]
#: ``FILE, line N`` of a place in the file being read.
_Where = Callable[..., str]
_OPTIONS_BY_PLACE: dict[tuple[str, str], Option] = {(o.table, o.key): o for o in OPTIONS}


@dataclass(frozen=True)
class FileValue:
    """A setting's value as the file wrote it, and where (``FILE, line N``), for messages."""

    raw: Any
    where: str


@dataclass(frozen=True)
class DeclaredIndex:
    """An ``[[index]]`` entry: its settings as written (and checked), not yet applied."""

    name: str
    values: Mapping[str, Any]
    where: str


@dataclass(frozen=True)
class ConfigFile:
    """What one config file says, with the line of everything in it."""

    path: Path
    values: Mapping[str, FileValue]
    indexes: tuple[DeclaredIndex, ...]
    #: The ``[[mirror]]`` tables as written; services.mirror_jobs makes jobs of them.
    mirrors: tuple[Mapping[str, Any], ...]
    lines: _LineMap

    def where(self, *place: str | int) -> str:
        """``FILE, line N`` for a table or key (the nearest enclosing one that has a line)."""
        return _where(self.path, self.lines, place)


def _where(path: Path, lines: _LineMap, place: Sequence[str | int]) -> str:
    for end in range(len(place), 0, -1):
        line = lines.get(tuple(place[:end]))
        if line is not None:
            return f"{path}, line {line}"
    return str(path)


class _Lines:
    """The line of every table header and key of a TOML text.

    Places are tuples like ``("server", "port")`` or ``("mirror", 0, "every")`` (the
    first ``[[mirror]]`` entry). Keys inside multi-line strings and inline tables are
    not found; their messages then name the enclosing key or table instead.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        counts: dict[tuple[str, ...], int] = {}
        table: tuple[str | int, ...] = ()
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if (array := _ARRAY_HEADER.match(line)) is not None:
                parts = _dotted(array[1])
                counts[parts] = counts.get(parts, 0) + 1
                table = (*parts, counts[parts] - 1)
                self.lines.setdefault(table, number)
            elif (header := _TABLE_HEADER.match(line)) is not None:
                table = _dotted(header[1])
                self.lines.setdefault(table, number)
            elif (key := _KEY.match(line)) is not None:
                self.lines.setdefault((*table, *_dotted(key[1])), number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_string = quote
                    break


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def read_config(path: Path) -> ConfigFile:
    """Read and check a config file; any mistake raises ``SettingsError`` naming its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Cannot read the config file {path}: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text ({exc.reason}).") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise SettingsError(f"{path}: not valid TOML: {exc}.") from exc
    lines = _Lines(text).lines

    def where(*place: str | int) -> str:
        return _where(path, lines, place)

    return ConfigFile(
        path=path,
        values=_values(where, document),
        indexes=_indexes(where, _array(where, document, "index")),
        mirrors=_array(where, document, "mirror"),
        lines=lines,
    )


def _values(where: _Where, document: Mapping[str, Any]) -> dict[str, FileValue]:
    values: dict[str, FileValue] = {}
    for table, content in document.items():
        if table in _ARRAYS:
            continue
        if table not in TABLES:
            known = ", ".join([*(f"[{t}]" for t in TABLES), *(f"[[{a}]]" for a in _ARRAYS)])
            raise SettingsError(
                f"{where(table)}: unknown table or key {table!r}; a config file has {known}."
            )
        if not isinstance(content, dict):
            raise SettingsError(f"{where(table)}: {table!r} must be a table, written [{table}].")
        for key, raw in content.items():
            option = _OPTIONS_BY_PLACE.get((table, key))
            if option is None:
                keys = ", ".join(o.key for o in OPTIONS if o.table == table)
                raise SettingsError(
                    f"{where(table, key)}: unknown key {key!r} in [{table}]; its keys are {keys}."
                )
            values[option.name] = FileValue(raw, where(table, key))
    return values


def _array(where: _Where, document: Mapping[str, Any], name: str) -> tuple[Any, ...]:
    entries = document.get(name, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SettingsError(
            f"{where(name)}: {name!r} must be a list of tables, written [[{name}]]."
        )
    return tuple(entries)


def _indexes(where: _Where, entries: tuple[Any, ...]) -> tuple[DeclaredIndex, ...]:
    declared: list[DeclaredIndex] = []
    for number, entry in enumerate(entries):
        entry_place = where("index", number)
        name = entry.get("name")
        if not isinstance(name, str):
            raise SettingsError(f"{entry_place}: an [[index]] entry needs a 'name'.")
        try:
            check_index_name(name)
        except InvalidRequest as exc:
            raise SettingsError(f"{where('index', number, 'name')}: {exc}") from exc
        values = {key: value for key, value in entry.items() if key != "name"}
        for key, value in values.items():
            if key not in SETTINGS:
                raise SettingsError(
                    f"{where('index', number, key)}: [[index]] {name!r}: unknown key {key!r}; "
                    f"the keys of [[index]] are name, {', '.join(sorted(SETTINGS))}."
                )
            try:
                index_settings({key: value})
            except InvalidRequest as exc:
                place = where("index", number, key)
                raise SettingsError(f"{place}: [[index]] {name!r}: {exc}") from exc
        if any(d.name == name for d in declared):
            raise SettingsError(
                f"{where('index', number)}: a second [[index]] entry named {name!r}."
            )
        declared.append(
            DeclaredIndex(name, values, f"{where('index', number)}: [[index]] {name!r}")
        )
    return tuple(declared)
