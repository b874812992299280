"""The session-affinity header: every backend call carries a keyed hash of its routing key (the
user for Ind-N samples), so a session-routing router (vLLM production-stack's
`--routing-logic session --session-key x-user-id`) keeps a user's prompts on one replica;
never the raw id. Checked on what the simulator received over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.config import Settings
from service.testing._simulator_settings import LLAMA_CPP
from service.testing.simulator_process import Simulator
from tests.helpers import LONG, SHORT, wait_ready

USERS = ["alice@example.com", "bob@example.com", "carol@example.com"]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(**LLAMA_CPP) as sim:  # n ignored: each score's top-ups are calls too
        yield sim


def score_each(sim: Simulator, settings: Settings, rounds: int = 2) -> list[dict[str, Any]]:
    """Score every user `rounds` times at Ind-2; the requests the simulator got, in order,
    each with the user it was for."""
    sent: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        for _ in range(rounds):
            for user in USERS:
                sim.reset()
                body = {
                    "user_id": user,
                    "history": [],
                    "prompt": "Tea?",
                    "candidates": [LONG, SHORT],
                }
                assert client.post("/v1/score", json=body).status_code == 200
                sent += [{**entry, "user": user} for entry in sim.stats()["log"]]
    return sent


def settings_for(sim: Simulator, **overrides: Any) -> Settings:
    return Settings(
        backend="openai",
        openai_urls=[sim.url],
        openai_health_interval_s=0.2,
        default_ind=2,
        **overrides,
    )


def test_every_call_carries_a_stable_keyed_hash_of_the_user_never_the_id(sim: Simulator) -> None:
    sent = score_each(sim, settings_for(sim))
    assert len(sent) == 2 * len(USERS) * 2  # each Ind-2 score: one request and one top-up
    values: dict[str, set[str]] = {}
    for entry in sent:
        value = entry["headers"]["x-user-id"]  # on every call, top-ups included
        values.setdefault(entry["user"], set()).add(value)
        assert entry["user"] not in value and entry["user"].split("@")[0] not in value
        assert len(value) == 32 and int(value, 16) >= 0  # 128 bits of a hex digest
    assert all(len(v) == 1 for v in values.values())  # stable per user, across scores
    assert len({next(iter(v)) for v in values.values()}) == len(USERS)  # distinct across users


def test_the_header_and_its_key_are_settings(sim: Simulator) -> None:
    default = score_each(sim, settings_for(sim), rounds=1)
    keyed = score_each(
        sim,
        settings_for(sim, openai_affinity_header="x-session-id", openai_affinity_key="s3cret"),
        rounds=1,
    )
    assert all("x-user-id" not in e["headers"] for e in keyed)
    hashed = {e["user"]: e["headers"]["x-user-id"] for e in default}
    rekeyed = {e["user"]: e["headers"]["x-session-id"] for e in keyed}
    assert all(hashed[u] != rekeyed[u] for u in USERS)  # another key, other values
    off = score_each(sim, settings_for(sim, openai_affinity_header=""), rounds=1)
    assert all(not e["headers"] for e in off)
