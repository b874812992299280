"""`pgenrm eval`: accuracy of a backend (or a running server) on PersonalRewardBench-style rows."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from service.core.rows import DataError, load_rows
from service.engine.meta_aggregate import AGGREGATIONS
from service.offline._local import add_engine_arguments, start_local
from service.offline.evaluation.harness import DERIVED_TAGS, EvalConfig, evaluate
from service.offline.evaluation.report import parse_grid, setting_name, write_grid, write_json
from service.offline.evaluation.scorers import EngineScorer, HttpScorer, PairScorer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, type=Path, help=".jsonl, .jsonl.gz, .json or .parquet"
    )
    parser.add_argument("--split", default="test", help="rows to predict (default test)")
    parser.add_argument("--history-k", type=int, default=3, help="history pairs per test pair")
    parser.add_argument("--ind", type=int, default=8, help="individual-level samples (Ind-N)")
    parser.add_argument("--pro", type=int, default=0, help="prototype-level samples (Pro-M)")
    parser.add_argument("--grid", help='several IND:PRO settings, e.g. "0:0,8:0,8:4,16:8"')
    parser.add_argument("--url", help="score through a running server's /v1/score instead")
    parser.add_argument("--limit", type=int, help="score a seeded random subset of N pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--by", help=f"slice by a row field or a derived tag ({', '.join(DERIVED_TAGS)})"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="pairs in flight")
    parser.add_argument(
        "--aggregation",
        choices=AGGREGATIONS,
        default="mean",
        help="how samples are combined: mean (the paper's), meta (weighted by MetaRM)",
    )
    parser.add_argument("--out", type=Path, help="directory for results JSON (and grid table/plot)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last on stdout")
    parser.add_argument("--no-progress", action="store_true")
    add_engine_arguments(parser)


async def _local_scorer(args: argparse.Namespace) -> PairScorer:
    return EngineScorer((await start_local(args)).engine, aggregation=args.aggregation)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("accuracy", "ci95", "macro_accuracy", "tie_rate", "parse_failure_rate", "pairs", "by")
    return {k: result[k] for k in keys if k in result}


def _describe(name: str, r: dict[str, Any]) -> str:
    lines = [
        f"{name}: accuracy {pct(r['accuracy'])}% (95% CI {pct(r['ci95'][0])}-{pct(r['ci95'][1])}), "
        f"macro {pct(r['macro_accuracy'])}%, ties {pct(r['tie_rate'])}%, "
        f"parse failures {pct(r['parse_failure_rate'])}%, "
        + (
            f"Pro samples short of neighbours {pct(r['neighbour_shortfall_rate'])}%, "
            if r.get("neighbour_shortfall_rate")
            else ""
        )
        + f"{r['pairs']} pairs, "
        f"{r['pairs_per_s']:.1f} pairs/s",
        "  per user: " + ", ".join(f"{u} {pct(a)}" for u, a in r["per_user"].items()),
    ]
    if "by" in r:
        lines.append(
            "  by: " + ", ".join(f"{k} {pct(a)} (n={r['by_pairs'][k]})" for k, a in r["by"].items())
        )
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    try:
        rows, report = load_rows(args.data)
    except DataError as error:
        _say(f"pgenrm eval: {error}")
        return 2
    _say(report.summary())
    settings = parse_grid(args.grid) if args.grid else [(args.ind, args.pro)]
    scorer = (
        HttpScorer(args.url, concurrency=args.concurrency, aggregation=args.aggregation)
        if args.url
        else await _local_scorer(args)
    )
    results: list[tuple[str, dict[str, Any]]] = []
    try:
        for ind, pro in settings:
            config = EvalConfig(
                args.split, args.history_k, ind, pro, args.limit, args.seed, args.concurrency
            )
            name = setting_name(ind, pro)
            result = await evaluate(
                rows, scorer, config, by=args.by, progress=not args.no_progress, description=name
            )
            result.update(
                data=str(args.data),
                data_sha256=report.sha256,
                malformed_rows=report.malformed_total,
            )
            results.append((name, result))
            _say(_describe(name, result))
    finally:
        await scorer.aclose()
    if args.out:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for name, result in results:
            write_json(args.out / f"eval-{name}-{stamp}.json", result)
        if args.grid:
            scorer_label = results[0][1]["scorer"]
            title = f"{args.data.name} ({args.split}, k={args.history_k}, {scorer_label})"
            paths = write_grid(args.out, results, title)
            _say("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.json:
        # The last setting's figures at top level; with --grid, every setting under "grid".
        final = dict(results[-1][1])
        if len(results) > 1:
            final["grid"] = {name: _headline(r) for name, r in results}
        print(json.dumps(final, default=str))
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
