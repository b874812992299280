"""Shrink each user's (or cluster's) prediction expert toward a population where that predicts
its held-out rows better.

A persona fitted on a thousand pairs can lose to the pooled population on its own new pairs
(hh_rlhf_relabeled's helpful user: 59.7 vs 61.4 on test), while another persona needs its own
expert alone (the harmless user: 63.4 vs 44.5 pooled). So the mix is learnt per expert: among
its own expert, the pooled population and its dataset's population, blended in steps of
`LAMBDAS`, the one with the best held-out log-likelihood on its users' held-out rows. A blend of
linear experts is one linear expert, so serving is unchanged. Clusters are re-formed when the
held-out rows come back, so theirs is chosen per dataset (one choice for all of its clusters).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from service.backends.embedded.params import Expert

F64 = npt.NDArray[np.float64]
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)  # weight of the population in the blend
SCALES = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)  # margin scales a blend is judged at (`_loglik`)
POOLED = "population"

# Where a user's (or a dataset's clusters') expert goes: (population label, weight).
Blends = dict[str, tuple[str, float]]


def blend_key(expert: Expert) -> str:
    """A user expert's own label; a cluster's dataset (`<dataset>/clusters`)."""
    if expert.kind == "cluster":
        return expert.label.split("/")[0] + "/clusters"
    return expert.label


def margins(corpus: Any, index: npt.NDArray[np.int64], expert: Expert) -> F64:
    """The expert's chosen-minus-rejected log-odds on these rows."""
    style, content, wording = corpus.diff(index)
    out = style @ expert.style.astype(np.float64)
    if expert.content.size:
        out = out + content @ expert.content.astype(np.float64)
    if expert.wording_index.size:
        columns = wording[:, expert.wording_index]
        out = out + np.asarray(columns @ expert.wording_value.astype(np.float64)).ravel()
    return np.asarray(out, dtype=np.float64)


def choose(
    corpus: Any,
    experts: Sequence[Expert],
    members: dict[str, npt.NDArray[np.int64]],
) -> tuple[Blends, dict[str, Any]]:
    """Per blend key with held-out rows (`members`: the rows of each expert's users that no
    expert saw), the population and weight with the best held-out log-likelihood; ties keep
    the expert's own (weight 0). Returns the choices and a report of their log-likelihoods."""
    by_label = {e.label: e for e in experts}
    rows: dict[str, list[npt.NDArray[np.int64]]] = defaultdict(list)
    owners: dict[str, list[Expert]] = defaultdict(list)
    for e in experts:
        if e.kind != "population" and e.label in members and members[e.label].size:
            rows[blend_key(e)].append(members[e.label])
            owners[blend_key(e)].append(e)
    choices: Blends = {}
    report: dict[str, Any] = {}
    for key, parts in rows.items():
        dataset = key.split("/")[0]
        targets = [t for t in (POOLED, f"{dataset}/population") if t in by_label]
        own = np.concatenate(
            [margins(corpus, ix, e) for ix, e in zip(parts, owners[key], strict=True)]
        )
        scored: list[tuple[float, str, float]] = [(_loglik(own), "", 0.0)]
        for target in targets:
            pop = np.concatenate([margins(corpus, ix, by_label[target]) for ix in parts])
            for lam in LAMBDAS[1:]:
                scored.append((_loglik((1 - lam) * own + lam * pop), target, lam))
        best = max(scored, key=lambda s: s[0])  # the first best: own before any blend
        if best[2] > 0:
            choices[key] = (best[1], best[2])
        report[key] = {
            "rows": int(own.size),
            "population": best[1] or None,
            "weight": best[2],
            "mean_loglik_own": round(scored[0][0] / own.size, 4),
            "mean_loglik_chosen": round(best[0] / own.size, 4),
        }
    return choices, report


def apply(experts: Sequence[Expert], choices: Blends) -> tuple[Expert, ...]:
    """The experts with each chosen blend applied (populations and the rest unchanged)."""
    by_label = {e.label: e for e in experts}
    out = []
    for e in experts:
        chosen = choices.get(blend_key(e)) if e.kind != "population" else None
        if chosen is None or chosen[0] not in by_label:
            out.append(e)
            continue
        target, lam = chosen[0], chosen[1]
        out.append(_mix(e, by_label[target], lam))
    return tuple(out)


def _mix(own: Expert, pop: Expert, lam: float) -> Expert:
    index = np.union1d(own.wording_index, pop.wording_index)
    value = np.zeros(index.size, np.float64)
    value[np.searchsorted(index, own.wording_index)] += (1 - lam) * own.wording_value
    value[np.searchsorted(index, pop.wording_index)] += lam * pop.wording_value
    keep = value != 0
    return replace(
        own,
        style=((1 - lam) * own.style + lam * pop.style).astype(np.float32),
        content=((1 - lam) * own.content + lam * pop.content).astype(np.float32),
        wording_index=index[keep].astype(np.int64),
        wording_value=value[keep].astype(np.float32),
    )


def _loglik(margin: F64) -> float:
    """Held-out log-likelihood at the best scale of the margins: how well the expert orders
    the pairs, not how confident it is (a persona's own expert is overconfident on new pairs,
    and a blend would win by being softer alone)."""
    return max(float(-np.logaddexp(0.0, -s * margin).sum()) for s in SCALES)
