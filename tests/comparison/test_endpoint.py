"""POST /v1/compare on the real app and embedded backend: answers, bounds, the `compare` scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.comparison.results import EVERY_OTHER, Comparison
from service.core.config import Settings
from service.core.criteria import KEYS
from service.core.embedder import Embedder
from tests.helpers import LONG, SHORT, api_keys, bearer, history_json, wait_ready
from tests.prototypes.tiny import write_tiny_artefact

Body = dict[str, Any]
PROMPTS = ("How long should I steep green tea?", "How do I brew oolong?", "Tea?")
MID = "Steep it for two to three minutes in water just off the boil."


def start(embedder: Embedder, **settings: Any) -> TestClient:
    defaults: dict[str, Any] = {"max_candidates": 4, "max_history": 5, "max_text_chars": 2_000}
    app = create_app(
        Settings(**(defaults | settings)), backend=EmbeddedBackend(lambda: embedder, load_params())
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(embedder: Embedder) -> Iterator[TestClient]:
    with start(embedder) as c:
        wait_ready(c)
        yield c


def rows(**extra: Any) -> list[dict[str, Any]]:
    """Three prompts for a user who always chose the short answer, three for one who chose the
    long one; the variants are a short, a long and a middling answer."""
    out = []
    for user, kind, plan in (("terse", "short", "pro"), ("verbose", "long", "free")):
        for prompt in PROMPTS:
            out.append(
                {
                    "user_id": user,
                    "history": history_json(kind),
                    "prompt": prompt,
                    "variants": {"short": SHORT, "long": LONG, "mid": MID},
                    "attributes": {"plan": plan},
                }
                | extra
            )
    return out


def win_rate(report: Comparison, variant: str, scope: str, group: str) -> float | None:
    [found] = [
        s
        for s in report.pairs
        if (s.variant, s.against, s.scope, s.group) == (variant, EVERY_OTHER, scope, group)
    ]
    return found.win_rate


def test_each_user_prefers_the_variant_their_history_leans_to(client: TestClient) -> None:
    r = client.post("/v1/compare", json={"rows": rows(), "segment": "plan"})
    assert r.status_code == 200, r.text
    report = Comparison.model_validate(r.json())
    assert report.variants == ["short", "long", "mid"] and report.baseline is None
    assert (report.rows, report.compared, report.failed) == (6, 6, 0)
    assert report.scorer.startswith("embedded:")
    terse_short, terse_long = (win_rate(report, v, "user", "terse") for v in ("short", "long"))
    assert terse_short is not None and terse_long is not None and terse_short > terse_long
    verbose_short, verbose_long = (
        win_rate(report, v, "user", "verbose") for v in ("short", "long")
    )
    assert verbose_short is not None and verbose_long is not None and verbose_long > verbose_short
    assert win_rate(report, "short", "segment", "pro") == terse_short
    assert {d.key for d in report.drivers} <= set(KEYS)
    assert len(report.uncertain) == 6 and report.uncertain[0].margin <= report.uncertain[-1].margin


def test_a_baseline_and_stored_users_with_their_attributes(client: TestClient) -> None:
    stored = {"history": history_json("short"), "attributes": {"plan": "team"}}
    assert client.put("/v1/users/stored-terse", json=stored).status_code == 200
    body = {
        "rows": [
            {"user_id": "stored-terse", "prompt": p, "variants": {"long": LONG, "short": SHORT}}
            for p in PROMPTS
        ]
        + [{"user_id": "nobody", "prompt": "Tea?", "variants": {"long": LONG, "short": SHORT}}],
        "baseline": "long",
        "segment": "plan",
        "scaling": {"ind": 2},
    }
    r = client.post("/v1/compare", json=body)
    assert r.status_code == 200, r.text
    report = Comparison.model_validate(r.json())
    assert report.baseline == "long" and {(s.variant, s.against) for s in report.pairs} == {
        ("short", "long")
    }
    assert {s.group for s in report.pairs if s.scope == "segment"} == {"team"}
    assert report.failed == 1 and "nobody" in report.failures[0].reason
    assert report.compared == 3


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda b: b | {"rows": b["rows"] * 11}, "rows", "limit of 64"),
        (
            lambda b: b | {"rows": [b["rows"][0] | {"variants": {str(i): "x" for i in range(5)}}]},
            "rows[0].variants",
            "limit of 4",
        ),
        (
            lambda b: b | {"rows": [b["rows"][0] | {"variants": {"A": "x" * 2_001, "B": "y"}}]},
            "rows[0].variants.A",
            "PGENRM_MAX_TEXT_CHARS",
        ),
        (
            lambda b: b | {"rows": [b["rows"][0] | {"history": history_json("long") * 2}]},
            "rows[0].history",
            "PGENRM_MAX_HISTORY",
        ),
        (
            lambda b: b | {"rows": [b["rows"][0] | {"prompt": "z" * 2_001}]},
            "rows[0].prompt",
            "2,000",
        ),
        (lambda b: b | {"baseline": "nope"}, "baseline", "no variant is named 'nope'"),
        (lambda b: b | {"rows": [b["rows"][0] | {"variants": {"A": "x"}}]}, "rows[0].variants", ""),
        (
            lambda b: b | {"rows": [{"prompt": "x", "variants": {"a": "1", "b": "2"}}]},
            "rows[0]",
            "",
        ),
    ],
)
def test_over_the_bounds_or_invalid_is_a_422_in_the_envelope(
    client: TestClient, change: Callable[[Body], Body], field: str, words: str
) -> None:
    r = client.post("/v1/compare", json=change({"rows": rows()}))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request" and error["field"] == field
    assert words in error["message"]


def test_with_keys_the_compare_scope_is_needed(embedder: Embedder) -> None:
    keys = api_keys(
        {"name": "scorer", "secret": "s-score", "scopes": ["score"]},
        {"name": "analyst", "secret": "s-compare", "tenant": "team-a", "scopes": ["compare"]},
    )
    body = {"rows": rows()[:2], "scaling": {"ind": 2}}
    with start(embedder, api_keys=keys) as keyed:
        wait_ready(keyed)
        assert keyed.post("/v1/compare", json=body).status_code == 401
        r = keyed.post("/v1/compare", json=body, headers=bearer("s-score"))
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
        assert "`compare` scope" in r.json()["error"]["message"]
        assert keyed.post("/v1/compare", json=body, headers=bearer("s-compare")).status_code == 200
        # the analyst's tenant has no stored users of the default tenant's
        stored = {
            "rows": [
                {"user_id": "stored-terse", "prompt": "Tea?", "variants": {"a": "1", "b": "2"}}
            ]
        }
        r = keyed.post("/v1/compare", json=stored, headers=bearer("s-compare"))
        assert r.status_code == 200 and r.json()["failed"] == 1


def test_the_openapi_documents_the_answer(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/compare"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Comparison"
    )
    assert {"403", "422"} <= set(post["responses"])


def test_with_prototypes_the_default_segment_is_the_nearest_prototype(
    embedder: Embedder, tmp_path: Path
) -> None:
    write_tiny_artefact(tmp_path / "protos")
    with start(embedder, prototypes_dir=tmp_path / "protos", prototypes_watch_s=0) as c:
        wait_ready(c)
        r = c.post("/v1/compare", json={"rows": rows(), "scaling": {"ind": 2, "pro": 2}})
    assert r.status_code == 200, r.text
    report = Comparison.model_validate(r.json())
    assert report.segment == "prototype"
    groups = {s.group for s in report.pairs if s.scope == "segment"}
    assert groups and all(g.startswith("prototype-") for g in groups)
