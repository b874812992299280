"""MetaRM's training data: ukp_convarg pairs scored by the service, each sample rewarded.

A pair is scored through the service's own `ScoringEngine` in its original A1/A2 order (the
order the worker's `feedback` names them in, recovered by `service.offline.argument_order`),
with up to `HISTORY_K` of the worker's other train/val rows as history (as `pgenrm eval
--history-k 8`). Every valid sample's chain is then rewarded against the feedback with the
backend's critic (RM-NLHF), which gives MetaRM's label, and described by MetaRM's features.

`top` keeps only a chain's `top` most separating criteria before it is rewarded
(`meta_reward.top_criteria`): an embedded chain names 6-14 arguments against a worker's 1-2,
which caps F1 near 0.13 even when a reason matches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from service.core.chain import EvaluationChain
from service.core.inputs import ScoringTask
from service.core.rows import Row
from service.engine.critic import Critic
from service.engine.critique import F1_THRESHOLD
from service.engine.critique_reward import CritiqueCase, CritiqueResult, reward_critique
from service.engine.meta_reward import (
    FEATURES,
    MetaRM,
    auc,
    features,
    fit,
    in_candidate_order,
    top_criteria,
    winner,
)
from service.engine.parsing import ScoredSample
from service.engine.scaling import Scaling
from service.engine.scorer import ScoreOutcome, ScoringEngine
from service.offline.argument_order import Ordered
from service.offline.histories import draw_history

HISTORY_K = 8
SCALING = Scaling(8, 0)


@dataclass(frozen=True)
class SampleRow:
    """One valid sample of a pair: MetaRM's features, and how its own critique scored."""

    x: list[float]
    winner: int  # candidate index (0: A1)
    outcome: int
    f1: float | None


@dataclass
class Scored:
    """One pair: the trace's critique reward, and every valid sample's row for MetaRM."""

    topic: str
    human: int  # candidate index the worker chose
    engine_right: bool  # the service's own answer (scores tied: wrong)
    trace: CritiqueResult | None
    samples: list[SampleRow] = field(default_factory=list)
    meta_weights: list[float | None] | None = None  # per sample, when scored with "meta"


LABELS: dict[str, Callable[[SampleRow], bool]] = {  # from a sample's own critique reward
    "process": lambda s: s.outcome == 1 and (s.f1 or 0) >= F1_THRESHOLD,
    "shares_reason": lambda s: s.outcome == 1 and (s.f1 or 0) > 0,
    "right": lambda s: s.outcome == 1,
}
DESCRIBED = {
    "process": "right and F1 >= 0.5 (process reward)",
    "shares_reason": "right and F1 > 0 (shares a reason)",
    "right": "right outcome (reward >= 1)",
}


def sample_features(
    out: ScoreOutcome, texts: tuple[str, ...]
) -> list[tuple[EvaluationChain, int, list[float]]]:
    """Every valid sample's chain (candidate order), winner and MetaRM features."""
    chains = [
        in_candidate_order(s.outcome.chain(), s.order)
        for s in out.samples
        if isinstance(s.outcome, ScoredSample)
    ]
    winners = [winner(c) for c in chains]
    lengths = [len(t) for t in texts]
    return [
        (c, w, features(c, winners, w, out.scores, lengths))
        for c, w in zip(chains, winners, strict=True)
    ]


def _trimmed(chain: EvaluationChain, top: int | None) -> EvaluationChain:
    return chain if top is None else top_criteria(chain, top)


async def score_pair(
    engine: ScoringEngine,
    critic: Critic,
    pools: dict[str, list[Row]],
    pair: Ordered,
    index: int,
    *,
    all_samples: bool,
    top: int | None = None,
) -> Scored:
    """The pair scored and its trace rewarded; with `all_samples`, every sample too."""
    row = pair.row
    history = draw_history(pools, row, HISTORY_K, 0, index)
    task = ScoringTask(row.context, (pair.a1, pair.a2))
    out = await engine.score(row.user_id, history, task, SCALING)
    topic = str(row.extras.get("topic", ""))
    human = pair.human_choice - 1
    right = out.scores[human] > out.scores[1 - human]
    if out.trace is None or not isinstance(out.trace.outcome, ScoredSample):
        return Scored(topic, human, right, None)
    tie = abs(out.scores[0] - out.scores[1]) < 1e-9
    chain = in_candidate_order(out.trace.outcome.chain(), out.trace.order)
    case = CritiqueCase(
        prompt=task.prompt,
        responses=(pair.a1, pair.a2),
        critique=_trimmed(chain, top),
        human_choice=pair.human_choice,
        model_choice=None if tie else out.preferred + 1,
        human_critique=row.feedback,
    )
    scored = Scored(topic, human, right, await reward_critique(critic, case))
    if not all_samples:
        return scored
    for chain, own, x in sample_features(out, (pair.a1, pair.a2)):
        one = CritiqueCase(
            task.prompt,
            (pair.a1, pair.a2),
            _trimmed(chain, top),
            pair.human_choice,
            own + 1,
            row.feedback,
        )
        result = await reward_critique(critic, one)
        scored.samples.append(SampleRow(x, own, result.outcome, result.f1))
    return scored


async def run_pairs(
    engine: ScoringEngine,
    critic: Critic,
    pools: dict[str, list[Row]],
    pairs: list[Ordered],
    *,
    all_samples: bool,
    top: int | None,
    label: str,
    progress: bool = True,
) -> list[Scored]:
    gate = asyncio.Semaphore(4)
    bar = tqdm(total=len(pairs), desc=label, unit="pair", leave=False, disable=not progress)

    async def one(index: int, pair: Ordered) -> Scored:
        async with gate:
            done = await score_pair(
                engine, critic, pools, pair, index, all_samples=all_samples, top=top
            )
            bar.update()
            return done

    try:
        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs))))
    finally:
        bar.close()


def fit_label(
    train: list[Scored], test: list[Scored], label: str
) -> tuple[MetaRM | None, dict[str, Any]]:
    """MetaRM fitted on the train/val pairs' samples for `label`, and its held-out AUC."""
    rule = LABELS[label]
    train_rows = [s for p in train for s in p.samples]
    test_rows = [s for p in test for s in p.samples]
    ys = [int(rule(s)) for s in train_rows]
    test_y = [int(rule(s)) for s in test_rows]
    report: dict[str, Any] = {
        "label": label,
        "described": DESCRIBED[label],
        "train_samples": len(ys),
        "train_positive": sum(ys) / len(ys) if ys else float("nan"),
        "test_samples": len(test_y),
        "test_positive": sum(test_y) / len(test_y) if test_y else float("nan"),
    }
    if len(set(ys)) < 2:
        return None, {**report, "error": "both classes are needed to fit"}
    model = fit([s.x for s in train_rows], ys)
    predicted = [float(p) for p in model.predict([s.x for s in test_rows])] if test_rows else []
    report.update(
        auc=auc(predicted, test_y) if test_rows else float("nan"),
        auc_margin_only=auc([s.x[0] for s in test_rows], test_y),
        auc_agreement_only=auc([s.x[1] for s in test_rows], test_y),
        # the same predictions judged against every label (the process reward's above all)
        auc_by_label={
            name: auc(predicted, [int(other(s)) for s in test_rows])
            for name, other in LABELS.items()
        },
        test_positive_by_label={
            name: sum(map(other, test_rows)) / len(test_rows) if test_rows else float("nan")
            for name, other in LABELS.items()
        },
        weights=dict(zip(("intercept", *FEATURES), map(float, model.weights), strict=True)),
    )
    return model, report
