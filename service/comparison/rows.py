"""One comparison row (a user, a prompt, named variants) and reading rows from a jsonl file.

The row's wire shape is validated by whoever reads it (`service.api.schemas.compare`, a layer
above): `read_rows` takes that parser, so a bad line is reported with its number whatever the
problem, and this package never imports the API.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from service.core.inputs import Message, PreferencePair, last_user_turn

Attribute = str | int | float | bool


class RowsError(ValueError):
    """The file cannot be compared: missing, unreadable, or a line that is not a valid row."""


@dataclass(frozen=True)
class Row:
    user_id: str  # shown in reports; a stored user's id when `history` is None
    history: tuple[PreferencePair, ...] | None  # None: the stored user's history
    context: tuple[Message, ...]
    variants: dict[str, str]  # name -> response text, in the caller's order
    attributes: dict[str, Attribute] = field(default_factory=dict)
    id: str | None = None  # the caller's own label for the row

    @property
    def prompt(self) -> str:
        return last_user_turn(self.context)


def read_rows(
    path: Path, parse: Callable[[dict[str, Any]], Row], limit: int | None = None
) -> list[Row]:
    """Every row of a .jsonl or .jsonl.gz file (the first `limit`); blank lines are skipped.
    `parse` raises ValueError with a message saying what is wrong with a line's object."""
    rows: list[Row] = []
    for number, line in _lines(path):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise RowsError(f"{path}:{number}: not JSON ({error.msg})") from error
        if not isinstance(data, dict):
            raise RowsError(f"{path}:{number}: a row is a JSON object, not {type(data).__name__}")
        try:
            rows.append(parse(data))
        except ValueError as error:
            raise RowsError(f"{path}:{number}: {error}") from error
    if not rows:
        raise RowsError(f"{path}: no rows")
    return rows


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise RowsError(f"{path}: no such file")
    try:
        with _open(path) as handle:
            yield from enumerate(handle, start=1)
    except (OSError, UnicodeDecodeError) as error:
        raise RowsError(f"{path}: unreadable ({error})") from error


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")
