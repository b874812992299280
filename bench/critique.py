"""Critique rewards on ukp_convarg: is the service right, and right for the human's reasons?

    .venv/bin/python -m bench.critique [--limit N] [--train-limit N] [--transfer dsp,...]
        [--transfer-limit N] [--json]

For a seeded subset of test rows (default 1500) it scores the pair through the service's own
`ScoringEngine` (embedded backend, Ind-8, history: up to 8 of the same worker's other train/val
rows, as `pgenrm eval --history-k 8`), takes the summary chain (`outcome.trace`) as the model's
critique and the worker's `feedback` as the human's, and reports outcome accuracy, the F1
distribution and the "right for the wrong reasons" rate (right outcome, F1 < 0.5).

The feedback names the arguments A1/A2 in their original order, not chosen/rejected, so every
pair is scored as (A1, A2) recovered by `argument_order`; rows whose order cannot be recovered
are skipped and counted. Chains are reordered to candidate order before they are read.

MetaRM (`service.engine.meta_reward`): every valid sample of a seeded subset of train/val rows
(default 600) is rewarded the same way; a logistic regression over the sample's features learns
P(right outcome and F1 >= 0.5) -- and, as that is rare with the embedded chains, P(right
outcome and at least one shared reason) -- and is judged by its AUC on the test rows' samples
(other debates: splits are by debate). Each pair's samples then vote, weighted by its
prediction, against the plain vote and the service's own answer, on ukp_convarg and on seeded
test pairs of the sets without critiques (`--transfer`). MetaRM is fitted here on the fly; the
one the service ships for `aggregation: "meta"` is `pgenrm train-meta`'s
(`service.offline.meta_training`, which scores and rewards pairs with the same functions).
`--top-criteria N` rewards a chain on its N most separating criteria only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench._meta_vote import meta
from service.core.inputs import ScoringTask
from service.core.rows import Row, load_rows
from service.engine.critique import F1_THRESHOLD
from service.engine.scorer import ScoringEngine
from service.offline.argument_order import order_rows
from service.offline.histories import draw_history
from service.offline.meta_training.command import add_top_criteria
from service.offline.meta_training.job import (
    HISTORY_K,
    SCALING,
    SampleRow,
    Scored,
    run_pairs,
    sample_features,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ukp_convarg"


async def transfer(engine: ScoringEngine, name: str, limit: int, seed: int = 0) -> list[Scored]:
    """Samples of a seeded subset of another set's test pairs (no critiques: MetaRM needs
    none), each pair in a seeded order."""
    rows, _ = load_rows(DATA.parent / name / "pairs.jsonl.gz")
    pools: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.split in ("train", "val"):
            pools[r.user_id].append(r)
    test = [r for r in rows if r.split == "test"]
    rng = random.Random(f"critique:{seed}:{name}")
    test = rng.sample(test, min(limit, len(test)))
    gate = asyncio.Semaphore(4)
    bar = tqdm(total=len(test), desc=name, unit="pair", leave=False)

    async def one(index: int, row: Row, swap: bool) -> Scored:
        texts = (row.rejected, row.chosen) if swap else (row.chosen, row.rejected)
        human = int(swap)
        async with gate:
            history = draw_history(pools, row, HISTORY_K, seed, index)
            out = await engine.score(row.user_id, history, ScoringTask(row.context, texts), SCALING)
        bar.update()
        right = out.scores[human] > out.scores[1 - human]
        scored = Scored(name, human, right, None)
        for _, own, x in sample_features(out, texts):
            scored.samples.append(SampleRow(x, own, int(own == human), None))
        return scored

    swaps = [rng.random() < 0.5 for _ in test]
    try:
        return list(await asyncio.gather(*(one(i, r, swaps[i]) for i, r in enumerate(test))))
    finally:
        bar.close()


def summary(scored: list[Scored]) -> dict[str, Any]:
    results = [s.trace for s in scored if s.trace is not None]
    f1 = [r.f1 for r in results if r.f1 is not None]
    right = [r for r in results if r.outcome == 1]
    wrong_reasons = [r for r in right if r.f1 is not None and r.f1 < F1_THRESHOLD]
    quartiles = statistics.quantiles(f1, n=4) if len(f1) >= 2 else [float("nan")] * 3
    return {
        "pairs": len(scored),
        "no_trace": len(scored) - len(results),
        "outcome_accuracy": len(right) / len(results) if results else float("nan"),
        "f1_pairs": len(f1),
        "f1_mean": statistics.fmean(f1) if f1 else float("nan"),
        "f1_quartiles": quartiles,
        "f1_at_least_half": sum(x >= F1_THRESHOLD for x in f1) / len(f1) if f1 else float("nan"),
        "right_for_wrong_reasons": len(wrong_reasons) / len(right) if right else float("nan"),
        "process_mean": statistics.fmean(r.process for r in results) if results else float("nan"),
        "reward_mean": statistics.fmean(r.reward for r in results) if results else float("nan"),
    }


async def main(
    limit: int,
    train_limit: int,
    others: tuple[str, ...] = (),
    other_limit: int = 300,
    seed: int = 0,
    top: int | None = None,
) -> dict[str, Any]:
    from service.app import build_state
    from service.core.config import Settings
    from service.core.embedder import default_disk_cache

    rows, _ = load_rows(DATA / "pairs.jsonl.gz")
    pools: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.split in ("train", "val"):
            pools[r.user_id].append(r)
    with_feedback = [r for r in rows if r.feedback]
    test_rows = [r for r in with_feedback if r.split == "test"]
    train_rows = [r for r in with_feedback if r.split in ("train", "val")]
    test, test_skipped = order_rows(test_rows, among=rows)
    train, train_skipped = order_rows(train_rows, among=rows)
    test = random.Random(f"critique:{seed}:test").sample(test, min(limit, len(test)))
    train = random.Random(f"critique:{seed}:train").sample(train, min(train_limit, len(train)))

    settings = Settings(embedder_cache_size=500_000, embedder_disk_cache=default_disk_cache())
    state = build_state(settings)
    await state.engine.start()
    critic = state.critique_service.critic
    assert critic is not None, "the embedded backend has a critic"
    try:
        scored = await run_pairs(
            state.engine, critic, pools, test, all_samples=train_limit > 0, top=top, label="test"
        )
        fitted = await run_pairs(
            state.engine, critic, pools, train, all_samples=True, top=top, label="train"
        )
        elsewhere = {n: await transfer(state.engine, n, other_limit, seed) for n in others if train}
    finally:
        await state.engine.close()
    return {
        "data": "ukp_convarg",
        "scaling": {"ind": SCALING.ind, "pro": SCALING.pro, "history_k": HISTORY_K},
        "top_criteria": top,
        "test_rows_with_feedback": len(test_rows),
        "order_skipped": {"test": test_skipped, "train_val": train_skipped},
        "critique": summary(scored),
        "meta_rm": meta(fitted, scored, elsewhere) if train else None,
    }


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def table(result: dict[str, Any]) -> str:
    c = result["critique"]
    q = c["f1_quartiles"]
    out = [
        "| pairs | outcome accuracy | F1 mean | F1 quartiles | F1 >= 0.5 "
        "| right for wrong reasons | process reward | reward |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        f"| {c['pairs']} | {pct(c['outcome_accuracy'])} | {c['f1_mean']:.3f} "
        f"| {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} | {pct(c['f1_at_least_half'])} "
        f"| {pct(c['right_for_wrong_reasons'])} | {c['process_mean']:.3f} "
        f"| {c['reward_mean']:.3f} |",
        "",
        f"A1/A2 order not recoverable, skipped: test {result['order_skipped']['test']} of "
        f"{result['test_rows_with_feedback']} rows with feedback, "
        f"train/val {result['order_skipped']['train_val']}.",
    ]
    metas = result.get("meta_rm") or []
    if metas:
        out += [
            "",
            "| MetaRM predicts | train samples (positive) | test samples (positive) | AUC "
            "| AUC margin alone | AUC agreement alone |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for m in metas:
            head = (
                f"| {m['label']} | {m['train_samples']} ({pct(m['train_positive'])}) "
                f"| {m['test_samples']} ({pct(m['test_positive'])}) "
            )
            if "error" in m:
                out.append(head + f"| {m['error']} | | |")
                continue
            out.append(
                head + f"| {m['auc']:.3f} | {m['auc_margin_only']:.3f} "
                f"| {m['auc_agreement_only']:.3f} |"
            )
        out += [
            "",
            "| MetaRM predicts | data | pairs | service (Ind-8) | plain vote of samples "
            "| MetaRM-weighted vote |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for m in (m for m in metas if "auc" in m):
            here = {
                "pairs": m["voted_pairs"],
                **{k: m[k] for k in ("engine", "vote_plain", "vote_meta")},
            }
            for name, v in {"ukp_convarg": here, **m["transfer"]}.items():
                out.append(
                    f"| {m['label']} | {name} | {v['pairs']} | {pct(v['engine'])} "
                    f"| {pct(v['vote_plain'])} | {pct(v['vote_meta'])} |"
                )
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1500, help="seeded subset of test rows")
    parser.add_argument(
        "--train-limit", type=int, default=600, help="train/val rows for MetaRM (0: no MetaRM)"
    )
    parser.add_argument(
        "--transfer",
        default="dsp,hh_rlhf_relabeled",
        help="sets (no critiques) to try the MetaRM-weighted vote on ('' for none)",
    )
    parser.add_argument("--transfer-limit", type=int, default=300, help="seeded pairs per set")
    add_top_criteria(parser, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    others = tuple(n for n in args.transfer.split(",") if n)
    result = asyncio.run(
        main(
            args.limit,
            args.train_limit,
            others,
            args.transfer_limit,
            top=args.top_criteria or None,
        )
    )
    print(table(result))
    if args.json:
        print(json.dumps(result))
