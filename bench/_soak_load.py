"""What `bench.soak` sends: fresh random texts (so caches keep filling) in every request shape.

Each `Op` is one arrival of the open-loop schedule: one or more HTTP calls of a kind (an inline
score, a stored-user action, a batch, an OpenRLHF call, a group's members sent together), or a
maximum-size score from the heavy key. Every call is timed from the arrival's scheduled time
(an open loop: a server that falls behind is charged for the queue it built).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

_LETTERS = "kalominesutaripovedafeguhijobazewyquxoce"
_SYLLABLES = [_LETTERS[i : i + 2] for i in range(0, len(_LETTERS), 2)]
_JOINERS = [", and", ", but", ";", " because", ", so", ". Then", ". Also"]


@dataclass
class Call:
    """One HTTP call's outcome: what it was, how it ended, how long since its arrival."""

    phase: str
    client: str  # normal or heavy
    kind: str
    status: int  # 0: no answer (transport error or client timeout)
    latency_s: float


class Texts:
    """Slices of a random-word corpus behind a serial number: every text is new (no cache has
    seen it), and making one costs next to nothing (the heavy bodies hold ~2 MB of text)."""

    def __init__(self, rng: random.Random, corpus_chars: int = 1 << 20) -> None:
        self.rng = rng
        self.counter = 0
        words: list[str] = []
        size = 0
        while size < corpus_chars:
            word = "".join(rng.choices(_SYLLABLES, k=rng.randint(1, 3)))
            if len(words) % 9 == 8:
                word += rng.choice(_JOINERS)
            words.append(word)
            size += len(word) + 1
        self._corpus = " ".join(words)

    def chars(self, n: int) -> str:
        """A new text of about `n` characters."""
        self.counter += 1
        start = self._corpus.find(" ", self.rng.randrange(len(self._corpus) - n - 1)) + 1
        return f"#{self.counter} " + self._corpus[start : start + n].rstrip() + "."

    def words(self, n: int) -> str:
        return self.chars(6 * n)

    def answer(self) -> str:
        return self.words(self.rng.randint(20, 90))

    def prompt(self) -> str:
        return "How should I " + self.words(self.rng.randint(5, 15)) + "?"

    def pair(self) -> dict[str, str]:
        return {"prompt": self.prompt(), "chosen": self.answer(), "rejected": self.answer()}

    def history(self, lo: int = 3, hi: int = 6) -> list[dict[str, str]]:
        return [self.pair() for _ in range(self.rng.randint(lo, hi))]


