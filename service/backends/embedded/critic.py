"""The embedded critic: rule-based arguments, MiniLM cosine for meaning (CPU, no LLM).

Arguments come from `service.backends.embedded.arguments` (claims, targets, polarity). Two
arguments mean the same thing when the cosine of their embedded cores (the claim with the
responses it names replaced by "it", so that whom it is about does not count twice) reaches
`SIMILARITY_THRESHOLD`; the matcher (`service.engine.critique`) adds the stance rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np

from service.backends.embedded import arguments
from service.core.embedder import Embedder
from service.engine.critic import Critic, CritiqueText, Similarity
from service.engine.critique import Argument

# Calibrated by `python -m tests.critique.calibrate` with the bundled MiniLM as served
# (onnx-int8, 128 tokens): the best F1 of the whole pair decision (cosine >= threshold AND the
# same stance) on tests/critique/labelled_pairs.jsonl, 81 hand-labelled argument pairs (40 the
# same argument; debate and assistant critiques). At 0.42: 37 of 40 found, no false match
# (precision 1.000, recall 0.925, F1 0.961, agreement 78/81) -- in sample, as the lexicon was
# debugged on the same pairs; two-fold cross-validated F1 0.892. On 32 pairs written after
# both were fixed (heldout_pairs.jsonl): 10 of 15 found, no false match (F1 0.800, agreement
# 27/32); the misses are stance words the lexicon lacks. tests/critique/test_calibration.py
# recounts both.
SIMILARITY_THRESHOLD = 0.42


class EmbeddedCritic(Critic):
    """Reads critiques with rules and compares arguments with the given embedder.

    Give the embedder itself (offline jobs: `EmbeddedCritic(load_embedder())`), or a function
    that returns it once it is loaded (the app: the embedded backend's, after start-up)."""

    name = "embedded"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        provider: Callable[[], Embedder | None] | None = None,
        threshold: float = SIMILARITY_THRESHOLD,
    ) -> None:
        if (embedder is None) == (provider is None):
            raise ValueError("give the embedder or a provider of it, not both")
        self._embedder = embedder
        self._provider = provider
        self.similarity_threshold = threshold

    @property
    def embedder(self) -> Embedder | None:
        if self._embedder is None and self._provider is not None:
            self._embedder = self._provider()
        return self._embedder

    @property
    def ready(self) -> bool:
        return self.embedder is not None

    @property
    def model(self) -> str:
        embedder = self.embedder
        return f"pgenrm-critic/rules+{embedder.name if embedder else 'unloaded'}"

    async def extract(self, critiques: Sequence[CritiqueText]) -> list[tuple[Argument, ...]]:
        return [
            arguments.extract(c.text, c.responses, c.choice, self.max_arguments) for c in critiques
        ]

    async def similarity(self, model: Sequence[Argument], human: Sequence[Argument]) -> Similarity:
        embedder = self.embedder
        if embedder is None:
            raise RuntimeError("the embedded critic's embedder is not loaded yet")
        texts = [a.text for a in model], [a.text for a in human]
        return await asyncio.to_thread(cosine, embedder, *texts)


def cosine(embedder: Embedder, left: Sequence[str], right: Sequence[str]) -> Similarity:
    """(len(left), len(right)) cosines of the claims' cores (vectors are unit length)."""
    if not left or not right:
        return np.zeros((len(left), len(right)), dtype=np.float64)
    vectors = embedder.encode([arguments.core(t) for t in [*left, *right]]).astype(np.float64)
    return np.asarray(vectors[: len(left)] @ vectors[len(left) :].T, dtype=np.float64)
