from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.core.rows import DataError, load_rows
from tests.helpers import synthetic_rows, write_jsonl

MALFORMED = [
    "{not json",
    {
        "conversation_id": "x",
        "context": [{"role": "user", "content": "q"}],
        "chosen": "a",
        "rejected": "b",
        "split": "train",
    },
    {
        "user_id": "u",
        "context": [{"role": "user", "content": "q"}],
        "chosen": "a",
        "rejected": "b",
        "split": "holdout",
    },
    {
        "user_id": "u",
        "context": [{"role": "user", "content": "q"}],
        "chosen": {"role": "assistant", "content": ""},
        "rejected": "b",
        "split": "test",
    },
    {
        "user_id": "u",
        "context": [{"role": "robot", "content": "q"}],
        "chosen": "a",
        "rejected": "b",
        "split": "test",
    },
    {"user_id": "u", "context": [], "chosen": "a", "rejected": "b", "split": "test"},
    ["a", "list"],
]


def test_jsonl_with_malformed_rows_counted(tmp_path: Path) -> None:
    good = synthetic_rows(per_user=3, test_per_user=1)
    path = write_jsonl(tmp_path / "rows.jsonl", [*good[:4], *MALFORMED, *good[4:]])
    rows, report = load_rows(path)
    assert len(rows) == len(good) == report.rows
    assert report.malformed_total == len(MALFORMED)
    assert dict(report.malformed) == {
        "invalid_json": 1,
        "missing_user_id": 1,
        "bad_split": 1,
        "missing_answer": 1,
        "bad_context": 2,
        "not_an_object": 1,
    }
    assert "7 malformed skipped" in report.summary()
    first = rows[0]
    assert (
        first.user_id == "terse"
        and first.chosen.startswith("Boil")
        and first.context[0].role == "user"
    )
    assert first.extras == {"dataset": "synthetic"}
    assert len(report.sha256) == 64


def test_gzip_and_parquet_load_the_same_rows(tmp_path: Path) -> None:
    good = synthetic_rows(per_user=4, test_per_user=2)
    plain, _ = load_rows(write_jsonl(tmp_path / "a.jsonl", good))
    gz, _ = load_rows(write_jsonl(tmp_path / "a.jsonl.gz", good, gz=True))
    # PersonalRewardBench's parquet: the same columns, nested structs, extra columns.
    table = pa.Table.from_pylist([{**r, "model_a": "gpt", "turn": 1} for r in good])
    pq.write_table(table, tmp_path / "a.parquet")
    parquet, report = load_rows(tmp_path / "a.parquet")
    assert plain == gz == parquet and report.malformed_total == 0
    assert parquet[0].extras["model_a"] == "gpt"


def test_unreadable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_rows(tmp_path / "missing.jsonl")
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported format"):
        load_rows(tmp_path / "rows.csv")
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        load_rows(tmp_path / "broken.jsonl.gz")
    with pytest.raises(DataError, match="no usable rows"):
        load_rows(write_jsonl(tmp_path / "bad.jsonl", ["{", "[]"]))
