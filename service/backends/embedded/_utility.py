"""A sample's calibrated utility for the engine's confidence: the rubric's utility, spread over
the experts the user model weighs.

The rubric scores the posterior-mean utility (`UserModel.contributions`), which is calibrated
log-odds. Reading a win probability off that mean alone (sigmoid of a difference) is
overconfident when the experts disagree, as they do about a user with no history: each expert
is one hypothesis about the user, so the honest probability is the posterior's average of the
experts' probabilities. Each expert hypothesis is the rubric's utility plus that expert's
deviation from the posterior's expert mean; the rest of the posterior (the user's own history
model) stays at the rubric's utility, so the hypotheses average to exactly what is scored.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.backends.embedded.usermodel import ExpertBank, UserModel
from service.backends.embedded.views import TextViews
from service.engine.backend import Utility

F64 = npt.NDArray[np.float64]
_NEGLIGIBLE = 1e-4  # hypotheses lighter than this change no probability by more than it


def expert_utilities(
    bank: ExpertBank, views: TextViews, scores: dict[str, F64], candidates: slice
) -> F64:
    """(J, n): every prediction expert's utility of the candidates (as `infer` mixes them)."""
    total = bank.style @ views.style[candidates].T
    for part in scores.values():
        total = total + part[:, candidates]
    return np.asarray(total, dtype=np.float64)


def sample_utility(model: UserModel, experts: F64, candidates: slice) -> Utility:
    """The hypotheses of one sample's user model and their posterior weights."""
    utility = np.sum([part[candidates] for part in model.contributions.values()], axis=0)
    mass = float(model.posterior.sum())
    rows, weights = [utility], [max(0.0, 1.0 - mass)]
    if mass > _NEGLIGIBLE:
        mean = (model.posterior @ experts) / mass
        heavy = model.posterior > _NEGLIGIBLE
        rows += list(utility + experts[heavy] - mean)
        weights += list(model.posterior[heavy])
    w = np.asarray(weights, dtype=np.float64)
    keep = w > _NEGLIGIBLE
    w = w[keep] / w[keep].sum()
    values = tuple(tuple(float(x) for x in row) for row, k in zip(rows, keep, strict=True) if k)
    return Utility(weights=tuple(float(x) for x in w), values=values)
