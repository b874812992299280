"""The embedded CPU backend: real evaluation chains with no LLM.

For each sample it infers the user's rubric from a bootstrap resample of the few-shot history
(sample 0 uses the whole history), scores every candidate per criterion, and writes the chain in
the P-GenRM text format, so it travels the same parse-and-aggregate path as an LLM's output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from prototypes.embed import Embedder
from service.backends.base import Backend, Completion, SampleGroup
from service.backends.embedded import persona as words
from service.backends.embedded.features import STYLE_FEATURES, style_facts, style_matrix
from service.backends.embedded.params import EmbeddedParams
from service.backends.embedded.rubric import (
    Evidence,
    UserModel,
    candidate_evidence,
    criterion_score,
    infer,
    select_weights,
)
from service.engine.chain import CandidateEvaluation, Criterion, CriterionScore
from service.engine.render import render_chain, rounded_weights


class EmbeddedBackend(Backend):
    name = "embedded"

    def __init__(self, embedder_factory: Callable[[], Embedder], params: EmbeddedParams) -> None:
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self.params = params

    @property
    def model(self) -> str:
        embedder = self._embedder.name if self._embedder else "unloaded"
        return f"pgenrm-embedded/{self.params.version}+{embedder}"

    @property
    def ready(self) -> bool:
        return self._embedder is not None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise RuntimeError("embedded backend used before start()")
        return self._embedder

    async def start(self) -> None:
        if self._embedder is None:
            self._embedder = await asyncio.to_thread(self._factory)

    async def generate(self, group: SampleGroup) -> list[Completion]:
        return await asyncio.to_thread(self.generate_sync, group)

    def generate_sync(self, group: SampleGroup) -> list[Completion]:
        p = self.params
        task, history = group.task, group.history
        k, n_cand = len(history), len(task.candidates)
        texts = [pair.chosen for pair in history] + [pair.rejected for pair in history]
        texts += [task.prompt, *task.candidates]
        emb = self.embedder.encode(texts).astype(np.float64)
        z = (style_matrix(texts) - np.asarray(p.style_mean)) / np.asarray(p.style_std)
        evidence = Evidence(style_diff=z[:k] - z[k : 2 * k], embed_diff=emb[:k] - emb[k : 2 * k])
        prompt_emb, cand_emb = emb[2 * k], emb[2 * k + 1 :]
        cand_z = z[2 * k + 1 :]
        facts = [style_facts(c) for c in task.candidates]
        rng = np.random.default_rng(group.seed)
        out = []
        for b in range(group.n):
            rows = np.arange(k) if b == 0 or k == 0 else rng.integers(0, k, size=k)
            model = infer(evidence, rows, p)
            per_key = candidate_evidence(model, cand_z, cand_emb, prompt_emb, p)
            weights = select_weights(model, p)
            if b > 0:
                raw = rng.dirichlet(p.weight_jitter * np.asarray(list(weights.values())) + 1e-3)
                weights = dict(zip(weights, raw, strict=True))
            text = self._chain_text(model, weights, per_key, facts, n_cand)
            out.append(Completion(text=text, finish_reason="stop"))
        return out

    def _chain_text(
        self,
        model: UserModel,
        weights: dict[str, float],
        per_key: dict[str, np.typing.NDArray[np.float64]],
        facts: list[dict[str, str]],
        n_cand: int,
    ) -> str:
        keys = list(weights)
        percents = rounded_weights([weights[key] for key in keys])
        criteria, columns = [], []
        for key, percent in zip(keys, percents, strict=True):
            if percent == 0:
                continue
            coef = model.coef[key]
            name, description = words.criterion_text(key, coef)
            criteria.append(Criterion(name=name, weight=percent, description=description))
            scores = criterion_score(coef, per_key[key], self.params.score_slope)
            columns.append((key, coef, name, np.round(scores, 1), np.sign(coef) * per_key[key]))
        candidates = []
        for i in range(n_cand):
            row = tuple(
                CriterionScore(
                    criterion=name,
                    score=float(col[i]),
                    justification=words.justification(
                        key, coef, float(signed[i]), _fact(key, facts[i], signed[i])
                    ),
                )
                for key, coef, name, col, signed in columns
            )
            overall = sum(s.score * c.weight for s, c in zip(row, criteria, strict=True)) / 100
            candidates.append(CandidateEvaluation(scores=row, overall=overall))
        return render_chain(words.persona(model), criteria, candidates)


def _fact(key: str, facts: dict[str, str], signed: float) -> str:
    if key in STYLE_FEATURES:
        return facts[key].capitalize()
    if key == "semantic":
        return (
            "Content close to what this user chose"
            if signed > 0
            else "Content closer to what this user rejected"
        )
    return "Addresses the request closely" if signed > 0 else "Strays from the request"
