"""What a scoring call costs, in "sample units": evaluation-chain samples x kilocharacters.

Each sample of the LLM backend reads the prompt, the candidates and the user's history, so a
call's work grows with samples x text; the embedded backend's embedding work grows with the text
alone, which the same measure orders the same way. A plain call (4 candidates, 8 history pairs,
12 samples) costs ~60 units; a maximum-size one (16 long candidates, 64 new pairs) ~2,000.
Stored histories are not in the body and are not counted: their embeddings are cached after the
first call.
"""

from __future__ import annotations

import json
import math
from typing import Any

from service.api.schemas.compare import CompareRequest
from service.api.schemas.critique import CritiqueRewardRequest
from service.api.schemas.openrlhf import RewardRequest
from service.api.schemas.score import ScoreRequest
from service.core.config import Settings

_CHARS_PER_UNIT = 1000
# A critique reward is two argument extractions and one matching: three LLM calls at most.
_CRITIQUE_SAMPLES = 3


def _samples(scaling: Any, settings: Settings) -> int:
    """The samples asked for, within the limits (an item over them fails alone, later)."""
    if isinstance(scaling, dict):
        ind, pro = scaling.get("ind", 0), scaling.get("pro", 0)
        if isinstance(ind, int) and isinstance(pro, int):
            ind, pro = min(max(ind, 0), settings.max_ind), min(max(pro, 0), settings.max_pro)
            return max(1, ind + pro)
    return max(1, settings.default_ind + settings.default_pro)


def _units(samples: int, chars: int) -> int:
    return max(1, math.ceil(samples * chars / _CHARS_PER_UNIT))


def score_cost(request: ScoreRequest, settings: Settings) -> int:
    scaling = request.scaling.model_dump() if request.scaling is not None else None
    chars = len(request.prompt or "") + sum(len(c) for c in request.candidates)
    chars += sum(len(m.content) for m in request.context or [])
    for pair in request.history or []:
        chars += len(pair.chosen) + len(pair.rejected) + len(pair.prompt or "")
        chars += len(pair.feedback or "") + sum(len(m.content) for m in pair.context or [])
    return _units(_samples(scaling, settings), chars)


def batch_cost(items: list[dict[str, Any]], settings: Settings) -> int:
    """Items are not validated yet (each fails alone later): their JSON size stands for text
    (the standard library's JSON: it takes any integer and lone surrogates, as the body did)."""
    return sum(
        _units(_samples(item.get("scaling"), settings), len(json.dumps(item))) for item in items
    )


def reward_cost(request: RewardRequest, settings: Settings) -> int:
    samples = _samples(None, settings)
    return sum(_units(samples, len(q)) for q in request.query) if request.query else 1


def compare_cost(request: CompareRequest, settings: Settings) -> int:
    """What its rows would cost as /v1/score calls."""
    return sum(score_cost(row.score_request(request.scaling), settings) for row in request.rows)


def critique_cost(request: CritiqueRewardRequest, settings: Settings) -> int:
    """Three calls over the body's text (the body's JSON size stands for it)."""
    return _units(_CRITIQUE_SAMPLES, len(json.dumps(request.model_dump())))


def critique_batch_cost(items: list[dict[str, Any]], settings: Settings) -> int:
    return sum(_units(_CRITIQUE_SAMPLES, len(json.dumps(item))) for item in items)
