"""What a training step's rewards cost: 64 prompts x 8 rollouts, three ways of asking.

    .venv/bin/python -m bench.trainer [--prompts 64] [--rollouts 8] [--workers 1] [--json]

Users are stored once (PUT /v1/users/{id}) with 8-pair histories from DSP's train rows (or
generated texts without ../shared/data); every rollout is a fresh DSP-length answer (numbered,
so no cache has seen it). On the embedded backend, the same 512 rollouts are scored:

  (a) per sample, as OpenRLHF calls: one POST per rollout, all in flight, each carrying
      `group: {id, size: 8}`, so the gateway assembles each prompt's group into one plan;
  (b) one POST /v1/score/batch holding the 64 groups;
  (c) one POST /v1/score per group (8 candidates), 8 in flight.

Then, against the OpenAI-compatible simulator (Ind-4), what a group of 8 costs the LLM:
listwise (one chain scoring all 8, as (c)) vs pairwise (all 28 pairs of the group, each in the
released model's two-response format): chains requested and generated tokens per rollout, as
the simulator counts them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import httpx

from bench._table import print_figures
from service.backends.openai._transport import LeanTransport
from service.core.rows import Row, load_rows
from service.testing.redis_process import RedisServer
from service.testing.server_process import served
from service.testing.simulator_process import Simulator

DSP = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsp" / "pairs.jsonl.gz"
HISTORY_PAIRS = 8


def corpus(prompts: int, rollouts: int) -> tuple[dict[str, list[dict[str, str]]], list[Any]]:
    """Users with 8-pair histories, and per prompt (user, prompt text, fresh rollout texts)."""
    if DSP.exists():
        rows, _ = load_rows(DSP)
    else:  # pragma: no cover - the shared data is optional
        rows = []
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    users = sorted({r.user_id for r in train}) or ["u0", "u1", "u2", "u3"]
    histories = {u: [_pair(r) for r in train if r.user_id == u][:HISTORY_PAIRS] for u in users}
    for u in users:
        if not histories[u]:
            histories[u] = [_generated_pair(i) for i in range(HISTORY_PAIRS)]
    groups = []
    answers = [a for r in test for a in (r.chosen, r.rejected)] or [
        "A generated answer of moderate length, " * 12
    ]
    for g in range(prompts):
        prompt = (
            test[g % len(test)].as_pair().prompt if test else f"Question {g}: how should I do this?"
        )
        texts = [
            f"(rollout {g}-{i}) {answers[(g * rollouts + i) % len(answers)]}"
            for i in range(rollouts)
        ]
        groups.append((users[g % len(users)], prompt, texts))
    return histories, groups


def _pair(row: Row) -> dict[str, str]:
    return {"prompt": row.as_pair().prompt, "chosen": row.chosen, "rejected": row.rejected}


def _generated_pair(i: int) -> dict[str, str]:  # pragma: no cover - without the shared data
    return {"prompt": f"Question {i}?", "chosen": f"Short {i}.", "rejected": f"Long {i}. " * 40}


def score_body(user: str, prompt: str, candidates: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "prompt": prompt,
        "candidates": candidates,
        "return_traces": "none",
        **extra,
    }


async def per_sample(client: httpx.AsyncClient, groups: list[Any], tag: str) -> int:
    """(a) one call per rollout, every one in flight, grouped by the gateway."""

    async def one(g: int, user: str, prompt: str, text: str, size: int) -> int:
        group = {"id": f"{tag}-{g}", "size": size}
        r = await client.post("/v1/score", json=score_body(user, prompt, [text], group=group))
        if r.status_code != 200:
            raise SystemExit(f"a per-sample call failed: HTTP {r.status_code}: {r.text[:300]}")
        return int(not r.json()["group"]["partial"])

    done = await asyncio.gather(
        *(
            one(g, user, prompt, text, len(texts))
            for g, (user, prompt, texts) in enumerate(groups)
            for text in texts
        )
    )
    return sum(done)


async def batch(client: httpx.AsyncClient, groups: list[Any]) -> None:
    items = [score_body(user, prompt, texts) for user, prompt, texts in groups]
    r = await client.post("/v1/score/batch", json={"items": items})
    r.raise_for_status()
    if r.json()["failed"]:
        raise SystemExit(f"batch items failed: {r.json()['failed']}")


async def per_group(client: httpx.AsyncClient, groups: list[Any], in_flight: int = 8) -> None:
    gate = asyncio.Semaphore(in_flight)

    async def one(user: str, prompt: str, texts: list[str]) -> None:
        async with gate:
            r = await client.post("/v1/score", json=score_body(user, prompt, texts))
            r.raise_for_status()

    await asyncio.gather(*(one(*g) for g in groups))


def fresh(groups: list[Any], tag: str) -> list[Any]:
    """The same groups with rollout texts no cache has seen."""
    return [(u, p, [f"[{tag}] {t}" for t in texts]) for u, p, texts in groups]


async def embedded(url: str, histories: dict[str, Any], groups: list[Any]) -> dict[str, float]:
    connections = sum(len(t) for _, _, t in groups) + 8
    async with httpx.AsyncClient(
        base_url=url, transport=LeanTransport(connections), timeout=600
    ) as client:
        for user, history in histories.items():
            (await client.put(f"/v1/users/{user}", json={"history": history})).raise_for_status()
        await per_group(client, fresh(groups[:4], "warm-up"))  # load paths, not these texts
        walls: dict[str, float] = {}
        started = time.perf_counter()
        complete = await per_sample(client, fresh(groups, "a"), "a")
        walls["per_sample_wall_s"] = time.perf_counter() - started
        started = time.perf_counter()
        await batch(client, fresh(groups, "b"))
        walls["batch_wall_s"] = time.perf_counter() - started
        started = time.perf_counter()
        await per_group(client, fresh(groups, "c"))
        walls["per_group_wall_s"] = time.perf_counter() - started
    rollouts = sum(len(t) for _, _, t in groups)
    return {
        **{k: round(v, 2) for k, v in walls.items()},
        "rollouts": rollouts,
        "complete_groups_share": round(complete / rollouts, 3),
        "embedded_rollouts_per_s": round(rollouts / min(walls.values()), 1),
    }


async def llm_cost(
    url: str, sim: Simulator, histories: dict[str, Any], groups: list[Any]
) -> dict[str, float]:
    """Chains and generated tokens per rollout, listwise vs pairwise, as the simulator counts."""
    scaling = {"ind": 4}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for user, history in histories.items():
            (await client.put(f"/v1/users/{user}", json={"history": history})).raise_for_status()
        rollouts = sum(len(t) for _, _, t in groups)
        sim.reset()
        for user, prompt, texts in groups:
            r = await client.post(
                "/v1/score", json=score_body(user, prompt, texts, scaling=scaling)
            )
            r.raise_for_status()
        listwise = sim.stats()
        sim.reset()
        for user, prompt, texts in groups:
            for a, b in combinations(texts, 2):
                body = score_body(user, prompt, [a, b], scaling=scaling)
                (await client.post("/v1/score", json=body)).raise_for_status()
        pairwise = sim.stats()
    return {
        "chains_per_rollout_listwise": round(listwise["choices"] / rollouts, 3),
        "chains_per_rollout_pairwise": round(pairwise["choices"] / rollouts, 3),
        "tokens_per_rollout_listwise": round(listwise["completion_tokens"] / rollouts, 1),
        "tokens_per_rollout_pairwise": round(pairwise["completion_tokens"] / rollouts, 1),
        "requests_listwise": listwise["requests"],
        "requests_pairwise": pairwise["requests"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="gateway processes")
    parser.add_argument(
        "--redis", action="store_true", help="a real redis-server for the store and groups"
    )
    parser.add_argument("--llm-prompts", type=int, default=8, help="groups sent to the simulator")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    histories, groups = corpus(args.prompts, args.rollouts)
    env = {"PGENRM_WORKERS": str(args.workers), "PGENRM_GROUP_WAIT_S": "30"}
    with contextlib.ExitStack() as stack:
        if args.redis:
            env["PGENRM_REDIS_URL"] = stack.enter_context(RedisServer()).url
        with served(env) as url:
            result: dict[str, Any] = asyncio.run(embedded(url, histories, groups))
    with Simulator() as sim:
        env = {"PGENRM_BACKEND": "openai", "PGENRM_OPENAI_URLS": f"{sim.url}/v1"}
        with served(env) as url:
            result |= asyncio.run(llm_cost(url, sim, histories, groups[: args.llm_prompts]))
    result["pairwise_over_listwise_tokens"] = round(
        result["tokens_per_rollout_pairwise"] / result["tokens_per_rollout_listwise"], 2
    )
    rows = [
        (
            "(a) per-sample calls, grouped by the gateway: wall s",
            result["per_sample_wall_s"],
            "<= 12",
        ),
        ("(b) one batch call: wall s", result["batch_wall_s"], "<= 12"),
        ("(c) one call per group: wall s", result["per_group_wall_s"], "<= 12"),
        ("rollouts/s (best of the three)", result["embedded_rollouts_per_s"], ""),
        (
            "chains per rollout, listwise (simulator, Ind-4)",
            result["chains_per_rollout_listwise"],
            "",
        ),
        (
            "chains per rollout, pairwise (28 pairs per group)",
            result["chains_per_rollout_pairwise"],
            "",
        ),
        ("generated tokens per rollout, listwise", result["tokens_per_rollout_listwise"], ""),
        ("generated tokens per rollout, pairwise", result["tokens_per_rollout_pairwise"], ""),
        ("pairwise / listwise tokens", result["pairwise_over_listwise_tokens"], ">= 4"),
    ]
    print_figures(rows, result, as_json=args.json, digits=2)


if __name__ == "__main__":
    main()
