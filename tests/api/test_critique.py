"""POST /v1/critique/reward and its batch form on the real app and embedded critic."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.critic import SIMILARITY_THRESHOLD
from service.backends.embedded.params import load_params
from service.core.config import Settings
from service.core.embedder import Embedder
from service.testing.simulator_process import Simulator
from tests.critique.test_embedded_reward import GOOD, HUMAN, PROMPT, R1, R2
from tests.engine.fakes import ScriptedBackend
from tests.helpers import api_keys, bearer, wait_ready

URL = "/v1/critique/reward"


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "prompt": PROMPT,
        "responses": [R1, R2],
        "critique": GOOD,
        "human_choice": 1,
        "human_critique": HUMAN,
    }
    return {k: v for k, v in (base | fields).items() if v is not ...}


def test_a_critique_with_the_humans_reasons_earns_1_5(client: TestClient) -> None:
    r = client.post(URL, json=body())
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["outcome"], out["format_ok"], out["format_error"]) == (1, True, None)
    assert (out["model_choice"], out["critique_choice"], out["human_choice"]) == (1, 1, 1)
    assert [(a["target"], a["polarity"]) for a in out["human_arguments"]] == [
        ("1", "positive"),
        ("2", "negative"),
    ]
    assert [(m["model"], m["human"]) for m in out["matches"]] == [(0, 0), (1, 1)]
    assert (out["precision"], out["recall"], out["f1"]) == (1.0, 1.0, 1.0)
    assert (out["process"], out["reward"]) == (0.5, 1.5)
    assert out["thresholds"] == {"f1": 0.5, "similarity": SIMILARITY_THRESHOLD}
    assert out["critic"] == "embedded" and out["model"].startswith("pgenrm-critic/rules+")


def test_choices_chains_and_format_errors(client: TestClient) -> None:
    chain = {"better_response": {"response_1": 4, "response_2": 7}, "rationale": "short"}
    out = client.post(URL, json=body(critique=chain, human_choice="B")).json()
    assert (out["model_choice"], out["outcome"], out["reward"]) == (2, 1, 1.0)
    wrong = client.post(URL, json=body(model_choice="response_2")).json()
    assert (wrong["outcome"], wrong["process"], wrong["reward"]) == (0, 0.0, 0.0)
    unread = client.post(URL, json=body(critique="They both have merits.")).json()
    assert (unread["format_ok"], unread["format_error"], unread["reward"]) == (
        False,
        "no_choice",
        -1.0,
    )
    alone = client.post(URL, json=body(human_critique=...)).json()
    assert (alone["f1"], alone["human_arguments"], alone["reward"]) == (None, [], 1.0)
    context = [{"role": "user", "content": PROMPT}]
    by_context = client.post(URL, json=body(prompt=..., context=context)).json()
    assert by_context["reward"] == 1.5


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"human_choice": ...}, "human_choice"),
        ({"human_choice": 3}, "human_choice"),
        ({"model_choice": "C"}, "model_choice"),
        ({"responses": [R1]}, "responses"),
        ({"responses": [R1, R2, R1]}, "responses"),
        ({"responses": [R1, ""]}, "responses[1]"),
        ({"prompt": ...}, "prompt"),
        ({"context": [{"role": "user", "content": "q"}]}, "prompt"),
        ({"critique": 42}, "critique"),
        ({"verdict": 1}, "verdict"),
        ({"critique": "x" * 2_001}, "critique"),  # the fixture's max_text_chars is 2,000
        ({"human_critique": "y" * 2_001}, "human_critique"),
    ],
)
def test_bad_input_is_a_422_in_the_envelope(
    client: TestClient, fields: dict[str, Any], field: str
) -> None:
    r = client.post(URL, json=body(**fields))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request" and error["field"] == field, error


def test_batch_items_in_order_with_their_own_status(client: TestClient) -> None:
    items = [body(), body(responses=...), body(critique="no verdict"), {"not": "a critique"}]
    r = client.post(f"{URL}/batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["status"] for x in out["results"]] == [200, 422, 200, 422]
    assert (out["ok"], out["failed"]) == (2, 2)
    assert out["results"][0]["response"]["reward"] == 1.5
    assert out["results"][1]["error"]["field"] == "items[1].responses"
    assert out["results"][2]["response"]["reward"] == -1.0
    too_long = client.post(f"{URL}/batch", json={"items": [body(critique="z" * 2_001)]}).json()
    assert too_long["results"][0]["error"]["field"] == "items[0].critique"


def test_batch_bounds(client: TestClient) -> None:
    r = client.post(f"{URL}/batch", json={"items": [body()] * 65})
    assert r.status_code == 422 and r.json()["error"]["field"] == "items"
    r = client.post(f"{URL}/batch", json={"items": []})
    assert r.status_code == 422 and r.json()["error"]["field"] == "items"


def test_with_keys_the_score_scope_is_needed(embedder: Embedder) -> None:
    keys = api_keys(
        {"name": "trainer", "secret": "s-score", "scopes": ["score"]},
        {"name": "analyst", "secret": "s-compare", "scopes": ["compare"]},
    )
    app = create_app(
        Settings(api_keys=keys, max_text_chars=2_000),
        backend=EmbeddedBackend(lambda: embedder, load_params()),
    )
    with TestClient(app, raise_server_exceptions=False) as keyed:
        wait_ready(keyed)
        assert keyed.post(URL, json=body()).status_code == 401
        r = keyed.post(URL, json=body(), headers=bearer("s-compare"))
        assert r.status_code == 403 and "`score` scope" in r.json()["error"]["message"]
        assert keyed.post(URL, json=body(), headers=bearer("s-score")).status_code == 200
        docs = keyed.get("/openapi.json").json()["paths"]
        assert {"403", "409", "422", "503"} <= set(docs[URL]["post"]["responses"])


def test_the_openai_backend_critiques_through_its_workers(embedder: Embedder) -> None:
    with Simulator() as sim:
        settings = Settings(
            backend="openai",
            openai_urls=[sim.url],
            openai_model="pgenrm-simulator",
            openai_health_interval_s=0.2,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            wait_ready(client)
            r = client.post(URL, json=body())
            assert r.status_code == 200, r.text
            out = r.json()
            assert (out["critic"], out["model"], out["reward"]) == (
                "openai",
                "pgenrm-simulator",
                1.5,
            )
            assert out["thresholds"]["similarity"] == 0.5
            assert sim.stats()["requests"] == 3
            sim.configure(malformed_rate=1.0, malformed_kinds=["prose"])
            failed = client.post(URL, json=body())
            assert failed.status_code == 502 and failed.json()["error"]["type"] == "scoring_failed"


def test_a_backend_without_a_critic_is_a_409() -> None:
    app = create_app(Settings(), backend=ScriptedBackend(lambda group, n: ["{}"] * group.n))
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        r = client.post(URL, json=body())
        assert r.status_code == 409 and r.json()["error"]["type"] == "conflict"


def test_texts_echoed_from_a_chain_object_are_valid_json(client: TestClient) -> None:
    """A chain object's values are not validated as strings: a lone surrogate in a
    justification comes back as U+FFFD, never as a 500."""
    raw = (
        '{"prompt": "q", "responses": ["a", "b"], "human_choice": 2, "critique": '
        '{"criteria": [{"name": "Clarity", "weight": 100}], "candidates": ['
        '{"overall": 3, "scores": [{"criterion": "Clarity", "score": 3, "justification": "x\\ud800"}]},'
        '{"overall": 8, "scores": [{"criterion": "Clarity", "score": 8, "justification": "clear"}]}]}}'
    )
    r = client.post(URL, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    texts = [a["text"] for a in r.json()["model_arguments"]]
    assert texts == ["Clarity: x\ufffd", "Clarity: clear"]
