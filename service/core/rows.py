"""Load preference rows in the PersonalRewardBench schema from .jsonl, .jsonl.gz or .parquet.

One row is one pairwise judgement by one user: `user_id`, `conversation_id`, `context` (list
of `{role, content}`), `chosen` and `rejected` (`{role, content}` or a string), `split`
(`train`/`val`/`test`). Extra columns are kept for `--by` slicing and otherwise ignored.
Malformed rows are counted by reason, never crashed on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.core.inputs import Message, PreferencePair

SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """The file cannot be read at all (missing, unknown format, unreadable)."""


@dataclass(frozen=True)
class Row:
    user_id: str
    conversation_id: str
    context: tuple[Message, ...]
    chosen: str
    rejected: str
    split: str
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def feedback(self) -> str | None:
        """The user's own reason for the choice, where the data has one (a `feedback` column)."""
        value = self.extras.get("feedback")
        return value if isinstance(value, str) and value.strip() else None

    def as_pair(self, feedback: bool = True) -> PreferencePair:
        return PreferencePair(
            context=self.context,
            chosen=self.chosen,
            rejected=self.rejected,
            feedback=self.feedback if feedback else None,
        )


@dataclass
class LoadReport:
    path: str
    rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    sha256: str = ""

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    def summary(self) -> str:
        text = f"{self.path}: {self.rows} rows"
        if self.malformed:
            reasons = ", ".join(f"{r}: {c}" for r, c in self.malformed.most_common())
            text += f", {self.malformed_total} malformed skipped ({reasons})"
        return text


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _records(path: Path, report: LoadReport) -> Iterator[Any]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        except Exception as error:
            raise DataError(f"{path}: cannot read parquet: {error}") from error
        yield from table.to_pylist()
        return
    if name.endswith((".jsonl", ".jsonl.gz")):
        yield from _jsonl(path, report)
        return
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: cannot read JSON: {error}") from error
        if not isinstance(data, list):
            raise DataError(f"{path}: a .json file must hold a list of rows")
        yield from data
        return
    raise DataError(f"{path}: unsupported format (use .jsonl, .jsonl.gz, .json or .parquet)")


def _jsonl(path: Path, report: LoadReport) -> Iterator[Any]:
    try:
        with (
            gzip.open(path, "rt", encoding="utf-8")
            if path.name.lower().endswith(".gz")
            else path.open(encoding="utf-8")
        ) as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    report.malformed["invalid_json"] += 1
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read: {error}") from error


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _context(value: Any) -> tuple[Message, ...] | None:
    if isinstance(value, str):
        return (Message("user", value),) if value.strip() else None
    if not isinstance(value, list | tuple) or not value:
        return None
    out = []
    for message in value:
        if not isinstance(message, dict):
            return None
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            return None
        out.append(Message(role, content))
    return tuple(out)


def parse_row(record: Any) -> Row | str:
    """A `Row`, or the reason the record is malformed."""
    if not isinstance(record, dict):
        return "not_an_object"
    user_id = record.get("user_id")
    if user_id is None or (isinstance(user_id, str) and not user_id.strip()):
        return "missing_user_id"
    context = _context(record.get("context"))
    if context is None:
        return "bad_context"
    chosen, rejected = _text(record.get("chosen")), _text(record.get("rejected"))
    if not chosen or not rejected:
        return "missing_answer"
    split = record.get("split")
    if split not in SPLITS:
        return "bad_split"
    known = {"user_id", "conversation_id", "context", "chosen", "rejected", "split"}
    return Row(
        user_id=str(user_id),
        conversation_id=str(record.get("conversation_id", "")),
        context=context,
        chosen=chosen,
        rejected=rejected,
        split=str(split),
        extras={k: v for k, v in record.items() if k not in known},
    )


def load_rows(path: str | Path) -> tuple[list[Row], LoadReport]:
    target = Path(path)
    if not target.is_file():
        raise DataError(f"{target}: no such file")
    report = LoadReport(path=str(target), sha256=file_sha256(target))
    rows = []
    for record in _records(target, report):
        parsed = parse_row(record)
        if isinstance(parsed, str):
            report.malformed[parsed] += 1
        else:
            rows.append(parsed)
    report.rows = len(rows)
    if not rows:
        raise DataError(f"{target}: no usable rows ({report.summary()})")
    return rows, report
