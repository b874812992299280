"""The embedded CPU backend: real evaluation chains with no LLM.

For each sample it infers the user's preference model from a bootstrap resample of the few-shot
history (sample 0 uses the whole history), turns it into a weighted rubric, scores every
candidate per criterion, and writes the chain in the P-GenRM text format, so it travels the
same parse-and-aggregate path as an LLM's output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from prototypes.embed import Embedder
from service.backends.base import Backend, Completion, SampleGroup
from service.backends.embedded import persona as words
from service.backends.embedded.features import style_facts
from service.backends.embedded.params import EmbeddedParams
from service.backends.embedded.rubric import PlannedCriterion, plan
from service.backends.embedded.usermodel import (
    CONTENT,
    ExpertBank,
    UserModel,
    history_evidence,
    infer,
)
from service.backends.embedded.views import ViewBuilder, qa_text
from service.engine.chain import CandidateEvaluation, Criterion, CriterionScore
from service.engine.render import render_chain


class EmbeddedBackend(Backend):
    name = "embedded"

    def __init__(self, embedder_factory: Callable[[], Embedder], params: EmbeddedParams) -> None:
        self._factory = embedder_factory
        self.params = params
        self._bank = ExpertBank(params)
        self._views: ViewBuilder | None = None

    @property
    def model(self) -> str:
        embedder = self._views.embedder.name if self._views else "unloaded"
        return f"pgenrm-embedded/{self.params.version}+{embedder}"

    @property
    def ready(self) -> bool:
        return self._views is not None

    @property
    def embedder(self) -> Embedder:
        if self._views is None:
            raise RuntimeError("embedded backend used before start()")
        return self._views.embedder

    async def start(self) -> None:
        if self._views is None:
            embedder = await asyncio.to_thread(self._factory)
            self.params.check_embedder(embedder.name, embedder.dim)
            self._views = ViewBuilder(self.params, embedder)

    async def warm(self, texts: Sequence[tuple[str, str]], progress: bool = False) -> None:
        """Embed every text up front in large batches (much faster than request by request)."""
        if self._views is None or not self.params.has_content:
            return
        unique = list(dict.fromkeys(texts))
        batch = [qa_text(p, r) for p, r in unique] + [r for _, r in unique]
        batch.sort(key=len)  # similar lengths share a batch: less padding
        step = 512
        for start in tqdm(range(0, len(batch), step), desc="embedding", disable=not progress):
            await asyncio.to_thread(self._views.embedder.encode, batch[start : start + step])

    async def generate(self, group: SampleGroup) -> list[Completion]:
        return await asyncio.to_thread(self.generate_sync, group)

    def generate_sync(self, group: SampleGroup) -> list[Completion]:
        if self._views is None:
            raise RuntimeError("embedded backend used before start()")
        task, history = group.task, group.history
        k = len(history)
        prompts = [p.prompt for p in history] * 2 + [task.prompt] * len(task.candidates)
        texts = [p.chosen for p in history] + [p.rejected for p in history] + list(task.candidates)
        views = self._views.build(prompts, texts)
        scores = self._bank.view_scores(views)
        evidence = history_evidence(self._bank, views, scores, k)
        candidates = slice(2 * k, len(texts))
        facts = [style_facts(c) for c in task.candidates]
        rng = np.random.default_rng(group.seed)
        out = []
        for b in range(group.n):
            counts = self._resample(k, rng) if b else np.ones(k, np.int64)
            model = infer(self._bank, views, scores, evidence, counts, rng if b else None)
            criteria = plan(model, candidates, self.params.calibration, rng if b else None)
            text = self._chain(model, criteria, facts, k)
            out.append(Completion(text=text, finish_reason="stop"))
        return out

    def _resample(self, k: int, rng: np.random.Generator) -> np.typing.NDArray[np.int64]:
        """The history multiset of one Ind-N sample after the first (which uses all of it)."""
        counts = np.ones(k, np.int64)
        how = self.params.calibration.resample
        if how == "bootstrap" and k:
            counts = rng.multinomial(k, [1 / k] * k).astype(np.int64)
        elif how == "drop-one" and k >= 3:
            counts[rng.integers(k)] = 0
        return counts

    def _chain(
        self, model: UserModel, planned: list[PlannedCriterion], facts: list[dict[str, str]], k: int
    ) -> str:
        criteria = []
        for c in planned:
            name, description = words.criterion_text(c.key, c.direction)
            criteria.append(Criterion(name=name, weight=c.weight, description=description))
        candidates = []
        for i, fact in enumerate(facts):
            row = tuple(
                CriterionScore(
                    criterion=criterion.name,
                    score=float(c.scores[i]),
                    justification=words.justification(_fact(c.key, fact), float(c.standardised[i])),
                )
                for c, criterion in zip(planned, criteria, strict=True)
            )
            overall = sum(s.score * c.weight for s, c in zip(row, criteria, strict=True)) / 100
            candidates.append(CandidateEvaluation(scores=row, overall=overall))
        persona = words.persona(model, planned, self._bank.labels, k)
        return render_chain(persona, criteria, candidates)


def _fact(key: str, facts: dict[str, str]) -> str:
    if key in facts:
        return facts[key].capitalize()
    return "Its content" if key == CONTENT else "Its wording"
