"""`pgenrm eval` end to end on a fixture: the JSON line, the grid files, --by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from tests.helpers import synthetic_rows, write_jsonl


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_grid_writes_table_plot_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(
        tmp_path / "rows.jsonl.gz", synthetic_rows(per_user=10, test_per_user=3), gz=True
    )
    code, out, err = run_cli(
        [
            "eval",
            "--data",
            str(data),
            "--history-k",
            "3",
            "--grid",
            "0:0,2:0",
            "--by",
            "chosen_length",
            "--out",
            str(tmp_path / "runs"),
            "--json",
            "--no-progress",
            "--no-embed-cache",
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    for key in ("accuracy", "ci95", "macro_accuracy", "tie_rate", "parse_failure_rate", "pairs"):
        assert key in result
    assert 0.0 <= result["accuracy"] <= 1.0 and len(result["ci95"]) == 2
    assert set(result["by"]) == {"chosen_longer", "chosen_shorter"}
    assert set(result["grid"]) == {"base (1 chain)", "Ind-2,Pro-0"}
    runs = tmp_path / "runs"
    csv = (runs / "grid.csv").read_text().splitlines()
    assert csv[0].startswith("setting,accuracy") and len(csv) == 3
    assert "| Ind-2,Pro-0 |" in (runs / "grid.md").read_text()
    assert (runs / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(runs.glob("eval-*.json"))) == 2
    assert "per user: terse" in err


def test_unreadable_data_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["eval", "--data", str(tmp_path / "nope.jsonl")], capsys)
    assert code == 2 and "no such file" in err


def test_eval_against_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.testing.simulator_process import Simulator

    data = write_jsonl(tmp_path / "rows.jsonl", synthetic_rows(per_user=8, test_per_user=3))
    with Simulator() as sim:
        monkeypatch.setenv("PGENRM_OPENAI_URLS", sim.url)
        code, out, err = run_cli(
            [
                "eval",
                "--data",
                str(data),
                "--backend",
                "openai",
                "--history-k",
                "3",
                "--ind",
                "4",
                "--json",
                "--no-progress",
                "--no-embed-cache",
            ],
            capsys,
        )
        assert code == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["scorer"].startswith("openai:pgenrm-simulator") and result["pairs"] == 6
        assert sim.stats()["requests"] == 12  # 6 pairs x 2 orders, one n=4 request each
    # The simulated judge follows each user's length preference.
    assert result["per_user"]["terse"] > 0.5 and result["per_user"]["verbose"] > 0.5
