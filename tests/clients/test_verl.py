"""veRL: `pgenrm_client.verl.compute_score` through veRL's own reward manager (verl_probe.py,
run with the separate veRL environment's Python) against a real `pgenrm serve`."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pgenrm_client.verl
import pytest
from pgenrm_client import PgenrmClient

from tests.clients.support import history, requests_total, trainer_missing
from tests.conftest import REPO
from tests.helpers import LONG, SHORT

pytestmark = pytest.mark.slow  # a real server, and veRL in a subprocess

VERL_PYTHON = REPO / ".venv-verl" / "bin" / "python"
PROBE = Path(__file__).with_name("verl_probe.py")
PROMPT = "How long should I steep green tea?"
KEYS = {"score", "pgenrm_score", "pgenrm_score_std", "pgenrm_valid"}


def probe(cases: list[dict[str, Any]]) -> dict[str, Any]:
    if not VERL_PYTHON.exists():
        trainer_missing(f"no veRL environment at {VERL_PYTHON} (veRL pins transformers<5.11)")
    done = subprocess.run(
        [str(VERL_PYTHON), str(PROBE), json.dumps({"cases": cases})],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])["cases"]
    return out


def test_verl_reward_manager_scores_through_pgenrm(server: str) -> None:
    user = f"terse-{uuid.uuid4().hex[:6]}"
    with PgenrmClient(server) as client:
        client.put_user(user, history("short"))
        expected = [
            client.score(user, [text], prompt=PROMPT, return_traces="none")["scores"][0]
            for text in (SHORT, LONG)
        ]
    rows = [
        {"user_id": user, "prompt": PROMPT, "response": SHORT},
        {"user_id": user, "prompt": [{"role": "user", "content": PROMPT}], "response": LONG},
    ]
    blank = {"user_id": user, "prompt": PROMPT, "response": " "}
    path = pgenrm_client.verl.__file__
    before = requests_total(server, "/v1/score")
    cases = probe(
        [
            {"name": "file", "path": path, "reward_kwargs": {"url": server}, "rows": rows},
            {
                "name": "pkg",
                "path": "pkg://pgenrm_client.verl",
                "reward_kwargs": {"url": server},
                "rows": rows[:1],
            },
            {
                "name": "no_fallback",
                "path": path,
                "reward_kwargs": {"url": server},
                "rows": [blank],
            },
            {
                "name": "fallback",
                "path": path,
                "reward_kwargs": {"url": server, "fallback": -1.0},
                "rows": [rows[0], blank],
            },
        ]
    )
    assert requests_total(server, "/v1/score") - before == 6  # K=1: one call per response

    file = cases["file"]
    print("veRL", file["manager"], "async:", file["async"], "results:", file["results"])
    assert (file["manager"], file["async"]) == ("NaiveRewardManager", True)
    for result, want in zip(file["results"], expected, strict=True):
        info = result["reward_extra_info"]
        assert set(info) == KEYS  # veRL builds its metric arrays from the first row's keys
        assert result["reward_score"] == info["score"] == want["reward"]
        assert info["pgenrm_score"] == want["score"] and info["pgenrm_valid"] == 1.0
        assert info["pgenrm_score_std"] == want["score_std"]
    assert cases["pkg"]["results"][0] == file["results"][0]

    # no reward and no fallback: an error, never a silent 0
    assert cases["no_fallback"]["error"]["type"] == "NotScoredError"
    scored, failed = cases["fallback"]["results"]
    assert set(scored["reward_extra_info"]) == set(failed["reward_extra_info"]) == KEYS
    assert scored["reward_score"] == expected[0]["reward"]
    assert failed["reward_score"] == -1.0 and failed["reward_extra_info"]["pgenrm_valid"] == 0.0
