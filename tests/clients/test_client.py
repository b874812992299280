"""`pgenrm_client`'s clients: every endpoint against a real `pgenrm serve`, and the retry policy
against a real loopback server that fails on script."""

from __future__ import annotations

import asyncio
import json
import pickle
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pgenrm_client import (
    AsyncPgenrmClient,
    BadResponseError,
    DeadlineExceeded,
    PgenrmClient,
    RequestError,
    RetryPolicy,
    ServerError,
    UnavailableError,
    UnknownUserError,
    score_request,
)
from pgenrm_client._retry import retry_after_s
from pgenrm_client.types import GroupRef

from tests.clients.support import (
    Drop,
    FaultServer,
    Hang,
    Reply,
    fault_server,
    history,
    requests_total,
)
from tests.helpers import LONG, SHORT

slow = pytest.mark.slow  # the tests that use the real server (a subprocess)
PROMPT = "How long should I steep green tea?"
# Quick retries for the fault server: the policy's shape, not its default waits, is under test.
FAST = RetryPolicy(attempts=4, backoff_s=0.01, backoff_cap_s=0.05, jitter_s=0.0, deadline_s=30)


def user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- against the real server ----------------------------------------------------------------


@slow
def test_score_uses_the_stored_or_the_inline_history(server: str) -> None:
    with PgenrmClient(server) as client:
        terse = user("terse")
        client.put_user(terse, history("short"))
        stored = client.score(terse, [LONG, SHORT], prompt=PROMPT, return_traces="none")
        assert stored["history"] == {"source": "stored", "version": 1, "pairs": 4}
        assert [s["status"] for s in stored["scores"]] == ["ok", "ok"]
        assert stored["preferred"] == 1  # this user always chose the shorter answer
        inline = client.score(
            terse, [LONG, SHORT], prompt=PROMPT, history=history("long"), normalize="zscore"
        )
        assert inline["history"]["source"] == "inline"
        assert inline["preferred"] == 0  # the inline history prefers long answers
        rewards = [s["reward"] for s in inline["scores"]]
        assert rewards[0] is not None and rewards[1] is not None and rewards[0] > rewards[1]
        assert inline["traces"] is not None  # the server's default trace level when not asked


@slow
def test_users_round_trip(server: str) -> None:
    name = user("crud")
    with PgenrmClient(server) as client:
        created = client.put_user(name, history("short")[:2], {"cohort": "a"})
        assert (created["version"], created["pairs"], created["attributes"]) == (
            1,
            2,
            {"cohort": "a"},
        )
        patched = client.patch_user(name, history("short")[2:3], {"cohort": None, "seg": 3})
        assert (patched["version"], patched["pairs"], patched["attributes"]) == (2, 3, {"seg": 3})
        got = client.get_user(name)
        assert got["history"] is not None and len(got["history"]) == 3
        assert got["history"][2]["chosen"] == history("short")[2]["chosen"]
        assert client.delete_user(name)["deleted"] is True
        with pytest.raises(RequestError) as missing:
            client.get_user(name)
        assert missing.value.status == 404 and missing.value.attempts == 1
        with pytest.raises(UnknownUserError) as unknown:
            client.score(name, [SHORT], prompt=PROMPT)
        assert unknown.value.type == "unknown_user" and unknown.value.field == "user_id"
        cold = client.score(name, [SHORT], prompt=PROMPT, unknown_user="cold_start")
        # scored with no history (no prototype artefact is loaded here, so not a "cold start")
        assert cold["history"] == {"source": "none", "version": None, "pairs": 0}
        assert cold["scores"][0]["status"] == "ok"


@slow
def test_invalid_request_is_a_request_error_sent_once(server: str) -> None:
    before = requests_total(server, "/v1/score")
    with PgenrmClient(server) as client, pytest.raises(RequestError) as caught:
        client.score("u", [SHORT], prompt=PROMPT, scaling={"ind": 0, "pro": 0})
    assert caught.value.status == 422 and caught.value.field == "scaling"
    assert caught.value.is_client_error and caught.value.attempts == 1
    assert requests_total(server, "/v1/score") - before == 1


