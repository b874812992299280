"""Routing and circuit breaking, without a network."""

from __future__ import annotations

from collections import Counter

import pytest

from service.backends.openai.workers import CircuitBreaker, Worker, normalise_url, rendezvous_order
from service.core.config import Settings


def workers(n: int) -> list[Worker]:
    return [Worker(f"http://w{i}:8000", CircuitBreaker()) for i in range(n)]


def test_rendezvous_is_stable_and_spreads_users() -> None:
    pool = workers(4)
    first = Counter(rendezvous_order(f"user-{u}", pool)[0].url for u in range(2000))
    assert set(first) == {w.url for w in pool} and min(first.values()) > 400
    # Removing a worker moves only its own users, each to their next choice.
    for u in range(200):
        key = f"user-{u}"
        before = rendezvous_order(key, pool)
        after = rendezvous_order(key, pool[1:])
        assert after == [w for w in before if w is not pool[0]]


def test_circuit_breaker_opens_then_half_opens() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=lambda: now[0])
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed" and breaker.allows()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allows() and breaker.retry_after() == 10
    now[0] = 10.5
    assert breaker.state == "half-open" and breaker.allows()
    breaker.record_failure()  # the probe failed: open again, for a full cooldown
    assert breaker.state == "open"
    now[0] = 21
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_urls_are_normalised() -> None:
    assert normalise_url("http://vllm:8000/v1/") == "http://vllm:8000"
    assert normalise_url(" http://vllm:8000 ") == "http://vllm:8000"


def test_openai_settings_need_urls_and_split_commas() -> None:
    with pytest.raises(ValueError, match="PGENRM_OPENAI_URLS"):
        Settings(backend="openai")
    s = Settings(backend="openai", openai_urls="http://a:8000/v1, http://b:8000/v1")
    assert s.openai_urls == ["http://a:8000/v1", "http://b:8000/v1"]
