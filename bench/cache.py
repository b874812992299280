"""`/v1/score` on the embedded backend with a cold vs warm cache, in-process and in Redis.

    .venv/bin/python -m bench.cache [--clients 32] [--rate 200] [--workers 2] [--json]
        [--env PGENRM_EMBEDDER_RUNTIME=onnx-int8 ...]   (server settings, repeatable)

For each store (the in-process LRU, then a real `redis-server` on a free loopback port) it
starts `pgenrm serve --workers N` on loopback and drives it with `--clients` concurrent clients:

- warm: 32 users' requests, each user seen before, prompts and candidates drawn from a pool
  seen before: persona and embeddings come from the cache, the inference is still computed.
  Two figures, because 32 clients that each wait for their answer cannot also see a p99 below
  32 / throughput (Little's law):
    - throughput: the clients send back to back (closed loop), the most the server answers;
    - latency: the clients send on a fixed schedule of `--rate` requests/s in all (open loop),
      each latency counted from the scheduled send time, so a slow answer that delays the
      next request is charged to it (no coordinated omission).
- cold, one client: every request is a new user with a new 3-pair history and new candidate
  texts, so the persona cache and the embedding caches all miss (the embedder runs for every
  text); one client, so this is a cold score's own latency. Also at `--clients`, closed loop.
- new candidates, one client: a known user (persona cached) scoring candidates never seen:
  what an RLHF trainer's rollouts cost.

The open-loop phase also reports the host: `host_steal_pct`, the share of CPU time the
hypervisor gave to other guests meanwhile (/proc/stat), and `speed_probe_ms`, a fixed
pure-Python loop timed just before it. On a shared host both swing within minutes, and the
latencies with them; read a run's p99 together with them.

The per-key rate and cost limits are lifted (`--env` can set them): the bench's one key would
otherwise meet them first. Texts are real DSP rows when `../shared/data/dsp` exists (answers
of a few hundred words), else generated. Default scaling (Ind-8), traces "none" as a trainer
would ask. The client runs on the same two cores as the server, so it is a minimal keep-alive
HTTP/1.1 client (`service.testing.http_load`) sending requests encoded before the clock starts:
~0.3 ms of CPU per warm request where httpx took 1.1-2.2 ms from the server it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from service.core.rows import load_rows
from service.testing.host import host_ticks, speed_probe_ms, steal_pct
from service.testing.http_load import Connection
from service.testing.redis_process import RedisServer
from service.testing.server_process import served, server_pids

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


async def drive(
    url: str, bodies: list[dict[str, Any]], clients: int, rate: float | None = None
) -> dict[str, float]:
    """Send the bodies with `clients` in flight, each client on its own keep-alive connection:
    back to back, or `rate` per second in all on a fixed schedule. Latency percentiles (ms) and
    the throughput achieved. Requests are encoded before the clock starts."""
    connections = [Connection(url) for _ in range(clients)]
    requests = [connections[0].request("/v1/score", json.dumps(b).encode()) for b in bodies]
    latencies: list[float] = []
    failures = 0
    first_failure = ""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def worker(first: int) -> None:
        nonlocal failures, first_failure
        connection = connections[first]
        for i in range(first, len(requests), clients):
            due = loop.time()
            if rate is not None:
                due = start + i / rate
                await asyncio.sleep(max(0.0, due - loop.time()))
            status, answer = await connection.send(requests[i])
            latencies.append(loop.time() - due)
            if status != 200:
                failures += 1
                first_failure = first_failure or f"{status} {answer[:300].decode(errors='replace')}"

    try:
        await asyncio.gather(*(worker(c) for c in range(clients)))
    finally:
        for connection in connections:
            connection.close()
    wall = loop.time() - start
    if failures:
        raise SystemExit(f"{failures} of {len(bodies)} requests failed (first: {first_failure})")
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


def misses(url: str, store: str) -> float:
    """Persona and embedding lookups that missed in the last store asked (the server's own
    /metrics, summed over its workers): a warm phase should see none."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pgenrm_cache_requests_total{")
        and 'result="miss"' in line
        and f'store="{store}"' in line
        and ('cache="persona"' in line or 'cache="embedding"' in line)
    )


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

    def warm_bodies() -> list[dict[str, Any]]:
        return [
            body(f"user-{u}", warm_histories[u], rng.choice(warm_tasks))
            for u in (rng.randrange(users) for _ in range(args.warm))
        ]

    # Capacity, not policy: one key drives the server past the per-key defaults (200 req/s),
    # so they are lifted unless --env says otherwise.
    env = {
        "PGENRM_WORKERS": str(args.workers),
        "PGENRM_DEFAULT_REQUESTS_PER_S": "1000000",
        "PGENRM_DEFAULT_COST_PER_MINUTE": "1000000000",
        **dict(args.env),
    }
    with store(kind) as (extra, redis), served({**env, **extra}) as url:
        await drive(url, cold_bodies(8, "warm-up"), 4)  # load paths, first-call costs
        cold = await drive(url, cold_bodies(args.cold, "cold"), args.clients)
        cold_one = await drive(url, cold_bodies(args.cold_serial, "serial"), 1)
        # Every worker has its own in-process cache: a full unmeasured pass over the same mix
        # shows each worker every user and every task (each one recurs dozens of times); the
        # misses counted in the measured phases say whether that held.
        await drive(url, warm_bodies(), args.clients)
        new_candidates = await drive(
            url,
            [body(f"user-{i % users}", warm_histories[i % users], next(fresh)) for i in range(16)],
            1,
        )
        before = misses(url, kind)
        warm = await drive(url, warm_bodies(), args.clients)
        warm["cache_misses"] = misses(url, kind) - before
        before, probe, ticks = misses(url, kind), speed_probe_ms(), host_ticks()
        warm_rate: dict[str, Any] = {
            **await drive(url, warm_bodies(), args.clients, rate=args.rate)
        }
        warm_rate["cache_misses"] = misses(url, kind) - before
        warm_rate["host_steal_pct"] = steal_pct(ticks, host_ticks())
        warm_rate["speed_probe_ms"] = probe
        result: dict[str, Any] = {
            "workers": args.workers,
            "cold": cold,
            "cold_one_client": cold_one,
            "new_candidates_one_client": new_candidates,
            "warm": warm,
            "warm_at_rate": {**warm_rate, "offered_rps": args.rate},
            "server_rss_mb": round(sum(rss_mb(pid) for pid in server_pids(url)), 1),
        }
        if redis is not None:
            result["redis_used_memory_mb"] = redis_memory_mb(redis.port)
    return result