@slow
def test_batch_answers_each_item_on_its_own(server: str) -> None:
    items = [
        score_request("b1", [SHORT, LONG], prompt=PROMPT, history=history("short")),
        score_request("b2", [SHORT], prompt=PROMPT),  # no stored user: a 404 for this item alone
    ]
    with PgenrmClient(server) as client:
        out = client.score_batch(items)
    assert (out["ok"], out["failed"]) == (1, 1)
    first, second = out["results"]
    assert first["outcome"] == "ok" and first["response"] is not None
    assert len(first["response"]["scores"]) == 2
    assert second["outcome"] == "error" and second["status"] == 404
    assert second["error"] is not None and second["error"]["type"] == "unknown_user"


@slow
def test_get_reward_and_the_idempotency_key(server: str) -> None:
    name = user("orl")
    label = json.dumps({"user_id": name, "prompt": PROMPT})
    with PgenrmClient(server) as client:
        client.put_user(name, history("short"))
        before = requests_total(server, "/get_reward")
        out = client.get_reward([f"{PROMPT} {SHORT}</s>"], [PROMPT], [label])
        assert len(out["rewards"]) == len(out["scores"]) == 1
        assert 0.0 <= out["scores"][0] <= 1.0
        assert out["extra_logs"]["pgenrm_valid_samples"] == [2.0]  # PGENRM_DEFAULT_IND=2
        # a retry with the first call's key is answered from the server's record: same answer
        first = client.score(name, [SHORT, LONG], prompt=PROMPT, idempotency_key="k-" + name)
        again = client.score(name, [SHORT, LONG], prompt=PROMPT, idempotency_key="k-" + name)
        assert again == first  # latency_ms and the drawn seed included
        assert requests_total(server, "/get_reward") - before == 1


@slow
async def test_async_client_concurrent_calls_and_a_group(server: str) -> None:
    name = user("aio")
    async with AsyncPgenrmClient(server, max_in_flight=4) as client:
        assert (await client.health()) == {"status": "ok"}
        assert (await client.ready())["status"] in ("ready", "degraded")
        await client.put_user(name, history("long"))
        before = requests_total(server, "/v1/score")
        answers = await asyncio.gather(
            *(client.score(name, [SHORT, f"{LONG} ({i})"], prompt=PROMPT) for i in range(8))
        )
        assert all(a["preferred"] == 1 for a in answers)  # long answers, for this user
        assert requests_total(server, "/v1/score") - before == 8
        # two members of one group (2 calls), scored together: ranks span both
        group: GroupRef = {"id": uuid.uuid4().hex, "size": 2}
        a, b = await asyncio.gather(
            client.score(name, [SHORT], prompt=PROMPT, group=group),
            client.score(name, [LONG], prompt=PROMPT, group=group),
        )
    for member in (a, b):
        assert member["group"] is not None
        assert (member["group"]["arrived"], member["group"]["candidates"]) == (2, 2)
    assert {a["scores"][0]["rank"], b["scores"][0]["rank"]} == {1, 2}


# -- the retry policy, against a scripted fault server ----------------------------------------


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


OK: dict[str, Any] = {"user_id": "u", "scores": []}


def test_503_and_429_are_retried_with_one_idempotency_key(faults: FaultServer) -> None:
    faults.play(
        Reply.error(503, "unavailable", **{"Retry-After": "0"}),
        Reply.error(429, "rate_limited", **{"Retry-After": "0"}),
        Reply.error(500, "internal_error"),
        Reply.json(200, OK),
    )
    with PgenrmClient(faults.url, retry=FAST) as client:
        assert client.score("u", [SHORT], prompt=PROMPT) == OK
    keys = faults.keys()
    assert len(keys) == 4 and keys[0] is not None and len(set(keys)) == 1
    uuid.UUID(keys[0])  # a fresh uuid4 unless the caller gives one
    assert all(a.body == faults.attempts[0].body for a in faults.attempts)


def test_each_logical_call_has_its_own_key_or_the_callers(faults: FaultServer) -> None:
    faults.play(Reply.json(200, OK))
    with PgenrmClient(faults.url, retry=FAST) as client:
        client.score("u", [SHORT], prompt=PROMPT)
        client.score("u", [SHORT], prompt=PROMPT)
        client.get_reward(["q a"], ["q"], ["u"], idempotency_key="mine")
        client.score_batch([score_request("u", [SHORT], prompt=PROMPT)])
    keys = faults.keys()
    assert len(keys) == 4 and len(set(keys)) == 4 and keys[2] == "mine"


