"""The real server as a subprocess on a free loopback port, scored over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from service.testing.server_process import listening, served, server_pids
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # real subprocesses or learning: the full tier only


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with served({"PGENRM_DEFAULT_IND": "4"}) as url:
        yield url


def test_scores_the_example_over_http(server: str) -> None:
    example = Path(REPO, "examples", "score_request.json").read_bytes()
    json_type = {"content-type": "application/json"}
    r = httpx.post(f"{server}/v1/score", content=example, headers=json_type, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["preferred"] == 1  # this user always chose the shorter answer
    assert sum(c["weight"] for c in out["traces"]["summary"]["criteria"]) == pytest.approx(100)
    assert out["samples"]["ind"]["valid"] == 8  # the file asks for Ind-8


def test_defaults_come_from_the_environment(server: str) -> None:
    request = json.loads(Path(REPO, "examples", "score_request.json").read_text())
    del request["scaling"]
    out = httpx.post(f"{server}/v1/score", json=request, timeout=30).json()
    assert out["samples"]["ind"]["requested"] == 4  # PGENRM_DEFAULT_IND


def test_bad_request_over_http(server: str) -> None:
    r = httpx.post(f"{server}/v1/score", json={"user_id": "u"}, timeout=10)
    assert r.status_code == 422
    error = r.json()["error"]
    assert {d["field"] for d in error["details"]} == {"prompt", "candidates"}
    assert error["field"] in {"prompt", "candidates"} and "1 more problem" in error["message"]


async def test_evaluation_harness_through_the_server(server: str) -> None:
    from service.core.rows import parse_row
    from service.offline.evaluation.harness import EvalConfig, evaluate
    from service.offline.evaluation.scorers import HttpScorer
    from tests.helpers import synthetic_rows

    rows = [
        r
        for r in map(parse_row, synthetic_rows(per_user=6, test_per_user=2))
        if not isinstance(r, str)
    ]
    scorer = HttpScorer(server)
    try:
        # Every train pair: a short history barely moves the calibrated model off the
        # population's taste (it is trusted as its population's histories are).
        out = await evaluate(rows, scorer, EvalConfig(history_k=6, ind=2), progress=False)
    finally:
        await scorer.aclose()
    assert out["pairs"] == 4 and out["judgements"] == 8
    assert out["scorer"].startswith(f"http:{server}:pgenrm-embedded/")
    assert out["per_user"]["terse"] == 1.0  # the learnt backend sees this user likes short answers


async def test_two_workers_share_the_load_and_report_every_request(tmp_path: Path) -> None:
    """`PGENRM_WORKERS=2`: two processes on one port. A trainer's 32 keep-alive connections
    are spread over both (each worker has its own SO_REUSEPORT socket), and /metrics from
    either one counts the requests both served (a scrape reaches one worker at random)."""
    example = example_request()
    env = {"PGENRM_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with served(env) as url:
        workers = server_pids(url)
        assert len(workers) == 2
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/score", json=example) for _ in range(32))
            )
            assert [r.status_code for r in answers] == [200] * 32
            assert len({r.json()["scores"][1]["score"] for r in answers}) == 1  # same result
            for _ in range(6):
                text = (await client.get("/metrics")).text
                assert scored(text) == 32, text
        per_worker = {pid: scored_by(tmp_path / f"counter_{pid}.db") for pid in workers}
        assert sum(per_worker.values()) == 32
        assert min(per_worker.values()) >= 4, per_worker  # P(fewer by chance) ~ 1e-6


def example_request() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(Path(REPO, "examples", "score_request.json").read_text())
    return loaded


def scored(metrics_text: str) -> float:
    line = 'pgenrm_requests_total{method="POST",route="/v1/score",status="200"}'
    return sum(float(x.split()[-1]) for x in metrics_text.splitlines() if x.startswith(line))


def scored_by(counter_file: Path) -> float:
    """One worker's /v1/score 200s, read from its own file in the metrics directory."""
    total = 0.0
    values = MmapedDict.read_all_values_from_file(str(counter_file))  # type: ignore[no-untyped-call]
    for key, value, *_ in values:
        _name, sample, labels, _help = json.loads(key)
        if sample == "pgenrm_requests_total" and labels.get("route") == "/v1/score":
            total += value if labels.get("status") == "200" else 0.0
    return total


async def test_a_dead_worker_is_replaced() -> None:
    example = example_request()
    with served({"PGENRM_WORKERS": "2"}) as url:
        first = server_pids(url)
        os.kill(first[0], signal.SIGKILL)
        for _ in range(300):  # the supervisor notices within 0.2 s, waits 1 s, reloads ~3 s
            await asyncio.sleep(0.1)
            now = server_pids(url)
            if len(now) == 2 and first[0] not in now and listening(port_of(url)) == 2:
                break
        else:
            raise AssertionError(f"no replacement worker: {server_pids(url)}")
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/score", json=example) for _ in range(8))
            )
        assert [r.status_code for r in answers] == [200] * 8


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])