def setting(text: str) -> tuple[str, str]:
    """A `KEY=VALUE` of the server's environment."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200, help="warm open-loop rate, req/s")
    parser.add_argument("--workers", type=int, default=2, help="server processes (cores)")
    parser.add_argument("--cold", type=int, default=128, help="cold requests at --clients")
    parser.add_argument("--cold-serial", type=int, default=16, help="cold requests, one client")
    parser.add_argument("--warm", type=int, default=2000, help="warm requests per phase")
    parser.add_argument("--stores", default="memory,redis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--env",
        type=setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server setting, repeatable (e.g. PGENRM_EMBEDDER_RUNTIME=onnx-int8)",
    )
    args = parser.parse_args()
    need = 3 * 32 + 64 + 4 * (8 + args.cold + args.cold_serial + 16)
    stores = args.stores.split(",")
    pool = texts(need * len(stores), args.seed)
    if len(pool) < need * len(stores):
        raise SystemExit(f"need {need * len(stores)} distinct texts, have {len(pool)}")
    results: dict[str, Any] = {"texts": "dsp" if DSP.exists() else "generated"}
    for i, kind in enumerate(stores):
        part = pool[i * need : (i + 1) * need]
        results[kind] = r = asyncio.run(run_store(kind, args, part))
        w, at = r["warm"], r["warm_at_rate"]
        print(
            f"{kind:>6}, {args.workers} workers, {args.clients} clients: warm max {w['rps']:.0f} "
            f"req/s (closed loop p50 {w['p50_ms']} p99 {w['p99_ms']} ms) | warm at "
            f"{args.rate:.0f} req/s: p50 {at['p50_ms']} p99 {at['p99_ms']} ms ({at['rps']:.0f} "
            f"achieved; host steal {at['host_steal_pct']}%, probe {at['speed_probe_ms']:.0f} ms) "
            f"| cache misses while warm: {w['cache_misses'] + at['cache_misses']:.0f} "
            f"| cold, one client: p50 {r['cold_one_client']['p50_ms']} ms | cold, "
            f"{args.clients} clients: {r['cold']['rps']:.1f} req/s p50 {r['cold']['p50_ms']} ms "
            f"| new candidates, one client: p50 {r['new_candidates_one_client']['p50_ms']} ms | "
            f"server RSS {r['server_rss_mb']} MB"
            + (f" | redis {r['redis_used_memory_mb']} MB" if "redis_used_memory_mb" in r else ""),
            flush=True,
        )
    memory, redis = results.get("memory"), results.get("redis")
    summary = {
        "server_env": dict(args.env),
        "clients": args.clients,
        "workers": args.workers,
        "warm_rps": memory["warm"]["rps"] if memory else None,
        "warm_p50_ms": memory["warm_at_rate"]["p50_ms"] if memory else None,
        "warm_p99_ms": memory["warm_at_rate"]["p99_ms"] if memory else None,
        "warm_offered_rps": args.rate,
        "warm_host_steal_pct": memory["warm_at_rate"]["host_steal_pct"] if memory else None,
        "warm_speed_probe_ms": memory["warm_at_rate"]["speed_probe_ms"] if memory else None,
        "cold_p50_ms": memory["cold_one_client"]["p50_ms"] if memory else None,
        "redis_warm_rps": redis["warm"]["rps"] if redis else None,
        "redis_warm_p99_ms": redis["warm_at_rate"]["p99_ms"] if redis else None,
        **results,
    }
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
