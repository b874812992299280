"""The scoring engine: plan samples, call the backend, parse, aggregate, rank.

Works on domain inputs (`service.core.inputs`) only, so the HTTP API and the evaluation
harness drive exactly the same code. Never invents a score: if every sample fails, it raises
`ScoringFailed` with the reasons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from service.core.chain import FailureReason, ParseFailure
from service.core.errors import ScoringFailed, Unavailable
from service.core.inputs import PreferencePair, ScoringTask
from service.core.metrics import Metrics
from service.engine.aggregate import LevelTally, Sample, mean_scores, medoid, rank, spread
from service.engine.backend import Backend, BackendError, Completion, SampleGroup
from service.engine.meta_aggregate import Aggregation, meta_weights
from service.engine.meta_reward import MetaRM, shipped
from service.engine.parsing import ScoredSample, parse_scores
from service.engine.scaling import (
    NeighbourSource,
    NoNeighbours,
    Scaling,
    canonical_order,
    derive_seed,
    fuse,
    plan_groups,
)

log = logging.getLogger("pgenrm.engine")

# Failures worth asking the backend again for; a dead worker is its own retry policy's business.
_RETRYABLE = {"empty_output", "no_json", "truncated", "invalid_json", "missing_scores"}


@dataclass(frozen=True)
class EngineOptions:
    ind_weight: float = 0.5
    pro_weight: float = 0.5
    parse_retries: int = 1  # extra requests for samples that failed to parse
    rotate_candidates: bool = False  # balance candidate positions across samples
    deadline_s: float | None = None  # total time for one score; late samples count as timeouts


@dataclass(frozen=True)
class Readiness:
    """What the engine can say about itself, for /readyz and the response's `backend`/`model`."""

    loaded: bool  # backend (and fallback) started
    available: bool  # some worker can answer now
    backend: str
    model: str
    fallback: str | None
    retry_after: int  # seconds a client should wait while unavailable
    details: dict[str, object]  # the backend's own description (workers, versions)


@dataclass
class ScoreOutcome:
    scores: list[float]
    ranks: list[int]
    preferred: int
    margin: float | None  # best minus runner-up; None for a single candidate
    stds: list[float]  # per candidate, over its valid samples
    valid: list[int]  # per candidate, valid samples that scored it
    ind: LevelTally
    pro: LevelTally
    ind_scores: list[float] | None
    pro_scores: list[float] | None
    samples: list[Sample]
    trace: Sample | None
    seed: int
    backend: str  # who wrote the chains: the backend, or the fallback when degraded
    model: str
    prototypes_version: str | None  # the artefact the Pro-M samples came from
    retried: Counter[str] = field(default_factory=Counter)
    degraded: bool = False  # answered by the fallback backend
    aggregation: Aggregation = "mean"
    meta_weights: list[float | None] | None = None  # per sample, with aggregation "meta"


