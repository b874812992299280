"""What a history and one of its multisets (`counts` row) alone determine, kept with the history.

Per counts row: the user's own history model (its scale by leave-one-out likelihood, each
view's direction normaliser) and the mixed posterior over the experts and that model. None of
it depends on the candidates, and an Ind-N call draws its N rows from a few (drop-one: the
k + 1 of them), so a returning user's calls find every row fitted: the prepared history keeps
up to `FIT_ROWS` per calibration, and a call only assembles them and adds its candidates.

A row's numbers are those of the batch it was first fitted in: every step is row by row (a
row's products, reductions and maxima never read another row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from service.backends.embedded._trust import domain_shares, mixed_posterior

if TYPE_CHECKING:
    from service.backends.embedded.usermodel import ExpertBank, History
    from service.backends.embedded.views import TextViews

F64 = npt.NDArray[np.float64]
FIT_ROWS = 16  # rows one history keeps per calibration (drop-one up to k = 15: all of them)


def log_sigmoid(x: F64) -> F64:
    return np.asarray(-np.logaddexp(0.0, -x), dtype=np.float64)


@dataclass(frozen=True)
class RowFit:
    alpha: float  # scale of the own history model (0: the row has none)
    own: bool  # the row has an own model: >= 2 distinct pairs and a view where they differ
    scales: dict[str, float]  # view -> 1 / norm of the row's direction, where it has one
    weights: F64  # (J + 1,) the posterior over the experts and, last, the own model


@dataclass(frozen=True)
class Fitted:
    """A call's rows, assembled: arrays over its samples."""

    alpha: F64  # (B,)
    own: npt.NDArray[np.bool_]  # (B,)
    weights: F64  # (B, J + 1), the caller's to change
    directions: dict[str, F64]  # view -> (B, dim or texts); zero where a row has none


def fitted(bank: ExpertBank, views: TextViews, history: History, c: F64) -> Fitted:
    """The rows of `c` (B, k), from the history's kept fits where it has them."""
    kept = history.fits.setdefault(bank.calibration, {})
    keys = [row.tobytes() for row in c]
    fresh: dict[bytes, RowFit] = {}
    if any(key not in kept for key in keys):
        fresh = dict(zip(keys, _fit(bank, views, history, c), strict=True))
        if len(kept.keys() | fresh.keys()) <= FIT_ROWS:
            kept.update(fresh)
    rows = [fresh[key] if key in fresh else kept[key] for key in keys]
    directions: dict[str, F64] = {}
    for view in history.gram:
        if not any(view in r.scales for r in rows):
            continue
        scale = np.array([r.scales.get(view, 0.0) for r in rows])[:, None]
        if view == "style":
            diff = history.diff["style"]
            assert isinstance(diff, np.ndarray)
            directions[view] = (c @ diff) * scale
        else:
            directions[view] = (c @ history.cross[view].T) * scale
    return Fitted(
        alpha=np.array([r.alpha for r in rows]),
        own=np.array([r.own for r in rows]),
        weights=np.array([r.weights for r in rows]),
        directions=directions,
    )


def _fit(bank: ExpertBank, views: TextViews, history: History, c: F64) -> list[RowFit]:
    cal = bank.calibration
    ll = c @ log_sigmoid(history.expert_margin).T if history.k else None
    alpha, ll_ind, scales, own = _individual(history, c, cal.individual_alphas)
    weights = mixed_posterior(bank, ll, ll_ind, own, history.k, domain_shares(bank, views, c))
    return [
        RowFit(
            alpha=float(alpha[b]),
            own=bool(own[b]),
            scales={view: float(s[b]) for view, (s, live) in scales.items() if live[b]},
            weights=weights[b].copy(),
        )
        for b in range(c.shape[0])
    ]


def _individual(
    history: History, c: F64, alphas: tuple[float, ...]
) -> tuple[F64, F64, dict[str, tuple[F64, npt.NDArray[np.bool_]]], npt.NDArray[np.bool_]]:
    """Per sample of (B, k) counts: (alpha, leave-one-out log-likelihood, per view the
    direction's normaliser and where it has one, whether the sample has an own history model:
    >= 2 distinct pairs and a view in which they differ)."""
    n_samples, k = c.shape
    zero = np.zeros(n_samples)
    enough = (c.sum(axis=1) >= 2) & ((c > 0).sum(axis=1) >= 2)
    if not enough.any():
        return zero, zero, {}, enough
    loo = np.zeros((n_samples, k))
    rest = c[:, None, :] - np.eye(k)  # [b, i]: sample b's counts without one copy of pair i
    scales: dict[str, tuple[F64, npt.NDArray[np.bool_]]] = {}
    seen = np.zeros(n_samples, bool)
    for view, gram in history.gram.items():
        norm = np.sqrt(np.maximum(np.einsum("bi,ij,bj->b", c, gram, c), 0.0))
        live = enough & (norm > 1e-12)
        if not live.any():
            continue
        seen |= live
        # Each pair against the mean of the others, normalised like the full direction.
        rest_norm = np.sqrt(np.maximum(np.einsum("bxi,ij,bxj->bx", rest, gram, rest), 1e-24))
        loo += np.where(live[:, None], np.einsum("xj,bxj->bx", gram, rest) / rest_norm, 0.0)
        scales[view] = (np.where(live, 1.0 / np.where(live, norm, 1.0), 0.0), live)
    own = enough & seen
    if not own.any():
        return zero, zero, {}, own
    grid = np.asarray(alphas, dtype=np.float64)
    fit = np.einsum("bi,bia->ba", c, log_sigmoid(loo[:, :, None] * grid))
    best = fit.argmax(axis=1)  # the first best, as max() picks
    alpha = np.where(own, grid[best], 0.0)
    return alpha, np.where(own, fit[np.arange(n_samples), best], 0.0), scales, own
