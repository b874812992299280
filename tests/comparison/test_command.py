"""`pgenrm compare` end to end on a small jsonl: the report files, the JSON line, bad lines,
and the same report through a running server's /v1/score."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.comparison.report import CSV_HEADER
from service.comparison.results import Comparison
from service.testing.server_process import served
from tests.helpers import LONG, SHORT, history_json, write_jsonl

SCRIPT = "<script>alert(1)</script>"


def rows() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for user, kind, plan in (("terse", "short", "pro"), ("verbose", "long", "free")):
        for prompt in ("How long should I steep green tea?", f"Tea? {SCRIPT}"):
            out.append(
                {
                    "id": f"{user}-{len(out)}",
                    "user_id": user,
                    "history": history_json(kind),
                    "prompt": prompt,
                    "variants": {"short": SHORT, SCRIPT: LONG},
                    "attributes": {"plan": plan},
                }
            )
    return out


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", *args, "--no-progress", "--no-embed-cache"])
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_writes_json_csv_and_a_safe_html_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", rows())
    out = tmp_path / "report"
    args = ["--data", str(data), "--out", str(out), "--segment", "plan", "--baseline", "--json"]
    code, stdout, stderr = run_cli([*args, "--ind", "2"], capsys)
    assert code == 0, stderr
    report = Comparison.model_validate_json(stdout.strip().splitlines()[-1])
    assert report.baseline == "short" and report.variants == ["short", SCRIPT]
    assert (report.rows, report.compared, report.segment) == (4, 4, "plan")
    assert report == Comparison.model_validate_json((out / "compare.json").read_text())
    with (out / "compare.csv").open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert tuple(lines[0]) == CSV_HEADER and len(lines) == len(report.pairs)
    assert {(r["scope"], r["group"]) for r in lines} == {
        ("overall", "all"),
        ("user", "terse"),
        ("user", "verbose"),
        ("segment", "free"),
        ("segment", "pro"),
    }
    page = (out / "compare.html").read_text()
    assert page.count("<svg") >= 3 and "<script" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "win rate against short" in stderr and "wrote" in stderr


def test_a_bad_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", [rows()[0], {**rows()[0], "variants": {"A": "x"}}])
    code, _, stderr = run_cli(["--data", str(data)], capsys)
    assert code == 2
    assert f"{data}:2: `variants`: Dictionary should have at least 2 items" in stderr
    write_jsonl(data, ["{not json"])
    code, _, stderr = run_cli(["--data", str(data)], capsys)
    assert code == 2 and f"{data}:1: not JSON" in stderr


@pytest.mark.slow
def test_through_a_server_the_report_is_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", rows())
    code, local, stderr = run_cli(["--data", str(data), "--ind", "2", "--json"], capsys)
    assert code == 0, stderr
    with served({}) as url:
        code, remote, stderr = run_cli(
            ["--data", str(data), "--ind", "2", "--json", "--url", url], capsys
        )
    assert code == 0, stderr
    here, there = (json.loads(o.strip().splitlines()[-1]) for o in (local, remote))
    assert there["scorer"].startswith(f"http:{url}:")
    assert [p["win_rate"] for p in here["pairs"]] == [p["win_rate"] for p in there["pairs"]]
    assert [(d["key"], d["group"]) for d in here["drivers"]] == [
        (d["key"], d["group"]) for d in there["drivers"]
    ]
    for a, b in zip(here["drivers"], there["drivers"], strict=True):
        assert a["mean_delta"] == pytest.approx(b["mean_delta"], abs=1e-3)