class ScoringEngine:
    def __init__(
        self,
        backend: Backend,
        neighbours: NeighbourSource | None = None,
        options: EngineOptions | None = None,
        fallback: Backend | None = None,
        metrics: Metrics | None = None,
        meta_rm: MetaRM | None = None,
    ) -> None:
        self._backend = backend
        self._meta_rm = meta_rm  # None: the shipped coefficients, read at first use
        self._neighbours = neighbours or NoNeighbours()
        self.options = options or EngineOptions()
        self._fallback = fallback  # answers (flagged degraded) when every worker is down
        self._metrics = metrics

    # --- the small public surface the serving layer and the jobs use -------------------------

    async def start(self) -> None:
        """Load the fallback, then the backend (the expensive part: models, connections)."""
        if self._fallback is not None:
            await self._fallback.start()
        await self._backend.start()

    async def close(self) -> None:
        await self._backend.close()
        if self._fallback is not None:
            await self._fallback.close()

    @property
    def ready(self) -> bool:
        """Started: requests can be scored (by the backend, or its fallback)."""
        return self._backend.ready and (self._fallback is None or self._fallback.ready)

    def readiness(self) -> Readiness:
        backend, fallback = self._backend, self._fallback
        return Readiness(
            loaded=self.ready,
            available=backend.available,
            backend=backend.name,
            model=backend.model,
            fallback=fallback.name if fallback is not None else None,
            retry_after=backend.retry_after(),
            details=backend.describe(),
        )

    @property
    def scorer(self) -> str:
        """`backend:model`, as evaluation reports name what scored."""
        return f"{self._backend.name}:{self._backend.model}"

    @property
    def prototypes_version(self) -> str | None:
        """The prototype artefact serving Pro-M samples, or None when none is loaded."""
        return self._neighbours.version

    def forget(self, user_id: str) -> None:
        """Drop what the engine's parts hold in memory about this user (profiles)."""
        self._neighbours.forget(user_id)

    def use_neighbours(self, neighbours: NeighbourSource) -> None:
        """Plug in prototype-level scaling (once the artefact is loaded)."""
        self._neighbours = neighbours

    async def warm(self, texts: Sequence[tuple[str, str]], progress: bool = False) -> None:
        """Precompute what scoring these (prompt, response) texts needs (batch jobs)."""
        await self._backend.warm(texts, progress)

    async def score(
        self,
        user_id: str,
        history: tuple[PreferencePair, ...],
        task: ScoringTask,
        scaling: Scaling,
        seed: int | None = None,
        aggregation: Aggregation = "mean",
    ) -> ScoreOutcome:
        order = canonical_order(task.candidates)
        canonical = ScoringTask(task.context, tuple(task.candidates[i] for i in order))
        seed = derive_seed(user_id, history, canonical) if seed is None else seed
        ind, pro = LevelTally(requested=scaling.ind), LevelTally(requested=scaling.pro)
        neighbours = []
        if scaling.pro:
            started = time.perf_counter()
            neighbours = await self._neighbours.neighbours(user_id, history, canonical, scaling.pro)
            if self._metrics is not None and self._neighbours.version is not None:
                self._metrics.prototype_lookup.observe(time.perf_counter() - started)
            missing = scaling.pro - min(len(neighbours), scaling.pro)
            if missing:
                reason = "no_prototypes" if self._neighbours.version is None else "no_neighbours"
                pro.skipped[reason] += missing
        planned = plan_groups(
            user_id,
            history,
            canonical,
            scaling,
            neighbours,
            seed,
            rotate=self.options.rotate_candidates,
        )
        groups = [_to_request_order(g, order) for g in planned]
        retried: Counter[str] = Counter()
        for group, samples in zip(groups, await self._run_all(groups, retried), strict=True):
            (ind if group.level == "ind" else pro).samples.extend(samples)

        ind_scores, pro_scores = mean_scores(ind.samples), mean_scores(pro.samples)
        if ind_scores is None and pro_scores is None:
            reasons = ind.failures + pro.failures
            if set(reasons) - {"no_prototypes", "no_neighbours"} == {"unavailable"}:
                return await self._unavailable(user_id, history, task, scaling, seed, aggregation)
            summary = ", ".join(f"{r}: {c}" for r, c in reasons.most_common()) or "no samples"
            raise ScoringFailed(
                f"no valid evaluation chain from {scaling.ind + scaling.pro} requested samples "
                f"({summary})",
                details=[{"reason": r, "count": c} for r, c in reasons.most_common()],
            )
        scores = fuse(ind_scores, pro_scores, self.options.ind_weight, self.options.pro_weight)
        samples = ind.samples + pro.samples
        weights = None
        if aggregation == "meta":
            model = self._meta_rm or shipped()
            weights = meta_weights(samples, scores, [len(c) for c in task.candidates], model)
            ind_scores = mean_scores(ind.samples, weights[: len(ind.samples)])
            pro_scores = mean_scores(pro.samples, weights[len(ind.samples) :])
            scores = fuse(ind_scores, pro_scores, self.options.ind_weight, self.options.pro_weight)
        ranks = rank(scores)
        ordered = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        trace_index = medoid(samples, scores)
        stds, valid = spread(samples, len(scores))
        return ScoreOutcome(
            scores=scores,
            ranks=ranks,
            preferred=ordered[0],
            margin=scores[ordered[0]] - scores[ordered[1]] if len(scores) > 1 else None,
            stds=stds,
            valid=valid,
            ind=ind,
            pro=pro,
            ind_scores=ind_scores,
            pro_scores=pro_scores,
            samples=samples,
            trace=samples[trace_index] if trace_index >= 0 else None,
            seed=seed,
            backend=self._backend.name,
            model=self._backend.model,
            prototypes_version=self._neighbours.version,
            retried=retried,
            aggregation=aggregation,
            meta_weights=weights,
        )

    async def _unavailable(
        self,
        user_id: str,
        history: tuple[PreferencePair, ...],
        task: ScoringTask,
        scaling: Scaling,
        seed: int,
        aggregation: Aggregation,
    ) -> ScoreOutcome:
        """Every worker is down: the fallback backend answers (flagged), or a 503."""
        if self._fallback is None:
            raise Unavailable(
                f"every {self._backend.name} worker is down; retry later",
                retry_after=self._backend.retry_after(),
            )
        engine = ScoringEngine(
            self._fallback,
            self._neighbours,
            self.options,
            metrics=self._metrics,
            meta_rm=self._meta_rm,
        )
        outcome = await engine.score(user_id, history, task, scaling, seed, aggregation)
        outcome.degraded = True
        return outcome

    async def _run_all(
        self, groups: list[SampleGroup], retried: Counter[str]
    ) -> list[list[Sample]]:
        """Every group concurrently; past the deadline, unfinished groups are timeouts."""
        tasks = [asyncio.ensure_future(self._run(g, retried)) for g in groups]
        if not tasks:
            return []
        done, pending = await asyncio.wait(tasks, timeout=self.options.deadline_s)
        for task in pending:
            task.cancel()
        out = []
        for group, task in zip(groups, tasks, strict=True):
            if task in done:
                out.append(task.result())
            else:
                late = ParseFailure(reason="timeout", detail="the score's deadline passed")
                out.append([Sample(group.level, group.source, late, group.order)] * group.n)
        return out

    async def _run(self, group: SampleGroup, retried: Counter[str]) -> list[Sample]:
        samples = await self._attempt(group)
        for attempt in range(1, self.options.parse_retries + 1):
            bad = [
                i
                for i, s in enumerate(samples)
                if isinstance(s.outcome, ParseFailure) and s.outcome.reason in _RETRYABLE
            ]
            if not bad:
                break
            for i in bad:
                retried[samples[i].outcome.reason] += 1  # type: ignore[union-attr]
            again = await self._attempt(
                replace(group, n=len(bad), seed=group.seed + 104729 * attempt)
            )
            for i, sample in zip(bad, again, strict=True):
                samples[i] = sample
        return samples

    async def _attempt(self, group: SampleGroup) -> list[Sample]:
        k = len(group.task.candidates)

        def failed(reason: FailureReason, detail: str, count: int) -> list[Sample]:
            failure = ParseFailure(reason=reason, detail=detail)
            return [Sample(group.level, group.source, failure, group.order) for _ in range(count)]

        try:
            completions = await self._backend.generate(group)
        except BackendError as error:
            return failed(error.reason, error.detail, group.n)
        except Exception as error:  # a backend bug costs this group's samples, never the request
            log.exception("backend %s failed on a %s group", self._backend.name, group.level)
            return failed("backend_error", f"{type(error).__name__}: {error}", group.n)
        samples = [
            Sample(group.level, group.source, _outcome(c, k), group.order, c.utility)
            for c in completions[: group.n]
        ]
        short = group.n - len(samples)
        return samples + failed("backend_error", "backend returned too few samples", max(short, 0))


def _to_request_order(group: SampleGroup, canonical: tuple[int, ...]) -> SampleGroup:
    """The group's presented positions mapped to the caller's candidate indices."""
    shown = group.order or tuple(range(len(canonical)))
    order = tuple(canonical[i] for i in shown)
    return replace(group, order=None if order == tuple(range(len(order))) else order)


def _outcome(completion: Completion, k: int) -> ScoredSample | ParseFailure:
    """Scores a backend computed itself are taken as they are (its text is written only if a
    trace reads it); anything else is parsed from the text."""
    overall = completion.overall
    if overall is not None and len(overall) == k:
        return ScoredSample(overall, lambda: completion.text, completion.finish_reason)
    return parse_scores(completion.text, k, completion.finish_reason)
