"""A sample's calibrated utility for the engine's confidence: the rubric's utility, spread over
the experts the user model weighs.

The rubric scores the posterior-mean utility (`UserModels.parts`), which is calibrated
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

from service.backends.embedded.usermodel import ExpertBank, UserModels
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


def sample_utilities(models: UserModels, experts: F64, candidates: slice) -> list[Utility]:
    """Per sample: the hypotheses of its user model and their posterior weights."""
    utility = models.parts[:, :, candidates].sum(axis=1)  # (B, n)
    mass = models.posterior.sum(axis=1)
    safe = np.where(mass > _NEGLIGIBLE, mass, 1.0)[:, None]
    deviation = experts[None] - ((models.posterior @ experts) / safe)[:, None]  # (B, J, n)
    # Hypothesis 0 is the rubric's utility (weight: the mass off the experts), 1..J the experts.
    weights = np.column_stack([np.maximum(0.0, 1.0 - mass), models.posterior])
    values = np.concatenate([utility[:, None], utility[:, None] + deviation], axis=1)
    # Experts weigh nothing when their mass is negligible (each of them is lighter still).
    weights[mass <= _NEGLIGIBLE, 1:] = 0.0
    out = []
    for w, v in zip(weights, values, strict=True):
        keep = w > _NEGLIGIBLE
        kept = w[keep]
        out.append(Utility(weights=kept / kept.sum(), values=v[keep]))
    return out
