"""`/v1/score` on the embedded backend with a cold vs warm cache, in-process and in Redis.

    .venv/bin/python bench/cache.py [--clients 32] [--cold 128] [--warm 2000] [--json]

For each store (the in-process LRU, then a real `redis-server` on a free loopback port) it
starts `pgenrm serve` on loopback and drives it with `--clients` concurrent clients:

- cold: every request is a new user with a new 3-pair history and new candidate texts, so the
  persona cache and the embedding caches all miss (the embedder runs for every text);
- warm: 32 users' requests, each user primed once, drawing prompts and candidates from a pool
  seen before: persona and embeddings come from the cache, the inference is still computed;
- cold, one client: the per-request latency of a cold score when nothing queues behind it.

Texts are real DSP rows when `../shared/data/dsp` exists (answers of a few hundred words),
else generated. Default scaling (Ind-8), traces "none" as a trainer would ask. The client runs
on the same two cores as the server: throughput is a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.backends.openai._transport import LeanTransport
from service.evaluation.data import load_rows
from tests.redis_process import RedisServer
from tests.server_process import served

DSP = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsp" / "pairs.jsonl.gz"
Triple = tuple[str, str, str]  # prompt, answer a, answer b


def texts(count: int, seed: int) -> list[Triple]:
    """`count` distinct (prompt, answer, answer) triples: DSP rows if present, else generated."""
    rng = random.Random(seed)
    if DSP.exists():
        rows, _ = load_rows(DSP)
        rng.shuffle(rows)
        # A numbered line makes every text new (a cold request must miss every cache) while
        # keeping real lengths and wording.
        return [
            (f"{r.context[-1].content} (#{i})", f"{r.chosen}\n\n(#{i})", f"{r.rejected}\n\n(#{i})")
            for i, r in enumerate(rows[:count])
        ]
    words = [
        "plan",
        "steep",
        "answer",
        "brief",
        "detail",
        "example",
        "step",
        "careful",
        "list",
        "reason",
    ]
    return [
        (
            f"Question {i}: how do I {rng.choice(words)} this?",
            f"Case {i}. " + " ".join(rng.choices(words, k=rng.randint(8, 30))),
            f"Case {i}. " + " ".join(rng.choices(words, k=rng.randint(40, 160))),
        )
        for i in range(count)
    ]


def body(user: str, history: list[Triple], task: Triple) -> dict[str, Any]:
    return {
        "user_id": user,
        "history": [{"prompt": p, "chosen": a, "rejected": b} for p, a, b in history],
        "prompt": task[0],
        "candidates": [task[1], task[2]],
        "return_traces": "none",
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def drive(url: str, bodies: list[dict[str, Any]], clients: int) -> dict[str, float]:
    """Send the bodies with `clients` in flight; latency percentiles (ms) and throughput."""
    latencies: list[float] = []
    failures = 0
    queue = iter(bodies)
    async with httpx.AsyncClient(
        base_url=url, transport=LeanTransport(clients), timeout=120
    ) as client:

        async def worker() -> None:
            nonlocal failures
            for item in queue:
                started = time.perf_counter()
                r = await client.post("/v1/score", json=item)
                latencies.append(time.perf_counter() - started)
                failures += r.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{failures} of {len(bodies)} requests failed")
    ms = [x * 1000 for x in latencies]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(quantile(ms, 0.99), 1),
        "rps": round(len(bodies) / wall, 1),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def server_pid(port: int) -> int | None:
    """The pid listening on this port (for the server's RSS), if `ss` can tell."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    marker = "pid="
    if marker not in out.stdout:
        return None
    return int(out.stdout.split(marker, 1)[1].split(",", 1)[0])


def redis_memory_mb(port: int) -> float:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "info", "memory"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("used_memory:"):
            return round(int(line.split(":")[1]) / 2**20, 1)
    return float("nan")


@contextmanager
def store(kind: str) -> Iterator[tuple[dict[str, str], RedisServer | None]]:
    if kind == "memory":
        yield {}, None
        return
    server = RedisServer().start()
    try:
        yield {"PGENRM_REDIS_URL": server.url}, server
    finally:
        server.cleanup()


async def run_store(kind: str, args: argparse.Namespace, pool: list[Triple]) -> dict[str, Any]:
    users = 32
    warm_histories = [pool[3 * u : 3 * u + 3] for u in range(users)]
    warm_tasks = pool[3 * users : 3 * users + 64]
    fresh = iter(pool[3 * users + 64 :])

    def cold_bodies(n: int, tag: str) -> list[dict[str, Any]]:
        return [
            body(f"{tag}-{i}", [next(fresh), next(fresh), next(fresh)], next(fresh))
            for i in range(n)
        ]

    rng = random.Random(args.seed)
    with store(kind) as (env, redis), served(env) as url:
        port = int(url.rsplit(":", 1)[1])
        await drive(url, cold_bodies(8, "warm-up"), 4)  # load paths, first-call costs
        cold = await drive(url, cold_bodies(args.cold, "cold"), args.clients)
        cold_one = await drive(url, cold_bodies(args.cold_serial, "serial"), 1)
        primes = [body(f"user-{u}", warm_histories[u], warm_tasks[u]) for u in range(users)]
        primes += [body("user-0", warm_histories[0], t) for t in warm_tasks]  # candidates
        await drive(url, primes, args.clients)
        warm_bodies = [
            body(f"user-{u}", warm_histories[u], rng.choice(warm_tasks))
            for u in (rng.randrange(users) for _ in range(args.warm))
        ]
        warm = await drive(url, warm_bodies, args.clients)
        pid = server_pid(port)
        result: dict[str, Any] = {
            "cold": cold,
            "cold_one_client": cold_one,
            "warm": warm,
            "server_rss_mb": rss_mb(pid) if pid else None,
        }
        if redis is not None:
            result["redis_used_memory_mb"] = redis_memory_mb(redis.port)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--cold", type=int, default=128, help="cold requests at --clients")
    parser.add_argument("--cold-serial", type=int, default=16, help="cold requests, one client")
    parser.add_argument("--warm", type=int, default=2000, help="warm requests")
    parser.add_argument("--stores", default="memory,redis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    need = 3 * 32 + 64 + 4 * (8 + args.cold + args.cold_serial)
    stores = args.stores.split(",")
    pool = texts(need * len(stores), args.seed)
    if len(pool) < need * len(stores):
        raise SystemExit(f"need {need * len(stores)} distinct texts, have {len(pool)}")
    results: dict[str, Any] = {"texts": "dsp" if DSP.exists() else "generated"}
    for i, kind in enumerate(stores):
        part = pool[i * need : (i + 1) * need]
        results[kind] = asyncio.run(run_store(kind, args, part))
        r = results[kind]
        print(
            f"{kind:>6}: warm {r['warm']['rps']:.0f} req/s p50 {r['warm']['p50_ms']} ms "
            f"p99 {r['warm']['p99_ms']} ms | cold ({args.clients} clients) "
            f"{r['cold']['rps']:.0f} req/s p50 {r['cold']['p50_ms']} ms p99 {r['cold']['p99_ms']} "
            f"ms | cold, one client p50 {r['cold_one_client']['p50_ms']} ms | "
            f"server RSS {r['server_rss_mb']} MB"
            + (f" | redis {r['redis_used_memory_mb']} MB" if "redis_used_memory_mb" in r else ""),
            flush=True,
        )
    memory, redis = results.get("memory"), results.get("redis")
    summary = {
        "clients": args.clients,
        "warm_rps": memory["warm"]["rps"] if memory else None,
        "warm_p50_ms": memory["warm"]["p50_ms"] if memory else None,
        "warm_p99_ms": memory["warm"]["p99_ms"] if memory else None,
        "cold_p50_ms": memory["cold"]["p50_ms"] if memory else None,
        "cold_one_client_p50_ms": memory["cold_one_client"]["p50_ms"] if memory else None,
        "redis_warm_rps": redis["warm"]["rps"] if redis else None,
        "redis_warm_p99_ms": redis["warm"]["p99_ms"] if redis else None,
        **results,
    }
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