def test_dropped_connections_are_retried(faults: FaultServer) -> None:
    faults.play(Drop(), Drop(), Reply.json(200, OK))
    with PgenrmClient(faults.url, retry=FAST) as client:
        assert client.get_reward(["q a"], ["q"], ["u"]) == OK
    assert len(faults.attempts) == 3 and len(set(faults.keys())) == 1


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (400, "malformed_body", RequestError),
        (401, "unauthorized", RequestError),
        (404, "unknown_user", UnknownUserError),
        (422, "invalid_request", RequestError),
    ],
)
def test_4xx_is_not_retried(
    faults: FaultServer, status: int, kind: str, error: type[RequestError]
) -> None:
    faults.play(Reply.error(status, kind), Reply.json(200, OK))
    with PgenrmClient(faults.url, retry=FAST) as client, pytest.raises(error) as caught:
        client.score("u", [SHORT], prompt=PROMPT)
    assert len(faults.attempts) == 1
    assert (caught.value.status, caught.value.type, caught.value.attempts) == (status, kind, 1)


def test_an_answer_that_does_not_parse_is_not_retried(faults: FaultServer) -> None:
    faults.play(Reply(200, b"<html>proxy</html>"), Reply.json(200, OK))
    with PgenrmClient(faults.url, retry=FAST) as client, pytest.raises(BadResponseError):
        client.score("u", [SHORT], prompt=PROMPT)
    assert len(faults.attempts) == 1


def test_the_last_error_is_raised_when_attempts_run_out(faults: FaultServer) -> None:
    faults.play(Reply.error(503, "unavailable", **{"Retry-After": "0"}))
    with PgenrmClient(faults.url, retry=FAST) as client, pytest.raises(UnavailableError) as caught:
        client.score("u", [SHORT], prompt=PROMPT)
    assert len(faults.attempts) == FAST.attempts == caught.value.attempts
    assert caught.value.status == 503 and caught.value.retry_after == 0.0
    assert isinstance(caught.value, ServerError) and not caught.value.is_client_error


def test_retry_after_is_honoured(faults: FaultServer) -> None:
    faults.play(Reply.error(429, "rate_limited", **{"Retry-After": "1"}), Reply.json(200, OK))
    started = time.monotonic()
    with PgenrmClient(faults.url, retry=FAST) as client:
        assert client.score("u", [SHORT], prompt=PROMPT) == OK
    assert time.monotonic() - started >= 1.0  # waited the server's second, not FAST's backoff
    assert len(faults.attempts) == 2


def test_the_deadline_stops_the_retries(faults: FaultServer) -> None:
    faults.play(Reply.error(503, "unavailable"))  # no Retry-After: the backoff applies
    policy = RetryPolicy(attempts=1000, backoff_s=0.05, backoff_cap_s=0.1, deadline_s=1.0)
    with (
        PgenrmClient(faults.url, retry=policy) as client,
        pytest.raises(DeadlineExceeded) as caught,
    ):
        client.score("u", [SHORT], prompt=PROMPT)
    # Every attempt the server saw is counted; the last may be cut by the deadline (a read
    # timeout) before a loaded server records it.
    seen = len(faults.attempts)
    assert 1 < seen <= caught.value.attempts <= seen + 1 < 1000
    assert isinstance(caught.value.last_error, UnavailableError)
    assert isinstance(caught.value, TimeoutError) and len(set(faults.keys())) == 1


def test_a_retry_after_beyond_the_deadline_is_not_waited(faults: FaultServer) -> None:
    faults.play(Reply.error(503, "unavailable", **{"Retry-After": "30"}), Reply.json(200, OK))
    policy = RetryPolicy(attempts=5, deadline_s=5.0)
    with (
        PgenrmClient(faults.url, retry=policy) as client,
        pytest.raises(DeadlineExceeded) as caught,
    ):
        client.score("u", [SHORT], prompt=PROMPT)
    assert len(faults.attempts) == caught.value.attempts == 1


