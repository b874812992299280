"""MetaRM's evaluation in `bench.critique`: the pairs' samples, fitting per label, and votes.

Apart from the critique run so that each file holds one concept: what a scored pair keeps,
and how MetaRM is judged (AUC on other debates; weighted votes against the plain vote).
"""

from __future__ import annotations

from typing import Any

from service.engine.meta_reward import FEATURES, MetaRM, auc, fit
from service.offline.meta_training.job import DESCRIBED, LABELS, Scored


def vote(pairs: list[Scored], weights: dict[int, float] | None = None) -> float:
    """Accuracy of a vote of each pair's samples' own winners (ties wrong), each sample
    weighted by `weights[id(sample)]` (default 1)."""
    right = 0
    for pair in pairs:
        tally = [0.0, 0.0]
        for s in pair.samples:
            tally[s.winner] += 1.0 if weights is None else weights[id(s)]
        right += tally[pair.human] > tally[1 - pair.human]
    return right / len(pairs) if pairs else float("nan")


def engine_accuracy(pairs: list[Scored]) -> float:
    return sum(p.engine_right for p in pairs) / len(pairs) if pairs else float("nan")


def weighted(model: MetaRM, pairs: list[Scored]) -> dict[str, float]:
    """The service's accuracy, the plain vote's and the MetaRM-weighted vote's on `pairs`."""
    voted = [p for p in pairs if p.samples]
    rows = [s for p in voted for s in p.samples]
    if not rows:
        nan = float("nan")
        return {"pairs": 0, "engine": nan, "vote_plain": nan, "vote_meta": nan}
    p = model.predict([s.x for s in rows])
    weights = {id(s): float(w) for s, w in zip(rows, p, strict=True)}
    return {
        "pairs": len(voted),
        "engine": engine_accuracy(voted),
        "vote_plain": vote(voted),
        "vote_meta": vote(voted, weights),
    }


def meta(
    train: list[Scored], test: list[Scored], others: dict[str, list[Scored]]
) -> list[dict[str, Any]]:
    """Per label: fit MetaRM on the train/val samples; AUC on the test debates' samples, and
    the accuracy of the test pairs' vote weighted by its prediction against the plain vote and
    the service's answer, here and on `others` (sets without critiques)."""
    train_rows = [s for p in train for s in p.samples]
    test_rows = [s for p in test for s in p.samples]
    voted = [p for p in test if p.samples]
    out: list[dict[str, Any]] = []
    for name, label in LABELS.items():
        ys = [int(label(s)) for s in train_rows]
        test_y = [int(label(s)) for s in test_rows]
        row: dict[str, Any] = {
            "label": DESCRIBED[name],
            "train_samples": len(ys),
            "train_positive": sum(ys) / len(ys) if ys else float("nan"),
            "test_samples": len(test_y),
            "test_positive": sum(test_y) / len(test_y) if test_y else float("nan"),
        }
        if len(set(ys)) < 2 or not test_rows:
            out.append({**row, "error": "both classes are needed to fit"})
            continue
        model = fit([s.x for s in train_rows], ys)
        predicted = {
            id(s): float(p)
            for s, p in zip(test_rows, model.predict([s.x for s in test_rows]), strict=True)
        }
        out.append(
            {
                **row,
                "auc": auc([predicted[id(s)] for s in test_rows], test_y),
                "auc_margin_only": auc([s.x[0] for s in test_rows], test_y),
                "auc_agreement_only": auc([s.x[1] for s in test_rows], test_y),
                "voted_pairs": len(voted),
                "engine": engine_accuracy(voted),
                "vote_plain": vote(voted),
                "vote_meta": vote(voted, predicted),
                "transfer": {name: weighted(model, pairs) for name, pairs in others.items()},
                "weights": dict(
                    zip(("intercept", *FEATURES), map(float, model.weights), strict=True)
                ),
            }
        )
    return out
