"""Soak: mixed open-loop load at a fixed rate against a real multi-worker server; RSS per worker.

    .venv/bin/python -m bench.soak [--minutes 10] [--baseline-minutes 1.5] [--rate 20]
        [--workers 2] [--heavy-loops 4] [--no-keys] [--env PGENRM_X=value ...] [--json]

`pgenrm serve` runs as a subprocess (embedded backend, in-process caches, SQLite users in a
temporary state dir) with two API keys from a temporary keys file (`PGENRM_API_KEYS_FILE`):
"normal" and "heavy", both with the limits given here. The normal key sends `--rate` arrivals
per second on a fixed schedule (an open loop: a late answer never delays the next arrival):
inline-history scores, stored-user actions (PUT/PATCH/GET/DELETE, scores with the stored
history), batches of 4, OpenRLHF `/get_reward` calls and groups of 4 per-sample calls, every
text new so that every cache keeps filling. After a short warm-up, a baseline phase measures
the normal requests alone; then, for `--minutes`, `--heavy-loops` closed loops on the heavy key
send maximum-size scores (16 candidates, 64 new history pairs, long texts) beside them.

Every `--sample-s` seconds the RSS of each worker (`/proc/<pid>/status`) is sampled. Printed:
RSS per worker over time, each worker's growth over the last 5 minutes as a share of its RSS
(the mean of the window's last minute against its first: RSS saws between malloc trims;
target < 5%), p50/p99 of the normal requests in the baseline and beside the heavy ones
(target: p99 within 3x), and the statuses per key. Group calls wait for their group by design
(across 2 workers without Redis, a split group waits `PGENRM_GROUP_WAIT_S`), so they are
reported but left out of the p99 comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from bench._soak_load import Call, Load, Texts, pick
from bench._table import print_figures
from service.testing.server_process import served, server_pids

WINDOW_S = 300.0  # growth is judged over the last 5 minutes


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def keys_file(folder: Path, args: argparse.Namespace) -> dict[str, str]:
    """Write the keys file (hashed secrets) and return each key's secret."""
    limits = {
        "requests_per_s": args.key_rps,
        "cost_per_minute": args.key_cost_per_minute,
        "max_concurrent_expensive": args.key_max_concurrent,
    }
    tokens = {"normal": secrets.token_urlsafe(24), "heavy": secrets.token_urlsafe(24)}
    scopes = {"normal": ["score", "users"], "heavy": ["score"]}
    keys = [
        {
            "name": name,
            "tenant": "soak",
            "sha256": hashlib.sha256(token.encode()).hexdigest(),
            "scopes": scopes[name],
            "limits": limits,
        }
        for name, token in tokens.items()
    ]
    (folder / "keys.json").write_text(json.dumps({"keys": keys}))
    return tokens