def test_each_attempt_timeout_is_clipped_to_the_deadline(faults: FaultServer) -> None:
    faults.play(Hang())
    policy = RetryPolicy(attempts=5, read_timeout_s=600, deadline_s=0.5)
    with (
        PgenrmClient(faults.url, retry=policy) as client,
        pytest.raises(DeadlineExceeded) as caught,
    ):
        client.score("u", [SHORT], prompt=PROMPT)
    assert len(faults.attempts) == caught.value.attempts == 1
    assert isinstance(caught.value.last_error, UnavailableError)
    assert caught.value.last_error.type == "connection_failed"


def test_a_refused_connection_is_retried_then_reported() -> None:
    with fault_server() as gone:
        url = gone.url
    with PgenrmClient(url, retry=FAST) as client, pytest.raises(UnavailableError) as caught:
        client.health()  # probes make one attempt
    assert caught.value.status is None and caught.value.attempts == 1
    with PgenrmClient(url, retry=FAST) as client, pytest.raises(UnavailableError) as caught:
        client.score("u", [SHORT], prompt=PROMPT)
    assert caught.value.attempts == FAST.attempts


def test_patch_carries_one_key_across_its_retries(faults: FaultServer) -> None:
    """The server applies an append once per Idempotency-Key, so a PATCH retries like a score."""
    info = {"user_id": "u", "version": 2, "pairs": 1, "attributes": {}, "updated_at": 0.0}
    faults.play(Reply.error(500, "internal_error"), Drop(), Reply.json(200, info))
    with PgenrmClient(faults.url, retry=FAST) as client:
        assert client.patch_user("u", history("short")[:1])["version"] == 2
    assert len(faults.attempts) == 3
    keys = set(faults.keys())
    assert len(keys) == 1 and None not in keys


async def test_async_client_shares_the_policy(faults: FaultServer) -> None:
    faults.play(
        Drop(), Reply.error(503, "unavailable", **{"Retry-After": "0"}), Reply.json(200, OK)
    )
    async with AsyncPgenrmClient(faults.url, retry=FAST, api_key="secret") as client:
        assert await client.score("u", [SHORT], prompt=PROMPT) == OK
        faults.play(Reply.error(422, "invalid_request"))
        with pytest.raises(RequestError):
            await client.score("u", [SHORT], prompt=PROMPT)
    assert len(faults.attempts) == 1


def test_requests_carry_the_bearer_key_and_the_user_id_escaped(faults: FaultServer) -> None:
    info = {"user_id": "a/b c", "deleted": True, "cached_entries_dropped": 0}
    faults.play(Reply.json(200, info))
    with PgenrmClient(faults.url + "/", api_key="secret", retry=FAST) as client:
        client.delete_user("a/b c")
    [attempt] = faults.attempts
    assert attempt.headers["Authorization"] == "Bearer secret"
    assert (attempt.method, attempt.path) == ("DELETE", "/v1/users/a%2Fb%20c")
    assert attempt.headers["User-Agent"].startswith("pgenrm-client/")


def test_backoff_and_retry_after_arithmetic() -> None:
    policy = RetryPolicy(backoff_s=0.5, backoff_cap_s=30, jitter_s=0.5, retry_after_cap_s=60)
    assert [policy.delay(n, None, lambda: 0.0) for n in range(8)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0,
    ]  # fmt: skip
    assert policy.delay(0, None, lambda: 1.0) == 1.0  # + uniform jitter up to jitter_s
    assert policy.delay(3, 7.0, lambda: 0.0) == 7.0  # Retry-After replaces the backoff
    assert policy.delay(0, 3600.0, lambda: 0.0) == 60.0  # capped
    assert retry_after_s("2") == 2.0 and retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert retry_after_s("soon") is None


def test_errors_keep_their_details_across_pickling() -> None:
    """Ray and multiprocessing ship a reward function's exceptions between processes."""
    last = UnavailableError("busy", status=503, type="unavailable", retry_after=2.0, attempts=3)
    error = DeadlineExceeded("out of time", last_error=last, attempts=3)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is DeadlineExceeded and str(copy) == str(error)
    assert (copy.attempts, copy.status, copy.type) == (3, 503, "deadline_exceeded")
    assert isinstance(copy.last_error, UnavailableError) and copy.last_error.retry_after == 2.0
