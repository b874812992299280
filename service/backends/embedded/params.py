"""Parameters of the embedded backend: built-in defaults, or a learnt file when one is shipped.

The defaults are a hand-set global prior that gives sensible scores with no history at all. A
learnt file (written by `pgenrm train-embedded`, from training rows only) replaces them; its
manifest records the data hash it came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.backends.embedded.features import STYLE_FEATURES

PARAMS_FORMAT = 1
DEFAULT_PARAMS_PATH = Path(__file__).with_name("params.json")


@dataclass(frozen=True)
class EmbeddedParams:
    version: str = "builtin-prior-1"
    # Standardisation of the raw style features (population mean and spread).
    style_mean: tuple[float, ...] = (4.6, 0.8, 1.8, 0.9, 0.9, 0.4)
    style_std: tuple[float, ...] = (1.0, 1.0, 1.5, 1.0, 0.8, 0.6)
    # Global prior preference per style feature (standardised units): mildly for complete,
    # structured, clear answers with examples; neutral on tone.
    style_prior: tuple[float, ...] = (0.35, 0.15, 0.05, 0.0, -0.05, 0.1)
    relevance_prior: float = 0.3  # weight of prompt-response similarity, always present
    relevance_scale: float = 0.25  # typical spread of the cosine between answers
    semantic_scale: float = 0.1  # typical spread of e(c).v between answers
    semantic_gain: float = 1.0  # semantic weight per unit of history evidence
    prior_strength: float = 2.0  # pseudo-pairs behind the prior: how much to trust 0-3 pairs
    score_slope: float = 0.6  # tanh slope from standardised evidence to the 1-10 scale
    weight_jitter: float = 60.0  # Dirichlet concentration of per-sample weight variation
    min_weight: float = 3.0  # criteria under this % are dropped from the rubric
    max_criteria: int = 6
    extra: dict[str, Any] = field(default_factory=dict)  # manifest data of a learnt file

    def __post_init__(self) -> None:
        n = len(STYLE_FEATURES)
        for name in ("style_mean", "style_std", "style_prior"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"embedded params: {name} needs {n} values")
        if min(self.style_std) <= 0:
            raise ValueError("embedded params: style_std must be positive")

    def to_json(self) -> str:
        return json.dumps({"format": PARAMS_FORMAT, **asdict(self)}, indent=2)


def load_params(path: Path | None = None) -> EmbeddedParams:
    """The learnt file at `path` (or the packaged one) if present, else the built-in prior."""
    target = path or DEFAULT_PARAMS_PATH
    if not target.exists():
        if path is not None:
            raise FileNotFoundError(f"embedded params file not found: {path}")
        return EmbeddedParams()
    data = json.loads(target.read_text())
    if data.pop("format", None) != PARAMS_FORMAT:
        raise ValueError(f"{target}: unsupported embedded params format")
    for key in ("style_mean", "style_std", "style_prior"):
        data[key] = tuple(data[key])
    return EmbeddedParams(**data)
