"""The P-GenRM simulator (`service.testing.simulator`) over real loopback HTTP, as a subprocess.

Its valid outputs must parse cleanly with the service's own parser, its scores must follow the
history it is given, and every latency and fault setting must do what tests and benchmarks of
the HTTP backend rely on.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.core.chain import EvaluationChain, ParseFailure
from service.core.inputs import PreferencePair
from service.engine.parsing import parse_chain
from service.engine.prompts import build_messages
from service.testing.simulator_process import Simulator, SimulatorStartError
from tests.fixtures import simulator_fixture
from tests.helpers import LONG, QA, SHORT, pair, prefers, task

MEDIUM = "Use water at about 80 °C and steep for two to three minutes, then taste it."
LISTED = "Steps:\n- Heat water to 80 °C.\n- Steep for 2 minutes.\n- Remove the leaves."

simulator = simulator_fixture(scope="module")


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[Simulator]:
    simulator.reset(config=True)
    yield simulator
    simulator.wait_idle()


def body(
    kind: str | tuple[PreferencePair, ...] | None = "short",
    candidates: tuple[str, ...] = (SHORT, LONG),
    **extra: Any,
) -> dict[str, Any]:
    """A chat request as the HTTP backend sends it; `kind` "short"/"long" picks a history."""
    history = prefers(kind) if isinstance(kind, str) else kind or ()
    out: dict[str, Any] = {
        "model": "pgenrm-simulator",
        "messages": build_messages(history, task(*candidates)),
        "n": 4,
        "temperature": 1.0,
        "max_tokens": 4096,
        "seed": 11,
    }
    return {**out, **extra}


def chat(sim: Simulator, payload: dict[str, Any], timeout: float = 10.0) -> httpx.Response:
    return httpx.post(f"{sim.url}/v1/chat/completions", json=payload, timeout=timeout)


def outcomes(response: httpx.Response, k: int) -> list[EvaluationChain | ParseFailure]:
    assert response.status_code == 200, response.text
    return [
        parse_chain(c["message"]["content"], k, c["finish_reason"])
        for c in response.json()["choices"]
    ]


def chains(response: httpx.Response, k: int) -> list[EvaluationChain]:
    out = outcomes(response, k)
    assert all(isinstance(o, EvaluationChain) for o in out), out
    return out  # type: ignore[return-value]


def assert_openai_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["message"] and error["type"].endswith("Error")


def test_health_and_models(sim: Simulator) -> None:
    assert httpx.get(f"{sim.url}/health").json() == {"status": "ok"}
    models = httpx.get(f"{sim.url}/v1/models").json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "pgenrm-simulator"
    assert models["data"][0]["object"] == "model"
    assert models["data"][0]["owned_by"] == "pgenrm-simulator"


def test_n_choices_in_openai_format(sim: Simulator) -> None:
    response = chat(sim, body(n=5, some_unknown_field={"ignored": True}))
    data = response.json()
    assert data["object"] == "chat.completion" and data["model"] == "pgenrm-simulator"
    assert data["id"] and isinstance(data["created"], int)
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3, 4]
    assert {c["message"]["role"] for c in data["choices"]} == {"assistant"}
    assert {c["finish_reason"] for c in data["choices"]} == {"stop"}
    assert len({c["message"]["content"] for c in data["choices"]}) == 5  # choices differ
    usage = data["usage"]
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 5 * 100
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len(chat(sim, {"messages": body()["messages"]}).json()["choices"]) == 1  # n=1


def test_same_request_same_output(sim: Simulator) -> None:
    def contents(payload: dict[str, Any]) -> list[str]:
        return [c["message"]["content"] for c in chat(sim, payload).json()["choices"]]

    assert contents(body()) == contents(body())
    assert contents(body()) != contents(body(seed=12))
    greedy = contents(body(temperature=0))
    assert len(set(greedy)) == 1  # temperature 0: every choice is the greedy one


@pytest.mark.parametrize("candidates", [(SHORT, LONG), (SHORT, LONG, MEDIUM, LISTED)])
@pytest.mark.parametrize("kind", ["short", "long", None])
def test_valid_choices_parse_cleanly(
    sim: Simulator, candidates: tuple[str, ...], kind: str | None
) -> None:
    k = len(candidates)
    response = chat(sim, body(kind, candidates, n=8))
    for chain, choice in zip(chains(response, k), response.json()["choices"], strict=True):
        assert chain.flags == ()
        assert len(chain.candidates) == k and len(chain.criteria) == 4
        assert sum(c.weight for c in chain.criteria) == pytest.approx(100)
        assert all(len(c.scores) == 4 for c in chain.candidates)
        assert chain.persona.style and chain.persona.content_structure and chain.persona.values
        stated = json.loads(
            choice["message"]["content"].split("<JSON_START>")[1].split("<JSON_END>")[0]
        )
        assert [stated["better_response"][f"response_{i + 1}"] for i in range(k)] == pytest.approx(
            chain.overall, abs=0.01
        )
    if kind is None:
        assert "No preference history" in chain.persona.style


@pytest.mark.parametrize("order", ["short_first", "long_first"])
def test_history_decides_which_length_wins(sim: Simulator, order: str) -> None:
    candidates = (SHORT, LONG) if order == "short_first" else (LONG, SHORT)
    short_index = candidates.index(SHORT)
    for kind, expect_short in (("short", True), ("long", False)):
        found = chains(chat(sim, body(kind, candidates, n=16)), 2)
        short = statistics.mean(c.overall[short_index] for c in found)
        long = statistics.mean(c.overall[1 - short_index] for c in found)
        assert (short > long + 0.5) is expect_short and (long > short + 0.5) is not expect_short
        expected = "Conciseness" if expect_short else "Thoroughness"
        assert expected in {c.name for c in found[0].criteria}


def test_structure_preference_from_history(sim: Simulator) -> None:
    # Chosen and rejected say the same at the same length; only the layout differs.
    history = tuple(pair(q, f"- {s}\n- That is all.", f"{s} That is all.") for q, s, _ in QA)
    prose = "Heat the water to 80 °C, steep the leaves and wait for two minutes."
    listed = "- Heat the water to 80 °C.\n- Steep the leaves.\n- Wait two minutes."
    found = chains(chat(sim, body(history, (prose, listed), n=16)), 2)
    assert {"Clear Structure", "Appropriate Length"} <= {c.name for c in found[0].criteria}
    mean = [statistics.mean(c.overall[i] for c in found) for i in (0, 1)]
    assert mean[1] > mean[0] + 0.5


@pytest.mark.parametrize(
    "fields",
    [
        {"structured_outputs": {"json": {"type": "object"}}},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": {}}}},
    ],
)
def test_structured_outputs(sim: Simulator, fields: dict[str, Any]) -> None:
    response = chat(sim, body(candidates=(SHORT, LONG, MEDIUM), **fields))
    for choice in response.json()["choices"]:
        content = choice["message"]["content"]
        obj = json.loads(content)
        assert set(obj) == {"analysis", "rationale", "better_response"}
        assert set(obj["rationale"]) == {"criteria", "evaluations"}
        assert set(obj["rationale"]["evaluations"]) == {"response_1", "response_2", "response_3"}
        assert set(obj["analysis"]) == {"style", "content_structure", "values"}
        chain = parse_chain(content, 3)
        assert isinstance(chain, EvaluationChain), chain
        assert set(chain.flags) <= {"missing_start_marker", "missing_end_marker"}
        assert len(chain.criteria) == 4 and all(len(c.scores) == 4 for c in chain.candidates)
        wrapped = parse_chain(f"<JSON_START>\n{content}\n<JSON_END>", 3)  # as the backend does
        assert isinstance(wrapped, EvaluationChain) and wrapped.flags == ()
    assert sim.stats()["log"][-1]["structured"] is True
    chat(sim, body())
    assert sim.stats()["log"][-1]["structured"] is False


async def test_concurrent_requests_overlap(sim: Simulator) -> None:
    sim.configure(latency_s=0.3)
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                client.post(f"{sim.url}/v1/chat/completions", json=body(n=1 + i, seed=i))
                for i in range(8)
            )
        )
        elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 8
    assert elapsed >= 0.3
    stats = sim.stats()
    # they overlap: all eight in flight together, each held for the configured latency
    assert stats["max_in_flight"] >= 8 and stats["in_flight"] == 0
    assert max(e["start"] for e in stats["log"]) < min(e["end"] for e in stats["log"])
    assert all(e["end"] - e["start"] >= 0.29 for e in stats["log"])


async def test_max_concurrency_queues_requests(sim: Simulator) -> None:
    sim.configure(latency_s=0.15, max_concurrency=2)
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.monotonic()
        await asyncio.gather(
            *(client.post(f"{sim.url}/v1/chat/completions", json=body(n=1)) for _ in range(6))
        )
        elapsed = time.monotonic() - started
    assert elapsed >= 3 * 0.15 - 0.02  # three waves of two


def test_per_token_latency(sim: Simulator) -> None:
    sim.configure(per_output_token_s=0.0005, per_prompt_token_s=0.0002)
    started = time.monotonic()
    data = chat(sim, body(n=4)).json()
    elapsed = time.monotonic() - started
    floor = (
        0.0005 * data["usage"]["completion_tokens"] / 4 + 0.0002 * data["usage"]["prompt_tokens"]
    )
    assert floor > 0.2 and elapsed >= floor


def test_back_to_back_requests_at_zero_latency(sim: Simulator) -> None:
    payload = body(n=2)
    with httpx.Client(timeout=10) as client:
        for _ in range(100):
            assert client.post(f"{sim.url}/v1/chat/completions", json=payload).status_code == 200
    stats = sim.stats()
    assert stats["requests"] == 100 and stats["max_in_flight"] == 1 and stats["in_flight"] == 0


@pytest.mark.parametrize("status", [500, 400, 429, 503])
def test_error_and_status_faults(sim: Simulator, status: int) -> None:
    sim.configure(
        **({"error_rate": 1.0} if status == 500 else {"status_code": status, "status_rate": 1.0})
    )
    response = chat(sim, body())
    assert_openai_error(response, status)
    assert ("retry-after" in response.headers) is (status in (429, 503))
    assert sim.stats()["log"][-1]["fault"] == ("error" if status == 500 else f"status_{status}")
    assert sim.stats()["by_status"] == {str(status): 1}


def test_fault_draws_replay_with_the_seed(sim: Simulator) -> None:
    sim.configure(error_rate=0.5, fault_seed=3)

    def run() -> list[int]:
        return [chat(sim, body(n=1)).status_code for _ in range(16)]

    first = run()
    assert set(first) == {200, 500}
    sim.reset()
    assert run() == first


@pytest.mark.parametrize(
    ("kind", "reason", "finish"),
    [
        ("truncated", "truncated", "length"),
        ("prose", "no_json", "stop"),
        ("empty", "empty_output", "stop"),
    ],
)
def test_malformed_choices(sim: Simulator, kind: str, reason: str, finish: str) -> None:
    sim.configure(malformed_rate=1.0, malformed_kinds=[kind])
    response = chat(sim, body(n=6))
    assert {c["finish_reason"] for c in response.json()["choices"]} == {finish}
    found = outcomes(response, 2)
    assert {o.reason for o in found if isinstance(o, ParseFailure)} == {reason}
    assert len(found) == 6


def test_malformed_kinds_mix(sim: Simulator) -> None:
    sim.configure(malformed_rate=1.0)
    reasons = {o.reason for o in outcomes(chat(sim, body(n=24)), 2) if isinstance(o, ParseFailure)}
    assert reasons == {"truncated", "no_json", "empty_output"}
    sim.configure(malformed_rate=0.5)
    found = outcomes(chat(sim, body(n=24)), 2)
    assert 0 < sum(isinstance(o, ParseFailure) for o in found) < 24


def test_string_scores(sim: Simulator) -> None:
    sim.configure(string_score_rate=1.0)
    response = chat(sim, body())
    for chain in chains(response, 2):
        assert chain.flags == ("string_scores",)
    content = response.json()["choices"][0]["message"]["content"]
    assert '"response_1": "' in content
    structured = chat(sim, body(structured_outputs={"json": {}}))
    for chain in chains(structured, 2):
        assert "string_scores" in chain.flags


def test_down(sim: Simulator) -> None:
    sim.configure(down=True)
    assert httpx.get(f"{sim.url}/health").status_code == 503
    assert_openai_error(chat(sim, body()), 503)
    sim.configure(down=False)
    assert httpx.get(f"{sim.url}/health").status_code == 200
    assert chat(sim, body()).status_code == 200


def test_timeout_fault(sim: Simulator) -> None:
    sim.configure(timeout_rate=1.0, timeout_s=0.8)
    with pytest.raises(httpx.ReadTimeout):
        chat(sim, body(), timeout=0.2)
    sim.wait_idle()
    entry = sim.stats()["log"][-1]
    assert entry["fault"] == "timeout" and entry["end"] - entry["start"] >= 0.75


def test_max_tokens_truncates(sim: Simulator) -> None:
    response = chat(sim, body(max_tokens=40))
    assert {c["finish_reason"] for c in response.json()["choices"]} == {"length"}
    assert {o.reason for o in outcomes(response, 2) if isinstance(o, ParseFailure)} == {"truncated"}


def test_runtime_config(sim: Simulator) -> None:
    config = httpx.get(f"{sim.url}/sim/config").json()
    assert config["latency_s"] == 0 and config["max_concurrency"] == 256
    assert config["timeout_s"] == 30 and config["down"] is False
    updated = sim.configure(latency_s=0.01, status_code=503)
    assert updated["latency_s"] == 0.01 and updated["status_code"] == 503
    assert updated["max_concurrency"] == 256  # a partial update
    for bad in ({"no_such_setting": 1}, {"error_rate": 2}, {"latency_s": "fast"}, {"down": 1}):
        assert_openai_error(httpx.post(f"{sim.url}/sim/config", json=bad), 400)
    assert sim.config() == updated


def test_bad_requests_are_4xx(sim: Simulator) -> None:
    assert_openai_error(chat(sim, body(model="gpt-nothing")), 404)
    messages = body()["messages"]
    bad: dict[str, Any]
    for bad in (
        {"model": "pgenrm-simulator"},
        {"messages": []},
        {"messages": "hello"},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"messages": [{"role": "user", "content": 3}]},
        {"messages": messages, "n": 0},
        {"messages": messages, "n": "2"},
        {"messages": messages, "temperature": "hot"},
    ):
        assert_openai_error(chat(sim, bad), 400)
    raw = httpx.post(f"{sim.url}/v1/chat/completions", content=b"{not json", timeout=5)
    assert_openai_error(raw, 400)
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert chat(sim, {"messages": parts}).status_code == 200  # content parts are accepted
    assert sim.stats()["by_status"] == {"404": 1, "400": 9, "200": 1}


def test_stats_and_reset(sim: Simulator) -> None:
    chat(sim, body(n=3))
    chat(sim, body(structured_outputs={"json": {}}))
    stats = sim.stats()
    assert stats["requests"] == 2 and stats["by_status"] == {"200": 2}
    first, second = stats["log"]
    assert first["n"] == 3 and first["status"] == 200 and first["prompt_tokens"] > 100
    assert first["start"] <= first["end"] <= second["start"] <= second["end"]
    assert second["structured"] is True and stats["in_flight"] == 0
    # totals that outlive the log: choices and tokens of the answered requests
    assert stats["choices"] == first["n"] + second["n"]
    assert stats["prompt_tokens"] == first["prompt_tokens"] + second["prompt_tokens"]
    assert stats["completion_tokens"] == first["completion_tokens"] + second["completion_tokens"]
    sim.reset()
    assert sim.stats() == {
        "requests": 0,
        "by_status": {},
        "in_flight": 0,
        "max_in_flight": 0,
        "choices": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "log": [],
    }


def test_command_line_flags_and_determinism_across_processes(simulator: Simulator) -> None:
    flags: dict[str, Any] = {
        "latency_s": 0.01,
        "error_rate": 0.25,
        "malformed_kinds": ("empty", "prose"),
    }
    with Simulator(model="other-model", down=True, fault_seed=5, **flags) as other:
        assert httpx.get(f"{other.url}/health").status_code == 503  # started --down
        config = other.configure(down=False, error_rate=0.0)
        assert config["latency_s"] == 0.01 and config["fault_seed"] == 5
        assert config["malformed_kinds"] == ["empty", "prose"]
        assert httpx.get(f"{other.url}/v1/models").json()["data"][0]["id"] == "other-model"
        payload = {k: v for k, v in body().items() if k != "model"}
        here = chat(simulator, payload).json()["choices"]
        there = chat(other, payload).json()["choices"]
        assert [c["message"] for c in here] == [c["message"] for c in there]
    assert not other.running


def test_helper_reports_a_failed_start_and_kills() -> None:
    with pytest.raises(SimulatorStartError, match="error_rate must be between 0 and 1"):
        Simulator(error_rate=5).start()
    sim = Simulator().start()
    assert sim.running and httpx.get(f"{sim.url}/health").status_code == 200
    sim.kill()
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.url}/health")
    sim.stop()  # a second stop is harmless
