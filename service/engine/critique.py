"""RM-NLHF's process reward, as pure functions: stance, one-to-one matching, P/R/F1, reward.

A generative reward model trained only on the A/B label learns to guess right with wrong
reasoning. RM-NLHF (arXiv 2601.07349) rewards a critique by its agreement with a human critique:
key arguments are extracted from both (by a `service.engine.critic.Critic`); two arguments match
only when they mean the same thing AND take the same stance; precision, recall and F1 are
counted over arguments; and

    reward = outcome + 0.5 x [F1 >= 0.5]        (outcome: 1 if the A/B choice is right, else 0)
    reward = -1                                  when the critique or its choice cannot be read

with the process term only when the outcome is right and a human critique exists.

Stance rule (strict, as the issue states it): the same target ("1", "2" or "both") and the same
polarity. A criticism of response 2 is *not* taken as praise of response 1, even in a
comparative critique: "A2 has no examples" and "A1 uses examples" are two arguments, and a
critique that makes only one of them earns only that one. The mirror rule would let any vague
praise of the chosen response match any criticism of the other, which is what a reward model
learning to game the reward would write. An argument whose target could not be resolved
(`None`) matches nothing: its stance is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

Target = Literal["1", "2", "both"]
Polarity = Literal["positive", "negative"]
# How an argument's target was decided: named in the text ("Response 1", "A2", "the latter"),
# inherited from the clause or sentence around it ("It also..."), by the words it shares with
# one response only, or, failing all, from the critique's own choice (praise of "it" is praise
# of what it chose); "chain": a chain's breakdown scored it; "model": an LLM critic said so.
TargetSource = Literal["explicit", "inherited", "overlap", "choice", "chain", "model"]

F1_THRESHOLD = 0.5  # the paper's: the process term is paid when F1 reaches it
PROCESS_BONUS = 0.5
FORMAT_ERROR_REWARD = -1.0


@dataclass(frozen=True, slots=True)
class Argument:
    """One key argument of a critique: what it says, about which response, for or against."""

    text: str
    target: Target | None
    polarity: Polarity
    target_from: TargetSource | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A model argument (index into the model's list) paired with a human one."""

    model: int
    human: int
    similarity: float


@dataclass(frozen=True, slots=True)
class Agreement:
    """Precision, recall and F1 of the model's arguments against the human's.

    All three are None when the human critique gave no argument (there is nothing to agree
    with); a model critique with no argument against a human one with some scores 0, 0, 0."""

    matches: tuple[Match, ...]
    precision: float | None
    recall: float | None
    f1: float | None


def same_stance(a: Argument, b: Argument) -> bool:
    """The strict rule: both targets known and equal, and the same polarity."""
    return a.target is not None and a.target == b.target and a.polarity == b.polarity


def match_arguments(
    model: Sequence[Argument],
    human: Sequence[Argument],
    similarity: npt.ArrayLike,
    threshold: float,
) -> tuple[Match, ...]:
    """The one-to-one matching with the most matches (then the most total similarity).

    A pair is eligible when its similarity reaches `threshold` and the stances agree. The
    assignment maximises the number of matched pairs first: weights are K + similarity with
    K larger than any count of pairs, so no single very similar pair can crowd out two good
    ones. Ties resolve to the lowest indices (scipy's assignment is deterministic)."""
    sim = np.asarray(similarity, dtype=np.float64).reshape(len(model), len(human))
    if not model or not human:
        return ()
    eligible = np.array([[same_stance(m, h) for h in human] for m in model], dtype=bool) & (
        sim >= threshold
    )
    if not eligible.any():
        return ()
    big = float(min(len(model), len(human)) + 1)
    weights = np.where(eligible, big + np.clip(sim, 0.0, 1.0), 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    pairs = [
        Match(int(i), int(j), round(float(sim[i, j]), 4))
        for i, j in zip(rows, cols, strict=True)
        if eligible[i, j]
    ]
    return tuple(sorted(pairs, key=lambda p: p.model))


def agreement(n_model: int, n_human: int, matches: Sequence[Match]) -> Agreement:
    """P = matches / model arguments, R = matches / human arguments, F1 their harmonic mean."""
    found = tuple(matches)
    if n_human == 0:
        return Agreement(found, None, None, None)
    precision = len(found) / n_model if n_model else 0.0
    recall = len(found) / n_human
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Agreement(found, round(precision, 4), round(recall, 4), round(f1, 4))


def process_reward(outcome: int, f1: float | None, f1_threshold: float = F1_THRESHOLD) -> float:
    """0.5 when the choice is right AND a human critique gave arguments AND F1 reaches 0.5."""
    if outcome != 1 or f1 is None:
        return 0.0
    return PROCESS_BONUS if f1 >= f1_threshold else 0.0


def reward_value(
    outcome: int, format_ok: bool, f1: float | None, f1_threshold: float = F1_THRESHOLD
) -> float:
    """RM-NLHF's reward: -1 on a format error, else outcome + the process term."""
    if not format_ok:
        return FORMAT_ERROR_REWARD
    return float(outcome) + process_reward(outcome, f1, f1_threshold)
