"""Prototype retrieval and learning at scale, on synthetic user profiles.

    .venv/bin/python -m bench.prototypes [--users 1000000] [--json]

Retrieval: 1M L2-normalised 384-d profiles around K=1024 prototypes, indexed as an IVF whose
coarse quantizer holds the prototypes (the serving index above 20k users); top-8 neighbours =
nearest prototype, then the most similar users in it, for 1,000 queries one at a time on one
thread. Learning: k-means + the full-loss optimisation (`prototypes.learn`, 3 epochs) on 10k
and 100k synthetic events. Embedding the analyses is not included (it is the embedder's
throughput; see ENVIRONMENT.md: about 35 long texts/s here).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench._table import print_figures
from prototypes.index import ProfileIndex
from prototypes.learn import LearnConfig, UserEvents, learn_prototypes

D = 384


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    out = np.empty((n, D), np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        picks = rng.integers(0, len(centres), m)
        out[start : start + m] = unit(
            centres[picks] + noise * rng.normal(size=(m, D)).astype(np.float32)
        )
    return out


def retrieval(users: int, k: int, queries: int, seed: int) -> dict[str, float]:
    import faiss

    faiss.omp_set_num_threads(1)  # one request's latency, not a batch's throughput
    rng = np.random.default_rng(seed)
    prototypes = unit(rng.normal(size=(k, D)).astype(np.float32))
    profiles = clustered(rng, prototypes, users, noise=0.05)
    before = rss_mb()
    started = time.perf_counter()
    assignment = np.empty(users, np.int64)
    for start in range(0, users, 100_000):
        assignment[start : start + 100_000] = np.argmax(
            profiles[start : start + 100_000] @ prototypes.T, axis=1
        )
    index = ProfileIndex.build(prototypes, profiles, assignment, ivf=True)
    build_s = time.perf_counter() - started
    index_mb = rss_mb() - before
    rows = rng.choice(users, queries, replace=False)
    latencies = []
    for row in rows:
        t = time.perf_counter()
        hits = index.search(profiles[row], 8, exclude={int(row)})
        latencies.append((time.perf_counter() - t) * 1000)
        assert len(hits) == 8 and int(row) not in {h.row for h in hits}
    return {
        "retrieval_p50_ms_1m": float(np.percentile(latencies, 50)),
        "retrieval_p99_ms_1m": float(np.percentile(latencies, 99)),
        "build_s_1m": build_s,
        "index_mb_1m": index_mb,
        "profiles_mb_1m": profiles.nbytes / 2**20,
    }


def learning(events: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    n_users = events // 10
    groups = unit(rng.normal(size=(20, D)).astype(np.float32))
    users = []
    for u in range(n_users):
        g = groups[u % 20]
        q = unit(rng.normal(size=(10, D)).astype(np.float32))
        chosen = unit(g + 0.8 * rng.normal(size=(10, D)).astype(np.float32))
        rejected = unit(-g + 0.8 * rng.normal(size=(10, D)).astype(np.float32))
        profile = unit((g + 0.3 * rng.normal(size=D)).astype(np.float32)[None])[0]
        users.append(UserEvents(f"u{u}", profile, q, chosen, rejected))
    started = time.perf_counter()
    learn_prototypes(users, LearnConfig(k=50, epochs=3, seed=seed))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=1024, help="prototypes in the retrieval index")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-100k", action="store_true", help="skip the slow 100k learning run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = retrieval(args.users, args.k, args.queries, args.seed)
    result["learn_s_10k"] = learning(10_000, args.seed)
    result["learn_s_100k"] = float("nan") if args.skip_100k else learning(100_000, args.seed)
    rows = [
        (
            f"top-8 retrieval p50 over {args.users:,} profiles (ms)",
            result["retrieval_p50_ms_1m"],
            "",
        ),
        (
            f"top-8 retrieval p99 over {args.users:,} profiles (ms)",
            result["retrieval_p99_ms_1m"],
            "<= 1",
        ),
        ("index build (s)", result["build_s_1m"], ""),
        ("index memory beyond the profiles (MB)", result["index_mb_1m"], ""),
        ("profiles matrix (MB)", result["profiles_mb_1m"], ""),
        ("learning, 10k events, 3 epochs (s)", result["learn_s_10k"], ""),
        ("learning, 100k events, 3 epochs (s)", result["learn_s_100k"], ""),
    ]
    print_figures(rows, result, as_json=args.json, digits=3)


if __name__ == "__main__":
    main()
