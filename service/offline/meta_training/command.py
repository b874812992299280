"""`pgenrm train-meta`: fit MetaRM on ukp_convarg's train/val rows, judge it on test debates,
and write its coefficients (by default into the package, which `aggregation: "meta"` reads).

    pgenrm train-meta --data ../shared/data/ukp_convarg/pairs.jsonl.gz [--train-limit 1500]
        [--test-limit 600] [--top-criteria 1] [--label process] [--out FILE] [--json]

Only rows with the worker's `feedback` whose A1/A2 order is recoverable are used; train/val
rows fit, test rows (other debates: splits are by debate) give the AUC reported and stored
with the coefficients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any

from service.core.rows import DataError, load_rows
from service.engine.meta_reward import SHIPPED
from service.offline._local import add_engine_arguments, start_local
from service.offline.argument_order import Ordered, order_rows
from service.offline.histories import history_pools
from service.offline.meta_training.job import HISTORY_K, LABELS, SCALING, fit_label, run_pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="ukp_convarg's pairs file")
    parser.add_argument("--train-limit", type=int, default=1500, help="seeded train/val rows")
    parser.add_argument("--test-limit", type=int, default=600, help="seeded test rows (AUC)")
    add_top_criteria(parser, default=1)
    parser.add_argument(
        "--label",
        choices=tuple(LABELS),
        default="right",
        help="what MetaRM learns; the process reward is ~never earned by embedded chains",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SHIPPED, help="coefficients JSON")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--no-progress", action="store_true")
    add_engine_arguments(parser)


def add_top_criteria(parser: argparse.ArgumentParser, default: int) -> None:
    """`--top-criteria N`: how much of a chain its reward reads (`job.score_pair`'s `top`)."""
    parser.add_argument(
        "--top-criteria",
        type=int,
        default=default,
        help="reward a chain on its N most separating criteria only (0: all of them)",
    )


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    rows, report = load_rows(args.data)
    pools = history_pools(rows)
    with_feedback = [r for r in rows if r.feedback]
    train, train_skipped = order_rows([r for r in with_feedback if r.split != "test"], among=rows)
    test, test_skipped = order_rows([r for r in with_feedback if r.split == "test"], among=rows)
    train = _subset(train, args.train_limit, f"meta:{args.seed}:train")
    test = _subset(test, args.test_limit, f"meta:{args.seed}:test")
    top = args.top_criteria or None
    state = await start_local(args)
    critic = state.critique_service.critic
    if critic is None:
        raise DataError("this backend has no critic to reward the samples with")
    progress = not args.no_progress
    try:
        fitted = await run_pairs(
            state.engine,
            critic,
            pools,
            train,
            all_samples=True,
            top=top,
            label="train",
            progress=progress,
        )
        held = await run_pairs(
            state.engine,
            critic,
            pools,
            test,
            all_samples=True,
            top=top,
            label="test",
            progress=progress,
        )
        scorer = state.engine.scorer
    finally:
        await state.engine.close()
    model, found = fit_label(fitted, held, args.label)
    about = {
        "trained_on": {
            "data": f"{args.data.parent.name}/{args.data.name}",
            "data_sha256": report.sha256,
            "train_rows": len(train),
            "test_rows": len(test),
            "order_skipped": {"train_val": train_skipped, "test": test_skipped},
            "scorer": scorer,
            "scaling": {"ind": SCALING.ind, "pro": SCALING.pro, "history_k": HISTORY_K},
            "top_criteria": top,
            "seed": args.seed,
        },
        **{k: v for k, v in found.items() if k != "weights"},
    }
    if model is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(model.to_json(**about), indent=1) + "\n", encoding="utf-8")
    return {**about, "written": str(args.out) if model is not None else None}


def _subset(pairs: list[Ordered], limit: int, seed: str) -> list[Ordered]:
    return random.Random(seed).sample(pairs, min(limit, len(pairs)))


def run(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_run(args))
    except DataError as error:
        print(f"pgenrm train-meta: {error}", file=sys.stderr)
        return 2
    print(
        f"MetaRM ({result['described']}): {result['train_samples']} train samples "
        f"({100 * result['train_positive']:.1f}% positive), held-out AUC "
        f"{result.get('auc', float('nan')):.3f} on {result['test_samples']} test samples "
        f"({100 * result['test_positive']:.1f}% positive); "
        f"wrote {result['written']}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result, default=str))
    return 0 if result["written"] else 1
