"""Infer a user's weighted rubric from their history and apply it to candidates.

The user model is linear in standardised evidence: one coefficient per style feature, one for a
semantic direction (what the user's chosen answers have that the rejected ones lack, in
embedding space) and one for relevance to the prompt. Each coefficient is the history's mean
evidence shrunk toward the global prior by `prior_strength` pseudo-pairs, so 0-3 pairs still
give a sensible rubric. Weights are the coefficients' magnitudes; criterion scores map the
signed evidence onto 1-10 with a tanh, so the weighted overall ranks like the linear model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.backends.embedded.features import STYLE_FEATURES
from service.backends.embedded.params import EmbeddedParams

Array = npt.NDArray[np.float64]
SEMANTIC = "semantic"
RELEVANCE = "relevance"


@dataclass(frozen=True)
class Evidence:
    """A history in feature space: chosen minus rejected, one row per pair."""

    style_diff: Array  # (k, S) standardised style features
    embed_diff: Array  # (k, d) embedding differences


@dataclass(frozen=True)
class UserModel:
    """Signed coefficients per criterion key (style feature names, `semantic`, `relevance`)."""

    coef: dict[str, float]
    semantic_dir: Array | None
    n_pairs: int
    agreement: dict[
        str, tuple[int, int]
    ]  # key -> (pairs where chosen is higher, pairs that differ)


def infer(evidence: Evidence, rows: npt.NDArray[np.int64], params: EmbeddedParams) -> UserModel:
    """The user model from the history rows `rows` (a bootstrap resample, or all of them)."""
    k = len(rows)
    n0 = params.prior_strength
    prior = np.asarray(params.style_prior)
    style = evidence.style_diff[rows]
    style_coef = (style.sum(axis=0) + n0 * prior) / (k + n0) if k else prior
    coef = {name: float(c) for name, c in zip(STYLE_FEATURES, style_coef, strict=True)}
    coef[RELEVANCE] = params.relevance_prior
    direction: Array | None = None
    if k:
        diffs = evidence.embed_diff[rows]
        mean = diffs.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        spread = float(np.linalg.norm(diffs, axis=1).mean())
        if norm > 1e-9 and spread > 1e-9:
            direction = mean / norm
            consistency = norm / spread  # 1 when every pair points the same way
            coef[SEMANTIC] = params.semantic_gain * (0.5 + consistency) * k / (k + n0)
    agreement = {}
    for j, name in enumerate(STYLE_FEATURES):
        column = style[:, j] if k else np.zeros(0)
        moved = column[np.abs(column) > 0.15]
        agreement[name] = (int((moved > 0).sum()), len(moved))
    return UserModel(coef=coef, semantic_dir=direction, n_pairs=k, agreement=agreement)


def candidate_evidence(
    model: UserModel,
    style_z: Array,
    cand_emb: Array,
    prompt_emb: Array,
    params: EmbeddedParams,
) -> dict[str, Array]:
    """Standardised evidence per criterion key, one value per candidate (higher = more of it)."""
    out = {name: style_z[:, j] for j, name in enumerate(STYLE_FEATURES)}
    relevance = cand_emb @ prompt_emb
    out[RELEVANCE] = (relevance - 0.5) / params.relevance_scale
    if model.semantic_dir is not None:
        out[SEMANTIC] = (cand_emb @ model.semantic_dir) / params.semantic_scale
    return out


def criterion_score(coef: float, evidence: Array, slope: float) -> Array:
    """1-10 per candidate: 5.5 when neutral, toward 10 the more it has what the user wants."""
    signed = np.sign(coef) * evidence
    return np.asarray(5.5 + 4.5 * np.tanh(slope * signed), dtype=np.float64)


def select_weights(model: UserModel, params: EmbeddedParams) -> dict[str, float]:
    """Relative importance per criterion: |coef|, the weakest dropped, at most `max_criteria`."""
    magnitude = {key: abs(c) for key, c in model.coef.items() if abs(c) > 1e-9}
    ranked = sorted(magnitude.items(), key=lambda kv: kv[1], reverse=True)[: params.max_criteria]
    total = sum(v for _, v in ranked) or 1.0
    kept = {k: v for k, v in ranked if 100.0 * v / total >= params.min_weight}
    return kept or dict(ranked[:1])