class Soak:
    def __init__(self, url: str, args: argparse.Namespace, tokens: dict[str, str]) -> None:
        self.url, self.args, self.tokens = url, args, tokens
        self.calls: list[Call] = []
        self.samples: list[dict[str, Any]] = []  # {"t", "phase", "rss": {pid: MB}}
        self.started = time.perf_counter()
        self.phase = "warmup"

    def _client(self, name: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if self.tokens else {}
        return httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=self.args.timeout,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    def sample(self) -> None:
        rss = {pid: rss_mb(pid) for pid in server_pids(self.url)}
        t = time.perf_counter() - self.started
        self.samples.append(
            {"t": round(t, 1), "phase": self.phase, "rss": {p: m for p, m in rss.items() if m}}
        )

    async def _tick(self, bar: tqdm[Any], running: set[asyncio.Task[Any]]) -> None:
        """Sample RSS every `--sample-s`; move the progress bar every second."""
        next_sample = self.args.sample_s
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - self.started
            if elapsed >= next_sample:
                self.sample()
                next_sample += self.args.sample_s
                rss = "/".join(f"{m:.0f}" for m in self.samples[-1]["rss"].values())
                bar.set_postfix_str(f"{self.phase}, RSS {rss} MB, in flight {len(running)}")
            bar.update(min(int(elapsed), bar.total) - bar.n)

    async def run(self) -> None:
        args = self.args
        warmup_s, baseline_s, soak_s = args.warmup_s, 60 * args.baseline_minutes, 60 * args.minutes
        total = warmup_s + baseline_s + soak_s
        async with self._client("normal") as normal, self._client("heavy") as heavy:
            load = Load(
                normal, heavy, Texts(random.Random(args.seed)), args.heavy_chars, self.calls.append
            )
            stop_heavy = asyncio.Event()
            heavy_tasks: list[asyncio.Task[None]] = []
            running: set[asyncio.Task[Any]] = set()
            bar = tqdm(total=int(total), unit="s", file=sys.stderr, desc="soak", leave=False)
            self.sample()
            ticker = asyncio.create_task(self._tick(bar, running))
            for i in range(int(total * args.rate)):
                due = self.started + i / args.rate
                # always yield: a client that fell behind must still let its calls run
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                elapsed = due - self.started
                phase = "warmup" if elapsed < warmup_s else "baseline"
                if elapsed >= warmup_s + baseline_s:
                    phase = "heavy"
                if phase != self.phase:
                    self.phase = load.phase = phase
                    if phase == "heavy":
                        heavy_tasks = [
                            asyncio.create_task(load.heavy_loop(stop_heavy))
                            for _ in range(args.heavy_loops)
                        ]
                task = asyncio.create_task(pick(load)(due))
                running.add(task)
                task.add_done_callback(running.discard)
            stop_heavy.set()
            # calls still unanswered after a short drain are cancelled (counted as no answer)
            _, late = await asyncio.wait([*running, *heavy_tasks], timeout=args.drain_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
            ticker.cancel()
            self.phase = "end"
            self.sample()
            bar.close()


def _quantiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    cuts = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [latencies[0]] * 99
    )
    return {"n": len(latencies), "p50_ms": 1000 * cuts[49], "p99_ms": 1000 * cuts[98]}


def growth(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per worker: the mean RSS over the first and over the last minute of the window (the last
    5 minutes under load, or its last half if shorter; means, as RSS saws between malloc trims)
    and the growth between them as % of the latter."""
    loaded = [s for s in samples if s["phase"] != "end"]
    end_t = loaded[-1]["t"]
    window = min(WINDOW_S, (end_t - loaded[0]["t"]) / 2)
    span = min(60.0, window / 3)
    out: dict[str, dict[str, float]] = {}
    for pid in loaded[-1]["rss"]:
        series = [(s["t"], s["rss"][pid]) for s in loaded if pid in s["rss"]]
        first = [mb for t, mb in series if end_t - window <= t <= end_t - window + span]
        last = [mb for t, mb in series if t >= end_t - span]
        if not first or not last:  # a worker that started late (a restart)
            continue
        start, end = statistics.fmean(first), statistics.fmean(last)
        out[str(pid)] = {
            "window_s": window,
            "start_mb": start,
            "end_mb": end,
            "growth_pct": 100 * (end - start) / end,
        }
    return out


def report(soak: Soak, args: argparse.Namespace) -> dict[str, Any]:
    pids = sorted({p for s in soak.samples for p in s["rss"]})
    print("| t (s) | phase | " + " | ".join(f"worker {p} RSS (MB)" for p in pids) + " |")
    print("| ---: | --- | " + " | ".join("---:" for _ in pids) + " |")
    for s in soak.samples:
        cells = " | ".join(f"{s['rss'][p]:.0f}" if p in s["rss"] else "-" for p in pids)
        print(f"| {s['t']:.0f} | {s['phase']} | {cells} |")
    print()

    latency: dict[str, dict[str, dict[str, float]]] = {}
    print("| phase | kind | n | p50 (ms) | p99 (ms) |\n| --- | --- | ---: | ---: | ---: |")
    for phase in ("baseline", "heavy"):
        latency[phase] = {}
        kinds = sorted({c.kind for c in soak.calls if c.phase == phase})
        for kind in kinds:
            ok = [
                c.latency_s for c in soak.calls if (c.phase, c.kind, c.status) == (phase, kind, 200)
            ]
            q = latency[phase][kind] = _quantiles(ok)
            print(f"| {phase} | {kind} | {q['n']} | {q['p50_ms']:.0f} | {q['p99_ms']:.0f} |")
        normal = [
            c.latency_s
            for c in soak.calls
            if c.phase == phase and c.client == "normal" and c.kind != "group" and c.status == 200
        ]
        latency[phase]["normal"] = _quantiles(normal)
    print()

    statuses = Counter((c.client, c.phase, c.status) for c in soak.calls if c.phase != "warmup")
    print("| key | phase | status | calls |\n| --- | --- | ---: | ---: |")
    for (client, phase, status), n in sorted(statuses.items()):
        print(f"| {client} | {phase} | {status or 'no answer'} | {n} |")
    print()

    grown = growth(soak.samples)
    base, heavy = latency["baseline"]["normal"], latency["heavy"]["normal"]
    ratio = heavy["p99_ms"] / base["p99_ms"] if base["n"] and heavy["n"] else float("nan")
    rows: list[tuple[str, float, str]] = []
    for pid, g in grown.items():
        window = f"{g['window_s']:.0f} s"
        rows.append((f"worker {pid}: RSS growth, last {window} (%)", g["growth_pct"], "< 5"))
        rows.append((f"worker {pid}: RSS, mean of the last minute (MB)", g["end_mb"], ""))
    rows += [
        ("normal p50, baseline (ms)", base["p50_ms"], ""),
        ("normal p99, baseline (ms)", base["p99_ms"], ""),
        ("normal p50, beside heavy requests (ms)", heavy["p50_ms"], ""),
        ("normal p99, beside heavy requests (ms)", heavy["p99_ms"], ""),
        ("p99 beside heavy / p99 baseline", ratio, "<= 3"),
        ("heavy requests answered 200", statuses.get(("heavy", "heavy", 200), 0), ""),
        ("heavy requests answered 429", statuses.get(("heavy", "heavy", 429), 0), ""),
    ]
    result = {
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "rss": soak.samples,
        "growth": grown,
        "latency": latency,
        "p99_ratio": ratio,
        "statuses": [
            {"key": k, "phase": p, "status": s, "calls": n}
            for (k, p, s), n in sorted(statuses.items())
        ],
    }
    return {"rows": rows, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="soak with heavy requests")
    parser.add_argument("--baseline-minutes", type=float, default=1.5, help="normal load alone")
    parser.add_argument("--warmup-s", type=float, default=15.0, help="not measured")
    parser.add_argument("--rate", type=float, default=20.0, help="normal arrivals per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--heavy-loops", type=int, default=4, help="concurrent heavy clients")
    parser.add_argument(
        "--heavy-chars",
        type=int,
        default=2_000,
        help="per heavy answer (2,000: ~1 s of CPU per heavy request on a fast core)",
    )
    parser.add_argument("--sample-s", type=float, default=12.0, help="RSS sampling period")
    parser.add_argument("--timeout", type=float, default=120.0, help="per call, client side")
    parser.add_argument("--drain-s", type=float, default=30.0, help="wait for late answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keys", action=argparse.BooleanOptionalAction, default=True, help="API keys file"
    )
    parser.add_argument("--key-rps", type=float, default=200.0, help="per key")
    parser.add_argument("--key-cost-per-minute", type=int, default=60_000, help="per key")
    parser.add_argument(
        "--key-max-concurrent", type=int, default=8, help="expensive calls in flight, per key"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="PGENRM_X=value",
        help="a server setting (repeatable), e.g. PGENRM_CACHE_MAX_BYTES=33554432",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pgenrm-soak-") as tmp:
        folder = Path(tmp)
        env = {"PGENRM_WORKERS": str(args.workers), "PGENRM_STATE_DIR": str(folder / "state")}
        env |= dict(item.split("=", 1) for item in args.env)
        tokens: dict[str, str] = {}
        if args.keys:
            tokens = keys_file(folder, args)
            env["PGENRM_API_KEYS_FILE"] = str(folder / "keys.json")
        try:
            with open(folder / "server.log", "wb") as log, served(env, log=log) as url:
                soak = Soak(url, args, tokens)
                asyncio.run(soak.run())
        finally:
            lines = (folder / "server.log").read_text(errors="replace").splitlines()
            if lines:
                print(f"server log: {len(lines)} lines; the last ones:", file=sys.stderr)
                for line in lines[-20:]:
                    print("  " + line, file=sys.stderr)
    out = report(soak, args)
    print_figures(out["rows"], out["result"], as_json=args.json, digits=1)


if __name__ == "__main__":
    main()