@dataclass
class Load:
    """The request mix of the soak, sent through two clients (two API keys)."""

    normal: httpx.AsyncClient
    heavy: httpx.AsyncClient
    texts: Texts
    heavy_chars: int
    record: Callable[[Call], None]
    phase: str = "baseline"
    users: list[str] = field(default_factory=list)  # stored users that exist now
    max_users: int = 100

    async def _call(
        self,
        client: str,
        kind: str,
        arrived: float,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        http = self.heavy if client == "heavy" else self.normal
        phase = self.phase
        try:
            response = await http.request(method, path, json=body, headers=headers)
            status = response.status_code
            await response.aclose()
        except httpx.HTTPError:
            status = 0
        except asyncio.CancelledError:  # the run ended first: no answer
            self.record(Call(phase, client, kind, 0, time.perf_counter() - arrived))
            raise
        self.record(Call(phase, client, kind, status, time.perf_counter() - arrived))
        return status

    def _score_body(self, user: str, history: list[dict[str, str]] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_id": user,
            "prompt": self.texts.prompt(),
            "candidates": [self.texts.answer() for _ in range(self.texts.rng.randint(2, 4))],
            "scaling": {"ind": 4},
            "return_traces": self.texts.rng.choice(["none", "summary"]),
        }
        if history is not None:
            body["history"] = history
        return body

    async def score(self, arrived: float) -> None:
        user = f"inline-{self.texts.rng.randrange(1000)}"
        body = self._score_body(user, self.texts.history())
        await self._call("normal", "score", arrived, "POST", "/v1/score", body)

    async def stored(self, arrived: float) -> None:
        """One stored-user action: create, append (idempotent), read, score with, or forget."""
        rng = self.texts.rng
        action = rng.random()
        if len(self.users) < 10 or action < 0.25:
            user = f"stored-{uuid.uuid4().hex[:12]}"
            body = {"history": self.texts.history(4, 8), "attributes": {"cohort": "soak"}}
            status = await self._call(
                "normal", "user_put", arrived, "PUT", f"/v1/users/{user}", body
            )
            if status == 200:
                self.users.append(user)
            if len(self.users) > self.max_users:
                await self._forget(arrived)
            return
        user = rng.choice(self.users)
        if action < 0.45:
            body = {"append": [self.texts.pair() for _ in range(2)]}
            key = {"Idempotency-Key": uuid.uuid4().hex}
            path = f"/v1/users/{user}"
            await self._call("normal", "user_patch", arrived, "PATCH", path, body, key)
        elif action < 0.6:
            await self._call("normal", "user_get", arrived, "GET", f"/v1/users/{user}")
        elif action < 0.9:
            body = self._score_body(user, None)
            await self._call("normal", "score_stored", arrived, "POST", "/v1/score", body)
        else:
            await self._forget(arrived)

    async def _forget(self, arrived: float) -> None:
        user = self.users.pop(self.texts.rng.randrange(len(self.users)))
        await self._call("normal", "user_delete", arrived, "DELETE", f"/v1/users/{user}")

    async def batch(self, arrived: float) -> None:
        items = [
            self._score_body(f"batch-{self.texts.rng.randrange(1000)}", self.texts.history())
            for _ in range(4)
        ]
        key = {"Idempotency-Key": uuid.uuid4().hex}
        path = "/v1/score/batch"
        await self._call("normal", "batch", arrived, "POST", path, {"items": items}, key)

    async def reward(self, arrived: float) -> None:
        """OpenRLHF's `/get_reward`: 4 samples of stored (or cold-start) users."""
        queries, prompts, labels = [], [], []
        for _ in range(4):
            prompt = f"<|im_start|>user\n{self.texts.prompt()}<|im_end|>\n<|im_start|>assistant\n"
            user = self.texts.rng.choice(self.users) if self.users else "nobody"
            queries.append(prompt + self.texts.answer() + "<|im_end|>")
            prompts.append(prompt)
            labels.append(json.dumps({"user_id": user, "unknown_user": "cold_start"}))
        body = {"query": queries, "prompts": prompts, "labels": labels}
        await self._call("normal", "get_reward", arrived, "POST", "/get_reward", body)

    async def group(self, arrived: float, size: int = 4) -> None:
        """A group's per-sample calls, all sent at once (one rollout each)."""
        user = f"group-{self.texts.rng.randrange(1000)}"
        history, prompt, gid = self.texts.history(), self.texts.prompt(), uuid.uuid4().hex
        bodies = [
            {
                "user_id": user,
                "history": history,
                "prompt": prompt,
                "candidates": [self.texts.answer()],
                "group": {"id": gid, "size": size},
                "scaling": {"ind": 4},
                "return_traces": "none",
            }
            for _ in range(size)
        ]
        await asyncio.gather(
            *(self._call("normal", "group", arrived, "POST", "/v1/score", b) for b in bodies)
        )

    def heavy_body(self) -> dict[str, Any]:
        """The largest request the default limits allow in kind: 16 candidates, 64 new history
        pairs, long texts (`heavy_chars` per answer)."""
        t, n = self.texts, self.heavy_chars
        return {
            "user_id": f"heavy-{t.rng.randrange(1000)}",
            "history": [
                {"prompt": t.chars(n // 8), "chosen": t.chars(n), "rejected": t.chars(n)}
                for _ in range(64)
            ],
            "prompt": t.chars(n // 8),
            "candidates": [t.chars(n) for _ in range(16)],
            "return_traces": "summary",
        }

    async def heavy_loop(self, stop: asyncio.Event) -> None:
        """Closed loop of maximum-size scores from the heavy key; a 429 waits its Retry-After."""
        while not stop.is_set():
            arrived = time.perf_counter()
            try:
                response = await self.heavy.post("/v1/score", json=self.heavy_body())
                status, wait = response.status_code, _retry_after(response)
            except httpx.HTTPError:
                status, wait = 0, 1.0
            self.record(Call(self.phase, "heavy", "heavy", status, time.perf_counter() - arrived))
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)


def _retry_after(response: httpx.Response) -> float:
    if response.status_code not in (429, 503):
        return 0.0
    try:
        return min(30.0, max(0.1, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


# Arrival mix of the normal client: kind -> share of arrivals.
MIX: dict[str, float] = {"score": 0.4, "stored": 0.25, "batch": 0.1, "reward": 0.1, "group": 0.15}


def pick(load: Load) -> Callable[[float], Any]:
    kinds, weights = zip(*MIX.items(), strict=True)
    kind = load.texts.rng.choices(kinds, weights)[0]
    return {
        "score": load.score,
        "stored": load.stored,
        "batch": load.batch,
        "reward": load.reward,
        "group": load.group,
    }[kind]
