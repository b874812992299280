"""The embedded CPU backend: real evaluation chains with no LLM.

For each sample it infers the user's preference model from a bootstrap resample of the few-shot
history (sample 0 uses the whole history), turns it into a weighted rubric, scores every
candidate per criterion, and gives the weighted overall scores with the chain in the P-GenRM
text format. The text is written on demand (when a trace reads it) and parses back to exactly
those scores, which a test checks, so traces read like an LLM's output.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from service.backends.embedded import persona as words
from service.backends.embedded._fits import FIT_ROWS
from service.backends.embedded._utility import expert_utilities, sample_utilities
from service.backends.embedded.features import style_facts
from service.backends.embedded.feedback import emphasis as feedback_emphasis
from service.backends.embedded.params import EmbeddedParams
from service.backends.embedded.rubric import Rubrics, plan
from service.backends.embedded.usermodel import (
    CONTENT,
    WORDING,
    ExpertBank,
    PreparedHistory,
    UserModels,
    history_evidence,
    infer,
    prepare_history,
)
from service.backends.embedded.views import TextViews, ViewBuilder, content_keys, content_vectors
from service.core.chain import CandidateEvaluation, Criterion, CriterionScore
from service.core.embedder import Embedder
from service.core.inputs import history_fingerprint
from service.core.lru import LRU, sizeof
from service.core.priority import background_executor, in_background
from service.engine.backend import Backend, Completion, SampleGroup
from service.engine.cache import Caches, user_key
from service.engine.cache import key as cache_key
from service.engine.prompts import PROMPT_TEMPLATE_VERSION
from service.engine.render import render_chain

_R = TypeVar("_R")
# The most samples x candidates a warm call computes on the event loop (Ind-8 over 8
# candidates); a larger one goes to a thread like any call that embeds.
_INLINE_WORK = 64


class EmbeddedBackend(Backend):
    name = "embedded"

    def __init__(
        self,
        embedder_factory: Callable[[], Embedder],
        params: EmbeddedParams,
        caches: Caches | None = None,
        background_nice: int = 0,
    ) -> None:
        self._factory = embedder_factory
        self._nice = background_nice
        self._background: ThreadPoolExecutor | None = None
        self.params = params
        self.caches = caches
        self._bank = ExpertBank(params)
        self._views: ViewBuilder | None = None
        # Persona evidence by cache key, decoded and prepared (`PreparedHistory`: most of a
        # warm call's persona cost). Used only while the cache still holds the key, so a
        # forgotten user's entry is never served from here; evicted by size like every cache.
        self._prepared: LRU[str, tuple[int, PreparedHistory]] = LRU(4096, 64 << 20, _prepared_size)

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
            self.params.check_embedder(embedder.name, embedder.dim, embedder.fingerprint)
            self._views = ViewBuilder(
                self.params, embedder, wording_experts=self._bank.predict.wording
            )
        if self._nice and self._background is None:
            self._background = background_executor(2, self._nice)

    async def close(self) -> None:
        if self._views is not None:
            self._views.close()
        if self._background is not None:
            self._background.shutdown(wait=False, cancel_futures=True)
            self._background = None

    async def _in_thread(self, fn: Callable[..., _R], *args: Any) -> _R:
        """Run CPU work off the event loop: an expensive call's on the lowered-priority
        threads (see service.core.priority), any other's on asyncio's default threads."""
        if self._background is None or not in_background():
            return await asyncio.to_thread(fn, *args)
        call = partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._background, call)

    async def warm(self, texts: Sequence[tuple[str, str]], progress: bool = False) -> None:
        """Embed every text up front in large batches (much faster than request by request)."""
        if self._views is None or not self.params.has_content:
            return
        unique = sorted(dict.fromkeys(texts), key=lambda t: len(t[0]) + len(t[1]))
        views, embedder = self.params.content_views, self._views.embedder
        step = 512  # similar lengths share a batch: less padding
        for start in tqdm(range(0, len(unique), step), desc="embedding", disable=not progress):
            chunk = unique[start : start + step]
            prompts, responses = [p for p, _ in chunk], [r for _, r in chunk]
            await asyncio.to_thread(content_vectors, embedder, views, prompts, responses)

    async def generate(self, group: SampleGroup) -> list[Completion]:
        started = time.perf_counter()
        completions = await self._generate_cached(group)
        if self.metrics is not None:
            self.metrics.backend_duration.labels(self.name, "in-process").observe(
                time.perf_counter() - started
            )
        return completions

    async def _generate_cached(self, group: SampleGroup) -> list[Completion]:
        """Cached history evidence and embeddings first, then the CPU work in a thread."""
        if self.caches is None or self._views is None:
            return (await self._in_thread(self._generate, group, None))[0]
        key = None
        cached: PreparedHistory | TextViews | None = None
        raw: bytes | None = None
        if group.history:
            parts = (
                history_fingerprint(group.history),
                PROMPT_TEMPLATE_VERSION,
                self.model,
                self.embedder.fingerprint,
            )
            # The user's own history is keyed under the user (forgotten with it); a neighbour's
            # few-shots under their opaque label.
            if group.level == "ind":
                key = user_key("persona", group.user_id, *parts)
            else:
                key = cache_key("persona", group.source, *parts)
            [raw] = await self.caches.lookup("persona", [key])
            memo = self._prepared.get(key) if raw is not None else None
            hit = memo is not None and raw is not None and memo[0] == len(raw)
            cached = memo[1] if memo is not None and hit else _decode(raw)
        pairs = [(group.task.prompt, c) for c in group.task.candidates]
        if cached is None:
            pairs += [(p.prompt, a) for p in group.history for a in (p.chosen, p.rejected)]
        missing = await self._prefetch(pairs)
        # A warm call (embeddings in memory, the history's evidence prepared) is ~2-3 ms of
        # numpy on small arrays, holding the GIL most of it: handing it to a thread cost the
        # loop more than it saved (a warm request took ~8.0 ms in-process that way, ~5.5
        # inline). Anything that embeds, or is large, still runs off the loop.
        warm = not missing and (not group.history or isinstance(cached, PreparedHistory))
        small = group.n * len(group.task.candidates) <= _INLINE_WORK
        if warm and small and not in_background():
            completions, prepared = self._generate(group, cached)
        else:
            completions, prepared = await self._in_thread(self._generate, group, cached)
        if key is not None and prepared is not None and not isinstance(cached, PreparedHistory):
            if cached is None or raw is None:  # new to the cache: store the views
                raw = prepared.views.to_bytes()
                await self.caches.remember({key: raw})
            self._prepared.put(key, (len(raw), prepared))
        if missing and self.caches.shared:
            fresh = self.embedder.cached(missing)
            await self.caches.remember(
                {self._embedding_key(t): v.astype(np.float32).tobytes() for t, v in fresh.items()}
            )
        return completions

    def _embedding_key(self, text: str) -> str:
        return cache_key("embedding", self.embedder.fingerprint, text)

    async def _prefetch(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Put known embeddings of these texts in memory; return the ones nobody has."""
        assert self.caches is not None
        prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
        views = self.params.content_views if self.params.has_content else ()
        texts = list(dict.fromkeys(content_keys(views, prompts, responses)))
        in_memory = self.embedder.cached(texts)
        self.caches.count("embedding", "hit", len(in_memory), store="memory")
        missing = [t for t in texts if t not in in_memory]
        self.caches.count("embedding", "miss", len(missing), store="memory")
        if not missing or not self.caches.shared:
            return missing
        values = await self.caches.lookup("embedding", [self._embedding_key(t) for t in missing])
        found = {
            t: np.frombuffer(v, dtype=np.float32)
            for t, v in zip(missing, values, strict=True)
            if v is not None and len(v) == 4 * self.embedder.dim
        }
        self.embedder.remember(found)
        return [t for t in missing if t not in found]

    def generate_sync(self, group: SampleGroup) -> list[Completion]:
        return self._generate(group, None)[0]

    def _generate(
        self, group: SampleGroup, cached: PreparedHistory | TextViews | None
    ) -> tuple[list[Completion], PreparedHistory | None]:
        """The samples, and the history's prepared evidence (to keep for the next call)."""
        if self._views is None:
            raise RuntimeError("embedded backend used before start()")
        task, history = group.task, group.history
        k = len(history)
        cand_prompts = [task.prompt] * len(task.candidates)
        prepared = cached if isinstance(cached, PreparedHistory) else None
        if prepared is None or len(prepared.views) != 2 * k:
            if isinstance(cached, TextViews) and len(cached) == 2 * k:
                history_views, fresh = cached, self._views.build(cand_prompts, task.candidates)
            else:  # one build: history and candidates go through the embedder in one batch
                prompts = [p.prompt for p in history] * 2 + cand_prompts
                texts = [p.chosen for p in history] + [p.rejected for p in history]
                both = self._views.build(prompts, texts + list(task.candidates))
                history_views, fresh = both.head(2 * k), both.tail(2 * k)
            prepared = prepare_history(self._bank, history_views) if k else None
        else:
            fresh = self._views.build(cand_prompts, task.candidates)
        if prepared is not None:
            views, scores, evidence = prepared.with_candidates(self._bank, fresh)
        else:
            views, scores = fresh, self._bank.view_scores(fresh)
            evidence = history_evidence(self._bank, views, scores, 0)
        n = len(task.candidates)
        candidates = slice(2 * k, 2 * k + n)
        rng = np.random.default_rng(group.seed)
        experts = expert_utilities(self._bank, views, scores, candidates)
        emphasis = feedback_emphasis([p.feedback for p in history])
        counts = np.stack([self._resample(k, rng if b else None) for b in range(group.n)])
        models = infer(self._bank, views, scores, evidence, counts, rng, emphasis)
        rubrics = plan(models, candidates, self.params.calibration, rng)
        utilities = sample_utilities(models, experts, candidates)  # the response's confidence
        out = []
        for b, (overall, utility) in enumerate(zip(rubrics.overall(), utilities, strict=True)):
            # The chain text is written only if a trace reads it; `overall` is what it says.
            write = partial(self._chain, models, b, rubrics, task.candidates, task.prompt, k)
            out.append(
                Completion(finish_reason="stop", overall=overall, write=write, utility=utility)
            )
        return out, prepared

    def _resample(self, k: int, rng: np.random.Generator | None) -> np.typing.NDArray[np.int64]:
        """The history multiset of one Ind-N sample: all of it without `rng` (the first)."""
        counts = np.ones(k, np.int64)
        how = self.params.calibration.resample
        if rng is None:
            return counts
        if how == "bootstrap" and k:
            counts = rng.multinomial(k, [1 / k] * k).astype(np.int64)
        elif how == "drop-one" and k >= 3:
            counts[rng.integers(k)] = 0
        return counts

    def _chain(
        self,
        models: UserModels,
        b: int,
        rubrics: Rubrics,
        texts: Sequence[str],
        prompt: str,
        k: int,
    ) -> str:
        model, planned = models[b], rubrics.criteria(b)
        facts = [style_facts(t, prompt) for t in texts]
        criteria = []
        for c in planned:
            name, description = words.criterion_text(c.key, c.direction)
            criteria.append(
                Criterion(name=name, key=c.key, weight=c.weight, description=description)
            )
        candidates = []
        for i, fact in enumerate(facts):
            row = tuple(
                CriterionScore(
                    criterion=criterion.name,
                    key=c.key,
                    score=float(c.scores[i]),
                    justification=words.justification(
                        c.key,
                        c.direction,
                        _fact(c.key, fact),
                        [float(s) for s in c.scores],
                        i,
                        float(c.standardised[i]),
                    ),
                )
                for c, criterion in zip(planned, criteria, strict=True)
            )
            overall = sum(s.score * c.weight for s, c in zip(row, criteria, strict=True)) / 100
            candidates.append(CandidateEvaluation(scores=row, overall=overall))
        persona = words.persona(model, planned, self._bank.labels, k)
        return render_chain(persona, criteria, candidates)


def _prepared_size(entry: object) -> int:
    """Bytes of a prepared-persona entry (and of its key)."""
    if not isinstance(entry, tuple):
        return sizeof(entry)
    prepared: PreparedHistory = entry[1]
    views, evidence = prepared.views, prepared.evidence
    arrays = [views.style, views.content, views.wording, evidence.expert_margin, prepared.columns]
    arrays += [*prepared.scores.values(), *evidence.diff.values(), *evidence.gram.values()]
    # The row fits `infer` keeps with the history (`_fits`): at most FIT_ROWS posteriors.
    fits = FIT_ROWS * (8 * (int(evidence.expert_margin.shape[0]) + 1) + 512)
    return sum(sizeof(a) for a in [*arrays, *evidence.cross.values()]) + fits + 1024


def _decode(raw: bytes | None) -> TextViews | None:
    if raw is None:
        return None
    try:
        return TextViews.from_bytes(raw)
    except ValueError:  # a foreign or damaged entry is just a miss
        return None


def _fact(key: str, facts: dict[str, str]) -> str:
    if key in facts:
        return facts[key].capitalize()
    return "Its content" if key == CONTENT else "Its wording" if key == WORDING else "Its text"
