"""`aggregation: "meta"` against the simulator's noisy samples: accuracy with and without it.

    .venv/bin/python -m bench.meta_aggregation [--data dsp,ukp_convarg] [--limit 200]
        [--noise 0.8,2.5] [--json]

Starts the simulator (`service.testing.simulator_process`) on loopback, scores seeded test
pairs of each set through the OpenAI-compatible backend and the service's own `ScoringEngine`
(Ind-8, history-k 8, both candidate orders, as `pgenrm eval`), once with the default
aggregation and once with `"meta"`, at each simulator `noise` (the std-dev of its per-criterion
score noise: the higher, the more samples disagree and the more of them are wrong). The
embedded backend's figures come from `pgenrm eval --aggregation meta` (see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.core.rows import load_rows
from service.engine.meta_aggregate import AGGREGATIONS
from service.engine.scorer import EngineOptions, ScoringEngine
from service.offline.evaluation.harness import EvalConfig, evaluate
from service.offline.evaluation.scorers import EngineScorer
from service.testing.simulator_process import DEFAULT_MODEL, Simulator

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HISTORY_K = 8


async def measure(url: str, sets: list[str], limit: int, progress: bool) -> dict[str, Any]:
    """Per set and aggregation: accuracy and its 95% interval on the same seeded pairs."""
    backend = OpenAIBackend(OpenAIOptions(urls=(url,), model=DEFAULT_MODEL))
    engine = ScoringEngine(backend, options=EngineOptions(parse_retries=0))
    await engine.start()
    out: dict[str, Any] = {}
    try:
        for name in sets:
            rows, _ = load_rows(DATA / name / "pairs.jsonl.gz")
            for aggregation in AGGREGATIONS:
                config = EvalConfig(history_k=HISTORY_K, limit=limit)
                scorer = EngineScorer(engine, owns_backend=False, aggregation=aggregation)
                result = await evaluate(
                    rows, scorer, config, progress=progress, description=f"{name} {aggregation}"
                )
                out.setdefault(name, {})[aggregation] = {
                    k: result[k] for k in ("accuracy", "ci95", "tie_rate", "pairs")
                }
    finally:
        await engine.close()
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "| simulator noise | data | pairs | mean (default) | meta | meta - mean |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for noise, sets in result["noise"].items():
        for name, by in sets.items():
            mean, meta = by["mean"]["accuracy"], by["meta"]["accuracy"]
            lines.append(
                f"| {noise} | {name} | {by['mean']['pairs']} | {100 * mean:.1f} "
                f"| {100 * meta:.1f} | {100 * (meta - mean):+.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="dsp,ukp_convarg", help="sets under ../shared/data")
    parser.add_argument("--limit", type=int, default=200, help="seeded test pairs per set")
    parser.add_argument("--noise", default="0.8,2.5", help="simulator noise levels")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    sets = [s for s in args.data.split(",") if s]
    result: dict[str, Any] = {
        "scaling": {"ind": 8, "pro": 0, "history_k": HISTORY_K},
        "limit": args.limit,
        "noise": {},
    }
    for noise in (float(n) for n in args.noise.split(",") if n):
        with Simulator(noise=noise) as sim:
            result["noise"][str(noise)] = asyncio.run(
                measure(sim.url, sets, args.limit, not args.no_progress)
            )
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
