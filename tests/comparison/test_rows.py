"""Reading rows (errors name the line) and what a row's user and segment are."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.comparison.rows import Row, RowsError, read_rows
from service.comparison.run import segment_of, user_label, variants_of
from service.core.inputs import Message
from service.offline.comparison.command import parse_row
from tests.helpers import history_json, pair, write_jsonl


def row(user_id: str = "u1", **extra: object) -> dict[str, object]:
    return {"user_id": user_id, "prompt": "Tea?", "variants": {"A": "a", "B": "b"}} | extra


def test_reads_jsonl_and_gz_skipping_blank_lines_up_to_the_limit(tmp_path: Path) -> None:
    plain = write_jsonl(
        tmp_path / "rows.jsonl", [row("u1"), "", row("u2", variants={"C": "c", "A": "a"})]
    )
    packed = write_jsonl(tmp_path / "rows.jsonl.gz", [row("u1"), row("u2")], gz=True)
    rows = read_rows(plain, parse_row)
    assert [r.user_id for r in rows] == ["u1", "u2"] and variants_of(rows) == ["A", "B", "C"]
    assert [r.user_id for r in read_rows(packed, parse_row, limit=1)] == ["u1"]
    with_history = read_rows(
        write_jsonl(tmp_path / "h.jsonl", [row(history=history_json("short")[:1])]), parse_row
    )
    assert with_history[0].history is not None and len(with_history[0].history) == 1


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["[1, 2]"], ":1: a row is a JSON object, not list"),
        ([row(), "{"], ":2: not JSON"),
        ([row(variants={})], ":1: `variants`: Dictionary should have at least 2 items"),
        ([{"prompt": "x", "variants": {"A": "a", "B": "b"}}], ":1: give `user_id`"),
        ([row(prompt="x", context=[{"role": "user", "content": "y"}])], "not both"),
        ([], ": no rows"),
    ],
)
def test_a_bad_file_names_its_line(tmp_path: Path, lines: list[object], message: str) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", lines)
    with pytest.raises(RowsError) as error:
        read_rows(path, parse_row)
    assert str(error.value).startswith(str(path)) and message in str(error.value)
    with pytest.raises(RowsError, match="no such file"):
        read_rows(tmp_path / "absent.jsonl", parse_row)


def test_segments_come_from_the_row_then_the_stored_user_and_user_means_the_user() -> None:
    context = (Message("user", "Tea?"),)
    mine = Row("alice", None, context, {"A": "a"}, {"plan": "pro"})
    assert segment_of("plan", mine, {"plan": "free", "region": "eu"}) == "pro"
    assert segment_of("region", mine, {"plan": "free", "region": "eu"}) == "eu"
    assert segment_of("cohort", mine, {}) is None and segment_of(None, mine, {}) is None
    assert segment_of("user", mine, {}) == "alice"
    inline = Row("", (pair("q", "a", "b"),), context, {"A": "a"})
    assert user_label(inline).startswith("history-") and segment_of("user_id", inline, {}) == (
        user_label(inline)
    )
